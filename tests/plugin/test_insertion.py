"""Putting results into the document: ResultInserter makes each expensive Krita call (adding a
node, writing pixels, the mask action, refreshing the projection) in an event-loop turn of its
own, so Krita's interface never waits for several of them at once. A document closed between
any two steps drops the results without an exception or a further Krita call, and a step that
fails takes the half-built group out of the document again.

Turns are counted by wrapping ResultInserter._run_next (one call = one event-loop turn)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from PyQt5.QtGui import QColor, QImage

import krita_horde.inserter as inserter_module
from krita_horde.background import thread_pool
from krita_horde.document import DocumentCanvas
from krita_horde.inserter import InsertedResult, ResultInserter
from krita_horde.job import GeneratedImage
from krita_horde.preparation import PreparedJob, prepare_job
from krita_horde.settings import JobSettings

from .fake_krita import FakeAction, FakeApp, FakeDocument, FakeNode, FakeSelection

SHAPE = bytes([255, 0] * 20) * 30  # 40x30, striped: not a rectangle, so a mask is made
EXPENSIVE = [
    (FakeNode, "addChildNode"),
    (FakeNode, "setPixelData"),
    (FakeDocument, "refreshProjection"),
    (FakeAction, "trigger"),
]


class KritaCalls:
    """Records the outermost expensive Krita calls with the event-loop turn they ran in."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.turn = 0
        self.calls: list[tuple[int, str, bool]] = []  # turn, name, document open
        self._depth = 0
        self.before_turn: Callable[[int], None] = lambda turn: None
        real_run_next = ResultInserter._run_next

        def counted(inserter: ResultInserter) -> None:
            self.turn += 1
            self.before_turn(self.turn)
            real_run_next(inserter)

        monkeypatch.setattr(ResultInserter, "_run_next", counted)
        for owner, name in EXPENSIVE:
            monkeypatch.setattr(owner, name, self._recording(getattr(owner, name), name))

    def _recording(self, real: Callable[..., Any], name: str) -> Callable[..., Any]:
        def recorded(target: Any, *args: Any) -> Any:
            if self._depth == 0 and self.turn > 0:  # not the test's own set-up
                doc = target if isinstance(target, FakeDocument) else getattr(target, "doc", None)
                self.calls.append((self.turn, name, doc is None or doc.open))
            self._depth += 1
            try:
                return real(target, *args)
            finally:
                self._depth -= 1

        return recorded


@pytest.fixture
def krita_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[KritaCalls]:
    yield KritaCalls(monkeypatch)
    thread_pool().waitForDone(10_000)  # no background step outlives the test


def _document(app: FakeApp) -> tuple[FakeDocument, FakeNode]:
    doc = app.open(FakeDocument(120, 100))
    background = doc.createNode("Background", "paintlayer")
    doc.rootNode().addChildNode(background, None)
    doc.setActiveNode(background)
    doc.setSelection(FakeSelection(30, 20, 40, 30, SHAPE))
    return doc, background


def _prepared(doc: FakeDocument) -> PreparedJob:
    settings = JobSettings(prompt="a red fox", min_size=64, max_size=128)
    return prepare_job(DocumentCanvas(doc), settings)


def _images(count: int) -> list[GeneratedImage]:
    image = QImage(64, 64, QImage.Format_RGB32)
    image.fill(QColor(255, 0, 0))
    return [GeneratedImage(image, str(1000 + index), "m", "w") for index in range(count)]


def _insert(qtbot, app: FakeApp, doc: FakeDocument, images: int = 2) -> tuple[str, Any]:
    outcomes: list[tuple[str, Any]] = []

    def done(result: InsertedResult) -> None:
        outcomes.append(("done", result))

    def failed(message: str) -> None:
        outcomes.append(("failed", message))

    # Kept referenced like the docker does: Qt's timers hold bound methods weakly.
    inserter = ResultInserter(app, doc, _prepared(doc), _images(images), done, failed)
    inserter.run()
    qtbot.waitUntil(lambda: bool(outcomes), timeout=10_000)
    # Nothing else may follow the outcome (a second call, a late step).
    qtbot.wait(2 * inserter_module.STEP_DELAY_MS)
    assert len(outcomes) == 1, outcomes
    return outcomes[0]


