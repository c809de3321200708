"""The docker with a fake Krita: widgets and their names, settings, the model list, and whole
jobs against the stub horde ending as layers (or as clear errors) in a fake document."""

from __future__ import annotations

import struct
import sys
import types

import pytest
from PyQt5.QtWidgets import QLineEdit

from krita_horde.docker import DOCKER_ID, HordeDocker, live_dockers
from krita_horde.form import WIDGET_NAMES
from krita_horde.job import PollPolicy
from krita_horde.settings import JobSettings, MemorySettingsStore, SettingsError, to_text
from krita_horde.settings_store import KritaSettingsStore

from .fake_krita import FakeApp, FakeDocument, FakeNode, FakeSelection
from .stub_horde import Canned, StubHorde

FAST = PollPolicy(interval_s=0.05, long_poll_s=1, min_gap_s=0.01, max_errors=3)
CONTRACT_WIDGETS = [
    "prompt_edit",
    "negative_edit",
    "model_combo",
    "url_edit",
    "apikey_edit",
    "steps_spin",
    "seed_edit",
    "n_spin",
    "denoise_spin",
    "cfg_spin",
    "sampler_combo",
    "mode_combo",
    "min_size_spin",
    "max_size_spin",
    "generate_button",
    "cancel_button",
    "status_label",
    "progress_bar",
]
RED_BGRA = (0, 0, 255, 255)


def _docker(qtbot, app: FakeApp, store=None) -> HordeDocker:
    docker = HordeDocker(
        app=app, store=store or MemorySettingsStore(), poll_policy=FAST, load_models=False
    )
    qtbot.addWidget(docker)
    return docker


def _ready(qtbot, app: FakeApp, stub: StubHorde, **values) -> HordeDocker:
    docker = _docker(qtbot, app)
    # The stub answers with as many images as asked for.
    stub.state.images = [stub.state.images[0]] * values.get("n", 2)
    # Results straight into layers, as most tests here check them there (see the history
    # tests for the default: results wait until applied).
    settings = {"prompt": "a red fox", "url": stub.url, "apikey": "k", "insert_all": True}
    docker.apply_settings({**settings, **values})
    return docker


def test_every_contract_widget_is_an_attribute_with_its_object_name(qtbot, app) -> None:
    docker = _docker(qtbot, app)
    assert set(CONTRACT_WIDGETS) <= set(WIDGET_NAMES)
    for name in WIDGET_NAMES:
        widget = getattr(docker, name)
        assert widget.objectName() == name
        assert docker.findChild(type(widget), name) is widget
    assert docker.objectName() == DOCKER_ID
    assert docker in live_dockers()
    assert docker.apikey_edit.echoMode() == QLineEdit.Password


def test_apply_settings_sets_widgets_and_persists(qtbot, app) -> None:
    store = MemorySettingsStore()
    docker = _docker(qtbot, app, store)
    docker.apply_settings(
        {
            "prompt": "a cat",
            "steps": 4,
            "model": "krita-horde-tiny",
            "seed": 42,
            "nsfw": True,
            "denoise": 0.35,
            "mode": "img2img",
            "sampler": "k_euler",
            "max_size": 768,
        }
    )
    settings = docker.form.settings()
    assert (settings.prompt, settings.steps, settings.model) == ("a cat", 4, "krita-horde-tiny")
    assert (settings.seed, settings.nsfw, settings.denoise) == ("42", True, 0.35)
    assert (settings.mode, settings.sampler, settings.max_size) == ("img2img", "k_euler", 768)
    assert store.values["steps"] == "4" and store.values["model"] == "krita-horde-tiny"
    # A new session (a new docker on the same store) shows the same settings.
    again = _docker(qtbot, app, store)
    assert again.form.settings() == settings


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"colour": "red"}, "unknown setting(s) colour; known: prompt, negative"),
        ({"steps": 0}, "steps must be between 1 and 500, got 0"),
        ({"steps": "many"}, "steps: 'many' is not a valid value"),
        ({"sampler": "k_magic"}, "sampler must be one of k_euler_a"),
        ({"nsfw": "maybe"}, "nsfw: 'maybe' is not a valid value"),
        ({"denoise": 2.0}, "denoise must be between 0.01 and 1.0"),
    ],
)
def test_apply_settings_refuses_bad_values_clearly(qtbot, app, values, message) -> None:
    docker = _docker(qtbot, app)
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        docker.apply_settings(values)


def test_unreadable_stored_settings_fall_back_to_defaults(qtbot, app) -> None:
    store = MemorySettingsStore({"steps": "lots", "karras": "perhaps", "prompt": "kept"})
    docker = _docker(qtbot, app, store)  # kept: a docker nobody references is deleted
    settings = docker.form.settings()
    assert settings.steps == JobSettings().steps
    assert settings.karras == JobSettings().karras
    assert settings.prompt == "kept"


def test_krita_settings_store_uses_the_plugin_group(app) -> None:
    store = KritaSettingsStore(app)
    store.write("steps", to_text(12))
    assert app.settings[("krita_horde", "steps")] == "12"
    assert store.read("steps", "1") == "12"
    assert store.read("missing", "dflt") == "dflt"


def test_model_list_loads_at_start_sorted_by_workers_with_counts(qtbot, app, stub) -> None:
    store = MemorySettingsStore({"url": stub.url, "model": "few"})
    docker = HordeDocker(app=app, store=store, poll_policy=FAST)
    qtbot.addWidget(docker)
    qtbot.waitUntil(lambda: docker.model_combo.count() == 3, timeout=5000)
    labels = [docker.model_combo.itemText(i) for i in range(docker.model_combo.count())]
    assert labels == ["(any model)", "many (5 workers)", "few (1 worker)"]
    assert docker.model_combo.currentData() == "few"
    assert docker.refresh_models_button.isEnabled()
    assert docker.status_label.text() == "2 model(s) available on the horde."


