"""The worker loop over real HTTP on loopback against the stub horde of stub_horde.py.

The stub is kept for what the real horde cannot be made to do on demand (503 answers, a reply
lost after the submit took effect, a horde without the progress extension, R2 upload faults);
test_live_horde.py runs the worker against the real `horde-api serve` process."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from horde_protocol import GenerationState
from tests.worker.conftest import RunningLoop
from tests.worker.images_util import decode, encode, striped
from tests.worker.stub_horde import StubHorde, running_stub

StartLoop = Callable[..., RunningLoop]


def test_pop_generate_submit(stub: StubHorde, start_loop: StartLoop) -> None:
    job_id = stub.add_job(width=128, height=64, seed="321")
    start_loop(stub.url)
    stub.wait_for(lambda: len(stub.submits) == 1)
    submit = stub.submits[0]
    assert (submit.id, submit.state, submit.seed) == (job_id, GenerationState.OK, 321)
    image = decode(submit.generation)
    assert (image.format, image.size) == ("WEBP", (128, 64))
    pop = stub.pops[0]
    assert pop.name == "loop-test" and pop.models == ["krita-horde-tiny"]
    assert pop.max_pixels == 512 * 512 and not pop.allow_post_processing


def test_img2img_and_inpainting_jobs(stub: StubHorde, start_loop: StartLoop) -> None:
    source = encode(striped(64, 64))
    img2img = stub.add_job(source_image=source, source_processing="img2img")
    inpaint = stub.add_job(
        source_image=encode(striped(64, 64).convert("RGBA").resize((64, 64))),
        source_processing="inpainting",
        source_mask=encode(striped(64, 64).convert("L")),
    )
    start_loop(stub.url)
    stub.wait_for(lambda: len(stub.submits) == 2)
    assert {s.id: s.state for s in stub.submits} == {
        img2img: GenerationState.OK,
        inpaint: GenerationState.OK,
    }


def test_retries_through_503_and_dropped_connections(
    stub: StubHorde, start_loop: StartLoop
) -> None:
    stub.fail_next("/generate/pop", "503", "drop_before", "503")
    # The first submit is taken by the horde but its reply is lost: the retry must be
    # recognised as a duplicate, not dropped and not counted twice.
    stub.fail_next("/generate/submit", "503", "drop")
    job_id = stub.add_job()
    running = start_loop(stub.url)
    stub.wait_for(lambda: len(stub.submits) == 2)
    assert [s.id for s in stub.submits] == [job_id, job_id]
    assert stub.requests["/generate/submit"] == 3
    running.stop()
    assert running.loop.stats.jobs_ok == 1 and running.loop.stats.jobs_undelivered == 0


def test_bad_source_image_is_submitted_faulted_and_the_worker_goes_on(
    stub: StubHorde, start_loop: StartLoop
) -> None:
    bad = stub.add_job(source_image="bm90IGFuIGltYWdl", source_processing="img2img")
    sampler = stub.add_job(sampler_name="k_unknown")
    good = stub.add_job()
    start_loop(stub.url)
    stub.wait_for(lambda: len(stub.submits) == 3)
    by_id = {s.id: s for s in stub.submits}
    assert by_id[bad].state == GenerationState.FAULTED
    assert by_id[bad].gen_metadata[0].type == "source_image"
    assert by_id[bad].gen_metadata[0].value == "parse_failed"
    assert "not a readable WebP or PNG" in (by_id[bad].gen_metadata[0].ref or "")
    assert by_id[sampler].state == GenerationState.FAULTED
    assert "unknown sampler 'k_unknown'" in (by_id[sampler].gen_metadata[0].ref or "")
    assert by_id[good].state == GenerationState.OK


def test_progress_reports_with_previews(stub: StubHorde, start_loop: StartLoop) -> None:
    job_id = stub.add_job(steps=12, width=128, height=128)
    start_loop(stub.url, progress_interval=0.05, preview_every=2)
    stub.wait_for(lambda: len(stub.submits) == 1)
    reports = [p for p in stub.progress if p.id == job_id]
    assert reports, "no progress reported"
    assert all(p.total == 12 and 1 <= p.step <= 12 for p in reports)
    assert [p.step for p in reports] == sorted(p.step for p in reports)
    previews = [p.preview for p in reports if p.preview]
    assert previews, "no preview sent"
    assert decode(previews[0]).format == "WEBP"


def test_cancelled_job_is_stopped_and_answered(stub: StubHorde, start_loop: StartLoop) -> None:
    job_id = stub.add_job(steps=200, width=128, height=128)
    stub.cancelled.add(job_id)
    follow_up = stub.add_job()
    running = start_loop(stub.url)
    stub.wait_for(lambda: len(stub.submits) == 2)
    # The cancelled job is answered `faulted` at once (our horde then frees its requester's
    # slot), and the worker goes on with the next job.
    cancelled, served = stub.submits
    assert (cancelled.id, cancelled.state) == (job_id, GenerationState.FAULTED)
    assert "cancelled" in (cancelled.gen_metadata[0].ref or "")
    assert (served.id, served.state) == (follow_up, GenerationState.OK)
    steps_seen = max(p.step for p in stub.progress if p.id == job_id)
    assert steps_seen < 200
    running.stop()
    assert running.loop.stats.jobs_cancelled == 1


def test_horde_without_progress_is_not_asked_again(start_loop: StartLoop) -> None:
    with running_stub(progress=False) as stub:
        stub.add_job(steps=8)
        stub.add_job(steps=8)
        start_loop(stub.url)
        stub.wait_for(lambda: len(stub.submits) == 2)
        assert stub.requests["/generate/progress"] == 1


def test_r2_upload_then_submit_r2(start_loop: StartLoop) -> None:
    with running_stub(r2=True) as stub:
        job_id = stub.add_job()
        stub.fail_next(f"/r2/{job_id}", "503")  # the upload is retried too
        start_loop(stub.url)
        stub.wait_for(lambda: len(stub.submits) == 1)
        assert stub.submits[0].generation == "R2"
        assert stub.requests[f"/r2/{job_id}"] == 2
        assert decode_bytes_format(stub.uploads[job_id]) == "WEBP"


def decode_bytes_format(data: bytes) -> str:
    import io

    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return str(image.format)


def test_skipped_reasons_are_logged(
    stub: StubHorde, start_loop: StartLoop, caplog: pytest.LogCaptureFixture
) -> None:
    stub.skipped = {"max_pixels": 3, "models": 1}
    caplog.set_level(logging.INFO, logger="horde_worker")
    start_loop(stub.url)
    stub.wait_for(lambda: len(stub.pops) >= 3)
    lines = [r.getMessage() for r in caplog.records if "skipped because of" in r.getMessage()]
    assert lines[0].endswith("max_pixels=3, models=1")
    assert len(lines) == 1, "skipped reasons must be logged now and then, not on every pop"


def test_stop_finishes_the_current_job(stub: StubHorde, start_loop: StartLoop) -> None:
    job_id = stub.add_job(steps=60, width=128, height=128)
    running = start_loop(stub.url)
    stub.wait_for(lambda: any(p.id == job_id for p in stub.progress))
    # The pop for the job after it (pop-ahead, worker/pipeline.py) found none.
    stub.wait_for(lambda: len(stub.pops) == 2)
    running.loop.shutdown.request()
    running.thread.join(60)
    assert not running.thread.is_alive()
    assert [(s.id, s.state) for s in stub.submits] == [(job_id, GenerationState.OK)]
    assert len(stub.pops) == 2, "no pop after the stop request"


def test_second_stop_aborts_and_submits_faulted(stub: StubHorde, start_loop: StartLoop) -> None:
    job_id = stub.add_job(steps=400, width=128, height=128)
    running = start_loop(stub.url)
    stub.wait_for(lambda: any(p.id == job_id for p in stub.progress))
    running.loop.shutdown.request()
    running.loop.shutdown.request()
    running.thread.join(60)
    assert not running.thread.is_alive()
    [submit] = stub.submits
    assert (submit.id, submit.state) == (job_id, GenerationState.FAULTED)
    assert submit.gen_metadata[0].ref == "worker shutting down"


def test_two_threads_serve_jobs_side_by_side(stub: StubHorde, start_loop: StartLoop) -> None:
    ids = {stub.add_job(seed=str(seed)) for seed in range(4)}
    running = start_loop(stub.url, threads=2)
    stub.wait_for(lambda: len(stub.submits) == 4)
    assert {s.id for s in stub.submits} == ids
    assert all(s.state == GenerationState.OK for s in stub.submits)
    running.stop()
    assert running.loop.stats.jobs_ok == 4


def test_out_of_memory_is_faulted_and_the_worker_goes_on(
    stub: StubHorde, start_loop: StartLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No GPU here: the OOM itself is simulated (the one fake in this file), the rest is real.
    import horde_worker.loop

    real_generate = horde_worker.loop.generate
    calls = []

    def generate_oom_once(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_generate(*args, **kwargs)

    monkeypatch.setattr(horde_worker.loop, "generate", generate_oom_once)
    first = stub.add_job(width=128, height=128)
    second = stub.add_job()
    start_loop(stub.url)
    stub.wait_for(lambda: len(stub.submits) == 2)
    by_id = {s.id: s for s in stub.submits}
    assert by_id[first].state == GenerationState.FAULTED
    assert by_id[first].gen_metadata[0].ref == "out of memory at 128x128 on cpu"
    assert by_id[second].state == GenerationState.OK


def test_malformed_job_is_faulted_and_the_worker_goes_on(
    stub: StubHorde, start_loop: StartLoop
) -> None:
    broken = stub.add_job(payload={"width": "wide"})  # a horde bug: not a number
    no_payload = stub.add_job()
    stub.jobs[-1]["payload"] = None
    good = stub.add_job()
    start_loop(stub.url)
    stub.wait_for(lambda: len(stub.submits) == 3)
    by_id = {s.id: s for s in stub.submits}
    assert by_id[broken].state == GenerationState.FAULTED
    assert "payload.width" in (by_id[broken].gen_metadata[0].ref or "")
    assert by_id[no_payload].state == GenerationState.FAULTED
    assert by_id[good].state == GenerationState.OK


def test_stop_while_the_link_hangs_in_a_pop_exits_promptly(start_loop: StartLoop) -> None:
    import socket
    import time

    # A "horde" that accepts connections and never answers.
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(8)
        port = hung.getsockname()[1]
        running = start_loop(f"http://127.0.0.1:{port}", read_timeout=120.0)
        deadline = time.monotonic() + 10
        connection = None
        while connection is None:
            hung.settimeout(max(0.01, deadline - time.monotonic()))
            connection, _ = hung.accept()  # the worker's pop is now in flight
        started = time.monotonic()
        running.stop(timeout=30)
        assert time.monotonic() - started < 10, "waited for the pop's read timeout"
        connection.close()


def test_a_retried_pop_carries_the_same_nonce_and_a_new_pop_a_new_one(
    stub: StubHorde, start_loop: StartLoop
) -> None:
    """The horde hands the same job back to a pop repeated with the nonce of one whose reply was
    lost (docs/protocol.md): the worker must keep the nonce across the retries of one pop."""
    stub.fail_next("/generate/pop", "drop")  # taken by the horde, reply lost on the way
    running = start_loop(stub.url)
    stub.wait_for(lambda: len(stub.pops) >= 3)
    running.stop()
    first, retry, later = stub.pops[:3]
    assert first.nonce and first.nonce == retry.nonce, "the retry must repeat the nonce"
    assert later.nonce and later.nonce != first.nonce, "a new pop gets a new nonce"


def test_a_job_that_cannot_be_submitted_within_its_ttl_is_stopped_and_faulted(
    stub: StubHorde, start_loop: StartLoop
) -> None:
    """400 steps at 128x128 take seconds here; a 1 s ttl (no margin) cannot hold them: the
    job is stopped at once and answered faulted, and the worker takes the next job."""
    late = stub.add_job(steps=400, width=128, height=128, ttl=1)
    follow_up = stub.add_job()
    running = start_loop(stub.url, ttl_margin=0)
    stub.wait_for(lambda: len(stub.submits) == 2)
    stopped, served = stub.submits
    assert (stopped.id, stopped.state) == (late, GenerationState.FAULTED)
    assert "within its ttl of 1s" in (stopped.gen_metadata[0].ref or "")
    assert max((p.step for p in stub.progress if p.id == late), default=0) < 400
    assert (served.id, served.state) == (follow_up, GenerationState.OK)
    running.stop()
    assert running.loop.stats.jobs_faulted == 1 and running.loop.stats.jobs_ok == 1
