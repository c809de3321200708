"""rq's own tools tell the truth about a live horde on the real Redis: `rq info` and rq's
registries count waiting, running, finished, failed and cancelled images as the horde does."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis import Redis
from rq.queue import Queue
from rq.registry import CanceledJobRegistry

from tests.api.conftest import WORKER_MODEL
from tests.helpers.live_horde import start_horde

pytestmark = [pytest.mark.e2e, pytest.mark.redis, pytest.mark.postgres]
RQ = Path(sys.executable).parent / "rq"


def _post(api: str, path: str, key: str, body: dict[str, Any]) -> dict[str, Any]:
    reply = httpx.post(f"{api}{path}", json=body, headers={"apikey": key}, timeout=10)
    assert reply.status_code in (200, 202), reply.text
    return dict(reply.json())


def _request(api: str, key: str, n: int, prompt: str) -> str:
    body = {"prompt": prompt, "models": [WORKER_MODEL], "params": {"n": n, "steps": 4}}
    body["params"].update(width=64, height=64)
    return str(_post(api, "/generate/async", key, body)["id"])


def _pop(api: str, key: str) -> dict[str, Any]:
    return _post(
        api, "/generate/pop", key, {"name": "rq-watched", "models": [WORKER_MODEL], "amount": 1}
    )


def _rq_info(redis_url: str, queue: str) -> tuple[int, int, int, int]:
    """(waiting, executing, finished, failed) of `queue`, as `rq info --raw` prints them."""
    shown = subprocess.run(
        [str(RQ), "info", "--url", redis_url, "--raw", "--only-queues", queue],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    found = re.search(
        rf"queue {re.escape(queue)} (\d+), (\d+) executing, (\d+) finished, (\d+) failed", shown
    )
    assert found, shown
    waiting, executing, finished, failed = map(int, found.groups())
    return waiting, executing, finished, failed


def test_rq_info_counts_waiting_running_finished_failed_and_cancelled_images(
    tmp_path: Path, redis_url: str, redis_prefix: str, postgres_schema_url: str
) -> None:
    with start_horde(
        tmp_path,
        redis_url=redis_url,
        redis_prefix=redis_prefix,
        database_url=postgres_schema_url,
        extra_env={"HORDE_MAX_FAULTS_PER_REQUEST": "0"},
    ) as horde:
        worker_key = horde.create_user("volunteer")
        # 2000 kudos: the few this test spends keep every request in one kudos band (12: at least
        # 1000), however soon the janitor settles them.
        client_key = horde.create_user("artist", kudos=2000)
        api = horde.api
        _pop(api, worker_key)  # the worker announces its model: it gets a queue of its own
        done = _request(api, client_key, 2, "finished")
        for _ in range(2):
            job = _pop(api, worker_key)
            _post(api, "/generate/submit", worker_key, {"id": job["id"], "generation": _webp()})
        failing = _request(api, client_key, 2, "failing")
        job = _pop(api, worker_key)
        # One fault is too many here (HORDE_MAX_FAULTS_PER_REQUEST=0): the request fails, its
        # other image too.
        _post(
            api,
            "/generate/submit",
            worker_key,
            {"id": job["id"], "state": "faulted", "generation": ""},
        )
        cancelled = _request(api, client_key, 3, "cancelled")
        assert httpx.delete(f"{api}/generate/status/{cancelled}", timeout=10).status_code == 200
        _request(api, client_key, 3, "waiting")
        _pop(api, worker_key)  # one of them runs

        queue = f"{redis_prefix}q|1.12|0|t|0|{WORKER_MODEL}"  # registered, 1000+ kudos
        assert _rq_info(redis_url, queue) == (2, 1, 2, 2)
        redis = Redis.from_url(redis_url)
        rq_queue = Queue(queue, connection=redis)
        assert CanceledJobRegistry(queue=rq_queue).count == 3
        statuses = sorted(job.get_status().value for job in rq_queue.get_jobs())
        assert statuses == ["queued", "queued"]
        for request_id in (done, failing):
            assert httpx.get(f"{api}/generate/check/{request_id}", timeout=10).json()["done"]


def _webp() -> str:
    import base64
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (64, 64), (9, 9, 9)).save(out, format="WEBP")
    return base64.b64encode(out.getvalue()).decode()
