"""The CLI's one error type and its kinds; `horde_client.cli` renders them in one place."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    INTERRUPTED = 130  # as a shell reports a process ended by Ctrl-C


class ClientError(Exception):
    """Something the user must hear about; the message says what was wrong and what to do."""

    exit_code = ExitCode.FAILED


class UsageError(ClientError):
    """Bad input: an argument, a setting, a file."""

    exit_code = ExitCode.USAGE


class HordeError(ClientError):
    """The horde refused or failed (`rc` as it names the error, when it sent one)."""

    def __init__(self, message: str, status: int | None = None, rc: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.rc = rc


class NoCapableWorker(ClientError):
    """The horde cannot serve what the command needs (no capable worker, or no extension)."""