def test_model_list_errors_are_shown(qtbot, app, stub) -> None:
    stub.script("GET", "/api/v2/status/models", Canned(200, {"not": "a list"}))
    docker = _ready(qtbot, app, stub)
    qtbot.waitUntil(lambda: "Could not load" in docker.status_label.text(), timeout=5000)
    assert docker.status_label.text().endswith("the models reply is not a JSON list")


def _wait_outcome(qtbot, docker: HordeDocker, timeout: int = 10_000) -> tuple[str, object]:
    outcome: list[tuple[str, object]] = []
    docker.job_finished.connect(lambda job_id, names: outcome.append(("finished", names)))
    docker.job_failed.connect(lambda job_id, message: outcome.append(("failed", message)))
    docker.generate()
    qtbot.waitUntil(lambda: bool(outcome), timeout=timeout)
    return outcome[0]


def test_no_document_is_a_clear_error(qtbot, app, stub) -> None:
    docker = _ready(qtbot, app, stub)
    kind, message = _wait_outcome(qtbot, docker)
    assert kind == "failed" and "no document is open" in message
    assert docker.status_label.text().startswith("Error: no document is open")
    assert not stub.calls("POST")


def test_unknown_colour_models_are_refused_clearly(qtbot, app, stub) -> None:
    app.open(FakeDocument(100, 100, "HSVA", "U8"))
    kind, message = _wait_outcome(qtbot, _ready(qtbot, app, stub))
    assert kind == "failed"
    assert "HSVA/U8" in message and "Convert Image Color Space" in message
    assert not stub.calls("POST")


def test_cmyk_document_is_converted_by_krita_for_the_job_and_back(qtbot, app, stub) -> None:
    """The job reads Krita's 8-bit sRGB projection; each result layer is written as 8-bit
    sRGB and then converted by Krita into the document's model and profile; the document
    itself keeps its colour space."""
    from krita_horde.images import decode_base64

    doc = app.open(FakeDocument(64, 64, "CMYKA", "U8", "Chemical proof"))
    doc.paint((55, 175, 215, 0, 255), 0, 0, 64, 64)  # R 200, G 80, B 40 in the fake's terms
    doc.setSelection(FakeSelection(8, 8, 32, 32))
    kind, _ = _wait_outcome(qtbot, _ready(qtbot, app, stub, n=1))
    assert kind == "finished"
    body = stub.calls("POST")[0].body
    assert body["source_processing"] == "img2img"
    colour = decode_base64(body["source_image"]).pixelColor(10, 10).getRgb()[:3]
    assert all(abs(a - b) <= 2 for a, b in zip(colour, (200, 80, 40), strict=True)), colour
    (layer,) = doc.rootNode().childNodes()[-1].childNodes()
    assert (layer.colorModel(), layer.colorProfile()) == ("CMYKA", "Chemical proof")
    assert layer.pixelData(8, 8, 1, 1) == bytes((0, 255, 255, 0, 255))  # the stub's red
    assert layer.pixelData(7, 7, 1, 1) == bytes(5)  # nothing outside the selection
    assert (doc.colorModel(), doc.colorProfile()) == ("CMYKA", "Chemical proof")
    assert [step[2] for step in doc.undo_steps] == ["RGBA", "CMYKA"]


def test_a_failed_layer_conversion_fails_the_job_and_removes_the_group(
    qtbot, app, stub, monkeypatch
) -> None:
    doc = app.open(FakeDocument(64, 64, "CMYKA", "U8", "Chemical proof"))
    doc.paint((55, 175, 215, 0, 255), 0, 0, 64, 64)
    docker = _ready(qtbot, app, stub, n=1)
    original = FakeNode.setColorSpace
    calls: list[str] = []

    def refuse_the_way_back(node, model, depth, profile):
        calls.append(model)
        return model == "RGBA" and original(node, model, depth, profile)

    monkeypatch.setattr(FakeNode, "setColorSpace", refuse_the_way_back)
    kind, message = _wait_outcome(qtbot, docker)
    assert calls == ["RGBA", "CMYKA"]
    assert kind == "failed"
    assert message.startswith("could not convert the result layer into the document's colour")
    assert doc.rootNode().childNodes() == []


@pytest.mark.parametrize(
    ("model", "depth", "profile", "pixel", "result_pixel"),
    [
        # 16-bit integer RGBA: B,G,R,A little-endian; red comes back as 0xffff red.
        ("RGBA", "U16", "sRGB-elle-V2-srgbtrc.icc",
         struct.pack("<4H", 0x1010, 0x2020, 0xF0F0, 0xFFFF),
         struct.pack("<4H", 0, 0, 0xFFFF, 0xFFFF)),
        # 32-bit float, linear profile: R,G,B,A; linear 0.2159 is sRGB 128.
        ("RGBA", "F32", "Rec2020-elle-V4-g10.icc",
         struct.pack("<4f", 0.2159, 0.2159, 0.2159, 1.0),
         struct.pack("<4f", 1.0, 0.0, 0.0, 1.0)),
        # 16-bit half float grey: grey, alpha; red comes back as its luminance, 0.2126.
        ("GRAYA", "F16", "", struct.pack("<2e", 0.2159, 1.0), None),
    ],
    ids=["rgba-u16", "rgba-f32-linear", "graya-f16"],
)  # fmt: skip
def test_other_depths_and_models_are_converted_for_the_job_and_back(
    qtbot, app, stub, model, depth, profile, pixel, result_pixel
) -> None:
    """16-bit, float and grey documents: the horde gets 8-bit sRGB, the results come back in
    the document's own pixel format."""
    from krita_horde.images import decode_base64

    doc = app.open(FakeDocument(64, 64, model, depth, profile))
    doc.paint(pixel, 0, 0, 64, 64)
    kind, _ = _wait_outcome(qtbot, _ready(qtbot, app, stub, n=1))
    assert kind == "finished"
    body = stub.calls("POST")[0].body
    assert body["source_processing"] == "img2img"
    colour = decode_base64(body["source_image"]).pixelColor(10, 10)
    if depth == "U16":
        expected = (0xF0, 0x20, 0x10)  # the high bytes (WebP may move a value by one)
        assert all(abs(a - b) <= 2 for a, b in zip(colour.getRgb()[:3], expected, strict=True))
    else:
        assert all(abs(value - 128) <= 2 for value in colour.getRgb()[:3])
    (layer,) = doc.rootNode().childNodes()[-1].childNodes()
    written = layer.pixelData(5, 5, 1, 1)
    assert len(written) == doc.pixel_bytes
    if result_pixel is not None:
        assert written == result_pixel
    else:
        grey, alpha = struct.unpack("<2e", written)
        assert abs(grey - 0.2126) < 0.001 and alpha == 1.0  # red's luminance, linear


