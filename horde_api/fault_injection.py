"""Test-only fault points. Inert unless the test suite sets their environment variable.

`HORDE_TEST_CRASH_AFTER_POP=<worker name>`: the API process exits at once after committing a
pop of that worker, before the reply leaves — the fault the pickup window exists for (a
process killed between Redis's commit and the reply). Nothing else reads it; an operator never
sets it.
"""

from __future__ import annotations

import os

_CRASH_AFTER_POP = os.environ.get("HORDE_TEST_CRASH_AFTER_POP", "")


def crash_after_pop_commit(worker_name: str) -> None:
    if _CRASH_AFTER_POP and worker_name == _CRASH_AFTER_POP:
        os._exit(70)
