"""`horde generate`, `explore` and `continue` against the real horde and the tiny worker."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import pytest
from PIL import Image

from tests.cli.conftest import Cli
from tests.cli.recording_proxy import RecordingProxy

pytestmark = [pytest.mark.slow, pytest.mark.e2e]
NAME = re.compile(r"^\d{8}-\d{6}_scale([\d.]+)_str([\d.]+)_steps(\d+)_seed(\d+)(-\d+)?\.png$")


def records(cli: Cli, files: list[Path]) -> list[dict]:
    """`horde info --json` of the files, as the user would read them back."""
    result = cli.run("info", "--json", *map(str, files))
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_generate_txt2img_img2img_and_inpainting(cli: Cli, proxy: RecordingProxy) -> None:
    files = cli.ok("generate", "a red boat", "--negative", "fog", "-n", "2", "--seed", "42")
    assert len(files) == 2 and len({f.name for f in files}) == 2
    made = records(cli, files)
    # n images of one seed differ: seed_variation, and each file is named by its own seed.
    assert sorted(r["seed"] for r in made) == ["42", "43"]
    assert all(f.name.endswith(f"_seed{r['seed']}.png") for f, r in zip(files, made, strict=True))
    assert Image.open(files[0]).tobytes() != Image.open(files[1]).tobytes()
    (body,) = [e.body for e in proxy.submitted()]
    assert body["params"]["seed_variation"] == 1 and body["prompt"] == "a red boat ### fog"
    assert "loras" not in body["params"] and "post_processing" not in body["params"]

    source, mask = cli.cwd / "source.png", cli.cwd / "mask.png"
    Image.new("RGB", (100, 60), (200, 30, 30)).save(source)
    Image.new("L", (100, 60), 255).save(mask)
    (img2img,) = cli.ok("generate", "a boat", "--image", str(source), "--strength", "0.5")
    (inpainted,) = cli.ok("generate", "a boat", "--image", str(source), "--mask", str(mask))
    assert Image.open(img2img).size == (128, 64)  # snapped to multiples of 64
    _, second, third = [e.body for e in proxy.submitted()]
    assert second["source_processing"] == "img2img" and "source_mask" not in second
    assert second["params"]["denoising_strength"] == 0.5
    assert third["source_processing"] == "inpainting"
    sent_mask = Image.open(io.BytesIO(base64.b64decode(third["source_mask"])))
    assert sent_mask.size == (128, 64) and sent_mask.getextrema() == (255, 255)
    assert [r["kind"] for r in records(cli, [img2img, inpainted])] == ["img2img", "inpainting"]


def test_explore_asks_then_writes_named_files_and_continue_resumes(
    cli: Cli, proxy: RecordingProxy
) -> None:
    # The scratch batch (2 images), "keep exploring?" answered yes, then 2 more, sweeping scale.
    files = cli.ok(
        "explore", "a lighthouse", "landscape", "--count", "4", "--sweep-scale", "5,9",
        input="y\n",
    )  # fmt: skip
    assert len(files) == 4
    folder = files[0].parent
    assert {f.parent for f in files} == {folder} and folder.parent == cli.cwd / "explore"
    assert (folder / "prompt.txt").read_text() == "a lighthouse\n"
    made = records(cli, files)
    for path, record in zip(files, made, strict=True):
        scale, strength, steps, seed, _ = NAME.match(path.name).groups()
        assert (float(scale), float(strength), int(steps), seed) == (
            record["scale"],
            1.0,
            record["steps"],
            record["seed"],
        )
        assert record["prompt"] == "a lighthouse" and record["kind"] == "txt2img"
        assert (record["width"], record["height"]) == (128, 64)
        assert Image.open(path).size == (128, 64)
    assert sorted(r["scale"] for r in made) == [5, 5, 9, 9]
    assert len({r["seed"] for r in made}) == 4  # new seeds every batch, distinct within one
    assert all(e.body["params"]["n"] == 2 for e in proxy.submitted())

    # Resuming the prompt folder: its saved settings, no question asked.
    (folder / "prompt.txt").write_text("a lighthouse in fog\n")
    more = cli.ok("continue", str(folder / "prompt.txt"), "--count", "2")
    assert len(more) == 2 and {f.parent for f in more} == {folder}
    assert [r["prompt"] for r in records(cli, more)] == ["a lighthouse in fog"] * 2
    assert len(list(folder.glob("*.png"))) == 6


def test_explore_declined_keeps_only_the_scratch_batch(cli: Cli, proxy: RecordingProxy) -> None:
    files = cli.ok("explore", "a windmill", "--count", "10", input="n\n")
    assert len(files) == 2 and len(proxy.submitted()) == 1


def test_status_and_models_describe_the_horde(cli: Cli) -> None:
    status = cli.run("status")
    assert status.returncode == 0, status.stderr
    assert "extensions: check_wait, progress, interpolation" in status.stdout
    models = cli.run("models")
    assert models.returncode == 0 and models.stdout.startswith("krita-horde-tiny\t1 workers")
    unknown = cli.run("status", "00000000-0000-0000-0000-000000000000")
    assert unknown.returncode == 1 and "404 NotFound" in unknown.stderr


def test_a_run_ends_with_its_kudos_cost_and_the_balance_left(
    cli: Cli, proxy: RecordingProxy
) -> None:
    from horde_api.kudos.prices import request_price
    from horde_protocol import GenerationInput

    result = cli.run("generate", "a kudos counter", "-n", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    (body,) = [e.body for e in proxy.submitted()]
    quoted = request_price(GenerationInput.model_validate(body)).total
    summary = re.search(r"kudos: ([\d.]+) spent; your balance is (-?[\d.]+)", result.stderr)
    assert summary, result.stderr[-2000:]
    assert float(summary.group(1)) == quoted
