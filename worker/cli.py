"""`horde-worker`: run a worker, check a setup, or build the tiny test model.

The option list is generated from WorkerSettings, so every setting has a flag, an env var and
a line of help, and none can be forgotten.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, get_args, get_origin

from horde_worker.config import ENV_PREFIX, ConfigError, WorkerSettings, load_settings

log = logging.getLogger("horde_worker")
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _is_bool(annotation: Any) -> bool:
    return annotation is bool


def _add_setting_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help=f"TOML or YAML config file (env {ENV_PREFIX}CONFIG); flags and env vars override it",
    )
    for name, field in WorkerSettings.model_fields.items():
        env = f"{ENV_PREFIX}{name.upper()}"
        description = field.description or name
        annotation = field.annotation
        if get_origin(annotation) is dict:
            # --model NAME=SOURCE, --post-processor NAME=FILE, --controlnet TYPE=SOURCE
            parser.add_argument(
                _flag(name.removesuffix("s")),
                dest=name,
                action="append",
                metavar="NAME=SOURCE",
                help=f"{description}; repeatable (env {env} as JSON)",
            )
        elif _is_bool(annotation):
            parser.add_argument(
                _flag(name),
                dest=name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=f"{description} (default {field.default}; env {env})",
            )
        elif get_origin(annotation) is list:
            parser.add_argument(
                _flag(name),
                dest=name,
                action="append",
                metavar="WORD",
                help=f"{description}; repeatable (env {env}, comma-separated)",
            )
        else:
            default = "" if field.default_factory or field.default is None else field.default
            choices = get_args(annotation) if get_origin(annotation) is not None else ()
            shown = f"default {default}; " if default != "" else ""
            parser.add_argument(
                _flag(name),
                dest=name,
                metavar=name.upper(),
                choices=choices if all(isinstance(c, str) for c in choices) and choices else None,
                help=f"{description} ({shown}env {env})",
            )


def _overrides(arguments: argparse.Namespace) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for name in WorkerSettings.model_fields:
        value = getattr(arguments, name, None)
        if value is None:
            continue
        if get_origin(WorkerSettings.model_fields[name].annotation) is dict:
            value = _parse_models(value, _flag(name.removesuffix("s")))
        overrides[name] = value
    return overrides


def _parse_models(items: list[str], flag: str = "--model") -> dict[str, str]:
    models: dict[str, str] = {}
    for item in items:
        name, separator, source = item.partition("=")
        if not separator or not name.strip() or not source.strip():
            raise ConfigError(
                f"{flag} {item!r}: expected NAME=SOURCE, e.g. krita-horde-tiny=tiny or"
                " my-model=/path/to/diffusers-folder"
            )
        models[name.strip()] = source.strip()
    return models


def build_parser() -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(add_help=False)
    _add_setting_options(options)
    # The option list without argparse's usage line, for the top-level help.
    option_help = options.format_help().partition("\noptions:\n")[2]
    parser = argparse.ArgumentParser(
        prog="horde-worker",
        description="A krita-horde / AI Horde image worker: pops jobs from a horde, generates"
        " them with diffusers on this machine's GPU (or CPU), submits WebP results.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="options of `run` and `check`:\n" + option_help,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    commands.add_parser(
        "run", parents=[options], help="serve jobs until SIGINT/SIGTERM (twice aborts the job)"
    )
    commands.add_parser(
        "check", parents=[options], help="load the models and run one tiny generation per mode"
    )
    build = commands.add_parser(
        "build-tiny-model", help="write the tiny random-weight SD pipeline into DIR"
    )
    build.add_argument("directory", type=Path, metavar="DIR")
    return parser


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    # Library chatter (weights loading bars, hub hints) would drown the job lines.
    for noisy in ("urllib3", "diffusers", "transformers", "PIL"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, getattr(logging, level)))
    try:
        import diffusers.utils.logging as diffusers_logging
        import transformers.utils.logging as transformers_logging

        diffusers_logging.set_verbosity_error()
        diffusers_logging.disable_progress_bar()
        transformers_logging.set_verbosity_error()
        transformers_logging.disable_progress_bar()
    except ImportError:
        pass


def _load(arguments: argparse.Namespace) -> WorkerSettings:
    import os

    config_file = arguments.config
    if config_file is None and os.environ.get(f"{ENV_PREFIX}CONFIG"):
        config_file = Path(os.environ[f"{ENV_PREFIX}CONFIG"])
    return load_settings(config_file, **_overrides(arguments))


def _load_models(settings: WorkerSettings) -> Any:
    from horde_worker.device import resolve_placement
    from horde_worker.models import ModelRegistry

    placement = resolve_placement(settings.device, settings.dtype)
    registry = ModelRegistry(settings, placement)
    registry.load_all()
    return registry


def command_run(arguments: argparse.Namespace) -> int:
    settings = _load(arguments)
    _setup_logging(settings.log_level)
    api_key = settings.require_api_key()
    settings.require_models()
    from horde_worker.horde_client import HordeClient
    from horde_worker.loop import WorkerLoop
    from horde_worker.shutdown import Shutdown

    shutdown = Shutdown()
    # Installed before the (slow) model loading so an early Ctrl-C still exits cleanly.
    shutdown.install()
    registry = _load_models(settings)
    if shutdown.stop_popping.is_set():
        log.info("stopped before serving any job")
        return EXIT_OK
    client = HordeClient(
        settings.horde_url,
        api_key,
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
    )
    WorkerLoop(settings, registry, client, shutdown).run()
    return EXIT_OK


def command_check(arguments: argparse.Namespace) -> int:
    settings = _load(arguments)
    _setup_logging(settings.log_level)
    settings.require_models()
    from PIL import Image

    from horde_protocol import PopPayload, PopReply
    from horde_worker.generate import generate
    from horde_worker.images import encode_webp, to_base64
    from horde_worker.job import Capabilities, job_from_pop

    registry = _load_models(settings)
    capabilities = Capabilities(tuple(registry.names), settings.max_pixels, True, True)
    # A source with a transparent hole: img2img uses it whole, inpainting repaints the hole.
    source = Image.new("RGBA", (64, 64), (128, 128, 128, 255))
    source.paste((0, 0, 0, 0), (16, 16, 48, 48))
    source_b64 = to_base64(_png(source))
    failed = False
    for name in registry.names:
        for mode in ("txt2img", "img2img", "inpainting"):
            reply = PopReply(
                id=f"check-{mode}",
                model=name,
                payload=PopPayload(
                    prompt="a check###blurry",
                    ddim_steps=2,
                    seed="1",
                    sampler_name="k_euler",
                    cfg_scale=7.0,
                    width=64,
                    height=64,
                    denoising_strength=0.6,
                ),
                source_image=None if mode == "txt2img" else source_b64,
                source_processing="img2img" if mode != "inpainting" else "inpainting",
            )
            started = time.perf_counter()
            try:
                job = job_from_pop(reply, capabilities)
                model = registry.get(name)
                outcome = generate(job, model)
                encode_webp(outcome.images[0].image, settings.webp_quality)
            except Exception as error:
                failed = True
                print(f"FAIL {name} {mode}: {type(error).__name__}: {error}")
                continue
            print(f"ok   {name} {mode} 64x64 in {time.perf_counter() - started:.2f}s")
    print(f"device {registry.placement.device}, dtype {registry.placement.dtype_name}")
    if settings.api_key is not None:
        failed |= not _check_horde(settings)
    return EXIT_FAILED if failed else EXIT_OK


def _check_horde(settings: WorkerSettings) -> bool:
    from horde_worker.horde_client import HordeClient, HordeRefusal, TransientError

    client = HordeClient(settings.horde_url, settings.require_api_key(), read_timeout=10)
    try:
        client.heartbeat()
    except (TransientError, HordeRefusal, ValueError) as error:
        print(f"FAIL horde {settings.horde_url} not reachable: {error}")
        return False
    print(f"ok   horde {settings.horde_url} reachable")
    return True


def _png(image: Any) -> bytes:
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def command_build_tiny_model(arguments: argparse.Namespace) -> int:
    from horde_worker.tiny_model import build_tiny_pipeline

    _setup_logging("WARNING")
    path = build_tiny_pipeline(arguments.directory)
    print(path)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    import os

    # Before diffusers/transformers are imported: they read it once. Nothing is downloaded.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    # transformers' import-time notices (optional image backends) are noise in a worker log.
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    parser = build_parser()
    arguments = parser.parse_args(argv)
    handlers = {
        "run": command_run,
        "check": command_check,
        "build-tiny-model": command_build_tiny_model,
    }
    try:
        return handlers[arguments.command](arguments)
    except ConfigError as error:
        print(f"horde-worker: {error}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as error:
        from horde_worker.models import ModelLoadError

        if isinstance(error, (ModelLoadError, RuntimeError)):
            print(f"horde-worker: {error}", file=sys.stderr)
            return EXIT_FAILED
        raise


if __name__ == "__main__":
    sys.exit(main())