def test_empty_prompt_is_refused_before_sending(qtbot, app, stub) -> None:
    app.open(FakeDocument(100, 100))
    kind, message = _wait_outcome(qtbot, _ready(qtbot, app, stub, prompt="  "))
    assert (kind, message) == ("failed", "write a prompt first")


def _layers(doc: FakeDocument) -> list[FakeNode]:
    return doc.walk()


def test_feathered_selection_job_ends_as_masked_layers_at_the_selection(qtbot, app, stub) -> None:
    doc = app.open(FakeDocument(300, 200))
    doc.paint((0, 255, 0, 255), 0, 0, 300, 200)
    background = doc.createNode("Background", "paintlayer")
    doc.rootNode().addChildNode(background, None)
    doc.setActiveNode(background)  # the artist paints here while the job runs
    shape = bytes([255, 0] * 20) * 30  # 40x30, striped: not a rectangle
    doc.setSelection(FakeSelection(50, 60, 40, 30, shape))
    docker = _ready(qtbot, app, stub, n=2, seed="7")
    kind, names = _wait_outcome(qtbot, docker)
    assert kind == "finished"
    assert names == ["a red fox [seed 1000]", "a red fox [seed 1001]"]
    payload = stub.calls("POST")[0].body
    assert payload["source_processing"] == "inpainting"
    assert payload["params"]["seed"] == "7"
    root = doc.rootNode().childNodes()
    group = root[-1]  # on top of the existing layers
    assert group.type() == "grouplayer" and group.name() == "Horde #1 inpainting: a red fox"
    kinds = [node.type() for node in group.childNodes()]
    assert sorted(kinds) == ["paintlayer", "paintlayer", "transparencymask"]
    layer = next(node for node in group.childNodes() if node.type() == "paintlayer")
    inside = layer.pixelData(50, 60, 40, 30)
    assert inside == bytes(RED_BGRA) * (40 * 30)  # scaled back, full alpha: the mask cuts
    assert layer.pixelData(49, 60, 1, 1) == bytes(4)  # nothing outside the area
    mask = next(node for node in group.childNodes() if node.type() == "transparencymask")
    assert mask.pixelData(50, 60, 40, 30) == shape
    assert app.action("add_new_transparency_mask").triggered == 1
    assert doc.activeNode() is background
    assert docker.status_label.text().startswith("Done: 2 layer(s) added")
    assert docker.progress_bar.isHidden()


def test_mask_is_baked_into_alpha_when_the_mask_action_fails(qtbot, app, stub) -> None:
    app.mask_action_works = False
    doc = app.open(FakeDocument(100, 100))
    shape = bytes([255, 0, 0, 255]) * 16  # 8x8
    doc.setSelection(FakeSelection(4, 4, 8, 8, shape))
    kind, _ = _wait_outcome(qtbot, _ready(qtbot, app, stub, n=1))
    assert kind == "finished"
    group = doc.rootNode().childNodes()[-1]
    (layer,) = group.childNodes()
    assert layer.pixelData(4, 4, 8, 8)[3::4] == shape


def test_rectangular_selection_on_empty_canvas_is_txt2img_without_mask(qtbot, app, stub) -> None:
    doc = app.open(FakeDocument(100, 100))
    doc.setSelection(FakeSelection(-10, 90, 30, 30))  # partly outside the canvas
    kind, _ = _wait_outcome(qtbot, _ready(qtbot, app, stub))
    assert kind == "finished"
    assert "source_image" not in stub.calls("POST")[0].body
    group = doc.rootNode().childNodes()[-1]
    assert [node.type() for node in group.childNodes()] == ["paintlayer"] * 2
    layer = group.childNodes()[0]
    assert layer.pixelData(0, 90, 20, 10) == bytes(RED_BGRA) * 200
    assert layer.pixelData(20, 90, 1, 1) == bytes(4)


def test_document_closed_while_the_job_runs_drops_the_result(qtbot, app, stub) -> None:
    stub.state.checks_until_done = 3
    doc = app.open(FakeDocument(100, 100))
    docker = _ready(qtbot, app, stub)
    docker.job_started.connect(lambda job_id: app.close(doc))
    kind, message = _wait_outcome(qtbot, docker)
    assert kind == "failed"
    assert "document was closed while the job ran" in message


def test_other_document_active_at_the_end_still_gets_masked_results(qtbot, app, stub) -> None:
    stub.state.checks_until_done = 2
    doc = app.open(FakeDocument(100, 100))
    doc.setSelection(FakeSelection(0, 0, 4, 4, bytes([255, 0] * 8)))
    docker = _ready(qtbot, app, stub, n=1)
    docker.job_started.connect(lambda job_id: app.open(FakeDocument(50, 50)))
    kind, _ = _wait_outcome(qtbot, docker)
    assert kind == "finished"
    (layer,) = doc.rootNode().childNodes()[-1].childNodes()
    assert layer.pixelData(0, 0, 4, 4)[3::4] == bytes([255, 0] * 8)  # baked, not masked


