"""Loading a single-file SD 1.x / 2.x / SDXL checkpoint with configs shipped in this package.

diffusers' `from_single_file` converts the original weights but needs the diffusers configs of
the model's family (and its tokenizers); by default it asks the hub for them. The worker ships
those configs (`single_file_configs/<family>/`) and the CLIP BPE vocabulary they all share
(`bpe_simple_vocab_16e6.txt.gz`, MIT, as distributed with OpenCLIP), so a checkpoint loads with
no request. The config folder a checkpoint needs is assembled once in the cache: the family's
files, the sizes the file's tensors fix (worker/checkpoint_arch.py: 9 UNet input channels for an
inpainting model, widths, depths), the prediction type (worker/prediction.py) and the
tokenizer's vocab.json/merges.txt.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import shutil
from importlib import resources
from pathlib import Path
from typing import Any

from horde_worker.checkpoint_arch import architecture
from horde_worker.checkpoint_kind import (
    CheckpointKind,
    CheckpointKindError,
    Family,
    inspect_checkpoint,
)
from horde_worker.prediction import Prediction, decide
from horde_worker.tiny_model import ensure_built

# Bump when a shipped config changes, so folders assembled from an older one are not reused.
CONFIG_LAYOUT_VERSION = 2
_BPE_FILE = "bpe_simple_vocab_16e6.txt.gz"
# CLIP's vocabulary: 256 byte symbols, the same with an end-of-word mark, 48 894 merges and
# the two special tokens = 49 408 ids.
_MERGES = 49152 - 256 - 2
_TOKENIZER_FOLDERS = ("tokenizer", "tokenizer_2")

log = logging.getLogger(__name__)


def _byte_symbols() -> list[str]:
    """The printable stand-in for each byte value, in CLIP's (and GPT-2's) order: printable
    Latin-1 bytes stand for themselves, the others map to code points from 256 up."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    symbols = {byte: chr(byte) for byte in printable}
    extra = 0
    for byte in range(256):
        if byte not in symbols:
            symbols[byte] = chr(256 + extra)
            extra += 1
    return [symbols[byte] for byte in sorted(symbols, key=lambda b: (b not in printable, b))]


def write_clip_vocabulary(folder: Path) -> None:
    """vocab.json and merges.txt of the CLIP tokenizer, built from the shipped BPE merges."""
    data = resources.files("horde_worker").joinpath("single_file_configs", _BPE_FILE)
    lines = gzip.decompress(data.read_bytes()).decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1 : _MERGES + 1]]
    symbols = _byte_symbols()
    tokens = [*symbols, *(f"{symbol}</w>" for symbol in symbols)]
    tokens += ["".join(pair) for pair in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {token: index for index, token in enumerate(tokens)}
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    merge_lines = ["#version: 0.2", *(" ".join(pair) for pair in merges)]
    (folder / "merges.txt").write_text("\n".join(merge_lines) + "\n", encoding="utf-8")


def _update_json(path: Path, values: dict[str, Any]) -> None:
    config = json.loads(path.read_text(encoding="utf-8"))
    config.update(values)
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")


def _assemble(
    kind: CheckpointKind,
    architecture: dict[str, dict[str, Any]],
    prediction: Prediction,
    target: Path,
) -> None:
    source = resources.files("horde_worker").joinpath("single_file_configs", kind.family.value)
    with resources.as_file(source) as folder:
        shutil.copytree(folder, target, dirs_exist_ok=True)
    if kind.inpainting and kind.family is Family.SD2:
        # SD 2's inpainting model is the 512 px one, not the 768 px v-model.
        _update_json(target / "unet" / "config.json", {"sample_size": 64})
    for component, values in architecture.items():
        _update_json(target / component / "config.json", values)
    _update_json(
        target / "scheduler" / "scheduler_config.json", {"prediction_type": prediction.value}
    )
    for name in _TOKENIZER_FOLDERS:
        if (target / name).is_dir():
            write_clip_vocabulary(target / name)


def config_folder(
    kind: CheckpointKind,
    cache_dir: Path,
    architecture: dict[str, dict[str, Any]] | None = None,
    prediction: Prediction | None = None,
) -> Path:
    """The diffusers config folder for `kind` with the sizes a file's tensors fixed
    (`architecture`, worker/checkpoint_arch.py) and its prediction type, assembled in
    `cache_dir` on first use. Without an architecture the folder is the family's shipped one
    (with 9 UNet input channels for an inpainting kind)."""
    if architecture is None:
        architecture = {"unet": {"in_channels": 9}} if kind.inpainting else {}
    if prediction is None:
        prediction = decide(kind, set(), {}).prediction
    described = json.dumps([architecture, prediction.value], sort_keys=True)
    # Files of one architecture share a folder; another size gets its own.
    digest = hashlib.sha256(described.encode()).hexdigest()[:12]
    target = cache_dir / f"single-file-configs-v{CONFIG_LAYOUT_VERSION}" / f"{kind.name}-{digest}"
    return ensure_built(
        target,
        "model_index.json",
        lambda scratch: _assemble(kind, architecture, prediction, scratch),
    )


def load_single_file(
    path: Path,
    placement_dtype: Any,
    cache_dir: Path,
    prediction: Prediction | None = None,
    reference_prediction: Prediction | None = None,
) -> Any:
    """The text-to-image pipeline of a single-file checkpoint, detected and configured locally:
    `prediction` is the volunteer's setting, `reference_prediction` what the model reference
    says (worker/prediction.py decides between them and the file's own markers)."""
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    kind, header = inspect_checkpoint(path)
    try:
        sizes = architecture(header.shapes, kind)
    except (KeyError, StopIteration, ValueError) as error:
        raise CheckpointKindError(
            f"{path}: a {kind.name} checkpoint without the tensors that fix its sizes"
            f" ({error}); convert it to a diffusers folder"
        ) from None
    choice = decide(
        kind, set(header.shapes), header.metadata, prediction, reference_prediction, path.stem
    )
    log.info(
        "%s: %s checkpoint, %s (from %s)",
        path.name,
        kind.name,
        choice.prediction.value,
        choice.reason,
    )
    folder = config_folder(kind, cache_dir, sizes, choice.prediction)
    common: dict[str, Any] = {
        "config": str(folder),
        "local_files_only": True,
        "dtype": placement_dtype,
    }
    if kind.family is Family.SDXL:
        return StableDiffusionXLPipeline.from_single_file(str(path), **common)
    # The checker is loaded once beside the models (worker/safety.py), never inside.
    return StableDiffusionPipeline.from_single_file(
        str(path), **common, safety_checker=None, requires_safety_checker=False
    )
