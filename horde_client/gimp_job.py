"""`horde gimp-job JOB.json`: one request for the GIMP plug-in (gimp_plugin/, docs/gimp.md).

The plug-in exports raw pixels and writes a JSON job; this command decides the area and the
generation size (by the Krita docker's rule: krita_horde.geometry, imported, not copied), the
mode, sends the request, and writes every result as a PNG the size of the area, transparent
outside the selection.
It speaks JSON lines on stdout, one event per line:

    {"event": "progress", "fraction": 0.4, "text": "generating 40%"}
    {"event": "message", "text": "note: …"}
    {"event": "image", "path": "…", "x": 10, "y": 20, "width": 100, "height": 80,
     "seed": "123", "name": "a castle [seed 123]"}
    {"event": "done", "images": 2}
    {"event": "error", "message": "the horde refused …"}        (then a non-zero exit status)

Closing stdin cancels: the requests in flight are withdrawn from the horde (the plug-in's Cancel
button closes it; so does the kernel when GIMP kills the plug-in). The API key comes from
$HORDE_APIKEY or the CLI's config file, as for every command.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field
from rich.text import Text

from horde_client.errors import ClientError, NoCapableWorker, UsageError
from horde_client.images import decode_generation, png_bytes
from horde_client.payloads import Mode, RequestSpec
from horde_client.progress import Board, describe_check
from horde_client.runner import Finished, Outcome, Work
from horde_client.session import open_session
from horde_client.settings import load_settings
from horde_protocol import RequestStatusCheck
from horde_protocol.seeds import seed_to_int
from krita_horde.geometry import Bounds, Extent, GeometryError, SizeLimits, job_area

LAYER_NAME_CHARS = 40


class RawPixels(BaseModel):
    """A raw 8-bit file: RGBA (4 bytes a pixel) or a greyscale mask (1 byte), rows top down."""

    model_config = ConfigDict(extra="forbid")
    path: Path
    width: int = Field(gt=0)
    height: int = Field(gt=0)


class GimpJob(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompt: str = Field(min_length=1)
    negative: str = ""
    mode: Literal["auto", "txt2img", "img2img", "inpainting"] = "auto"
    strength: float = Field(0.6, ge=0.01, le=1.0)
    seed: str = ""  # empty: a random seed
    steps: int | None = Field(None, ge=1, le=500)
    cfg_scale: float | None = Field(None, ge=0, le=100)
    model: str = ""  # empty: the CLI's configured model (none = any)
    n: int = Field(1, ge=1, le=20)
    url: str = ""  # empty: the CLI's configured horde
    min_size: int = 512
    max_size: int = 1024
    canvas: tuple[int, int]  # the image's width and height
    origin: tuple[int, int] = (0, 0)  # canvas position of `pixels`' top-left corner
    pixels: RawPixels  # RGBA of the visible image over the exported region
    selection: tuple[int, int, int, int] | None = None  # x, y, width, height; None: no selection
    selection_mask: RawPixels | None = None  # the selection over `selection`, 0..255
    out_dir: Path


class Events:
    """JSON lines on stdout, one writer at a time (request threads report progress too)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def emit(self, event: str, **fields: Any) -> None:
        line = json.dumps({"event": event, **fields}, default=str)
        with self._lock:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()


class JsonBoard(Board):
    """The progress board as events: no terminal drawing at all."""

    def __init__(self, events: Events) -> None:
        super().__init__()
        self.events = events

    def __enter__(self) -> JsonBoard:
        return self

    def __exit__(self, *_: object) -> None:
        return None

    def overall(self, description: str, total: int | None) -> None:
        return None

    def advance(self, images: int = 1) -> None:
        return None

    def start_request(self, label: str, images: int) -> Any:
        self.events.emit("progress", fraction=0.0, text="submitting")
        return None

    def update_request(self, task: Any, label: str, check: RequestStatusCheck) -> None:
        total = check.finished + check.processing + check.waiting
        if check.progress is not None:
            fraction = check.progress
        else:
            fraction = check.finished / total if total else 0.0
        self.events.emit("progress", fraction=round(fraction, 4), text=describe_check(check))

    def end_request(self, task: Any) -> None:
        return None

    def say(self, message: str) -> None:
        self.events.emit("message", text=Text.from_markup(message).plain)