def test_krita_52_gets_a_native_transparency_mask(qtbot, app, stub, monkeypatch) -> None:
    made: list[tuple] = []

    class Selection:
        def setPixelData(self, data, x, y, w, h):
            self.args = (bytes(data), x, y, w, h)

    class Document52(FakeDocument):
        def createTransparencyMask(self, name):
            node = FakeNode(self, name, "transparencymask")
            node.setSelection = lambda selection: made.append(selection.args)
            return node

    monkeypatch.setitem(sys.modules, "krita", types.SimpleNamespace(Selection=Selection))
    doc = app.open(Document52(100, 100))
    shape = bytes([255, 0] * 8)
    doc.setSelection(FakeSelection(10, 10, 4, 4, shape))
    kind, _ = _wait_outcome(qtbot, _ready(qtbot, app, stub, n=1))
    assert kind == "finished"
    assert made == [(shape, 10, 10, 4, 4)]
    assert app.action("add_new_transparency_mask").triggered == 0


def test_cancel_button_cancels_running_jobs(qtbot, app, stub) -> None:
    stub.state.checks_until_done = 10_000
    app.open(FakeDocument(64, 64))
    docker = _ready(qtbot, app, stub)
    failures: list[str] = []
    docker.job_failed.connect(lambda job_id, message: failures.append(message))
    docker.generate()
    qtbot.waitUntil(lambda: "Queued, position 2, about 5 s." in docker.status_label.text())
    assert docker.cancel_button.isEnabled()
    docker.cancel_button.click()
    assert failures == ["cancelled by the artist"]
    assert docker.status_label.text() == "Cancelled."
    assert docker.progress_bar.isHidden()
    qtbot.waitUntil(lambda: bool(stub.calls("DELETE")), timeout=5000)


def test_two_jobs_at_once_each_get_their_group(qtbot, app, stub) -> None:
    stub.state.checks_until_done = 2
    doc = app.open(FakeDocument(64, 64))
    docker = _ready(qtbot, app, stub, n=1)
    finished: list[str] = []
    docker.job_finished.connect(lambda job_id, names: finished.append(job_id))
    first = docker.generate()
    docker.apply_settings({"prompt": "a blue owl"})
    second = docker.generate()
    qtbot.waitUntil(lambda: len(finished) == 2, timeout=10_000)
    assert sorted(finished) == sorted([first, second])
    names = [node.name() for node in doc.rootNode().childNodes()]
    assert sorted(names) == ["Horde #1 txt2img: a red fox", "Horde #2 txt2img: a blue owl"]


def _row_texts(docker: HordeDocker) -> list[str]:
    return [row.label.text() for row in docker.queue_view.rows.values()]


def test_a_second_generate_is_a_visible_queue_row_with_its_own_cancel(qtbot, app, stub) -> None:
    """Concurrent jobs are listed, each with its status and its own Cancel; cancelling one
    leaves the other running; same prompts still get distinct group names."""
    stub.state.checks_until_done = 10_000
    doc = app.open(FakeDocument(64, 64))
    docker = _ready(qtbot, app, stub, n=1)
    first, second = docker.generate(), docker.generate()
    rows = docker.queue_view.rows
    assert not docker.queue_view.isHidden() and list(rows) == [first, second]
    qtbot.waitUntil(lambda: all("Queued" in text for text in _row_texts(docker)), timeout=5000)
    assert [text.split(" — ")[0] for text in _row_texts(docker)] == ["#1 a red fox", "#2 a red fox"]
    assert docker.status_label.text().startswith("[2 jobs]")
    failed: list[str] = []
    docker.job_failed.connect(lambda job_id, message: failed.append(job_id))
    rows[first].cancel_button.click()
    assert failed == [first]
    assert docker.active_jobs() == [second]
    assert rows[first].label.text() == "#1 a red fox — Cancelled. · 10 kudos"
    assert rows[first].cancel_button.isHidden() and not rows[second].cancel_button.isHidden()
    # The second finishes on its own; a third job with the same prompt gets its own name.
    stub.state.checks_until_done = 0
    finished: list[str] = []
    docker.job_finished.connect(lambda job_id, names: finished.append(job_id))
    third = docker.generate()
    qtbot.waitUntil(lambda: len(finished) == 2, timeout=10_000)
    assert sorted(finished) == sorted([second, third])
    names = sorted(node.name() for node in doc.rootNode().childNodes())
    assert names == ["Horde #2 txt2img: a red fox", "Horde #3 txt2img: a red fox"]


def test_group_names_stay_distinct_across_sessions(qtbot, app, stub) -> None:
    doc = app.open(FakeDocument(64, 64))
    earlier = doc.createGroupLayer("Horde #1 txt2img: a red fox")  # from yesterday's session
    doc.rootNode().addChildNode(earlier, None)
    kind, _ = _wait_outcome(qtbot, _ready(qtbot, app, stub, n=1))
    assert kind == "finished"
    names = [node.name() for node in doc.rootNode().childNodes()]
    assert names == ["Horde #1 txt2img: a red fox", "Horde #1 txt2img: a red fox (2)"]


def test_img2img_source_is_the_visible_area_scaled(qtbot, app, stub) -> None:
    doc = app.open(FakeDocument(128, 64))
    doc.paint(RED_BGRA, 0, 0, 128, 64)
    kind, _ = _wait_outcome(qtbot, _ready(qtbot, app, stub, min_size=256, max_size=512))
    assert kind == "finished"
    body = stub.calls("POST")[0].body
    assert body["source_processing"] == "img2img"
    assert (body["params"]["width"], body["params"]["height"]) == (512, 256)
    from krita_horde.images import decode_base64

    source = decode_base64(body["source_image"])
    assert (source.width(), source.height()) == (512, 256)
    colour = source.pixelColor(100, 100)
    assert colour.red() > 240 and colour.green() < 15 and colour.blue() < 15


