"""The heavy image work of a job runs off the GUI thread: building the payload, decoding the
results and scaling them back to the area. Krita's API is only called on the GUI thread, the
event loop keeps turning while a job is prepared, and errors, cancel and closed documents
during the background steps end the job as cleanly as before.

Nothing here depends on timing: a background step is held on a threading.Event the test
releases, and threads are told apart by identity."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
from PyQt5.QtCore import QByteArray, QTimer

import krita_horde.inserter as inserter_module
import krita_horde.job as job_module
import krita_horde.jobs as jobs_module
from krita_horde.background import run_in_background, thread_pool
from krita_horde.docker import HordeDocker
from krita_horde.document import DocumentCanvas
from krita_horde.geometry import GeometryError
from krita_horde.preparation import build_job, prepare_job, read_canvas
from krita_horde.settings import JobSettings
from krita_horde.status_text import ProgressView

from .fake_krita import FakeApp, FakeDocument, FakeNode, FakeSelection
from .stub_horde import StubHorde
from .test_docker import RED_BGRA
from .test_docker import _ready as _ready_docker

GATE_TIMEOUT_S = 10


class Gate:
    """Holds a background step until the test opens it; records the step's threads."""

    def __init__(self) -> None:
        self.opened = threading.Event()
        self.entered = threading.Event()
        self.threads: list[int] = []

    def wrap(self, real: Callable[..., Any], hold: bool = True) -> Callable[..., Any]:
        def held(*args: Any) -> Any:
            self.threads.append(threading.get_ident())
            self.entered.set()
            if hold and not self.opened.wait(GATE_TIMEOUT_S):
                raise TimeoutError("the test never opened the gate")
            return real(*args)

        return held


@pytest.fixture
def gate() -> Iterator[Gate]:
    gate = Gate()
    yield gate
    gate.opened.set()  # never leave a pool thread waiting for the next test
    thread_pool().waitForDone(GATE_TIMEOUT_S * 1000)


def _outcomes(docker: HordeDocker) -> list[tuple[str, Any]]:
    outcomes: list[tuple[str, Any]] = []
    docker.job_started.connect(lambda job_id: outcomes.append(("started", job_id)))
    docker.job_finished.connect(lambda job_id, names: outcomes.append(("finished", names)))
    docker.job_failed.connect(lambda job_id, message: outcomes.append(("failed", message)))
    return outcomes


def _last(outcomes: list[tuple[str, Any]]) -> tuple[str, Any]:
    return [outcome for outcome in outcomes if outcome[0] != "started"][-1]


def _wait_ended(qtbot, outcomes: list[tuple[str, Any]]) -> tuple[str, Any]:
    qtbot.waitUntil(lambda: any(kind != "started" for kind, _ in outcomes), timeout=10_000)
    return _last(outcomes)


def _ready(qtbot, app: FakeApp, stub: StubHorde, **values: Any) -> HordeDocker:
    docker = _ready_docker(qtbot, app, stub, **values)
    # Setting the URL reloads the model list; its reply must not overwrite a job's status.
    qtbot.waitUntil(docker.refresh_models_button.isEnabled, timeout=10_000)
    return docker


def _painted_doc(app: FakeApp) -> FakeDocument:
    doc = app.open(FakeDocument(160, 120))
    doc.paint((30, 140, 220, 255), 0, 0, 160, 120)
    doc.paint((200, 40, 10, 255), 40, 30, 50, 40)
    shape = bytes(min(255, (x * 9) % 300) for _ in range(50) for x in range(70))  # feathered
    doc.setSelection(FakeSelection(20, 10, 70, 50, shape))
    return doc


def test_run_in_background_hands_results_and_errors_to_the_gui_thread(qtbot) -> None:
    main = threading.get_ident()
    seen: list[tuple[str, Any, int]] = []

    def boom() -> None:
        raise ValueError("bad pixels")

    run_in_background(
        threading.get_ident,
        done=lambda ident: seen.append(("done", ident, threading.get_ident())),
        failed=lambda error: seen.append(("failed", error, threading.get_ident())),
    )
    run_in_background(
        boom,
        done=lambda result: seen.append(("done", result, threading.get_ident())),
        failed=lambda error: seen.append(("failed", str(error), threading.get_ident())),
    )
    qtbot.waitUntil(lambda: len(seen) == 2, timeout=10_000)
    by_kind = {kind: (value, thread) for kind, value, thread in seen}
    worker, delivered_on = by_kind["done"]
    assert worker != main and delivered_on == main
    assert by_kind["failed"] == ("bad pixels", main)


def test_cancelled_background_task_calls_nothing(qtbot, gate) -> None:
    seen: list[Any] = []
    task = run_in_background(gate.wrap(lambda: 1), seen.append, seen.append)
    assert gate.entered.wait(GATE_TIMEOUT_S)
    task.cancel()
    gate.opened.set()
    thread_pool().waitForDone(GATE_TIMEOUT_S * 1000)
    qtbot.wait(50)  # let the queued outcome reach the event loop: it must be dropped
    assert task.cancelled and seen == []


