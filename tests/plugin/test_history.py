"""The history of results: kept as thumbnails with prompt, seed and settings; applied as a
layer at the job's selection, discarded, re-run, seed copied, settings opened in the form."""

from __future__ import annotations

from PyQt5.QtWidgets import QApplication

from .fake_krita import FakeDocument, FakeSelection
from .test_docker import RED_BGRA, _docker


def _job_into_history(qtbot, app, stub, **values):
    doc = app.open(FakeDocument(200, 200))
    background = doc.createNode("Background", "paintlayer")
    doc.rootNode().addChildNode(background, None)
    doc.setActiveNode(background)
    doc.setSelection(FakeSelection(20, 30, 40, 40, bytes([255, 0] * 800)))
    docker = _docker(qtbot, app)
    stub.state.images = [stub.state.images[0]] * 2
    docker.apply_settings(
        {"prompt": "a red fox", "url": stub.url, "apikey": "k", "n": 2, "seed": "9", **values}
    )
    finished: list[list[str]] = []
    docker.job_finished.connect(lambda job_id, names: finished.append(names))
    docker.generate()
    qtbot.waitUntil(lambda: bool(finished), timeout=10_000)
    return doc, background, docker, finished[0]


def test_results_wait_in_the_history_until_one_is_applied(qtbot, app, stub) -> None:
    doc, background, docker, names = _job_into_history(qtbot, app, stub)
    assert names == []  # nothing was added to the document
    assert doc.walk() == [background]
    view = docker.history_view
    assert not view.isHidden() and view.history_list.count() == 2
    # Newest first; each thumbnail says its job and seed, its tooltip prompt and settings.
    texts = [view.history_list.item(row).text() for row in range(2)]
    assert texts == ["#1 1001", "#1 1000"]
    tooltip = view.history_list.item(1).toolTip()
    assert "#1 inpainting: a red fox" in tooltip and "seed 1000" in tooltip
    assert view.history_list.item(0).icon().availableSizes()
    status = docker.status_label.text()
    assert status == "Done: 2 image(s) in the history: apply one to add it."
    # Apply the older one: one layer (with the selection's shape) at the selection.
    view.history_list.setCurrentRow(1)
    applied: list[list[str]] = []
    docker.history.applied.connect(lambda item_id, layer_names: applied.append(layer_names))
    view.apply_button.click()
    qtbot.waitUntil(lambda: bool(applied), timeout=10_000)
    assert applied == [["a red fox [seed 1000]"]]
    group = doc.rootNode().childNodes()[-1]
    assert group.name() == "Horde #1 inpainting: a red fox"
    layer = next(node for node in group.childNodes() if node.type() == "paintlayer")
    assert layer.pixelData(20, 30, 1, 1) == bytes(RED_BGRA)
    assert [n.type() for n in group.childNodes()].count("transparencymask") == 1
    assert doc.activeNode() is background
    assert "(applied)" in view.history_list.item(1).toolTip()


def test_discard_copy_seed_use_settings_and_rerun(qtbot, app, stub) -> None:
    _, _, docker, _ = _job_into_history(qtbot, app, stub, steps=13, cfg=4.5)
    view = docker.history_view
    view.history_list.setCurrentRow(0)  # seed 1001
    view.copy_seed_button.click()
    assert QApplication.clipboard().text() == "1001"
    docker.apply_settings({"prompt": "something else", "steps": 30, "seed": ""})
    view.use_settings_button.click()
    settings = docker.form.settings()
    assert (settings.prompt, settings.steps, settings.cfg, settings.seed) == (
        "a red fox",
        13,
        4.5,
        "9",
    )
    docker.apply_settings({"prompt": "something else", "steps": 30})
    finished: list[str] = []
    docker.job_finished.connect(lambda job_id, names: finished.append(job_id))
    view.rerun_button.click()
    qtbot.waitUntil(lambda: bool(finished), timeout=10_000)
    rerun = stub.calls("POST")[-1].body
    assert rerun["prompt"] == "a red fox" and rerun["params"]["steps"] == 13
    assert rerun["params"]["seed"] == "9"
    assert docker.form.settings().prompt == "something else"  # the form was left alone
    assert view.history_list.count() == 4
    view.history_list.setCurrentRow(0)
    view.discard_button.click()
    assert view.history_list.count() == 3


def test_insert_everything_option_adds_layers_and_keeps_the_history(qtbot, app, stub) -> None:
    _, _, docker, names = _job_into_history(qtbot, app, stub, insert_all=True)
    assert names == ["a red fox [seed 1000]", "a red fox [seed 1001]"]
    assert docker.history_view.history_list.count() == 2
    assert all(item.applied for item in docker.history.items.values())