def test_progress_bar_only_while_generating_and_words_while_waiting(qtbot, app, stub) -> None:
    """Waiting is said in words with no bar (not "0%"); the bar shows while images are
    generated; after an error it is gone (not "100%")."""
    stub.state.checks_until_done = 10_000
    stub.state.progress_extension = True
    app.open(FakeDocument(64, 64))
    docker = _ready(qtbot, app, stub, n=1)
    seen: list[tuple[str, bool, int]] = []

    def record() -> None:
        bar = docker.progress_bar
        seen.append((docker.status_label.text(), not bar.isHidden(), bar.value()))

    stub.script(
        "GET",
        "/api/v2/generate/check/",
        Canned(200, {"done": False, "waiting": 1, "queue_position": 2, "progress": 0.0}),
        Canned(200, {"done": False, "processing": 1, "progress": 0.5}),
        Canned(500, {"message": "boom"}),
        *[Canned(404, {"message": "gone", "rc": "NotFound"})] * 3,
    )
    failed: list[str] = []
    docker.job_failed.connect(lambda job_id, message: failed.append(message))
    docker.generate()
    qtbot.waitUntil(lambda: (record() or True) and "Queued, position 2" in seen[-1][0])
    assert not seen[-1][1]  # waiting: words, no bar
    qtbot.waitUntil(lambda: (record() or True) and "50%" in seen[-1][0])
    assert seen[-1][1:] == (True, 50)
    qtbot.waitUntil(lambda: bool(failed), timeout=10_000)
    assert docker.status_label.text().startswith("Error:")
    assert docker.progress_bar.isHidden()


@pytest.mark.parametrize("shaped", [False, True], ids=["rectangle", "shaped selection"])
def test_the_artists_active_layer_is_given_back_after_a_job(qtbot, app, stub, shaped) -> None:
    """Krita activates every node a script adds: after the results are in, the artist's layer
    is the active one again (with or without the 5.1 mask workaround)."""
    doc = app.open(FakeDocument(100, 100))
    background = doc.createNode("Background", "paintlayer")
    doc.rootNode().addChildNode(background, None)
    doc.setActiveNode(background)
    mask = bytes([255, 0] * 32) if shaped else None
    doc.setSelection(FakeSelection(10, 10, 8, 8, mask))
    kind, _ = _wait_outcome(qtbot, _ready(qtbot, app, stub, n=2))
    assert kind == "finished"
    assert len(doc.walk()) > 1  # the results are in
    assert doc.activeNode() is background


def test_cancel_keeps_the_images_already_finished(qtbot, app, stub) -> None:
    """n = 3, one image finished when the artist cancels: the request is deleted and the
    finished image (which the DELETE's reply carries) still becomes a layer."""
    doc = app.open(FakeDocument(64, 64))
    docker = _ready(qtbot, app, stub, n=3)
    image = stub.state.images[0]
    stub.script(
        "GET",
        "/api/v2/generate/check/",
        *[Canned(200, {"done": False, "finished": 1, "processing": 1, "waiting": 1})] * 500,
    )
    generation = {"img": image, "seed": "77", "state": "ok", "censored": False, "id": "g1"}
    stub.script(
        "DELETE",
        "/api/v2/generate/status/",
        Canned(200, {"done": False, "finished": 1, "generations": [generation]}),
    )
    outcome: list[tuple[str, object]] = []
    docker.job_finished.connect(lambda job_id, names: outcome.append(("finished", names)))
    docker.job_failed.connect(lambda job_id, message: outcome.append(("failed", message)))
    docker.generate()
    qtbot.waitUntil(lambda: "1/3 images done" in docker.status_label.text(), timeout=5000)
    docker.cancel_button.click()
    qtbot.waitUntil(lambda: bool(outcome), timeout=10_000)
    assert outcome == [("finished", ["a red fox [seed 77]"])]
    assert len(stub.calls("DELETE")) == 1
    (group,) = doc.rootNode().childNodes()
    assert [layer.name() for layer in group.childNodes()] == ["a red fox [seed 77]"]
    (entry,) = docker.jobs.values()
    assert entry.job.status.kept_after_cancel
    assert entry.job.status.message == "1 image(s) received, kept after cancelling the rest"


def test_cancel_with_nothing_finished_is_immediate(qtbot, app, stub) -> None:
    stub.state.checks_until_done = 10_000
    app.open(FakeDocument(64, 64))
    docker = _ready(qtbot, app, stub, n=3)
    failed: list[str] = []
    docker.job_failed.connect(lambda job_id, message: failed.append(message))
    docker.generate()
    qtbot.waitUntil(lambda: "Queued" in docker.status_label.text(), timeout=5000)
    docker.cancel_button.click()
    assert failed == ["cancelled by the artist"]


def test_thin_selection_is_not_stretched_but_generated_with_context_and_cropped(
    qtbot, app, stub
) -> None:
    """90x600 is sent as a 113x600 context at 192x1024 (same aspect) and the result is scaled
    back uniformly and cropped: a feature 24 px from the result's left edge lands 3 px into
    the selection (stretched, it landed 11 px in)."""
    from PyQt5.QtGui import QColor, QImage, QPainter

    from krita_horde.images import decode_base64, encode_base64

    doc = app.open(FakeDocument(400, 800))
    doc.paint((0, 255, 0, 255), 0, 0, 400, 800)
    doc.setSelection(FakeSelection(100, 100, 90, 600))
    result = QImage(192, 1024, QImage.Format_RGB32)
    result.fill(QColor(255, 0, 0))
    painter = QPainter(result)
    painter.fillRect(0, 0, 24, 1024, QColor(0, 0, 255))
    painter.end()
    stub.state.images = [encode_base64(result, fmt="png")]
    docker = _docker(qtbot, app)
    docker.apply_settings(
        {"prompt": "a tall tree", "url": stub.url, "apikey": "k", "n": 1, "insert_all": True}
    )
    kind, _ = _wait_outcome(qtbot, docker)
    assert kind == "finished"
    body = stub.calls("POST")[0].body
    assert (body["params"]["width"], body["params"]["height"]) == (192, 1024)
    source = decode_base64(body["source_image"])
    assert (source.width(), source.height()) == (192, 1024)
    (layer,) = doc.rootNode().childNodes()[-1].childNodes()
    blue, red = bytes((255, 0, 0, 255)), bytes(RED_BGRA)
    assert layer.pixelData(100, 300, 1, 1) == blue
    assert layer.pixelData(106, 300, 1, 1) == red
    assert layer.pixelData(99, 300, 1, 1) == bytes(4)  # nothing outside the selection
    assert layer.pixelData(190, 300, 1, 1) == bytes(4)


