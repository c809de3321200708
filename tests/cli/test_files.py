"""File names and embedded metadata: readable back with `horde info`, never overwritten."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from horde_client.cli import app
from horde_client.files import file_stem, prompt_folder, prompt_hash, save_image
from horde_client.metadata import ImageRecord, read_record

RECORD = ImageRecord(
    created=datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
    prompt='a "red" boat & <sea>',
    negative="blurry",
    model="krita-horde-tiny",
    seed="1234",
    steps=20,
    scale=7.5,
    strength=0.45,
    sampler="k_euler",
    width=64,
    height=64,
    kind="img2img",
    parent="source.png",
    transform="normal",
)


@pytest.mark.parametrize("image_format", ["png", "webp"])
def test_the_record_reads_back_from_the_file(tmp_path: Path, image_format: str) -> None:
    image = Image.new("RGB", (64, 64), (10, 200, 30))
    path = save_image(tmp_path, image, RECORD, image_format)
    assert path.name == f"20260102-030405_scale7.5_str0.45_steps20_seed1234.{image_format}"
    assert read_record(path) == RECORD
    with Image.open(path) as saved:
        assert saved.format == image_format.upper()
        assert saved.convert("RGB").tobytes() == image.tobytes()  # lossless either way


def test_png_also_carries_the_parameters_other_tools_read(tmp_path: Path) -> None:
    path = save_image(tmp_path, Image.new("RGB", (64, 64)), RECORD, "png")
    with Image.open(path) as saved:
        parameters = saved.info["parameters"]
    assert parameters.splitlines()[0] == RECORD.prompt
    assert "Negative prompt: blurry" in parameters
    assert "Seed: 1234" in parameters and "CFG scale: 7.5" in parameters


def test_the_same_settings_twice_never_overwrite(tmp_path: Path) -> None:
    first = save_image(tmp_path, Image.new("RGB", (64, 64), (0, 0, 0)), RECORD, "png")
    second = save_image(tmp_path, Image.new("RGB", (64, 64), (255, 255, 255)), RECORD, "png")
    assert first != second and second.stem == f"{first.stem}-2"
    assert Image.open(first).getpixel((0, 0)) == (0, 0, 0)
    assert not list(tmp_path.glob("*.part"))


def test_a_txt2img_name_has_strength_one() -> None:
    record = RECORD.model_copy(update={"strength": None})
    assert re.fullmatch(r"\d{8}-\d{6}_scale7\.5_str1\.00_steps20_seed1234", file_stem(record))


def test_a_prompt_has_one_folder(tmp_path: Path) -> None:
    folder = prompt_folder(tmp_path, "  a lighthouse ")
    assert (
        folder == prompt_folder(tmp_path, "a lighthouse") == tmp_path / prompt_hash("a lighthouse")
    )
    assert (folder / "prompt.txt").read_text() == "a lighthouse\n"


def test_horde_info_prints_the_records(tmp_path: Path) -> None:
    made = save_image(tmp_path, Image.new("RGB", (64, 64)), RECORD, "webp")
    foreign = tmp_path / "foreign.png"
    Image.new("RGB", (8, 8)).save(foreign)
    runner = CliRunner()
    result = runner.invoke(app, ["info", "--json", str(made)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["seed"] == "1234" and data["transform"] == "normal" and data["file"] == str(made)
    text = runner.invoke(app, ["info", str(made)])
    assert '  prompt: a "red" boat & <sea>' in text.stdout
    missing = runner.invoke(app, ["info", str(foreign)])
    assert missing.exit_code == 1 and "no krita-horde metadata" in missing.output
    absent = runner.invoke(app, ["info", str(tmp_path / "nope.png")])
    assert absent.exit_code == 2 and "no such file" in absent.output