def test_each_expensive_krita_call_runs_in_its_own_event_loop_turn(
    qtbot, app: FakeApp, krita_calls: KritaCalls
) -> None:
    doc, _ = _document(app)
    kind, result = _insert(qtbot, app, doc)
    assert kind == "done" and result.masked_by == "transparency mask"
    names = [name for _, name, _ in krita_calls.calls]
    # group, layer, pixels, layer, pixels, the mask action, the mask's pixels, one refresh
    assert names == [
        "addChildNode",
        "addChildNode",
        "setPixelData",
        "addChildNode",
        "setPixelData",
        "trigger",
        "setPixelData",
        "refreshProjection",
    ]
    turns = [turn for turn, _, _ in krita_calls.calls]
    assert len(set(turns)) == len(turns), f"two Krita calls shared a turn: {krita_calls.calls}"


def test_document_closed_before_any_insertion_step_drops_the_results_cleanly(
    qtbot, app: FakeApp, krita_calls: KritaCalls, caplog: pytest.LogCaptureFixture
) -> None:
    doc, _ = _document(app)
    assert _insert(qtbot, app, doc)[0] == "done"
    steps = krita_calls.turn
    assert steps >= 8
    for closing_turn in range(1, steps + 1):
        krita_calls.turn, krita_calls.calls = 0, []
        doc, _ = _document(app)

        def close_at(turn: int, doc: FakeDocument = doc, closing_turn: int = closing_turn) -> None:
            if turn == closing_turn:
                app.close(doc)

        krita_calls.before_turn = close_at
        caplog.clear()
        kind, message = _insert(qtbot, app, doc)
        assert kind == "failed", f"closed before turn {closing_turn}: {kind} {message}"
        assert "the document was closed" in message
        assert "results were" in message  # "... its results were dropped / being added"
        assert all(is_open for _, _, is_open in krita_calls.calls), (
            f"Krita was called on the closed document (closed before turn {closing_turn}):"
            f" {krita_calls.calls}"
        )
        assert not [record for record in caplog.records if record.levelname == "ERROR"]


def _failing(real: Callable[..., Any], fail_on_call: int, error: Exception) -> Callable[..., Any]:
    calls = {"count": 0}

    def maybe_failing(*args: Any) -> Any:
        calls["count"] += 1
        if calls["count"] == fail_on_call:
            raise error
        return real(*args)

    return maybe_failing


@pytest.mark.parametrize(
    ("owner", "name", "fail_on_call", "error", "message"),
    [
        # the second layer's pixels: the group and the first layer are already in
        (FakeNode, "setPixelData", 2, RuntimeError("out of memory"),
         "could not add the result layers: out of memory"),
        # the 5.1 mask action, after the group was activated for it
        (FakeAction, "trigger", 1, RuntimeError("no view"),
         "could not add the transparency mask: no view"),
        # the second result cannot be scaled (background thread) after the first layer is in
        (inserter_module, "_result_pixels", 2, ValueError("broken image"),
         "could not turn the result into layer pixels: broken image"),
    ],
    ids=["layer write", "mask action", "result scaling"],
)  # fmt: skip
def test_a_failing_step_removes_the_half_built_group_and_gives_the_active_layer_back(
    qtbot,
    app: FakeApp,
    monkeypatch: pytest.MonkeyPatch,
    owner: Any,
    name: str,
    fail_on_call: int,
    error: Exception,
    message: str,
) -> None:
    doc, background = _document(app)
    monkeypatch.setattr(owner, name, _failing(getattr(owner, name), fail_on_call, error))
    assert _insert(qtbot, app, doc) == ("failed", message)
    assert doc.walk() == [background]
    assert doc.activeNode() is background


def test_a_group_that_cannot_be_removed_still_fails_the_job_with_the_first_error(
    qtbot, app: FakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc, _ = _document(app)
    monkeypatch.setattr(
        FakeNode, "setPixelData", _failing(FakeNode.setPixelData, 1, RuntimeError("disk full"))
    )

    def remove_fails(node: FakeNode) -> bool:
        raise RuntimeError("locked")

    monkeypatch.setattr(FakeNode, "remove", remove_fails)
    kind, message = _insert(qtbot, app, doc)
    assert (kind, message) == ("failed", "could not add the result layers: disk full")