def _worker(name: str, models: list[str], max_pixels: int, **flags) -> dict:
    return {
        "name": name,
        "models": models,
        "max_pixels": max_pixels,
        "img2img": flags.get("img2img", True),
        "painting": flags.get("painting", True),
        "nsfw": flags.get("nsfw", False),
    }


def _with_workers(qtbot, app, stub, workers: list[dict], **values) -> HordeDocker:
    # Setting the URL loads the models and workers (a later refresh aborts an earlier one).
    stub.script("GET", "/api/v2/workers", *[Canned(200, workers)] * 10)
    docker = _ready(qtbot, app, stub, **values)
    qtbot.waitUntil(lambda: docker.workers is not None, timeout=5000)
    return docker


def test_default_sizes_are_fitted_to_the_workers_of_the_model(qtbot, app, stub) -> None:
    """The default worker takes 512x512 pixels; the default max size is 1024. The job is sized
    so a worker of the chosen model can take it, and the docker says so before Generate."""
    app.open(FakeDocument(1200, 800))
    docker = _with_workers(
        qtbot,
        app,
        stub,
        [_worker("small", ["few"], 512 * 512), _worker("big", ["many"], 1024 * 1024)],
        model="few",
        n=1,
    )
    labels = [docker.model_combo.itemText(i) for i in range(docker.model_combo.count())]
    assert "few (1 worker, up to 512×512)" in labels
    docker.update_plan()
    assert "1200×800 → 576×384" in docker.plan_label.text()
    assert "the largest worker of few takes 262,144 pixels" in docker.plan_label.text()
    kind, _ = _wait_outcome(qtbot, docker)
    assert kind == "finished"
    params = stub.calls("POST")[0].body["params"]
    assert (params["width"], params["height"]) == (576, 384)
    # The model with a large worker keeps the artist's sizes.
    docker.apply_settings({"model": "many"})
    docker.update_plan()
    assert "1200×800 → 1024×704" in docker.plan_label.text()
    assert "largest worker" not in docker.plan_label.text()


def test_a_model_no_worker_serves_is_said_before_generate(qtbot, app, stub) -> None:
    app.open(FakeDocument(64, 64))
    docker = _with_workers(
        qtbot, app, stub, [_worker("w", ["few"], 512 * 512, img2img=False)], model="few"
    )
    docker.apply_settings({"mode": "img2img"})
    docker.update_plan()
    text = docker.plan_label.text()
    # The reason comes from the workers' own flags (/workers), as issue 23 asked.
    assert "No live worker takes img2img with few now: its 1 worker does not take img2img" in text
    docker.apply_settings({"mode": "txt2img", "nsfw": True})
    docker.update_plan()
    assert "its 1 worker refuses NSFW requests; turn Allow NSFW off" in docker.plan_label.text()
    docker.apply_settings({"model": "nobody-serves-this", "nsfw": False})
    docker.update_plan()
    assert "nobody serves it; pick a model that shows workers" in docker.plan_label.text()


@pytest.mark.parametrize(
    ("paint", "shape", "mode", "expected", "denoise_shown"),
    [
        (False, None, "auto", "txt2img (the selection is empty)", False),
        (True, None, "auto", "img2img (the selection has pixels)", True),
        (True, bytes([255, 0] * 32), "auto", "inpainting (the selection is not a plain", True),
        (True, None, "txt2img", "txt2img (as chosen)", False),
    ],
    ids=["empty", "pixels", "shaped", "forced txt2img"],
)
def test_the_mode_auto_chooses_and_why_is_shown_before_generate(
    qtbot, app, stub, paint, shape, mode, expected, denoise_shown
) -> None:
    doc = app.open(FakeDocument(100, 100))
    if paint:
        doc.paint(RED_BGRA, 0, 0, 100, 100)
    doc.setSelection(FakeSelection(10, 10, 8, 8, shape))
    docker = _ready(qtbot, app, stub, mode=mode)
    docker.update_plan()
    assert docker.plan_label.text().startswith(expected)
    assert docker.denoise_spin.isHidden() != denoise_shown


def test_kudos_cost_before_and_after_and_the_balance(qtbot, app, stub) -> None:
    """Before Generate: the dry-run price and the balance; after: the request's cost."""
    stub.state.checks_until_done = 2
    doc = app.open(FakeDocument(64, 64))
    docker = _ready(qtbot, app, stub, n=1, steps=30)
    docker.refresh_balance()
    docker.update_plan()
    qtbot.waitUntil(
        lambda: docker.kudos_label.text() == "Costs about 7.5 kudos · your balance: 1,234 kudos",
        timeout=5000,
    )
    (priced,) = stub.calls("POST", "/api/v2/generate/async", dry_runs=True)
    assert priced.body["dry_run"] is True and priced.body["params"]["steps"] == 30
    assert stub.calls("GET", "/api/v2/find_user")[0].headers["apikey"] == "k"
    asked = len(stub.calls("GET", "/api/v2/find_user"))
    kind, _ = _wait_outcome(qtbot, docker)
    assert kind == "finished" and doc.walk()
    (row,) = docker.queue_view.rows.values()
    assert row.label.text().endswith(" · 10 kudos")
    # The balance is asked again after paying.
    qtbot.waitUntil(lambda: len(stub.calls("GET", "/api/v2/find_user")) > asked, timeout=5000)