def _read_raw(raw: RawPixels, mode: str) -> Image.Image:
    depth = 4 if mode == "RGBA" else 1
    try:
        data = raw.path.read_bytes()
    except OSError as error:
        raise UsageError(f"pixels {raw.path}: {error.strerror or error}") from None
    if len(data) != raw.width * raw.height * depth:
        raise UsageError(
            f"pixels {raw.path}: {len(data)} bytes, expected {raw.width}x{raw.height}x{depth}"
        )
    return Image.frombytes(mode, (raw.width, raw.height), data)


def layer_name(prompt: str, seed: str) -> str:
    """As the Krita docker names its layers: the prompt, shortened, and the seed."""
    text = " ".join(prompt.split())
    if len(text) > LAYER_NAME_CHARS:
        text = text[: LAYER_NAME_CHARS - 1].rstrip() + "…"
    return f"{text} [seed {seed or '?'}]"


def load_job(path: Path) -> GimpJob:
    try:
        return GimpJob.model_validate_json(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise UsageError(f"job {path}: {error.strerror or error}") from None


def watch_stdin(on_eof: Callable[[], None]) -> None:
    """Call `on_eof` once stdin ends (the plug-in cancelled or went away)."""

    def run() -> None:
        # os.read on the descriptor, not sys.stdin: a daemon thread blocked inside the buffered
        # reader holds its lock, and the interpreter aborts at exit when it finds it taken.
        try:
            while os.read(0, 4096):
                pass
        except OSError:
            pass
        on_eof()

    threading.Thread(target=run, name="stdin-watch", daemon=True).start()


def run_gimp_job(job: GimpJob, events: Events) -> int:
    """Run the job; raises ClientError with the text the artist should read."""
    limits = SizeLimits(job.min_size, job.max_size)
    selection = Bounds(*job.selection) if job.selection else None
    try:
        area = job_area(Extent(*job.canvas), selection, limits)
    except GeometryError as error:
        raise UsageError(str(error)) from None
    bounds, context = area.bounds, area.context
    exported = Bounds(job.origin[0], job.origin[1], job.pixels.width, job.pixels.height)
    if exported.intersect(bounds) != bounds:
        raise UsageError(f"the exported pixels {exported} do not cover the area {bounds}")
    pixels_in = _read_raw(job.pixels, "RGBA")
    region = pixels_in.crop(_box(bounds, exported))
    # The horde gets `context`: the area with pixels around it, at the generation's aspect, so
    # nothing is stretched (outside the exported pixels it reads as transparent).
    around = pixels_in.crop(_box(context, exported))
    mask: Image.Image | None = None
    if selection is not None and job.selection_mask is not None:
        full = _read_raw(job.selection_mask, "L")
        mask = full.crop(
            (bounds.x - selection.x, bounds.y - selection.y,
             bounds.right - selection.x, bounds.bottom - selection.y)
        )  # fmt: skip
        if mask.getextrema() == (255, 255):
            mask = None  # a plain rectangle: the results cover the whole area
    mode = _resolve_mode(job.mode, has_content=region.getchannel("A").getbbox() is not None,
                         has_mask=mask is not None)  # fmt: skip
    size = (area.generation.width, area.generation.height)
    source_png = mask_png = None
    inside = (bounds.x - context.x, bounds.y - context.y)
    if mode is not Mode.TXT2IMG:
        white = Image.new("RGB", around.size, (255, 255, 255))
        white.paste(around, mask=around.getchannel("A"))
        source_png = png_bytes(white.resize(size, Image.Resampling.LANCZOS))
    if mode is Mode.INPAINTING:
        repaint = Image.new("L", around.size, 0)  # the context around the area is kept
        repaint.paste(mask if mask is not None else Image.new("L", region.size, 255), inside)
        mask_png = png_bytes(repaint.resize(size, Image.Resampling.BILINEAR))
    settings = load_settings(
        url=job.url or None, model=job.model or None, steps=job.steps, cfg_scale=job.cfg_scale
    )
    spec = RequestSpec(
        prompt=job.prompt,
        negative=job.negative,
        width=size[0],
        height=size[1],
        steps=settings.steps,
        cfg_scale=settings.cfg_scale,
        sampler=settings.sampler,
        model=settings.model,
        n=job.n,
        strength=job.strength if mode is not Mode.TXT2IMG else None,
        source_png=source_png,
        mask_png=mask_png,
        **({"seed": seed_to_int(job.seed)} if job.seed else {}),
    )
    job.out_dir.mkdir(parents=True, exist_ok=True)
    board = JsonBoard(events)
    cancelled = threading.Event()
    saved = 0
    outcomes: list[Finished] = []
    with open_session(settings, board=board) as session:
        runner = session.runner(require_worker=True)

        def cancel() -> None:
            cancelled.set()
            runner.cancel_in_flight()

        watch_stdin(cancel)

        def save(finished: Finished) -> list[Work]:
            nonlocal saved
            outcomes.append(finished)
            for generated in finished.images:
                pixels = decode_generation(generated.data)
                # Scaled back uniformly to the context, then cut to the area.
                pixels = pixels.resize((context.width, context.height), Image.Resampling.LANCZOS)
                pixels = pixels.crop(
                    (inside[0], inside[1], inside[0] + bounds.width, inside[1] + bounds.height)
                ).convert("RGBA")
                if mask is not None:
                    pixels.putalpha(mask)
                saved += 1
                path = job.out_dir / f"horde-{saved}-{generated.seed}.png"
                pixels.save(path, format="PNG")
                events.emit(
                    "image", path=str(path), x=bounds.x, y=bounds.y, width=bounds.width,
                    height=bounds.height, seed=generated.seed,
                    name=layer_name(job.prompt, generated.seed),
                )  # fmt: skip
            return []

        try:
            runner.run([Work(spec, mode.value)], save)
        except NoCapableWorker:
            raise NoCapableWorker(
                f"no live worker of {settings.url} serves model {settings.model or '(any)'} at"
                f" {size[0]}x{size[1]} now, so the request was withdrawn: pick another model,"
                " a smaller max size, or try later"
            ) from None
    if cancelled.is_set():
        raise ClientError(
            f"cancelled: the request was withdrawn from the horde ({saved} images had finished)"
        )
    for finished in outcomes:
        if finished.outcome is Outcome.FAULTED and not finished.images:
            raise ClientError(f"the horde's worker failed request {finished.request_id}")
        if finished.outcome is Outcome.TIMED_OUT and not finished.images:
            raise ClientError(
                f"request {finished.request_id} was not done after {settings.timeout:g} s:"
                " cancelled (the CLI's timeout setting)"
            )
    if not saved:
        raise ClientError("the horde sent no image back")
    events.emit("done", images=saved)
    return 0


def _box(part: Bounds, whole: Bounds) -> tuple[int, int, int, int]:
    """`part` as a crop box of an image covering `whole` (it may reach past it)."""
    return (part.x - whole.x, part.y - whole.y, part.right - whole.x, part.bottom - whole.y)


def _resolve_mode(requested: str, *, has_content: bool, has_mask: bool) -> Mode:
    """As the Krita docker: "auto" is inpainting with a shaped selection, img2img on visible
    pixels, txt2img on an empty area."""
    if requested != "auto":
        return Mode(requested)
    if has_mask:
        return Mode.INPAINTING
    return Mode.IMG2IMG if has_content else Mode.TXT2IMG
