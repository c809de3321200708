"""Prompt filters for the lifecycle benchmark's --filters comparison: made-up filters shaped like
real ones, added through the API, and the in-process cost of one check (RE2 against Python re)."""

from __future__ import annotations

import random
import re
import string
import time
from collections import defaultdict
from collections.abc import Callable

import httpx
from _common import median

from horde_api.prompt_filters import CompiledFilters, FilterType

FILTER_TYPES = (
    FilterType.MINORS,
    FilterType.MINORS_OTHER,
    FilterType.SEXUAL,
    FilterType.EXPLICIT_WORDS,
)


def bench_filters(count: int) -> list[tuple[int, str]]:
    """`count` filters shaped like real ones: word-bounded alternations of made-up words."""
    rng = random.Random(count)

    def word() -> str:
        return "".join(rng.choices(string.ascii_lowercase, k=rng.randint(5, 9)))

    return [
        (
            FILTER_TYPES[i % len(FILTER_TYPES)],
            r"\b(?:" + "|".join(word() for _ in range(4)) + r")s?\b",
        )
        for i in range(count)
    ]


def add_filters(api: str, key: str, count: int) -> None:
    with httpx.Client(base_url=api, headers={"apikey": key}, timeout=30) as client:
        for filter_type, regex in bench_filters(count):
            reply = client.put("/filters", json={"regex": regex, "filter_type": filter_type})
            reply.raise_for_status()


BENCH_PROMPT = "a watercolor painting of a lighthouse on a cliff at dusk, seagulls, " * 3


def _microseconds(check: Callable[[], object], calls: int) -> float:
    """One call of `check`, in µs (median of 5 passes)."""
    passes = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(calls):
            check()
        passes.append((time.perf_counter() - started) / calls * 1e6)
    return median(passes)


def filter_check_microseconds(count: int) -> tuple[float, float]:
    """One prompt checked against `count` filters in-process: the horde's RE2 filters, and the
    same filters as Python `re` alternations (the engine RE2 replaced), side by side."""
    filters = bench_filters(count)
    compiled = CompiledFilters(filters)
    by_type: dict[int, list[str]] = defaultdict(list)
    for filter_type, regex in filters:
        by_type[filter_type].append(f"(?:{regex})")
    python_re = [re.compile("|".join(parts), re.IGNORECASE) for parts in by_type.values()]
    re2_us = _microseconds(lambda: compiled.check(BENCH_PROMPT, nsfw=False), 20_000)
    re_us = _microseconds(lambda: [p.search(BENCH_PROMPT) for p in python_re], 500)
    return re2_us, re_us
