"""`horde vary` against the real horde and the tiny worker: every transform sends exactly its
documented (scale, strength) pairs (as the horde received them), chains feed each output into
the next step, and color correction pulls a*/b* toward the input."""

from __future__ import annotations

import base64
import io
import json
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from horde_client.color import to_lab
from horde_client.files import prompt_hash
from horde_client.transforms import TRANSFORMS, TransformKind
from tests.cli.conftest import CONFIG, Cli, LiveSetup, make_cli
from tests.cli.recording_proxy import RecordingProxy

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def pixels(b64: str) -> bytes:
    return Image.open(io.BytesIO(base64.b64decode(b64))).convert("RGB").tobytes()


def source_picture(path: Path) -> Path:
    """A strongly colored picture with structure: magenta top, cyan bottom, a gradient."""
    image = Image.new("RGB", (64, 64))
    for y in range(64):
        for x in range(64):
            image.putpixel((x, y), (220, 40 + x, 180) if y < 32 else (30, 150 + x, 200))
    image.save(path)
    return path


@pytest.fixture
def vary_cli(tmp_path: Path, live: LiveSetup, proxy: RecordingProxy) -> Cli:
    # Two steps are enough for img2img on the tiny model (each strength still runs one step).
    return make_cli(tmp_path, proxy.url, live.artist_key, CONFIG.replace("steps = 4", "steps = 2"))


def test_every_transform_sends_its_pairs_and_chains_feed_forward(
    vary_cli: Cli, proxy: RecordingProxy
) -> None:
    cli = vary_cli
    source = source_picture(cli.cwd / "source.png")
    with Image.open(source) as opened:
        source_pixels = opened.convert("RGB").tobytes()
    for name, transform in TRANSFORMS.items():
        before = len(proxy.submitted())
        words = ["at night"] if name == "shake" else []
        files = cli.ok("vary", str(source), name, *words, "--prompt", "a castle")
        sent = proxy.submitted()[before:]
        pairs = [
            (e.body["params"]["cfg_scale"], e.body["params"]["denoising_strength"]) for e in sent
        ]
        assert len(files) == len(transform.pairs)
        records = [
            json.loads(line)
            for line in cli.run("info", "--json", *map(str, files)).stdout.splitlines()
        ]
        if transform.kind is TransformKind.SINGLE:
            # One batch: every pair once, all from the input image.
            assert sorted(pairs) == sorted(transform.pairs), name
            assert all(pixels(e.body["source_image"]) == source_pixels for e in sent)
            assert {r["parent"] for r in records} == {"source.png"}
            assert {r["transform"] for r in records} == {name}
        else:
            # A chain: the pairs in order, each step from exactly the previous step's image.
            assert pairs == list(transform.pairs), name
            assert pixels(sent[0].body["source_image"]) == source_pixels
            for previous, following in pairwise(sent):
                (made,) = proxy.status_of(previous.reply["id"])["generations"]
                assert pixels(following.body["source_image"]) == pixels(made["img"]), name
            assert [r["parent"] for r in records] == ["source.png"] + [f.name for f in files[:-1]]
        assert all(e.body["source_processing"] == "img2img" for e in sent)
        prompt = "a castle, at night" if words else "a castle"
        assert {e.body["prompt"] for e in sent} == {prompt}
        # Extra words make a new prompt folder; without, the prompt's own.
        assert {f.parent for f in files} == {cli.cwd / "explore" / prompt_hash(prompt)}


def ab_distance(image: Image.Image, reference: Image.Image) -> float:
    """Distance of the a*/b* means and spreads from the reference's."""
    lab, ref = to_lab(image).reshape(-1, 3)[:, 1:], to_lab(reference).reshape(-1, 3)[:, 1:]
    return float(
        np.abs(lab.mean(axis=0) - ref.mean(axis=0)).sum()
        + np.abs(lab.std(axis=0) - ref.std(axis=0)).sum()
    )


def test_color_correction_moves_a_and_b_toward_the_input(
    vary_cli: Cli, proxy: RecordingProxy
) -> None:
    cli = vary_cli
    source = source_picture(cli.cwd / "source.png")
    files = cli.ok("vary", str(source), "unstuck", "--prompt", "a castle", "--color-correct")
    reference = Image.open(source).convert("RGB")
    by_generation = {}
    for exchange in proxy.submitted():
        (made,) = proxy.status_of(exchange.reply["id"])["generations"]
        by_generation[made["id"]] = made["img"]
    for path in files:
        record = json.loads(cli.run("info", "--json", str(path)).stdout)
        assert record["color_corrected"] is True
        raw = Image.open(io.BytesIO(base64.b64decode(by_generation[record["generation_id"]])))
        corrected = Image.open(path).convert("RGB")
        assert ab_distance(corrected, reference) < ab_distance(raw.convert("RGB"), reference) / 2