def test_kudos_upfront_refusal_is_a_clear_message(qtbot, app, stub) -> None:
    app.open(FakeDocument(64, 64))
    reason = (
        "This request needs its kudos up front because it is larger than 576x576, and your"
        " balance (3 kudos) is less than its price (40 kudos)."
    )
    stub.script(
        "POST",
        "/api/v2/generate/async",
        Canned(403, {"message": reason, "rc": "KudosUpfront"}),
    )
    docker = _ready(qtbot, app, stub, n=1)
    kind, message = _wait_outcome(qtbot, docker)
    assert (kind, message) == ("failed", f"not enough kudos for this request: {reason}")
    # The price query says so before Generate too.
    refusal = Canned(403, {"message": reason, "rc": "KudosUpfront"})
    stub.script("POST", "/api/v2/generate/async", refusal)
    stub.dry_run_scripts = True
    docker.apply_settings({"steps": 60})
    docker.update_plan()
    qtbot.waitUntil(
        lambda: docker.kudos_label.text().startswith("Not enough kudos for this request:"),
        timeout=5000,
    )


def _preview_node(doc: FakeDocument) -> FakeNode | None:
    return next((node for node in doc.walk() if node.name() == "Horde preview #1"), None)


def test_live_preview_shows_in_a_temporary_layer_replaced_by_the_result(qtbot, app, stub) -> None:
    from PyQt5.QtGui import QColor, QImage

    from krita_horde.images import encode_image

    doc = app.open(FakeDocument(200, 200))
    background = doc.createNode("Background", "paintlayer")
    doc.rootNode().addChildNode(background, None)
    doc.setActiveNode(background)
    doc.setSelection(FakeSelection(20, 30, 64, 64))
    preview = QImage(64, 64, QImage.Format_RGB32)
    preview.fill(QColor(0, 0, 255))
    stub.state.checks_until_done = 1
    processing = {"done": False, "processing": 1, "progress": 0.4, "preview_available": True}
    stub.script("GET", "/api/v2/generate/check/", *[Canned(200, processing)] * 10_000)
    stub.script(
        "GET",
        "/api/v2/generate/preview/",
        *[Canned(200, encode_image(preview, fmt="png"), "image/webp")] * 10_000,
    )
    docker = _ready(qtbot, app, stub, n=1)
    outcome: list[str] = []
    docker.job_finished.connect(lambda job_id, names: outcome.append("finished"))
    docker.generate()
    qtbot.waitUntil(
        lambda: (
            (node := _preview_node(doc)) is not None
            and node.pixelData(20, 30, 1, 1) == bytes((255, 0, 0, 255))
        ),
        timeout=10_000,
    )
    node = _preview_node(doc)
    assert node.pixelData(19, 30, 1, 1) == bytes(4)  # only at the selection
    assert doc.activeNode() is background  # the artist keeps painting on their layer
    assert stub.calls("GET", "/api/v2/generate/preview/stub-request-1")
    stub.scripts.clear()  # the horde now says done
    qtbot.waitUntil(lambda: bool(outcome), timeout=10_000)
    assert _preview_node(doc) is None
    assert [n.name() for n in doc.rootNode().childNodes()] == [
        "Background",
        "Horde #1 txt2img: a red fox",
    ]
    assert doc.activeNode() is background


def test_preview_layer_goes_away_when_the_job_is_cancelled(qtbot, app, stub) -> None:
    from PyQt5.QtGui import QColor, QImage

    from krita_horde.images import encode_image

    doc = app.open(FakeDocument(100, 100))
    preview = QImage(32, 32, QImage.Format_RGB32)
    preview.fill(QColor(0, 255, 0))
    processing = {"done": False, "processing": 1, "progress": 0.5, "preview_available": True}
    stub.script("GET", "/api/v2/generate/check/", *[Canned(200, processing)] * 10_000)
    stub.script(
        "GET",
        "/api/v2/generate/preview/",
        *[Canned(200, encode_image(preview, fmt="png"), "image/webp")] * 10_000,
    )
    docker = _ready(qtbot, app, stub, n=1)
    docker.generate()
    qtbot.waitUntil(lambda: _preview_node(doc) is not None, timeout=10_000)
    docker.cancel()
    assert _preview_node(doc) is None


def test_compact_layout_generate_always_visible_advanced_folded_connection_dialog(
    qtbot, app
) -> None:
    from PyQt5.QtWidgets import QScrollArea

    docker = _docker(qtbot, app)
    docker.resize(320, 300)  # a short docker
    docker.show()
    qtbot.waitExposed(docker)
    for name in ("prompt_edit", "negative_edit", "denoise_spin", "model_combo"):
        assert getattr(docker, name).isVisible(), name
    # Generate is outside the scrolling part: it never scrolls away.
    node = docker.generate_button.parentWidget()
    while node is not None:
        assert not isinstance(node, QScrollArea)
        node = node.parentWidget()
    assert docker.generate_button.isVisible()
    label = docker.form._form_layout.labelForField(docker.denoise_spin)
    assert label.text() == "Strength"
    # Advanced fields are folded away until asked for.
    assert not docker.steps_spin.isVisible() and not docker.seed_edit.isVisible()
    docker.advanced_toggle.click()
    assert docker.advanced_panel.isVisibleTo(docker.form)
    # The connection lives in a dialog.
    assert not docker.url_edit.isVisible()
    docker.connection_button.click()
    assert docker.form.connection_dialog.isVisible() and docker.url_edit.isVisible()
    docker.form.connection_dialog.hide()


