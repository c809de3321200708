"""Retry delays grow exponentially, are capped, jittered, and reset."""

from __future__ import annotations

import pytest

from horde_worker.backoff import Backoff


def test_delays_double_up_to_the_cap_with_jitter_in_half_to_full() -> None:
    high = Backoff(1.0, 8.0, rng=lambda: 0.999999)
    assert [round(high.next_delay(), 3) for _ in range(6)] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    low = Backoff(1.0, 8.0, rng=lambda: 0.0)
    assert [low.next_delay() for _ in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    low.reset()
    assert low.next_delay() == 0.5


def test_never_zero_even_after_many_attempts() -> None:
    backoff = Backoff(0.1, 2.0)
    delays = [backoff.next_delay() for _ in range(200)]
    assert min(delays) >= 0.05 and max(delays) <= 2.0


def test_bad_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="need 0 < initial <= maximum"):
        Backoff(5.0, 1.0)
