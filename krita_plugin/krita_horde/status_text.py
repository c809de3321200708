"""The docker's status line for a job, in plain words."""

from __future__ import annotations

from .job import CANCELLED, DONE, FAILED, FETCHING, PROCESSING, QUEUED, SUBMITTING, JobStatus


def describe(status: JobStatus) -> str:
    state = status.state
    if state == SUBMITTING:
        return "Sending the request to the horde…"
    if state == QUEUED:
        if status.message.startswith("no worker"):
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
    if "retrying" in status.message:
        return f"{text} ({status.message})"
    return text


def progress_percent(status: JobStatus) -> int | None:
    """0..100 for the progress bar, or None when the horde gives no figure (busy bar)."""
    if status.state == DONE:
        return 100
    if status.progress is not None:
        return round(status.progress * 100)
    if status.total and status.finished:
        return round(100 * status.finished / status.total)
    if status.state in (SUBMITTING, QUEUED):
        return 0
    return None
