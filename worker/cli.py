"""`horde-worker`: run a worker, check a setup, or build the tiny test model.

The command line is pydantic-settings' CLI over WorkerSettings (horde_worker/config.py): every
setting is a flag, an environment variable (HORDE_WORKER_<NAME>) and a config-file key, with its
description as help, and none can be forgotten. Precedence: flags, environment, config file.
"""

from __future__ import annotations

import itertools
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    CliApp,
    CliPositionalArg,
    CliSubCommand,
    SettingsError,
    get_subcommand,
)

from horde_worker.config import (
    ENV_PREFIX,
    REFERENCE_SOURCE,
    ConfigError,
    WorkerSettings,
    default_config_path,
    format_errors,
    load_settings,
    reading_config_file,
)
from horde_worker.model_reference import PUBLIC_REFERENCE_URL

log = logging.getLogger("horde_worker")
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
CONFIG_HELP = f"TOML or YAML config file (env {ENV_PREFIX}CONFIG); flags and env vars override it"


class RunCommand(WorkerSettings):
    """Serve jobs until SIGINT/SIGTERM (a second signal aborts the running job). Every option
    is also the environment variable HORDE_WORKER_<OPTION> (upper case, underscores; tables and
    lists as JSON) and a key of the config file."""

    config: Path | None = Field(None, description=CONFIG_HELP)


class CheckCommand(WorkerSettings):
    """Load the models and run one tiny generation per mode; with a key, reach the horde. Every
    option is also the environment variable HORDE_WORKER_<OPTION> and a key of the config file."""

    config: Path | None = Field(None, description=CONFIG_HELP)


class ModelsCommand(WorkerSettings):
    """List the models of the model reference with their sizes, and which are on this machine.
    Reads the same options (config file, env vars) as `run`."""

    config: Path | None = Field(None, description=CONFIG_HELP)


class InitCommand(BaseModel):
    """Interactive first run: asks for the horde, the API key (hidden), a name and a model that
    fits this machine, writes the config file (mode 0600) and runs `check` with it."""

    config: Path | None = Field(
        None,
        description=(
            "the config file to write; default $XDG_CONFIG_HOME/horde-worker/config.toml, which"
            " run/check read when no other is named"
        ),
    )
    model_reference_url: str = Field(
        PUBLIC_REFERENCE_URL, description="the model reference offering models (URL or file)"
    )
    cache_dir: Path | None = Field(
        None, description="cache folder written into the config (default: the settings' one)"
    )


class BuildTinyModelCommand(BaseModel):
    """Write the tiny random-weight SD pipeline into DIR (deterministic: same weights each time)."""

    directory: CliPositionalArg[Path] = Field(description="the folder to write")


class HordeWorkerCli(
    BaseSettings,
    cli_prog_name="horde-worker",
    cli_kebab_case=True,
    cli_implicit_flags=True,
    cli_hide_none_type=True,
    cli_avoid_json=True,
    cli_use_class_docs_for_groups=True,
    # The tables read best one entry per flag: --model NAME=SOURCE, repeatable.
    cli_shortcuts={
        "models": "model",
        "post-processors": "post-processor",
        "controlnets": "controlnet",
        "predictions": "prediction",
    },
):
    """A krita-horde / AI Horde image worker: pops jobs from a horde, generates them with
    diffusers on this machine's GPU (or CPU), submits WebP results. Every option of `run` and
    `check` can also be set as the environment variable HORDE_WORKER_<OPTION> (upper case,
    underscores: HORDE_WORKER_IDLE_MAX_DELAY; tables and lists as JSON) or in the config file."""

    run: CliSubCommand[RunCommand] = Field(description="serve jobs until SIGINT/SIGTERM")
    init: CliSubCommand[InitCommand] = Field(
        description="first run: ask the horde, key and model, write the config, run check"
    )
    check: CliSubCommand[CheckCommand] = Field(
        description="load the models and run one tiny generation per mode"
    )
    models: CliSubCommand[ModelsCommand] = Field(
        description="list the model reference's models, their sizes and which are present"
    )
    build_tiny_model: CliSubCommand[BuildTinyModelCommand] = Field(
        description="write the tiny random-weight SD pipeline into DIR"
    )


def _config_file_of(argv: Sequence[str]) -> Path | None:
    """The config file named on the command line (or in the environment), read before the rest:
    the settings load it below the flags and the environment."""
    for index, argument in enumerate(argv):
        if argument == "--config" and index + 1 < len(argv):
            return Path(argv[index + 1])
        if argument.startswith("--config="):
            return Path(argument.partition("=")[2])
    if argv and argv[0] == "init":
        return None  # init writes the file; it must not need one already
    configured = os.environ.get(f"{ENV_PREFIX}CONFIG")
    if configured:
        return Path(configured)
    # What `init` wrote, when it is there: a bare `horde-worker run` then just works.
    default = default_config_path()
    return default if default.is_file() else None


TABLE_FLAGS = ("--model", "--models", "--post-processor", "--post-processors", "--controlnet")
MODEL_FLAGS = ("--model", "--models")


