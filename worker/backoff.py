"""Exponential backoff with jitter: a faulty horde never sees a hot loop or a thundering herd."""

from __future__ import annotations

import random
from collections.abc import Callable


class Backoff:
    """Delays initial, 2×initial, 4×initial … capped at `maximum`, each scaled by a random factor
    in [0.5, 1) so that many workers cut off together do not come back in lockstep."""

    def __init__(
        self, initial: float, maximum: float, rng: Callable[[], float] = random.random
    ) -> None:
        if initial <= 0 or maximum < initial:
            raise ValueError(f"need 0 < initial <= maximum, got {initial}, {maximum}")
        self.initial = initial
        self.maximum = maximum
        self.attempts = 0
        self._rng = rng

    def next_delay(self) -> float:
        base = min(self.maximum, self.initial * (2 ** min(self.attempts, 32)))
        self.attempts += 1
        return base * (0.5 + 0.5 * self._rng())

    def reset(self) -> None:
        self.attempts = 0
