"""LoRAs and textual inversions from the volunteer's folders, applied to one job and removed after.

A folder holds weight files; a request names one by the file's name without its suffix
(case-insensitive: `Detail-Tweaker.safetensors` is `detail-tweaker`). An optional
`horde-names.json` in the folder maps more names to a file, e.g. the public horde's CivitAI ids
or version ids: `{"58390": "detail-tweaker", "87153": "detail-tweaker"}`. The worker announces
every name it can serve, so our horde only hands it jobs whose LoRAs it has.

LoRAs (kohya/A1111 `.safetensors` as CivitAI distributes them, or diffusers/PEFT files) are
injected with PEFT as adapters beside the weights — never fused into them — with the request's
`model` strength on the UNet and `clip` strength on the text encoder, and unloaded after the
job: the base weights are never copied or changed. Textual inversions (A1111 `.pt`/
`.safetensors` embeddings) are added as new tokens, scaled by `strength`, and removed after.
A prompt uses one as `embedding:NAME` (the public horde's syntax), or `inject_ti` puts it in the
prompt or the negative prompt. A LoRA's `inject_trigger` text (other than the public horde's
`any`/`all`, which need CivitAI's trigger lists) is put in front of the prompt.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

LORA_SUFFIXES = (".safetensors", ".pt", ".bin")
TI_SUFFIXES = (".safetensors", ".pt", ".bin")
NAMES_FILE = "horde-names.json"
# The public horde's trigger choices that need CivitAI's trigger lists (not kept locally).
TRIGGER_LOOKUPS = ("any", "all")


class AdapterError(ValueError):
    """A folder or a requested LoRA/TI cannot be used; the message says which and why."""


def name_key(name: str) -> str:
    return name.strip().lower()


class AdapterFolder:
    """The weight files of one folder, by every name a request may use for them."""

    def __init__(self, folder: Path | None, suffixes: tuple[str, ...], kind: str) -> None:
        self.kind = kind
        self._files: dict[str, Path] = {}
        if folder is None:
            return
        folder = folder.expanduser()
        if not folder.is_dir():
            raise AdapterError(f"{kind} folder {folder}: no such folder")
        for path in sorted(folder.iterdir()):
            if path.is_file() and path.suffix.lower() in suffixes:
                self._files[name_key(path.stem)] = path
        self._read_names(folder / NAMES_FILE)

    def _read_names(self, path: Path) -> None:
        if not path.is_file():
            return
        try:
            aliases = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise AdapterError(
                f"{path}: not a JSON object of name -> file name ({error})"
            ) from None
        if not isinstance(aliases, dict):
            raise AdapterError(f"{path}: must be a JSON object of name -> file name")
        for alias, target in aliases.items():
            stem = name_key(Path(str(target)).stem)
            if stem not in self._files:
                raise AdapterError(
                    f"{path}: {alias!r} names {target!r}, which is not in the folder"
                )
            self._files.setdefault(name_key(str(alias)), self._files[stem])

    @property
    def names(self) -> list[str]:
        return sorted(self._files)

    def find(self, name: str) -> Path | None:
        return self._files.get(name_key(name))


@dataclass(frozen=True)
class LoraRequest:
    name: str
    model: float = 1.0
    clip: float = 1.0
    inject_trigger: str | None = None


@dataclass(frozen=True)
class TiRequest:
    name: str
    strength: float = 1.0
    inject_ti: str | None = None


@dataclass(frozen=True)
class Prompts:
    prompt: str
    negative_prompt: str


class AdapterLibrary:
    def __init__(self, lora_folder: Path | None = None, ti_folder: Path | None = None) -> None:
        self.loras = AdapterFolder(lora_folder, LORA_SUFFIXES, "LoRA")
        self.tis = AdapterFolder(ti_folder, TI_SUFFIXES, "textual inversion")


def _read_state(path: Path) -> dict[str, Any]:
    if path.suffix.lower() == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    import torch

    return torch.load(str(path), map_location="cpu", weights_only=True)


def _ti_token(index: int) -> str:
    # A token no prompt contains by chance; the prompt's `embedding:NAME` is rewritten to it.
    return f"<horde-ti-{index}>"


def _mention(name: str) -> re.Pattern[str]:
    return re.compile(rf"embedding:{re.escape(name)}\b", re.IGNORECASE)


@contextmanager
def applied(
    pipeline: Any,
    library: AdapterLibrary,
    loras: list[LoraRequest],
    tis: list[TiRequest],
    prompts: Prompts,
) -> Iterator[Prompts]:
    """The job's LoRAs and textual inversions on `pipeline`'s modules for the duration; yields
    the prompts with trigger words and embedding tokens put in. Everything is removed on exit,
    also when the job fails."""
    prompt, negative = prompts.prompt, prompts.negative_prompt
    adapter_names: list[str] = []
    added_tokens: list[str] = []
    try:
        weights = []
        for index, lora in enumerate(loras):
            path = library.loras.find(lora.name)
            if path is None:
                raise AdapterError(f"LoRA {lora.name!r} is not in this worker's LoRA folder")
            adapter = f"horde_lora_{index}"
            with _unaliased_text_encoder(pipeline):
                pipeline.load_lora_weights(_read_state(path), adapter_name=adapter)
            adapter_names.append(adapter)
            weights.append({"unet": lora.model, "text_encoder": lora.clip})
            trigger = (lora.inject_trigger or "").strip()
            if trigger and trigger.lower() not in TRIGGER_LOOKUPS:
                prompt = f"{trigger}, {prompt}"
        if adapter_names:
            pipeline.set_adapters(adapter_names, adapter_weights=weights)
        for index, ti in enumerate(tis):
            path = library.tis.find(ti.name)
            if path is None:
                raise AdapterError(f"textual inversion {ti.name!r} is not in this worker's folder")
            token = _ti_token(index)
            added_tokens.extend(_load_embedding(pipeline, path, token, ti.strength))
            prompt = _mention(ti.name).sub(token, prompt)
            negative = _mention(ti.name).sub(token, negative)
            if ti.inject_ti == "prompt":
                prompt = f"{token}, {prompt}"
            elif ti.inject_ti == "negprompt":
                negative = f"{negative}, {token}" if negative else token
        yield Prompts(prompt, negative)
    finally:
        if adapter_names:
            pipeline.unload_lora_weights()
        if added_tokens:
            pipeline.unload_textual_inversion(tokens=added_tokens)


@contextmanager
def _unaliased_text_encoder(pipeline: Any) -> Iterator[None]:
    """Without models.py's `text_model` alias (kept for clip_skip) while a LoRA loads: diffusers
    strips the `text_model.` prefix of a LoRA's keys only for an encoder that has no such
    attribute (transformers 5 flattened CLIPTextModel)."""
    encoder = getattr(pipeline, "text_encoder", None)
    alias = vars(encoder).get("text_model") if encoder is not None else None
    if alias is not encoder:
        yield
        return
    del vars(encoder)["text_model"]
    try:
        yield
    finally:
        object.__setattr__(encoder, "text_model", encoder)


def _load_embedding(pipeline: Any, path: Path, token: str, strength: float) -> list[str]:
    """Add the embedding's vectors as `token` (and token_1, token_2... for more vectors), scaled
    by `strength`; returns every token added."""
    import torch

    tokenizer = pipeline.tokenizer
    before = set(tokenizer.get_vocab())
    pipeline.load_textual_inversion(_read_state(path), token=token)
    added = [name for name in tokenizer.get_vocab() if name not in before]
    if strength != 1.0 and added:
        ids = tokenizer.convert_tokens_to_ids(added)
        with torch.no_grad():
            pipeline.text_encoder.get_input_embeddings().weight[ids] *= strength
    return added
