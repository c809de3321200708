"""Seeds as the public horde derives them from a request's `seed` text.

One rule for the horde and the worker: text of decimal digits is that number (digits of any
script, as Python's `int` reads them); any other text is its UTF-8 bytes read as a little-endian
integer; a number of 2**32 or more is shifted right by 32 bits until it fits. So "-5" is text,
not a negative number, exactly as on the public horde, and a seed string gives the same image
there and here.
"""

from __future__ import annotations

import secrets

SEED_MODULUS = 2**32


def fold(value: int) -> int:
    """A non-negative integer brought below 2**32 the public horde's way (shifting, not modulo)."""
    value = abs(value)
    while value >= SEED_MODULUS:
        value >>= 32
    return value


def seed_to_int(seed: str | int) -> int:
    """The integer seed of a non-empty seed text (or an int, as workers may receive)."""
    if isinstance(seed, int) and not isinstance(seed, bool):
        return fold(seed)
    text = str(seed)
    if text.isdecimal():
        return fold(int(text))
    return fold(int.from_bytes(text.encode("utf-8"), "little"))


def random_seed() -> int:
    return secrets.randbelow(SEED_MODULUS)


def image_seeds(seed: str | None, n: int, variation: int | None = None) -> list[int]:
    """The seed of each of a request's n images, as the public horde hands them out.

    Without a seed every image gets its own random seed. With a seed, every image gets that same
    seed unless `seed_variation` is given; then image k gets seed + k * variation (folded).
    """
    if seed is None or seed == "":
        return [random_seed() for _ in range(n)]
    base = seed_to_int(seed)
    step = variation or 0
    return [fold(base + index * step) for index in range(n)]