def _normalise_tables(argv: Sequence[str]) -> list[str]:
    """`--model NAME` (no source) is `--model NAME=reference`: the model reference's files for
    NAME. Any other table entry must be NAME=SOURCE; say so plainly (the parser's own message
    is cryptic)."""
    result = list(argv)
    for index, (flag, value) in enumerate(itertools.pairwise(argv)):
        if flag not in TABLE_FLAGS:
            continue
        entries = []
        for entry in value.split(","):
            name, separator, source = entry.partition("=")
            if not separator and flag in MODEL_FLAGS and name.strip():
                entries.append(f"{name.strip()}={REFERENCE_SOURCE}")
                continue
            if not (separator and name.strip() and source.strip()):
                raise ConfigError(
                    f"{flag} {value!r}: expected NAME=SOURCE, e.g. krita-horde-tiny=tiny or"
                    " my-model=/path/to/diffusers-folder"
                )
            entries.append(entry)
        result[index + 1] = ",".join(entries)
    return result


def parse_command(argv: Sequence[str]) -> BaseModel:
    """The chosen subcommand with its settings. Raises ConfigError (exit 2) on bad settings;
    argparse exits 2 on an unknown flag."""
    argv = _normalise_tables(argv)
    with reading_config_file(_config_file_of(argv)):
        try:
            root = CliApp.run(HordeWorkerCli, cli_args=list(argv))
        except ValidationError as error:
            raise ConfigError(format_errors(error)) from None
        except SettingsError as error:
            raise ConfigError(f"invalid worker configuration: {error}") from None
    command = get_subcommand(root)
    assert command is not None  # subcommands are required
    return command


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    # Library chatter (weights loading bars, hub hints) would drown the job lines.
    for noisy in (
        "urllib3",
        "httpx",
        "httpx2",
        "huggingface_hub",
        "diffusers",
        "transformers",
        "PIL",
    ):
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


def _load_models(settings: WorkerSettings) -> Any:
    from horde_worker.device import resolve_placement, share_cpu_threads
    from horde_worker.models import ModelRegistry

    placement = resolve_placement(settings.device, settings.dtype)
    share_cpu_threads(placement, settings.threads)
    registry = ModelRegistry(settings, placement)
    registry.load_all()
    return registry


def command_run(settings: WorkerSettings) -> int:
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


def command_check(settings: WorkerSettings) -> int:
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
    print(registry.size_report)
    failed |= not _check_safety(registry.features)
    if settings.api_key is not None:
        failed |= not _check_horde(settings)
    return EXIT_FAILED if failed else EXIT_OK


def _check_safety(features: Any) -> bool:
    """Say which case applies to jobs asking for the NSFW censor; run the checker once."""
    from PIL import Image

    if features.safety is None:
        print("no safety checker: jobs that ask for censorship will not be sent here")
        return True
    started = time.perf_counter()
    try:
        features.safety.flagged([Image.new("RGB", (64, 64), (90, 140, 200))])
    except Exception as error:
        print(f"FAIL safety checker {features.safety.source}: {type(error).__name__}: {error}")
        return False
    seconds = time.perf_counter() - started
    print(f"safety checker: {features.safety.source} (ran in {seconds:.2f}s)")
    return True


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


def command_models(settings: WorkerSettings) -> int:
    from horde_worker.downloads import human_size
    from horde_worker.provision import Provisioner

    _setup_logging("WARNING")
    provisioner = Provisioner(settings)
    models = provisioner.reference()
    print(f"{len(models)} models in {settings.model_reference_url}")
    print(f"{'name':40} {'baseline':24} {'size':>10}  here")
    for name in sorted(models, key=str.lower):
        model = models[name]
        shown = human_size(model.size_on_disk_bytes) if model.size_on_disk_bytes else "?"
        # Presence is a file check, not a hash run over every model: serving verifies.
        present = all((provisioner.models_dir / f.relative_path).is_file() for f in model.files)
        here = "yes" if model.files and present else "no"
        print(f"{name:40} {model.baseline:24} {shown:>10}  {here}")
    return EXIT_OK


def command_init(command: InitCommand) -> int:
    from horde_worker.first_run import run_init

    try:
        path = run_init(command.config, command.model_reference_url, command.cache_dir)
    except (EOFError, KeyboardInterrupt):
        print("\nhorde-worker init: stopped; nothing written", file=sys.stderr)
        return EXIT_FAILED
    if path is None:
        print("nothing written")
        return EXIT_OK
    print(f"Checking: horde-worker check --config {path}")
    return command_check(load_settings(path))


def command_build_tiny_model(command: BuildTinyModelCommand) -> int:
    from horde_worker.tiny_model import build_tiny_pipeline

    _setup_logging("WARNING")
    path = build_tiny_pipeline(command.directory)
    print(path)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    # transformers' import-time notices (optional image backends) are noise in a worker log.
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    try:
        command = parse_command(sys.argv[1:] if argv is None else argv)
        if getattr(command, "offline", False):
            # Before huggingface_hub is imported (it reads it once): no library may fetch.
            os.environ["HF_HUB_OFFLINE"] = "1"
        if isinstance(command, RunCommand):
            return command_run(command)
        if isinstance(command, CheckCommand):
            return command_check(command)
        if isinstance(command, ModelsCommand):
            return command_models(command)
        if isinstance(command, InitCommand):
            return command_init(command)
        assert isinstance(command, BuildTinyModelCommand)
        return command_build_tiny_model(command)
    except ConfigError as error:
        print(f"horde-worker: {error}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as error:
        from horde_worker.models import ModelLoadError

        # Download, reference and provisioning errors are RuntimeErrors with a full message.
        if isinstance(error, (ModelLoadError, RuntimeError)):
            print(f"horde-worker: {error}", file=sys.stderr)
            return EXIT_FAILED
        raise


if __name__ == "__main__":
    sys.exit(main())
