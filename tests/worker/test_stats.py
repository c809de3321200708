"""The periodic summary line: jobs done, faults, seconds per job, speed and kudos."""

from __future__ import annotations

import re

from horde_worker.stats import WorkerStats


def test_the_summary_line_has_jobs_faults_seconds_per_job_and_kudos() -> None:
    stats = WorkerStats()
    assert "s/job=0.00 it/s=0.00 kudos=0.0" in stats.summary()  # nothing done: no division
    stats.add(jobs_ok=2, jobs_generated=3, jobs_undelivered=1, steps=60, generation_seconds=7.5)
    stats.add(jobs_faulted=1, kudos=12.25)
    line = stats.summary()
    assert re.fullmatch(
        r"summary: uptime=[\d.]+min jobs ok=2 faulted=1 cancelled=0 undelivered=1 returned=0"
        r" images=0"
        r" censored=0 s/job=2.50 it/s=8.00 kudos=12.2",
        line,
    ), line
