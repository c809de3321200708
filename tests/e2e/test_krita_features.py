"""The docker an artist keeps open all day, in the real Krita 5.1.5 under Xvfb against the real
horde and the tiny worker: a horde behind TLS with a test CA Krita is told to trust (and one
it is not: refused with a clear message), a live preview layer, results kept in the history
and applied from it, two concurrent jobs, outpainting.

The driver (tests/e2e/driver/.../features.py) grabs the docker at rest, during a job with a
preview and with a history. With KRITA_HORDE_SCREENSHOTS=1 those are copied into docs/images/
(shown in docs/plugin.md); otherwise they stay in the run's artifacts, so CI leaves the tree
clean.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.e2e.artist import DOC, MODEL, SEED, build_plugin_zip
from tests.e2e.krita_session import run_krita
from tests.e2e.test_krita_e2e import artifacts_root
from tests.helpers.live_horde import start_horde
from tests.helpers.live_worker import start_worker
from tests.helpers.tls import make_tls_files

pytestmark = [pytest.mark.e2e, pytest.mark.krita, pytest.mark.slow]

RECT = (64, 96, 256, 192)
SCREENSHOTS = {
    "docker-at-rest.png": "krita-horde-docker-at-rest.png",
    "docker-job.png": "krita-horde-docker-job-preview.png",
    "window-job.png": "krita-horde-window-job-preview.png",
    "docker-history.png": "krita-horde-docker-history.png",
}


@pytest.fixture(scope="module")
def plugin_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_plugin_zip(tmp_path_factory.mktemp("dist"))


def test_all_day_features_in_the_real_krita(
    tmp_path: Path, krita_binary: str, plugin_zip: Path
) -> None:
    folder = artifacts_root(tmp_path)
    tls = make_tls_files(folder / "tls")
    other_ca = make_tls_files(folder / "other-ca")  # a CA that did not sign the horde's cert
    (folder / "worker").mkdir()
    with (
        start_horde(folder / "horde") as horde,
        start_horde(folder / "tls-horde", tls=tls) as tls_horde,
    ):
        apikey = horde.create_user("e2e-artist", trusted=True)
        with start_worker(
            folder / "worker",
            horde.url,
            apikey,
            name="e2e-worker",
            extra_env={"HORDE_WORKER_PREVIEW_EVERY": "2"},
        ) as worker:
            scenario = {
                "features": True,
                "settings": {
                    "url": horde.url,
                    "apikey": apikey,
                    "model": MODEL,
                    "prompt": "a lighthouse on a cliff",
                    "steps": 6,
                    "seed": str(SEED),
                    "n": 1,
                    "denoise": 0.7,
                    "sampler": "k_euler",
                    "min_size": 256,
                    "max_size": 512,
                },
                "tls": {
                    "trusted_url": tls_horde.url,
                    "untrusted_url": tls_horde.url,
                    "ca_file": str(tls.ca_file),
                    "other_ca_file": str(other_ca.ca_file),
                },
                "preview_steps": 60,
            }
            run = run_krita(plugin_zip, folder / "krita", scenario)
    where = f"\nserver log: {horde.log_path}\nworker log: {worker.log_path}\n{run.explain()}"
    report = run.report
    assert run.returncode == 0 and report.get("ok"), where
    assert report["docker_title"] == "Krita Horde"

    # TLS: told to trust the test CA, the horde answers; with another CA it is refused.
    assert report["tls_trusted_status"].endswith("model(s) available on the horde."), where
    untrusted = report["tls_untrusted_status"]
    assert untrusted.startswith("Could not load the model list: secure connection to"), where
    assert "its TLS certificate is not trusted" in untrusted

    # Before Generate: the plan (mode and why, sizes) and the kudos.
    assert report["plan_text"].startswith("img2img (the selection has pixels) · 256×192"), where
    assert "kudos" in report["kudos_text"] and "balance" in report["kudos_text"], where

    # The live preview: a temporary layer at the selection, gone once the results are in.
    preview = report["preview"]
    assert preview["seen"], f"no preview layer appeared{where}"
    assert tuple(preview["layer"]["bounds"]) == RECT, preview
    assert preview["active_is_painting"] and preview["active_is_painting_after"], preview
    assert preview["outcome"][0] == "finished" and not preview["left_after"], preview

    # The history: results wait there (no layer) until one is applied, at its selection.
    history = report["history"]
    assert history["outcome"] == ["finished", []] and history["nodes_added"] == 0, history
    assert [item["applied"] for item in history["items"][-2:]] == [False, False], history
    applied = report["applied"]
    assert len(applied["names"]) == 1 and applied["layers"], applied
    assert tuple(applied["layers"][0]["bounds"]) == RECT, applied
    assert applied["active_is_painting"], applied

    # Two jobs at once: both finish, each in its own numbered group.
    concurrent = report["concurrent"]
    assert [outcome[0] for outcome in concurrent["outcomes"]] == ["finished", "finished"]
    assert len(concurrent["rows_while_running"]) >= 2, concurrent
    barns = [name for name in concurrent["groups"] if "a red barn" in name]
    assert len(barns) == 2 and len(set(barns)) == 2, concurrent

    # Outpainting: the canvas grew once to the right; the result covers the new strip only
    # through its mask (the layer spans the strip and the band of old pixels beside it).
    outpaint = report["outpaint"]
    assert outpaint["outcome"][0] == "finished", outpaint
    assert outpaint["size_before"] == [DOC, DOC] and outpaint["size_after"] == [DOC + 64, DOC]
    (layer,) = outpaint["layers"]
    x, _, width, _ = layer["bounds"]
    assert x + width == DOC + 64 and x <= DOC - 64, layer
    assert "transparencymask" in outpaint["groups"][0]["children"], outpaint
    # The resize is in Krita's undo history: Edit › Undo brings the old canvas back. It is one
    # step, the last one undone; the layers (result and preview) are steps of their own, as
    # Krita's scripting API cannot group them (docs/plugin.md, Outpainting).
    assert outpaint["size_after_undo"] == [DOC, DOC], outpaint
    undone = outpaint["undone"]
    assert undone[-1] == "Undo Resize Image" and undone.count("Undo Resize Image") == 1, undone

    if os.environ.get("KRITA_HORDE_SCREENSHOTS") == "1":
        images = ROOT / "docs" / "images"
        images.mkdir(parents=True, exist_ok=True)
        for source, target in SCREENSHOTS.items():
            shutil.copy(run.folder / "artifacts" / source, images / target)
