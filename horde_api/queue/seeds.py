"""Seeds of the images of a request: the public horde takes text and hashes what is not a number."""

from __future__ import annotations

import hashlib
import secrets

SEED_MODULO = 2**32


def base_seed(seed: str | None) -> int | None:
    if seed is None or not seed.strip():
        return None
    text = seed.strip()
    if text.lstrip("-").isdigit():
        return int(text) % SEED_MODULO
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")


def image_seeds(seed: str | None, n: int) -> list[int]:
    """Seed of each of the n images: consecutive from the given one, else random each."""
    base = base_seed(seed)
    if base is None:
        return [secrets.randbelow(SEED_MODULO) for _ in range(n)]
    return [(base + i) % SEED_MODULO for i in range(n)]
