"""`horde`: generate, explore, vary, dream and animate on a horde (docs/cli.md).

Settings come from the config file and `HORDE_CLI_*` (see `horde config`); options given here win.
The API key comes from $HORDE_APIKEY or the config file only.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from horde_client.errors import ClientError, ExitCode, UsageError
from horde_client.explore import ASPECTS, Exploration, explore, load_exploration
from horde_client.frames import FrameKind, FramePlan, render
from horde_client.generate import generate_spec, run_generate
from horde_client.gimp_job import Events, load_job, run_gimp_job
from horde_client.images import open_image
from horde_client.metadata import read_record
from horde_client.progress import describe_check
from horde_client.session import open_session
from horde_client.settings import ClientSettings, config_file, load_settings
from horde_client.transforms import TRANSFORMS, transform_named
from horde_client.vary import plan_vary, vary
from horde_client.video import VIDEO_FORMATS
from horde_protocol.seeds import seed_to_int

app = typer.Typer(
    name="horde",
    help=__doc__,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# A sampler without ancestral noise: neighbouring frames then differ only by what is walked.
FRAME_SAMPLER = "k_euler"

Steps = Annotated[int | None, typer.Option(help="denoising steps (config: steps)")]
Scale = Annotated[float | None, typer.Option("--scale", help="CFG scale (config: cfg_scale)")]
Sampler = Annotated[str | None, typer.Option(help="sampler (config: sampler)")]
Negative = Annotated[str, typer.Option(help="negative prompt")]
Size = Annotated[
    int | None, typer.Option(help="short side of the image, a multiple of 64 (config: size)")
]


@app.callback()
def main(
    ctx: typer.Context,
    url: Annotated[str | None, typer.Option(help="horde base URL (config: url)")] = None,
    model: Annotated[str | None, typer.Option(help="model name (config: model)")] = None,
    parallel: Annotated[
        int | None, typer.Option(help="requests in flight at once (config: parallel)")
    ] = None,
    timeout: Annotated[
        float | None, typer.Option(help="cancel a request not done after S s (config: timeout)")
    ] = None,
) -> None:
    ctx.obj = {"url": url, "model": model, "parallel": parallel, "timeout": timeout}


def _settings(ctx: typer.Context, **overrides: Any) -> ClientSettings:
    return load_settings(**ctx.obj, **overrides)


def _problems(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in item['loc'])}: {item['msg']}" for item in error.errors()
    )


def _run(action: Callable[[], int | None]) -> None:
    """Run a command; every failure is rendered here, once, as one clear line."""
    try:
        code = action()
    except ClientError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(error.exit_code) from None
    except ValidationError as error:  # a value the protocol does not allow
        typer.echo(f"error: {_problems(error)}", err=True)
        raise typer.Exit(ExitCode.USAGE) from None
    except KeyboardInterrupt:
        typer.echo(
            "interrupted: requests in flight were cancelled; finished files are kept", err=True
        )
        raise typer.Exit(ExitCode.INTERRUPTED) from None
    raise typer.Exit(code or ExitCode.OK)


# --- generate, models, status, info ---


@app.command()
def generate(
    ctx: typer.Context,
    prompt: Annotated[str, typer.Argument(help="what to paint")],
    negative: Negative = "",
    image: Annotated[Path | None, typer.Option(help="source image: img2img")] = None,
    mask: Annotated[
        Path | None, typer.Option(help="mask for --image, white = repaint: inpainting")
    ] = None,
    strength: Annotated[
        float, typer.Option(min=0.01, max=1.0, help="denoising strength of img2img/inpainting")
    ] = 0.6,
    n: Annotated[int, typer.Option("-n", min=1, max=20, help="images")] = 1,
    seed: Annotated[str | None, typer.Option(help="seed (text or number); random if not given")] = (
        None
    ),
    width: Annotated[int | None, typer.Option(help="width (txt2img) (config: size)")] = None,
    height: Annotated[int | None, typer.Option(help="height (txt2img) (config: size)")] = None,
    steps: Steps = None,
    scale: Scale = None,
    sampler: Sampler = None,
    out: Annotated[Path | None, typer.Option(help="folder (config: output_dir)")] = None,
    color_correct: Annotated[
        bool | None, typer.Option(help="match colors to --image (config: color_correct)")
    ] = None,
) -> None:
    """txt2img, img2img (--image) or inpainting (--image and --mask); saves PNG/WebP files."""

    def action() -> int:
        settings = _settings(
            ctx, steps=steps, cfg_scale=scale, sampler=sampler, color_correct=color_correct
        )
        spec, source = generate_spec(
            settings, prompt, negative=negative, image=image, mask=mask, strength=strength, n=n,
            seed=seed, width=width, height=height,
        )  # fmt: skip
        with open_session(settings) as session:
            return run_generate(
                session,
                spec,
                out or settings.output_dir,
                parent=image.name if image else None,
                reference=source if settings.color_correct else None,
            )

    _run(action)


@app.command()
def models(ctx: typer.Context) -> None:
    """The models live workers serve, with their queues."""

    def action() -> int:
        with open_session(_settings(ctx)) as session:
            rows = sorted(session.api.models(), key=lambda m: (-m.count, m.name))
            if not rows:
                session.board.say("no model is served by a live worker now")
            for row in rows:
                typer.echo(
                    f"{row.name}\t{row.count} workers\t{row.jobs:g} images queued\teta {row.eta} s"
                )
        return ExitCode.OK

    _run(action)


@app.command()
def status(
    ctx: typer.Context,
    request_id: Annotated[str | None, typer.Argument(help="a request id")] = None,
    cancel: Annotated[bool, typer.Option(help="cancel the request")] = False,
) -> None:
    """The horde's state, or one request's (and cancel it with --cancel)."""

    def action() -> int:
        with open_session(_settings(ctx)) as session:
            if request_id is None:
                heartbeat = session.api.heartbeat()
                extensions = ", ".join(heartbeat.extensions or []) or "none"
                typer.echo(f"{session.api.url}: {heartbeat.message}, version {heartbeat.version}")
                typer.echo(f"extensions: {extensions}")
                return ExitCode.OK
            if cancel:
                reply = session.api.cancel(request_id)
                typer.echo(f"cancelled; {reply.finished} images had finished")
                return ExitCode.OK
            check = session.api.check(request_id)
            typer.echo(describe_check(check) + ("" if check.is_possible else " (no worker can)"))
        return ExitCode.OK

    _run(action)


@app.command()
def info(
    files: Annotated[list[Path], typer.Argument(help="images made by horde")],
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per file")] = False,
) -> None:
    """The settings embedded in images (PNG text chunks / WebP XMP)."""

    def action() -> int:
        missing = 0
        for path in files:
            record = read_record(path)
            if record is None:
                typer.echo(f"{path}: no krita-horde metadata", err=True)
                missing += 1
                continue
            data = record.model_dump(mode="json", exclude_none=True)
            if as_json:
                typer.echo(json.dumps({"file": str(path), **data}))
                continue
            typer.echo(f"{path}:")
            for key, value in data.items():
                typer.echo(f"  {key}: {value}")
        return ExitCode.FAILED if missing else ExitCode.OK

    _run(action)


@app.command("config")
def show_config(ctx: typer.Context) -> None:
    """The settings in effect and where they come from (the key is never shown)."""

    def action() -> int:
        settings = _settings(ctx)
        typer.echo(f"config file: {config_file()}" + ("" if config_file().is_file() else " (none)"))
        for key, value in settings.model_dump(exclude={"apikey"}).items():
            typer.echo(f"{key} = {value}")
        typer.echo("apikey = " + ("(anonymous)" if settings.anonymous else "(set)"))
        return ExitCode.OK

    _run(action)


@app.command("gimp-job")
def gimp_job(
    job_file: Annotated[Path, typer.Argument(help="the JSON job the GIMP plug-in wrote")],
) -> None:
    """One request for the GIMP plug-in: JSON lines on stdout; closing stdin cancels
    (horde_client/gimp_job.py, docs/gimp.md)."""
    events = Events()

    def action() -> int:
        try:
            return run_gimp_job(load_job(job_file), events)
        except ClientError as error:
            events.emit("error", message=str(error))
            raise
        except ValidationError as error:
            events.emit("error", message=f"bad job: {_problems(error)}")
            raise
        except KeyboardInterrupt:
            events.emit("error", message="interrupted: the request was cancelled")
            raise

    _run(action)


# --- explore, continue ---


def _floats(text: str | None) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UsageError(f"expected numbers separated by commas, got {text!r}") from None


Count = Annotated[int | None, typer.Option(min=1, help="stop after this many images")]
Minutes = Annotated[float | None, typer.Option(min=0, help="stop after this many minutes")]


@app.command("explore")
def explore_command(
    ctx: typer.Context,
    prompt: Annotated[str, typer.Argument(help="the prompt to explore")],
    aspect: Annotated[str, typer.Argument(help="square, landscape or portrait")] = "square",
    scale: Annotated[float | None, typer.Argument(help="CFG scale (config: cfg_scale)")] = None,
    negative: Negative = "",
    count: Count = None,
    minutes: Minutes = None,
    batch: Annotated[int | None, typer.Option(min=1, max=20, help="images per request")] = None,
    sweep_scale: Annotated[
        str | None, typer.Option(help="scales to cycle through, e.g. 5,7.5,10")
    ] = None,
    sweep_aspect: Annotated[bool, typer.Option(help="cycle through all three aspects")] = False,
    steps: Steps = None,
    sampler: Sampler = None,
    size: Size = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="no scratch batch question")] = False,
) -> None:
    """Keep the horde busy with new seeds of PROMPT until --count, --minutes or Ctrl-C."""

    def action() -> int:
        if aspect not in ASPECTS:
            raise UsageError(f"aspect {aspect!r}: use one of {', '.join(ASPECTS)}")
        settings = _settings(
            ctx, steps=steps, sampler=sampler, size=size, batch=batch, cfg_scale=scale
        )
        exploration = Exploration(
            prompt=prompt.strip(),
            negative=negative,
            aspects=list(ASPECTS) if sweep_aspect else [aspect],
            scales=_floats(sweep_scale) or [settings.cfg_scale],
            size=settings.size,
            steps=settings.steps,
            sampler=settings.sampler,
            model=settings.model,
            batch=settings.batch,
        )
        with open_session(settings) as session:
            explore(
                session,
                exploration,
                count=count,
                seconds=minutes * 60 if minutes is not None else None,
                ask_first=not yes,
            )
        return ExitCode.OK

    _run(action)


@app.command("continue")
def continue_command(
    ctx: typer.Context,
    prompt_file: Annotated[Path, typer.Argument(help="explore/<hash>/prompt.txt")],
    count: Count = None,
    minutes: Minutes = None,
) -> None:
    """Resume an exploration from its prompt folder, with its saved settings."""

    def action() -> int:
        exploration = load_exploration(prompt_file)
        with open_session(_settings(ctx)) as session:
            explore(
                session,
                exploration,
                count=count,
                seconds=minutes * 60 if minutes is not None else None,
                folder=prompt_file.parent,
                ask_first=False,
            )
        return ExitCode.OK

    _run(action)


# --- vary ---


@app.command("vary")
def vary_command(
    ctx: typer.Context,
    image: Annotated[Path, typer.Argument(help="a PNG/WebP/JPEG image")],
    transform: Annotated[str, typer.Argument(help=f"one of: {', '.join(TRANSFORMS)}")],
    words: Annotated[
        str | None, typer.Argument(help="extra prompt words (saved as a new prompt folder)")
    ] = None,
    prompt: Annotated[
        str | None, typer.Option(help="the image's prompt, for images without metadata")
    ] = None,
    n: Annotated[int, typer.Option("-n", min=1, max=20, help="images per pair")] = 1,
    chains: Annotated[int, typer.Option(min=1, max=20, help="parallel chains (multi step)")] = 1,
    color_correct: Annotated[
        bool | None, typer.Option(help="match each result's colors to IMAGE")
    ] = None,
) -> None:
    """Run a named img2img transform on IMAGE (see `horde transforms`)."""

    def action() -> int:
        try:
            chosen = transform_named(transform)
        except ValueError as error:
            raise UsageError(str(error)) from None
        settings = _settings(ctx, color_correct=color_correct)
        open_image(image).close()  # a clear error before anything is sent
        with open_session(settings) as session:
            plan, source = plan_vary(settings, image, chosen, words, prompt, n)
            vary(session, plan, source, chains=chains, color_correct=settings.color_correct)
        return ExitCode.OK

    _run(action)


@app.command()
def transforms() -> None:
    """The transforms of `horde vary` with their (scale, strength) pairs."""
    for transform in TRANSFORMS.values():
        pairs = " ".join(f"({scale:g}, {strength:g})" for scale, strength in transform.pairs)
        typer.echo(f"{transform.name}\t{transform.kind.value}\t{pairs}\t{transform.purpose}")


# --- dream, animate ---

Frames = Annotated[int, typer.Option(min=2, max=10_000, help="frames of the video")]
Out = Annotated[Path | None, typer.Option(help="folder (default: dream_dir/<kind>-<hash>)")]
Video = Annotated[str, typer.Option(help="video format: mp4 or webp")]
Seed = Annotated[str | None, typer.Option(help="first seed; random if left out")]


def _frames(
    ctx: typer.Context,
    kind: FrameKind,
    prompt: str,
    to_prompt: str | None,
    *,
    frames: int,
    walk: int,
    seed: str | None,
    out: Path | None,
    video: str,
    overrides: dict[str, Any],
) -> None:
    def action() -> int:
        if video not in VIDEO_FORMATS:
            raise UsageError(f"--video {video!r}: use one of {', '.join(VIDEO_FORMATS)}")
        settings = _settings(ctx, **{k: v for k, v in overrides.items() if k != "negative"})
        sampler = overrides.get("sampler") or FRAME_SAMPLER
        plan = FramePlan(
            kind=kind,
            prompt=prompt.strip(),
            negative=overrides.get("negative", ""),
            to_prompt=to_prompt.strip() if to_prompt else None,
            frames=frames,
            walk=walk,
            width=settings.size,
            height=settings.size,
            steps=settings.steps,
            cfg_scale=settings.cfg_scale,
            sampler=sampler,
            model=settings.model,
        )
        with open_session(settings) as session:
            made = render(
                session,
                plan,
                out=out,
                first_seed=seed_to_int(seed) if seed else None,
                video_format=video,
            )
            if made is None:
                return ExitCode.FAILED
            typer.echo(made)
        return ExitCode.OK

    _run(action)


@app.command()
def dream(
    ctx: typer.Context,
    prompt: Annotated[str, typer.Argument(help="the prompt")],
    frames: Frames = 48,
    walk: Annotated[int, typer.Option(min=1, help="frames from one seed to the next")] = 12,
    seed: Seed = None,
    negative: Negative = "",
    out: Out = None,
    video: Video = "mp4",
    steps: Steps = None,
    scale: Scale = None,
    sampler: Annotated[str | None, typer.Option(help=f"sampler (default {FRAME_SAMPLER})")] = None,
    size: Size = None,
) -> None:
    """A latent walk of PROMPT through successive seeds' noises, as a video."""
    overrides = {"steps": steps, "cfg_scale": scale, "sampler": sampler, "size": size}
    _frames(
        ctx, FrameKind.DREAM, prompt, None, frames=frames, walk=walk, seed=seed, out=out,
        video=video, overrides={**overrides, "negative": negative},
    )  # fmt: skip


@app.command()
def animate(
    ctx: typer.Context,
    prompt_a: Annotated[str, typer.Argument(help="the first frame's prompt")],
    prompt_b: Annotated[str, typer.Argument(help="the last frame's prompt")],
    frames: Frames = 48,
    seed: Seed = None,
    negative: Negative = "",
    out: Out = None,
    video: Video = "mp4",
    steps: Steps = None,
    scale: Scale = None,
    sampler: Annotated[str | None, typer.Option(help=f"sampler (default {FRAME_SAMPLER})")] = None,
    size: Size = None,
) -> None:
    """A morph from PROMPT_A to PROMPT_B on one seed, as a video."""
    overrides = {"steps": steps, "cfg_scale": scale, "sampler": sampler, "size": size}
    _frames(
        ctx, FrameKind.ANIMATE, prompt_a, prompt_b, frames=frames, walk=1, seed=seed, out=out,
        video=video, overrides={**overrides, "negative": negative},
    )  # fmt: skip


def run() -> None:
    """The console script's entry point."""
    app(prog_name="horde")


if __name__ == "__main__":
    sys.exit(run())
