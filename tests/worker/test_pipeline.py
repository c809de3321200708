"""The slot pipeline (worker/pipeline.py) against the loopback stub horde: the next job is popped
while the current one generates, and a job popped ahead that cannot start is answered faulted
at once, never dropped. The real-horde kill tests are tests/faults/test_pop_ahead_kills.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from horde_protocol import GenerationState, PopPayload, PopReply
from horde_worker.pace import Pace
from tests.worker.conftest import RunningLoop
from tests.worker.stub_horde import StubHorde

StartLoop = Callable[..., RunningLoop]


def _states(stub: StubHorde) -> dict[str, GenerationState]:
    return {submit.id: submit.state for submit in stub.submits}


def test_the_next_job_is_popped_while_the_current_one_generates(
    stub: StubHorde, start_loop: StartLoop
) -> None:
    first = stub.add_job(steps=200, width=128, height=128)
    second = stub.add_job(seed="8")
    running = start_loop(stub.url)
    stub.wait_for(lambda: len(stub.handed_out) == 2)
    # Both jobs are out, and the first one has not been answered yet: it still generates.
    assert stub.handed_out == [first, second]
    assert not stub.submits_for(first)
    stub.wait_for(lambda: len(stub.submits) == 2, timeout=120)
    assert _states(stub) == {first: GenerationState.OK, second: GenerationState.OK}
    running.stop()
    assert running.loop.stats.jobs_ok == 2


def test_a_stop_hands_back_the_job_popped_ahead_and_finishes_the_current_one(
    stub: StubHorde, start_loop: StartLoop
) -> None:
    current = stub.add_job(steps=200, width=128, height=128)
    ahead = stub.add_job(seed="8")
    running = start_loop(stub.url)
    stub.wait_for(lambda: len(stub.handed_out) == 2)
    running.stop(timeout=120)
    assert _states(stub) == {current: GenerationState.OK, ahead: GenerationState.FAULTED}
    [returned] = stub.submits_for(ahead)
    assert returned.gen_metadata[0].ref == "the worker is shutting down"
    assert returned.unstarted, "handed back unstarted: no restart of its request on our horde"
    stats = running.loop.stats
    assert (stats.jobs_ok, stats.jobs_returned, stats.jobs_faulted) == (1, 1, 0)
    assert len(stub.pops) == 2, "no pop after the stop request"


def test_a_job_popped_ahead_whose_ttl_cannot_be_honoured_is_handed_back_at_once(
    stub: StubHorde, start_loop: StartLoop
) -> None:
    # The first job gives the slot its pace; the second, long, is popped ahead during it; the
    # third, popped ahead during the second, has a ttl far shorter than what is left of it.
    first = stub.add_job(steps=20, width=128, height=128)
    second = stub.add_job(steps=300, width=128, height=128, seed="8")
    third = stub.add_job(steps=20, width=128, height=128, seed="9", ttl=1)
    running = start_loop(stub.url)
    stub.wait_for(lambda: bool(stub.submits_for(third)), timeout=120)
    # Handed back while the second job still generates: not held until it ends.
    assert not stub.submits_for(second)
    [returned] = stub.submits_for(third)
    assert returned.state == GenerationState.FAULTED
    assert returned.gen_metadata[0].ref.startswith("popped ahead, but its ttl of 1s")
    stub.wait_for(lambda: len(stub.submits) == 3, timeout=120)
    assert _states(stub)[first] == _states(stub)[second] == GenerationState.OK
    running.stop()
    assert running.loop.stats.jobs_returned == 1


def test_pop_ahead_can_be_switched_off(stub: StubHorde, start_loop: StartLoop) -> None:
    first = stub.add_job(steps=100, width=128, height=128)
    stub.add_job(seed="8")
    running = start_loop(stub.url, pop_ahead=False)
    stub.wait_for(lambda: bool(stub.submits_for(first)), timeout=120)
    # The second job was taken only once the first was generated.
    assert stub.handed_out[0] == first
    stub.wait_for(lambda: len(stub.submits) == 2, timeout=120)
    running.stop()
    assert running.loop.stats.jobs_returned == 0


def _reply(**payload: Any) -> PopReply:
    fields = {"prompt": "x", "ddim_steps": 20, "width": 512, "height": 512, **payload}
    return PopReply(id="j", ids=["j", "k"], model="m", payload=PopPayload(**fields))


def test_the_pace_foresees_a_job_from_recent_generations() -> None:
    pace = Pace()
    assert pace.estimate(_reply()) is None  # no generation yet: no guess
    pace.add(seconds=2.0, width=1000, height=1000, steps_run=20)  # 0.1 s per megapixel-step
    two_images = 2 * 0.262144 * 20 * 0.1
    assert abs((pace.estimate(_reply()) or 0) - two_images) < 1e-9
    assert abs((pace.estimate(_reply(hires_fix=True)) or 0) - 2 * two_images) < 1e-9
    pace.add(seconds=4.0, width=1000, height=1000, steps_run=20)  # slower now: it follows
    assert 0.1 < (pace.seconds_per_mps or 0) < 0.2