def test_generate_action_runs_generate_in_the_active_windows_docker(qtbot, app, stub) -> None:
    from krita_horde import actions

    app.open(FakeDocument(64, 64))
    docker = _ready(qtbot, app, stub, n=1)
    other = _ready(qtbot, app, stub, n=1)
    created: dict[str, object] = {}

    class Action:
        def __init__(self) -> None:
            self.slots: list = []
            self.triggered = self

        def connect(self, slot) -> None:
            self.slots.append(slot)

    class Window:
        def createAction(self, action_id, text, menu):
            created.update(id=action_id, text=text, menu=menu, action=Action())
            return created["action"]

        def qwindow(self):
            return docker.window()

    class Krita:
        @staticmethod
        def instance():
            return Krita

        @staticmethod
        def activeWindow():
            return Window()

    class Extension:
        def __init__(self, parent) -> None:
            pass

    module = types.SimpleNamespace(Extension=Extension, Krita=Krita)
    actions.make_extension(module).createActions(Window())
    assert (created["id"], created["menu"]) == ("krita_horde_generate", "tools/scripts")
    started: list[str] = []
    docker.job_started.connect(started.append)
    other.job_started.connect(lambda job_id: started.append("other"))
    created["action"].slots[0]()
    qtbot.waitUntil(lambda: bool(started), timeout=5000)
    assert started != ["other"]


def _outpaint_outcome(qtbot, docker: HordeDocker, **sides) -> tuple[str, object]:
    outcome: list[tuple[str, object]] = []
    docker.job_finished.connect(lambda job_id, names: outcome.append(("finished", names)))
    docker.job_failed.connect(lambda job_id, message: outcome.append(("failed", message)))
    docker.outpaint(**sides)
    qtbot.waitUntil(lambda: bool(outcome), timeout=10_000)
    return outcome[0]


def test_outpainting_extends_the_canvas_once_and_inpaints_only_the_new_area(
    qtbot, app, stub
) -> None:
    from krita_horde.images import decode_base64

    doc = app.open(FakeDocument(200, 100))
    doc.paint((0, 255, 0, 255), 0, 0, 200, 100)
    painting = doc.createNode("painting", "paintlayer")
    doc.rootNode().addChildNode(painting, None)
    painting.setPixelData(bytes((0, 255, 0, 255)) * 200 * 100, 0, 0, 200, 100)
    doc.setActiveNode(painting)
    docker = _ready(qtbot, app, stub, n=1, mode="txt2img")  # outpainting inpaints anyway
    kind, names = _outpaint_outcome(qtbot, docker, right=64)
    assert kind == "finished" and names == ["a red fox [seed 1000]"]
    assert (doc.width(), doc.height()) == (264, 100)
    assert doc.undo_steps == [("resize canvas", 0, 0, 264, 100)]  # resized once, undoable
    assert painting.pixelData(199, 50, 1, 1) == bytes((0, 255, 0, 255))  # the old picture stays
    body = stub.calls("POST")[0].body
    assert body["source_processing"] == "inpainting"
    mask = decode_base64(body["source_mask"])
    width = mask.width()
    # Repaint the new strip (right), keep the band of old pixels (left) as context.
    assert mask.pixelColor(width - 2, 10).red() > 200
    assert mask.pixelColor(1, 10).red() < 50
    group = doc.rootNode().childNodes()[-1]
    layer = next(node for node in group.childNodes() if node.type() == "paintlayer")
    shape = next(node for node in group.childNodes() if node.type() == "transparencymask")
    assert layer.pixelData(230, 50, 1, 1) == bytes(RED_BGRA)
    assert shape.pixelData(230, 50, 1, 1) == b"\xff" and shape.pixelData(150, 50, 1, 1) == b"\x00"
    assert doc.activeNode() is painting


def test_a_selection_reaching_past_the_edge_sets_how_far_to_extend(qtbot, app, stub) -> None:
    doc = app.open(FakeDocument(100, 100))
    doc.setSelection(FakeSelection(40, -20, 30, 50))
    kind, _ = _outpaint_outcome(qtbot, _ready(qtbot, app, stub, n=1), right=64)
    assert kind == "finished"
    assert (doc.width(), doc.height()) == (100, 120)  # up by 20 (the selection), not right
    assert doc.undo_steps == [("resize canvas", 0, -20, 100, 120)]


def test_outpainting_without_a_side_is_refused_before_resizing(qtbot, app, stub) -> None:
    doc = app.open(FakeDocument(100, 100))
    kind, message = _outpaint_outcome(qtbot, _ready(qtbot, app, stub))
    assert (kind, message) == (
        "failed",
        "choose how far to extend the canvas (left, top, right or bottom)",
    )
    assert doc.undo_steps == []


def _tls_stub(tmp_path, name: str):
    import ssl

    from tests.helpers.tls import make_tls_files

    files = make_tls_files(tmp_path / name)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(files.cert_file, files.key_file)
    horde = StubHorde(tls=context)
    horde.state.images = []
    return horde.start(), files


def test_a_horde_with_its_own_ca_works_when_told_to_trust_it(qtbot, app, stub, tmp_path) -> None:
    from PyQt5.QtNetwork import QSslSocket

    if not QSslSocket.supportsSsl():
        pytest.skip("this Qt cannot load OpenSSL")
    horde, files = _tls_stub(tmp_path, "ca")
    horde.state.images = stub.state.images[:1]
    try:
        doc = app.open(FakeDocument(64, 64))
        docker = _docker(qtbot, app)
        docker.apply_settings(
            {"prompt": "a fox", "url": horde.url, "apikey": "k", "n": 1, "insert_all": True}
        )
        kind, message = _wait_outcome(qtbot, docker)
        assert kind == "failed"
        assert "its TLS certificate is not trusted" in message and "CA file under ⚙" in message
        docker.apply_settings({"ca_file": str(files.ca_file)})
        kind, names = _wait_outcome(qtbot, docker)
        assert (kind, names) == ("finished", ["a fox [seed 1000]"])
        assert doc.walk()
    finally:
        horde.stop()
