"""Checks are paced when the horde does not long-poll (issue 23: 185 794 checks in 300 s)."""

from __future__ import annotations

from horde_client.pacing import MIN_GAP_SECONDS, CheckPacer


def test_a_horde_that_ignores_wait_is_checked_every_interval() -> None:
    pacer = CheckPacer(wait=20, interval=2.0)
    # First reply: at once, but it is news (nothing was known before).
    assert pacer.pause_after(changed=True, seconds_taken=0.05) == MIN_GAP_SECONDS
    # Again at once and nothing changed: `wait` was not honoured.
    assert pacer.pause_after(changed=False, seconds_taken=0.05) == 1.95
    assert pacer.honoured is False
    # From then on every check is spaced, changed or not.
    assert pacer.pause_after(changed=True, seconds_taken=0.5) == 1.5
    assert pacer.pause_after(changed=False, seconds_taken=3.0) == 0.0


def test_a_long_polling_horde_is_asked_again_at_once() -> None:
    pacer = CheckPacer(wait=20, interval=2.0)
    assert pacer.pause_after(changed=False, seconds_taken=20.0) == MIN_GAP_SECONDS
    assert pacer.honoured is True
    # A reply that came back early because the request changed is what long-poll is for.
    assert pacer.pause_after(changed=True, seconds_taken=0.1) == MIN_GAP_SECONDS
    assert pacer.honoured is True


def test_a_short_wait_still_tells_at_once_from_waited() -> None:
    pacer = CheckPacer(wait=1.0, interval=2.0)
    assert pacer.pause_after(changed=False, seconds_taken=0.9) == MIN_GAP_SECONDS
    assert pacer.honoured is True