def test_background_preparation_sends_the_same_payload_as_preparing_at_once(
    qtbot, app, stub: StubHorde
) -> None:
    doc = _painted_doc(app)
    docker = _ready(qtbot, app, stub, n=1, seed="5", min_size=128, max_size=256)
    expected = prepare_job(DocumentCanvas(doc), docker.form.settings()).payload
    outcomes = _outcomes(docker)
    docker.generate()
    assert _wait_ended(qtbot, outcomes)[0] == "finished"
    sent = stub.calls("POST")[0].body
    assert sent["source_processing"] == "inpainting"
    assert sent == expected


def test_krita_qbytearrays_build_the_same_job_as_bytes(app) -> None:
    # Krita's pixelData gives QByteArrays; they reach build_job as they are, off the GUI thread.
    doc = _painted_doc(app)
    settings = JobSettings(prompt="a red fox", seed="5", min_size=128, max_size=256)
    read = read_canvas(DocumentCanvas(doc), settings)
    assert isinstance(read.pixels, bytes) and read.selection is not None
    from_qt = replace(read, pixels=QByteArray(read.pixels), selection=QByteArray(read.selection))
    prepared = build_job(from_qt)
    assert prepared == build_job(read)
    assert prepared.mode == "inpainting" and isinstance(prepared.selection_mask, bytes)


def test_gui_thread_keeps_turning_while_a_job_is_prepared(
    qtbot, app, stub: StubHorde, gate, monkeypatch
) -> None:
    _painted_doc(app)
    docker = _ready(qtbot, app, stub, n=1)
    monkeypatch.setattr(jobs_module, "build_job", gate.wrap(jobs_module.build_job))
    outcomes = _outcomes(docker)
    job_id = docker.generate()
    # generate() returned while the payload is still being built in another thread.
    assert gate.entered.wait(GATE_TIMEOUT_S)
    assert gate.threads[0] != threading.get_ident()
    assert docker.active_jobs() == [job_id]
    assert docker.status_label.text() == "Preparing the image…"
    assert docker.cancel_button.isEnabled()
    # The GUI event loop runs timers meanwhile: a 10 ms timer ticks, then opens the gate.
    ticks: list[int] = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(1))
    timer.timeout.connect(lambda: len(ticks) >= 3 and gate.opened.set())
    timer.start()
    qtbot.waitUntil(lambda: len(ticks) >= 3, timeout=10_000)
    assert [kind for kind, _ in outcomes] == []  # still preparing: nothing submitted yet
    assert _wait_ended(qtbot, outcomes)[0] == "finished"
    timer.stop()
    assert outcomes[0] == ("started", job_id)


@pytest.mark.parametrize(
    ("error", "message"),
    [
        # A bug or a broken Qt: said plainly, with what failed.
        (RuntimeError("boom"), "could not prepare the image for the horde: boom"),
        # Something the artist can fix: shown as it is.
        (GeometryError("the selection is too thin"), "the selection is too thin"),
    ],
)
def test_error_while_building_the_job_reaches_job_failed(
    qtbot, app, stub: StubHorde, monkeypatch, error: Exception, message: str
) -> None:
    _painted_doc(app)
    docker = _ready(qtbot, app, stub)

    def broken(read: Any) -> None:
        raise error

    monkeypatch.setattr(jobs_module, "build_job", broken)
    outcomes = _outcomes(docker)
    docker.generate()
    assert _wait_ended(qtbot, outcomes) == ("failed", message)
    assert docker.status_label.text() == f"Error: {message}"
    assert docker.active_jobs() == [] and not docker.cancel_button.isEnabled()
    assert all(kind != "started" for kind, _ in outcomes)
    assert not stub.calls("POST")


def test_cancel_while_preparing_drops_the_job_before_it_is_sent(
    qtbot, app, stub: StubHorde, gate, monkeypatch
) -> None:
    _painted_doc(app)
    docker = _ready(qtbot, app, stub)
    monkeypatch.setattr(jobs_module, "build_job", gate.wrap(jobs_module.build_job))
    outcomes = _outcomes(docker)
    docker.generate()
    assert gate.entered.wait(GATE_TIMEOUT_S)
    docker.cancel_button.click()
    assert outcomes == [("failed", "cancelled by the artist")]
    assert docker.status_label.text() == "Cancelled."
    assert docker.active_jobs() == [] and not docker.cancel_button.isEnabled()
    gate.opened.set()  # the payload gets built after all: it must be dropped
    thread_pool().waitForDone(GATE_TIMEOUT_S * 1000)
    qtbot.wait(100)  # the queued outcome is handled (and ignored) by the event loop
    assert outcomes == [("failed", "cancelled by the artist")]
    assert not stub.calls("POST")


