"""Where results go: names that carry the settings and never collide, prompt folders."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from PIL import Image

from horde_client.metadata import ImageRecord, encode_image

PROMPT_FILE = "prompt.txt"


def prompt_hash(prompt: str) -> str:
    """The folder name of a prompt: the same text always gives the same folder."""
    return hashlib.sha256(prompt.strip().encode("utf-8")).hexdigest()[:12]


def prompt_folder(root: Path, prompt: str) -> Path:
    """`root/<hash>/` with `prompt.txt`, created when missing."""
    folder = root / prompt_hash(prompt)
    folder.mkdir(parents=True, exist_ok=True)
    prompt_file = folder / PROMPT_FILE
    if not prompt_file.exists():
        prompt_file.write_text(prompt.strip() + "\n", encoding="utf-8")
    return folder


def file_stem(record: ImageRecord) -> str:
    """`<timestamp>_scale<cfg>_str<strength>_steps<n>_seed<seed>`: every setting that tells two
    images of one prompt apart, readable in a file browser (txt2img has strength 1)."""
    strength = 1.0 if record.strength is None else record.strength
    return (
        f"{record.created:%Y%m%d-%H%M%S}_scale{record.scale:g}_str{strength:.2f}"
        f"_steps{record.steps}_seed{record.seed}"
    )


def save_image(folder: Path, image: Image.Image, record: ImageRecord, image_format: str) -> Path:
    """Write a new file (never over an existing one: a suffix -2, -3 … is added)."""
    folder.mkdir(parents=True, exist_ok=True)
    data = encode_image(image, record, image_format)
    stem = file_stem(record)
    if record.frame is not None:
        stem = f"frame{record.frame:05d}_{stem}"
    # Written aside, then linked in under a free name: a file is either whole or absent (an
    # interrupted run leaves no half image for a resume to take as done), and os.link never
    # replaces an existing file, even when two runs write into one folder at once.
    with tempfile.NamedTemporaryFile(dir=folder, suffix=".part", delete=False) as part:
        part.write(data)
    try:
        for attempt in range(1, 10_000):
            suffix = "" if attempt == 1 else f"-{attempt}"
            path = folder / f"{stem}{suffix}.{image_format}"
            try:
                os.link(part.name, path)
            except FileExistsError:
                continue
            return path
    finally:
        os.unlink(part.name)
    raise RuntimeError(f"no free file name for {stem} in {folder}")
