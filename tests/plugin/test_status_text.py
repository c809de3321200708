"""The status line and progress bar figures for each job state."""

from __future__ import annotations

import pytest

from krita_horde.job import JobStatus, WaitReason
from krita_horde.status_text import ProgressView, describe, progress_view

HIDDEN = ProgressView(False)


@pytest.mark.parametrize(
    ("status", "text", "bar"),
    [
        (JobStatus("submitting"), "Sending the request to the horde…", HIDDEN),
        (
            JobStatus("queued", queue_position=3, wait_time=40, message="waiting in the queue"),
            "Queued, position 3, about 40 s.",
            HIDDEN,
        ),
        (
            JobStatus("queued", warnings=["No worker online can take this request now."]),
            "Queued. Horde: No worker online can take this request now.",
            HIDDEN,
        ),
        (
            JobStatus("queued", wait_reason=WaitReason.NO_WORKER),
            "Waiting: no worker can take this request right now.",
            HIDDEN,
        ),
        (
            JobStatus("processing", progress=0.42, finished=0, total=2),
            "Generating (0/2 images done), 42%…",
            ProgressView(True, 42),
        ),
        (
            JobStatus("processing", finished=1, total=2, wait_time=9),
            "Generating (1/2 images done), about 9 s left…",
            ProgressView(True, 50),
        ),
        (JobStatus("processing", total=1), "Generating (0/1 images done)…", ProgressView(True)),
        (
            JobStatus("queued", retry_attempt=1, retry_error="lost track of the request: boom"),
            "Queued. (lost track of the request: boom; retrying, attempt 1)",
            HIDDEN,
        ),
        (JobStatus("done", message="2 image(s) received"), "Done: 2 image(s) received.", HIDDEN),
        (JobStatus("failed", message="the horde refused"), "Error: the horde refused", HIDDEN),
        (JobStatus("cancelled"), "Cancelled.", HIDDEN),
        (JobStatus("fetching"), "Downloading the images…", ProgressView(True)),
        # A message that merely reads like a reason is not one: the fields decide.
        (
            JobStatus("queued", message="no worker retrying", queue_position=1),
            "Queued, position 1.",
            HIDDEN,
        ),
    ],
)
def test_status_line_and_progress(status: JobStatus, text: str, bar: ProgressView) -> None:
    assert describe(status) == text
    assert progress_view(status) == bar