def test_document_closed_while_preparing_is_not_sent(
    qtbot, app, stub: StubHorde, gate, monkeypatch
) -> None:
    doc = _painted_doc(app)
    docker = _ready(qtbot, app, stub)
    monkeypatch.setattr(jobs_module, "build_job", gate.wrap(jobs_module.build_job))
    outcomes = _outcomes(docker)
    docker.generate()
    assert gate.entered.wait(GATE_TIMEOUT_S)
    app.close(doc)
    gate.opened.set()
    assert _wait_ended(qtbot, outcomes) == (
        "failed",
        "the document was closed before the job was sent",
    )
    assert not stub.calls("POST")


def test_results_are_decoded_and_scaled_off_the_gui_thread_and_written_on_it(
    qtbot, app, stub: StubHorde, gate, monkeypatch
) -> None:
    main = threading.get_ident()
    doc = app.open(FakeDocument(200, 100))
    doc.setSelection(FakeSelection(10, 20, 150, 60))
    decode, pixels = Gate(), Gate()
    monkeypatch.setattr(job_module, "decode_base64", decode.wrap(job_module.decode_base64, False))
    monkeypatch.setattr(
        inserter_module, "_result_pixels", pixels.wrap(inserter_module._result_pixels, False)
    )
    krita_calls: list[int] = []
    real_set = FakeNode.setPixelData

    def recording_set(node: FakeNode, *args: Any) -> bool:
        krita_calls.append(threading.get_ident())
        return real_set(node, *args)

    monkeypatch.setattr(FakeNode, "setPixelData", recording_set)
    docker = _ready(qtbot, app, stub, n=2)
    outcomes = _outcomes(docker)
    docker.generate()
    kind, names = _wait_ended(qtbot, outcomes)
    assert kind == "finished" and len(names) == 2
    assert len(decode.threads) == 2 and main not in decode.threads
    assert len(pixels.threads) == 2 and main not in pixels.threads
    assert krita_calls == [main, main]
    layer = doc.rootNode().childNodes()[-1].childNodes()[0]
    assert layer.pixelData(10, 20, 150, 60) == bytes(RED_BGRA) * (150 * 60)


def test_document_closed_while_results_are_scaled_drops_them(
    qtbot, app, stub: StubHorde, gate, monkeypatch
) -> None:
    doc = app.open(FakeDocument(100, 100))
    monkeypatch.setattr(
        inserter_module, "_result_pixels", gate.wrap(inserter_module._result_pixels)
    )
    docker = _ready(qtbot, app, stub, n=1)
    outcomes = _outcomes(docker)
    docker.generate()
    qtbot.waitUntil(gate.entered.is_set, timeout=10_000)
    app.close(doc)
    gate.opened.set()
    kind, message = _wait_ended(qtbot, outcomes)
    assert kind == "failed" and "document was closed while the job ran" in message
    assert doc.walk() == []  # no group, no layer was added


def test_error_while_scaling_results_reaches_job_failed(
    qtbot, app, stub: StubHorde, monkeypatch
) -> None:
    doc = app.open(FakeDocument(100, 100))

    def broken(*args: Any) -> bytes:
        raise ValueError("expected 400 mask bytes for the image, got 3")

    monkeypatch.setattr(inserter_module, "_result_pixels", broken)
    docker = _ready(qtbot, app, stub, n=1)
    outcomes = _outcomes(docker)
    docker.generate()
    assert _wait_ended(qtbot, outcomes) == (
        "failed",
        "could not turn the result into layer pixels: expected 400 mask bytes for the image, got 3",
    )
    assert docker.status_label.text().startswith("Error: could not turn the result")
    assert doc.walk() == []


def test_progress_is_set_without_a_synchronous_repaint(qtbot, app, stub: StubHorde) -> None:
    # QProgressBar.setValue repaints at once when the shown value changes; inside Krita that
    # cost 20-25 ms of the GUI thread per poll. With the bar's updates off during the change,
    # Qt skips that repaint and re-enabling them schedules an ordinary paint instead.
    docker = _ready(qtbot, app, stub)
    bar = docker.progress_bar
    updates_during_set: list[bool] = []
    real_set = bar.setValue
    bar.setValue = lambda value: (updates_during_set.append(bar.updatesEnabled()), real_set(value))
    docker._show_progress(ProgressView(True, 42))
    assert bar.value() == 42 and (bar.minimum(), bar.maximum()) == (0, 100)
    docker._show_progress(ProgressView(True, None))
    assert (bar.minimum(), bar.maximum()) == (0, 0)  # the busy indicator
    docker._show_progress(ProgressView(True, None))  # unchanged: nothing is set again
    assert updates_during_set == [False, False]
    assert bar.updatesEnabled()
