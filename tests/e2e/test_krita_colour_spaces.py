"""CMYK and Lab documents in the real Krita 5.1.5 under Xvfb, against the real horde and the tiny
worker: the horde gets the painted colour as 8-bit sRGB, the result layer lands at the
selection in the document's own colour space, its colours (read back through Krita) match the
image the worker returned, and the document keeps its colour space."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.artist import MODEL, SEED, build_plugin_zip
from tests.e2e.krita_session import run_krita
from tests.e2e.test_krita_e2e import artifacts_root
from tests.helpers.live_horde import start_horde
from tests.helpers.live_worker import start_worker

pytestmark = [pytest.mark.e2e, pytest.mark.krita, pytest.mark.slow]

RECT = [32, 48, 128, 96]
PAINTED_RGB = (200, 80, 40)
# model/depth: how far the sent colour may be from the painted one, and the result's mean
# colour difference (0..255 per channel) from the worker's image. CMYK ("Chemical proof",
# Krita's default CMYK profile) has a smaller gamut than sRGB: saturated colours move
# (200, 80, 40 comes back as 194, 77, 29); Lab holds all of sRGB.
CASES = {"CMYKA/U8": (15, 12.0), "LABA/U16": (3, 0.5)}


def test_cmyk_and_lab_documents_round_trip_through_krita(tmp_path: Path, krita_binary: str) -> None:
    folder = artifacts_root(tmp_path)
    plugin_zip = build_plugin_zip(folder / "dist")
    (folder / "worker").mkdir()
    with start_horde(folder / "horde") as horde:
        apikey = horde.create_user("e2e-artist", trusted=True)
        with start_worker(folder / "worker", horde.url, apikey, name="e2e-worker") as worker:
            scenario = {
                "colour_spaces": [["CMYKA", "U8"], ["LABA", "U16"]],
                "settings": {
                    "url": horde.url,
                    "apikey": apikey,
                    "model": MODEL,
                    "prompt": "a brick wall",
                    "steps": 4,
                    "seed": str(SEED),
                    "n": 1,
                    "mode": "img2img",
                    "denoise": 0.5,
                    "min_size": 128,
                    "max_size": 256,
                    "insert_all": True,
                },
            }
            run = run_krita(plugin_zip, folder / "krita", scenario)
    where = f"\nserver log: {horde.log_path}\nworker log: {worker.log_path}\n{run.explain()}"
    assert run.returncode == 0 and run.report.get("ok"), where
    documents = run.report["documents"]
    assert sorted(documents) == sorted(CASES), where
    for key, (source_tolerance, result_tolerance) in CASES.items():
        info = documents[key]
        assert info["outcome"][0] == "finished" and info["mode"] == "img2img", (key, info)
        # The document keeps its colour space; the result layer is in it, at the selection.
        assert info["after"] == info["before"] and info["before"][0] == key.split("/")[0], info
        assert info["layer"]["space"] == info["before"], (key, info)
        assert info["layer"]["bounds"] == RECT and info["result_opaque"], (key, info)
        # The horde got the painted colour in 8-bit sRGB.
        diffs = [abs(a - b) for a, b in zip(info["source_rgb"], PAINTED_RGB, strict=True)]
        assert max(diffs) <= source_tolerance, (key, info)
        # The result's colours came through Krita's conversion.
        assert info["result_mean_abs_diff"] <= result_tolerance, (key, info)
