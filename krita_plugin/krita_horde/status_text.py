"""The docker's status line and progress bar for a job, from the job's explicit fields (its
state, wait reason, retry attempt, counts) — never by reading the prose of its message."""

from __future__ import annotations

from dataclasses import dataclass

from .job import (
    CANCELLED,
    DONE,
    FAILED,
    FETCHING,
    PROCESSING,
    QUEUED,
    SUBMITTING,
    JobStatus,
    WaitReason,
)


@dataclass(frozen=True)
class ProgressView:
    """What the progress bar shows. Hidden while a job waits (the status line says why in
    words: a bar stuck at 0% says nothing) and once it ended (no "100%" after an error)."""

    visible: bool
    percent: int | None = None  # 0..100, or None for the busy indicator

    @classmethod
    def hidden(cls) -> ProgressView:
        return cls(False)


def describe(status: JobStatus) -> str:
    state = status.state
    if state == SUBMITTING:
        return "Sending the request to the horde…"
    if state == QUEUED:
        if status.wait_reason == WaitReason.NO_WORKER:
            return "Waiting: no worker can take this request right now."
        parts = ["Queued"]
        if status.queue_position:
            parts.append(f"position {status.queue_position}")
        if status.wait_time:
            parts.append(f"about {status.wait_time} s")
        text = ", ".join(parts) + "."
        if status.warnings:  # e.g. the horde saying no worker is online for this model yet
            text += f" Horde: {status.warnings[0]}"
        return _with_retry_note(text, status)
    if state == PROCESSING:
        text = "Generating"
        if status.total:
            text += f" ({status.finished}/{status.total} images done)"
        if status.progress is not None:
            text += f", {round(status.progress * 100)}%"
        elif status.wait_time:
            text += f", about {status.wait_time} s left"
        return _with_retry_note(text + "…", status)
    if state == FETCHING:
        return "Downloading the images…"
    if state == DONE:
        return f"Done: {status.message}."
    if state == FAILED:
        return f"Error: {status.message}"
    if state == CANCELLED:
        return "Cancelled."
    return status.message


def _with_retry_note(text: str, status: JobStatus) -> str:
    if status.retry_attempt:
        return f"{text} ({status.retry_error}; retrying, attempt {status.retry_attempt})"
    return text


def progress_view(status: JobStatus) -> ProgressView:
    """The bar only while images are being generated (and downloaded): a percentage from a
    horde that reports one, else the busy indicator."""
    if status.state == PROCESSING:
        if status.progress is not None:
            return ProgressView(True, round(status.progress * 100))
        if status.total and status.finished:
            return ProgressView(True, round(100 * status.finished / status.total))
        return ProgressView(True, None)
    if status.state == FETCHING:
        return ProgressView(True, None)
    return ProgressView.hidden()
