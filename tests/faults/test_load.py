"""Bounded load on loopback: nothing lost, nothing duplicated, every request final; and one key's
flood answered 429 while another key's requests still go through. The figures come from
bench/bench_load.py, not from here: these tests assert correctness, never speed."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.faults.conftest import STORAGE_MODES, horde, storage_for
from tests.faults.horde_client import HordeClient, SimWorker
from tests.faults.load import run_load
from tests.faults.test_leases import assert_complete

pytestmark = pytest.mark.slow

# Rate-limit tests count in long windows (epoch-aligned, like the default minute), so a test's
# calls almost always fall in one; the bounds count the windows a test really spanned, so a
# rollover mid-test cannot flip an assertion.
RATE_WINDOW_SECONDS = 3600


def _windows_spanned(started: float, ended: float) -> int:
    return int(ended // RATE_WINDOW_SECONDS) - int(started // RATE_WINDOW_SECONDS) + 1


# Limits out of the way: this load is legitimate traffic from a handful of keys on one IP.
UNLIMITED = {
    "HORDE_RATE_LIMIT_PER_KEY_PER_MINUTE": "1000000",
    "HORDE_RATE_LIMIT_PER_IP_PER_MINUTE": "1000000",
}


@pytest.mark.parametrize("mode", STORAGE_MODES)
def test_bounded_load_loses_and_duplicates_nothing(
    request: pytest.FixtureRequest, tmp_path: Path, mode: str
) -> None:
    with horde(tmp_path, extra_env=UNLIMITED, **storage_for(request, mode)) as live:
        client_keys = [live.create_user(f"client{i}") for i in range(2)]
        worker_key = live.create_user("workers")
        report = asyncio.run(
            run_load(
                live.api,
                client_keys,
                worker_key,
                clients=8,
                workers=4,
                seconds=3,
                n_per_request=2,
                drain_timeout=60,
            )
        )
    print(report.table())
    assert report.queued > 0
    assert report.lost == [], report.table()
    assert report.duplicated_images == [], report.table()
    assert report.wrong_image_count == [], report.table()
    assert report.faulted == 0, report.table()
    assert report.done == report.queued, report.table()
    assert report.submitted == 2 * report.queued, report.table()
    assert not report.errors, report.table()


def test_flood_from_one_key_is_limited_while_another_key_completes(tmp_path: Path) -> None:
    env = {
        "HORDE_RATE_LIMIT_PER_KEY_PER_MINUTE": "20",
        "HORDE_RATE_LIMIT_PER_IP_PER_MINUTE": "1000000",
        "HORDE_RATE_LIMIT_WINDOW_SECONDS": str(RATE_WINDOW_SECONDS),
        # Out of the way even when a rollover lets 40 images in: this test is about the rate.
        "HORDE_DEFAULT_CONCURRENCY": "100",
    }
    with horde(tmp_path, extra_env=env) as live:
        flooder_key = live.create_user("flooder")
        patient_key = live.create_user("patient")
        worker_key = live.create_user("wendy")
        body = {"prompt": "flood", "params": {"width": 64, "height": 64, "steps": 1}}
        with HordeClient(live.api, flooder_key) as client:
            started = time.time()
            codes = [client.generate(body) for _ in range(60)]
            windows = _windows_spanned(started, time.time())
            assert {reply.status_code for reply in codes} <= {202, 429}
            limited = [reply for reply in codes if reply.status_code == 429]
            assert {reply.json()["rc"] for reply in limited} == {"RateLimited"}
            assert all(reply.json()["message"] for reply in limited)
            accepted = sum(reply.status_code == 202 for reply in codes)
            # Exactly the limit in one window; a rollover mid-flood lets up to one more limit in.
            assert 20 <= accepted <= 20 * windows, (accepted, windows)
            patient_ids = [client.request_id(apikey=patient_key) for _ in range(3)]
            with SimWorker(live.api, worker_key, "wendy-1"):
                for request_id in patient_ids:
                    assert_complete(client.wait_done(request_id, timeout=60), 1)
            # The flooder is still limited while the window of its flood lasts.
            again = client.generate(body).status_code
            if _windows_spanned(started, time.time()) == windows:
                assert again == 429
            else:
                assert again in (202, 429)  # a new window started: the limit starts over


def test_per_user_concurrency_limit(tmp_path: Path) -> None:
    env = {**UNLIMITED, "HORDE_DEFAULT_CONCURRENCY": "3"}
    with horde(tmp_path, extra_env=env) as live:
        key = live.create_user("busy")
        worker_key = live.create_user("wendy")
        with HordeClient(live.api, key) as client:
            waiting = [client.request_id() for _ in range(3)]
            refused = client.generate({"prompt": "one too many", "params": {"steps": 1}})
            assert refused.status_code == 429, refused.text
            assert refused.json()["rc"] == "TooManyPrompts"
            with SimWorker(live.api, worker_key, "wendy-1"):
                for request_id in waiting:
                    client.wait_done(request_id, timeout=60)
            # Finished requests no longer count.
            assert client.request_id()


def test_per_ip_rate_limit_holds_across_keys(tmp_path: Path) -> None:
    env = {
        "HORDE_RATE_LIMIT_PER_KEY_PER_MINUTE": "1000000",
        "HORDE_RATE_LIMIT_PER_IP_PER_MINUTE": "10",
        "HORDE_RATE_LIMIT_WINDOW_SECONDS": str(RATE_WINDOW_SECONDS),
    }
    with horde(tmp_path, extra_env=env) as live:
        keys = [live.create_user(f"sock{i}") for i in range(2)]
        body = {"prompt": "many keys", "params": {"width": 64, "height": 64, "steps": 1}}
        with HordeClient(live.api) as client:
            started = time.time()
            replies = [client.generate(body, apikey=keys[i % 2]) for i in range(30)]
            windows = _windows_spanned(started, time.time())
        codes = [reply.status_code for reply in replies]
        assert set(codes) <= {202, 429}, codes
        assert 10 <= codes.count(202) <= 10 * windows, (codes, windows)
        assert {r.json()["rc"] for r in replies if r.status_code == 429} == {"RateLimited"}
        assert all("IP" in r.json()["message"] for r in replies if r.status_code == 429)
