"""`horde gimp-job` on its own, as the plug-in drives it: closing its stdin (the plug-in's Cancel,
or GIMP killing the plug-in) withdraws the request from the horde and ends with a clear error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.recording_proxy import RecordingProxy
from tests.gimp.conftest import CLI_CONFIG, LiveSetup

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_closing_stdin_cancels_the_request(
    tmp_path: Path, live: LiveSetup, proxy: RecordingProxy
) -> None:
    (tmp_path / "pixels.rgba").write_bytes(bytes([200, 100, 50, 255]) * 64 * 64)
    # Short long-polls: the first state comes back well before 500 steps could be done.
    (tmp_path / "cli.toml").write_text(CLI_CONFIG.replace("check_wait = 5", "check_wait = 0.5"))
    job = {
        "prompt": "a long one", "steps": 500, "model": "krita-horde-tiny", "url": proxy.url,
        "min_size": 64, "max_size": 64, "canvas": [64, 64],
        "pixels": {"path": str(tmp_path / "pixels.rgba"), "width": 64, "height": 64},
        "out_dir": str(tmp_path / "out"),
    }  # fmt: skip
    (tmp_path / "job.json").write_text(json.dumps(job))
    env = {k: v for k, v in os.environ.items() if not k.startswith("HORDE_")}
    env.update(HORDE_APIKEY=live.artist_key, HORDE_CLI_CONFIG=str(tmp_path / "cli.toml"))
    process = subprocess.Popen(
        [sys.executable, "-m", "horde_client.cli", "gimp-job", str(tmp_path / "job.json")],
        env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdin is not None and process.stdout is not None
    events = []
    for line in process.stdout:
        events.append(json.loads(line))
        # Past "submitting": the horde has the request (queued or generating).
        if events[-1]["event"] == "progress" and events[-1]["text"] != "submitting":
            break
    process.stdin.close()
    rest = process.stdout.read()  # to the end: the client exits once the cancel is done
    stderr = process.stderr.read() if process.stderr else ""
    process.wait(timeout=30)
    events += [json.loads(line) for line in rest.splitlines()]
    assert process.returncode == 1, stderr
    assert events[-1]["event"] == "error", events
    assert events[-1]["message"].startswith("cancelled: the request was withdrawn"), events
    assert not any(event["event"] == "image" for event in events)
    (submitted,) = proxy.submitted()
    assert proxy.sent("DELETE", f"/generate/status/{submitted.reply['id']}")
