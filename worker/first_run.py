"""`horde-worker init`: the interactive first run that writes the config file.

It asks for the horde, the API key (hidden: getpass never echoes it, and it is written only to
the config file, mode 0600), a name and a model that fits this machine, then `run`/`check` read
the file (DEFAULT_CONFIG, or the --config given to both). Every answer is validated by the same
rules as the settings, and a bad one is asked again with the reason.
"""

from __future__ import annotations

import getpass
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from horde_protocol import ANONYMOUS_API_KEY
from horde_worker.config import (
    LOCAL_HORDE_URL,
    PUBLIC_HORDE_URL,
    default_config_path,
    default_name,
    normalise_base_url,
    source_problem,
)
from horde_worker.model_reference import PUBLIC_REFERENCE_URL, ReferenceModel
from horde_worker.tiny_model import TINY_MODEL_NAME, TINY_SOURCE, default_cache_dir

T = TypeVar("T")
# Reference models shown; the rest can still be typed by name.
MAX_LISTED = 15
# Weights beside the activations: a model whose files exceed this share of the memory is not
# offered (it would leave too little for any image).
WEIGHTS_SHARE = 0.6


def ask(question: str, parse: Callable[[str], T], default: str | None = None) -> T:
    """Ask until `parse` accepts the answer; its ValueError is the message shown."""
    suffix = f" [{default}]" if default else ""
    while True:
        answer = input(f"{question}{suffix}: ").strip() or (default or "")
        try:
            return parse(answer)
        except ValueError as error:
            print(f"  {error}; try again")


def _api_key(answer: str) -> str:
    if not answer:
        raise ValueError("the API key is required (the key of a registered user)")
    if answer == ANONYMOUS_API_KEY:
        raise ValueError("the anonymous key cannot run a worker")
    return answer


def ask_api_key() -> str:
    while True:
        try:
            return _api_key(getpass.getpass("API key (hidden, not echoed): ").strip())
        except ValueError as error:
            print(f"  {error}; try again")


def fitting_models(models: dict[str, ReferenceModel], memory_bytes: int) -> list[ReferenceModel]:
    """Reference models whose files fit in WEIGHTS_SHARE of the memory, largest first (the
    largest that fits is usually the best one this machine can serve)."""
    fit = [
        model
        for model in models.values()
        if model.size_on_disk_bytes
        and model.size_on_disk_bytes <= memory_bytes * WEIGHTS_SHARE
        and model.problem() is None
    ]
    return sorted(fit, key=lambda model: (-(model.size_on_disk_bytes or 0), model.name))


def ask_model(offered: list[ReferenceModel], known: set[str]) -> dict[str, str]:
    from horde_worker.downloads import human_size

    print("Models:")
    print(f"  1. {TINY_MODEL_NAME}: built-in random-weight test model (quick, no download)")
    for number, model in enumerate(offered[:MAX_LISTED], start=2):
        size = human_size(model.size_on_disk_bytes or 0)
        print(f"  {number}. {model.name}: {model.baseline}, {size}")
    path_choice = min(len(offered), MAX_LISTED) + 2
    print(f"  {path_choice}. a model file or folder on this machine")
    if known:
        print("  or type the name of any model of the model reference")

    def parse(answer: str) -> dict[str, str]:
        if answer.isdigit() and 1 <= int(answer) <= path_choice:
            number = int(answer)
            if number == 1:
                return {TINY_MODEL_NAME: TINY_SOURCE}
            if number < path_choice:
                return {offered[number - 2].name: "reference"}
            return ask_model_path()
        if answer in known:
            return {answer: "reference"}
        raise ValueError(f"answer a number from 1 to {path_choice} or a model reference name")

    return ask("Model to serve", parse, "1")


def ask_model_path() -> dict[str, str]:
    def source(answer: str) -> str:
        problem = source_problem(answer) if answer else "a path is required"
        if problem:
            raise ValueError(problem)
        return answer

    path = ask("Path to a .safetensors/.ckpt file or a diffusers folder", source)
    name = ask("Name the horde shows for it", _non_empty, Path(path).stem)
    return {name: path}


def _non_empty(answer: str) -> str:
    if not answer:
        raise ValueError("a name is required")
    return answer


def _toml(value: str) -> str:
    # A JSON string is a valid TOML basic string (same escapes).
    return json.dumps(value)


def config_text(values: dict[str, str], models: dict[str, str]) -> str:
    lines = ["# Written by `horde-worker init`; every key is an option (docs/worker.md)."]
    lines += [f"{key} = {_toml(value)}" for key, value in values.items()]
    lines += ["", "[models]"]
    lines += [f"{_toml(name)} = {_toml(source)}" for name, source in models.items()]
    return "\n".join(lines) + "\n"


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` with mode 0600 from the first byte (it holds the API key):
    mkstemp creates the file 0600, and the rename replaces any older file atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, scratch = tempfile.mkstemp(dir=path.parent, prefix=".config-")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(scratch, 0o600)
        os.replace(scratch, path)
    except BaseException:
        Path(scratch).unlink(missing_ok=True)
        raise


def run_init(config: Path | None, model_reference_url: str, cache_dir: Path | None) -> Path | None:
    """Ask, write the config file and return its path (None when the person declined to
    replace an existing file)."""
    from horde_worker.capacity import device_memory
    from horde_worker.device import resolve_placement
    from horde_worker.model_reference import ModelReferenceError, load_reference

    path = (config or default_config_path()).expanduser()
    print(f"First run: this writes {path}, then checks the setup.")
    if path.exists():
        overwrite = ask(f"{path} exists; replace it? (y/n)", _yes_no, "n")
        if not overwrite:
            return None
    print(f"Horde URL: {LOCAL_HORDE_URL} (a local krita-horde) or {PUBLIC_HORDE_URL}")
    horde_url = ask("Horde URL", normalise_base_url, LOCAL_HORDE_URL)
    api_key = ask_api_key()
    name = ask("Worker name", _non_empty, default_name())
    placement = resolve_placement("auto", "auto")
    memory = device_memory(placement.device)
    print(f"Device: {memory.describe()}")
    try:
        models = load_reference(
            model_reference_url, cache_dir or default_cache_dir(), offline=False, timeout=15
        )
    except ModelReferenceError as error:
        print(f"Model reference not reachable ({error}); offering the built-in model and files")
        models = {}
    chosen = ask_model(fitting_models(models, memory.total_bytes), set(models))
    values = {"horde_url": horde_url, "api_key": api_key, "name": name}
    if model_reference_url != PUBLIC_REFERENCE_URL:
        values["model_reference_url"] = model_reference_url
    if cache_dir is not None:
        values["cache_dir"] = str(cache_dir)
    write_private(path, config_text(values, chosen))
    print(f"Wrote {path} (mode 0600: it holds the API key).")
    return path


def _yes_no(answer: str) -> bool:
    if answer.lower() in ("y", "yes"):
        return True
    if answer.lower() in ("n", "no"):
        return False
    raise ValueError("answer y or n")
