"""Run a real `horde-worker run` process for tests (loop, fault and end-to-end layers).

`start_worker(tmp_path, horde_url, apikey, ...)` starts the worker as a subprocess serving the
tiny model, with stderr in `tmp_path/worker-<name>.log`, and yields a `LiveWorker`. Test-friendly
timings (short idle/retry delays, short timeouts) are passed first, so `extra_args` can override
any of them. The tiny model is cached across sessions in HORDE_WORKER_CACHE_DIR (default a
per-user folder under the system temp dir), so only the first run of all builds it.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEST_TIMINGS: tuple[str, ...] = (
    "--idle-initial-delay", "0.1",
    "--idle-max-delay", "0.5",
    "--retry-initial-delay", "0.2",
    "--retry-max-delay", "2",
    "--connect-timeout", "2",
    "--read-timeout", "15",
    "--progress-interval", "0.2",
)  # fmt: skip


def test_cache_dir() -> Path:
    configured = os.environ.get("HORDE_WORKER_CACHE_DIR")
    if configured:
        return Path(configured)
    return Path(tempfile.gettempdir()) / f"krita-horde-test-cache-{os.getuid()}"


class LiveWorker:
    def __init__(self, process: subprocess.Popen[bytes], log_path: Path) -> None:
        self.process = process
        self.log_path = log_path

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def wait_for_log(self, pattern: str, timeout: float = 60.0, *, after: int = 0) -> re.Match[str]:
        """Wait until a log line matches the regex `pattern` (at or past character `after`, to
        wait for a new occurrence); fails early if the worker died."""
        deadline = time.monotonic() + timeout
        compiled = re.compile(pattern)
        while True:
            match = compiled.search(self.log_text(), after)
            if match:
                return match
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"worker exited ({self.process.returncode}) before logging {pattern!r}:\n"
                    + self.log_text()[-3000:]
                )
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"worker did not log {pattern!r} in {timeout}s:\n" + self.log_text()[-3000:]
                )
            time.sleep(0.05)

    def wait_ready(self, timeout: float = 90.0) -> None:
        """Until the models are loaded and the loop is serving."""
        self.wait_for_log(r"worker \S+ serving", timeout)

    def signal(self, signum: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signum)

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM (graceful: the current job is finished and submitted) and wait for exit."""
        self.signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def kill(self) -> int:
        if self.process.poll() is None:
            self.process.kill()
        return self.process.wait(timeout=30)


@contextlib.contextmanager
def start_worker(
    tmp_path: Path,
    horde_url: str,
    apikey: str,
    *,
    name: str = "test-worker",
    models: Mapping[str, str] | None = None,
    extra_args: Sequence[str] = (),
    extra_env: Mapping[str, str] | None = None,
) -> Iterator[LiveWorker]:
    models = models if models is not None else {"krita-horde-tiny": "tiny"}
    command = [
        sys.executable,
        "-m",
        "horde_worker.cli",
        "run",
        "--horde-url",
        horde_url,
        "--name",
        name,
    ]
    for model_name, source in models.items():
        command += ["--model", f"{model_name}={source}"]
    command += [*TEST_TIMINGS, *extra_args]
    env = {key: value for key, value in os.environ.items() if not key.startswith("HORDE_WORKER_")}
    env["HORDE_WORKER_CACHE_DIR"] = str(test_cache_dir())
    # The key travels by environment, not argv: argv is visible to every local user in ps.
    env["HORDE_WORKER_API_KEY"] = apikey
    env["HF_HUB_OFFLINE"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra_env or {})
    log_path = Path(tmp_path) / f"worker-{name}.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT
        )
    worker = LiveWorker(process, log_path)
    try:
        yield worker
    finally:
        if process.poll() is None:
            worker.kill()
