"""The status line and progress bar figures for each job state."""

from __future__ import annotations

import pytest

from krita_horde.job import JobStatus
from krita_horde.status_text import describe, progress_percent


@pytest.mark.parametrize(
    ("status", "text", "percent"),
    [
        (JobStatus("submitting"), "Sending the request to the horde…", 0),
        (
            JobStatus("queued", queue_position=3, wait_time=40, message="waiting in the queue"),
            "Queued, position 3, about 40 s.",
            0,
        ),
        (
            JobStatus("queued", warnings=["No worker online can take this request now."]),
            "Queued. Horde: No worker online can take this request now.",
            0,
        ),
        (
            JobStatus("queued", message="no worker can take this request right now"),
            "Waiting: no worker can take this request right now.",
            0,
        ),
        (
            JobStatus("processing", progress=0.42, finished=0, total=2),
            "Generating (0/2 images done), 42%…",
            42,
        ),
        (
            JobStatus("processing", finished=1, total=2, wait_time=9),
            "Generating (1/2 images done), about 9 s left…",
            50,
        ),
        (JobStatus("processing", total=1), "Generating (0/1 images done)…", None),
        (
            JobStatus("queued", message="lost track of the request: boom (retrying, attempt 1)"),
            "Queued. (lost track of the request: boom (retrying, attempt 1))",
            0,
        ),
        (JobStatus("done", message="2 image(s) received"), "Done: 2 image(s) received.", 100),
        (JobStatus("failed", message="the horde refused"), "Error: the horde refused", None),
        (JobStatus("cancelled"), "Cancelled.", None),
    ],
)
def test_status_line_and_progress(status: JobStatus, text: str, percent: int | None) -> None:
    assert describe(status) == text
    assert progress_percent(status) == percent
