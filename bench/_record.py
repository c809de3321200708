"""Key figures of a benchmark, for the summary table of bench/run_all.py.

Each benchmark prints its own detailed table; `record` also appends its headline figures as JSON
lines to the file named by BENCH_RESULTS (set by run_all.py), so one command can end with one
table of every figure.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def record(bench: str, figure: str, value: float, unit: str, target: str = "") -> None:
    path = os.environ.get("BENCH_RESULTS")
    if not path:
        return
    row = {"bench": bench, "figure": figure, "value": value, "unit": unit, "target": target}
    with Path(path).open("a", encoding="utf-8") as out:
        out.write(json.dumps(row) + "\n")
