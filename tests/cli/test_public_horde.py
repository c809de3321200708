"""The CLI against a horde that behaves as the public AI Horde does (issue 23's CLI rows):
`NoAvailableWorker` and `is_possible: false` are shown, checks are paced when `?wait=` is not
honoured, 429 waits for Retry-After, a timeout cancels and keeps what finished, and dream is
refused before anything is sent."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

from tests.cli.conftest import CONFIG, make_cli
from tests.cli.public_stub import StubBehaviour, public_horde_stub

KEY = "x" * 22
# check_wait 10 s asked, never honoured; checks then every 0.3 s.
STUB_CONFIG = CONFIG.replace("check_interval = 0.2", "check_interval = 0.3")


def test_generate_shows_warnings_paces_checks_and_honours_429(tmp_path: Path) -> None:
    behaviour = StubBehaviour(checks_until_done=5, impossible_checks=1, refuse_first_async=True)
    with public_horde_stub(behaviour) as stub:
        cli = make_cli(tmp_path, stub.url, KEY, STUB_CONFIG)
        result = cli.run("generate", "a red boat", "-n", "2")
        asyncs = stub.calls("POST", "/generate/async")
        checks = stub.calls("GET", "/generate/check/")
    assert result.returncode == 0, result.stderr
    # 429: one retry, after the second Retry-After asked for, and the user is told.
    assert len(asyncs) == 2 and asyncs[1][0] - asyncs[0][0] >= 0.95
    assert "retrying in 1 s" in result.stderr
    # The horde's own words reach the user.
    assert "No available workers can fulfill this request" in result.stderr
    assert "(NoAvailableWorker)" in result.stderr
    assert "is_possible: false" in result.stderr
    # 6 checks, not thousands: once a reply came back at once unchanged, they are spaced.
    assert len(checks) == 6
    gaps = [later[0] - earlier[0] for earlier, later in pairwise(checks)]
    assert all(gap >= 0.28 for gap in gaps[1:]), gaps
    # Both images saved, named by the seeds the horde reports; the censored one is flagged.
    names = sorted(Path(line).name for line in result.stdout.split())
    assert [name.rsplit("_seed", 1)[1] for name in names] == ["3829382.png", "3829383.png"]
    assert "censored" in result.stderr


def test_a_timeout_cancels_the_request_and_keeps_what_finished(tmp_path: Path) -> None:
    with public_horde_stub(StubBehaviour(checks_until_done=10**6)) as stub:
        cli = make_cli(tmp_path, stub.url, KEY, STUB_CONFIG)
        result = cli.run("--timeout", "1", "generate", "a red boat", "-n", "2")
        cancels = stub.calls("DELETE", "/generate/status/")
    assert len(cancels) == 1
    assert "not done after 1 s: cancelled" in result.stderr
    # The cancel's reply carried the finished images: they are saved, not lost.
    assert result.returncode == 0 and len(result.stdout.split()) == 2


def test_dream_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    with public_horde_stub(StubBehaviour()) as stub:
        cli = make_cli(tmp_path, stub.url, KEY, STUB_CONFIG)
        result = cli.run("dream", "a forest", "--frames", "3")
        animate = cli.run("animate", "a", "b", "--frames", "3")
        asyncs = stub.calls("POST", "/generate/async")
    assert result.returncode == 1 and animate.returncode == 1
    assert "needs the 'interpolation' extension" in result.stderr
    assert "lists no extensions" in result.stderr and "public AI Horde" in result.stderr
    assert asyncs == []
