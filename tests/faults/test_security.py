"""Security promises of docs/security.md, each checked against the running API over HTTP (and the
database it writes): keys at rest and in logs, revocation, who may pop/submit/progress what,
unguessable ids and result URLs, CORS, and no server-side fetch of user-supplied URLs."""

from __future__ import annotations

import hashlib
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import sqlalchemy

from horde_api.auth.keys import key_id_of
from horde_protocol import ANONYMOUS_API_KEY
from tests.faults.conftest import horde, shared_storage
from tests.faults.horde_client import HordeClient, SimWorker, wait_until
from tests.faults.images import webp_b64
from tests.helpers.tls import make_tls_files

pytestmark = pytest.mark.slow


# ---- keys at rest, in logs, revocation ------------------------------------------------------


def _database_text(database_url: str) -> str:
    """Every value of every row of every table, as one text (what an attacker with a dump sees)."""
    engine = sqlalchemy.create_engine(database_url)
    try:
        metadata = sqlalchemy.MetaData()
        metadata.reflect(engine)
        parts: list[str] = []
        with engine.connect() as conn:
            for table in metadata.sorted_tables:
                for row in conn.execute(table.select()):
                    parts.extend(str(value) for value in row)
        return "\n".join(parts)
    finally:
        engine.dispose()


def _unsalted_digests(secret: str) -> list[str]:
    return [
        hashlib.sha256(secret.encode()).hexdigest(),
        hashlib.sha512(secret.encode()).hexdigest(),
        hashlib.md5(secret.encode()).hexdigest(),
    ]


def _secret_of(apikey: str) -> str:
    """The secret part of a key: the whole key (its public id is derived from it)."""
    return apikey


def _assert_keys_only_hashed(text: str, keys: list[str]) -> None:
    for key in keys:
        secret = _secret_of(key)
        assert key not in text and secret not in text, "an API key is stored in clear"
        for digest in _unsalted_digests(secret) + _unsalted_digests(key):
            assert digest not in text, "an API key is stored as an unsalted hash"


def _cli(live: Any, *args: str) -> subprocess.CompletedProcess[str]:
    """The operator's `horde-api` CLI, with the running server's settings."""
    return subprocess.run(
        [sys.executable, "-m", "horde_api.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=live.env,
    )


def _exercise_keys(live: Any, keys: list[str], wrong_key: str) -> None:
    """Calls that carry keys, good and bad, so the logs have every chance to leak them."""
    with HordeClient(live.api, keys[0]) as client:
        client.request_id()
        client.call("GET", "/find_user")
        client.call("GET", "/find_user", apikey=wrong_key)
        client.pop("logger-test", apikey=keys[1])
        client.pop("logger-test", apikey=wrong_key)
        client.generate({"prompt": "x", "params": {"width": 65}}, apikey=keys[0])


@pytest.mark.parametrize(
    "mode",
    [
        pytest.param("embedded", id="sqlite"),
        pytest.param("shared", id="postgres", marks=[pytest.mark.redis, pytest.mark.postgres]),
    ],
)
def test_keys_are_stored_salted_and_hashed_and_never_logged(
    request: pytest.FixtureRequest, tmp_path: Path, mode: str
) -> None:
    if mode == "embedded":
        database_url = f"sqlite:///{tmp_path / 'keys.sqlite3'}"
        storage: dict[str, str] = {"database_url": database_url}
    else:
        storage = shared_storage(
            request.getfixturevalue("redis_url"),
            request.getfixturevalue("redis_prefix"),
            request.getfixturevalue("postgres_schema_url"),
        )
        database_url = storage["database_url"]
    with horde(tmp_path, **storage) as live:
        keys = [live.create_user(f"user{i}") for i in range(2)]
        wrong_key = keys[0][:-4] + "beef"
        _exercise_keys(live, keys, wrong_key)
        log = live.log_path.read_text()
    _assert_keys_only_hashed(_database_text(database_url), keys)
    for key in [*keys, wrong_key]:
        assert key not in log and _secret_of(key) not in log, "an API key was logged"


def test_revoked_key_is_refused_and_other_keys_keep_working(tmp_path: Path) -> None:
    with horde(tmp_path) as live:
        first = live.create_user("rita")
        made = _cli(live, "key", "create", "rita")
        assert made.returncode == 0, made.stderr
        second_key = made.stdout.strip().splitlines()[-1]
        assert re.fullmatch(r"[A-Za-z0-9_-]{22}", second_key), made.stdout
        listed = _cli(live, "key", "list", "rita")
        assert listed.returncode == 0, listed.stderr
        key_id = key_id_of(first)
        assert key_id in listed.stdout
        assert (
            _secret_of(first) not in listed.stdout and _secret_of(second_key) not in listed.stdout
        )
        with HordeClient(live.api, first) as client:
            assert client.call("GET", "/find_user").status_code == 200
            revoked = _cli(live, "key", "revoke", key_id)
            assert revoked.returncode == 0, revoked.stderr
            # The server may cache a key check for a moment (HORDE_KEY_CACHE_SECONDS).
            wait_until(lambda: client.call("GET", "/find_user").status_code == 401, timeout=10)
            refused = client.call("GET", "/find_user")
            assert refused.json()["rc"] == "InvalidAPIKey"
            assert client.pop("rita-worker").status_code == 401
            assert client.generate({"prompt": "x"}).status_code == 401
            assert client.call("GET", "/find_user", apikey=second_key).status_code == 200


# ---- who may do what ---------------------------------------------------------------------


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Any]:
    with horde(tmp_path) as server:
        yield server


def test_anonymous_and_unknown_keys_cannot_run_a_worker(live: Any) -> None:
    with HordeClient(live.api) as client:
        request_id = client.request_id()  # anonymous may request…
        anonymous = client.pop("anon-worker", apikey=ANONYMOUS_API_KEY)
        assert anonymous.status_code in (401, 403), anonymous.text
        assert anonymous.json()["rc"] in ("AnonForbidden", "InvalidAPIKey", "Forbidden")
        for bad in ("", "not-a-key", "A" * 22, "kh_000000000000_" + "0" * 32, "x" * 5000):
            reply = client.pop("bad-key-worker", apikey=bad)
            assert reply.status_code in (401, 403), (bad[:20], reply.text)
            assert reply.json()["rc"]
        # …and the refused pops handed out nothing: the job is still waiting.
        check = client.check(request_id).json()
        assert (check["waiting"], check["processing"]) == (1, 0), check


def test_public_user_details_need_no_key_and_show_only_public_fields(live: Any) -> None:
    """`GET /users/{id}` is public, as on the AI Horde: it must never grow a private field."""
    apikey = live.create_user("alice")
    with HordeClient(live.api, apikey) as client:
        user_id = client.call("GET", "/find_user").json()["id"]
    reply = httpx.get(f"{live.api}/users/{user_id}", timeout=10)  # no apikey header at all
    assert reply.status_code == 200, reply.text
    details = reply.json()
    # The public horde's public fields (docs/protocol.md lists what is left out and why).
    assert set(details) == {
        "username",
        "id",
        "kudos",
        "kudos_details",
        "usage",
        "contributions",
        "records",
        "concurrency",
        "worker_invited",
        "moderator",
        "trusted",
        "flagged",
        "pseudonymous",
        "service",
        "education",
        "account_age",
        "worker_ids",
        "worker_count",
    }
    assert (details["username"], details["id"]) == (f"alice#{user_id}", user_id)
    assert key_id_of(apikey) not in reply.text and apikey not in reply.text


def test_a_worker_cannot_touch_another_users_job_nor_take_its_name(live: Any) -> None:
    client_key = live.create_user("alice")
    owner_key = live.create_user("wendy")
    thief_key = live.create_user("eve")
    with HordeClient(live.api, client_key) as client:
        request_id = client.request_id()
        popped = client.pop("wendy-gpu", apikey=owner_key).json()
        job = popped["id"]
        assert job
        # Eve's worker cannot register Wendy's worker name.
        stolen_name = client.pop("wendy-gpu", apikey=thief_key)
        assert stolen_name.status_code in (401, 403), stolen_name.text
        assert stolen_name.json()["rc"] == "WrongCredentials"
        # Nor submit or report progress for Wendy's job.
        submit = client.submit(job, apikey=thief_key)
        assert submit.status_code in (403, 404), submit.text
        assert submit.json()["rc"]
        progress_url = popped.get("progress_url") or f"{live.api}/generate/progress"
        progress = client.http.post(
            progress_url,
            headers={"apikey": thief_key},
            json={"id": job, "step": 1, "total": 2},
        )
        assert progress.status_code in (403, 404), progress.text
        # Nor upload its image, if the pop offered an upload URL.
        if popped.get("r2_upload"):
            upload = client.http.put(
                popped["r2_upload"] + "x",
                content=b"RIFF0000WEBP",
                headers={"apikey": thief_key},
            )
            assert upload.status_code in (400, 401, 403, 404), upload.text
        # The rightful worker still delivers; the request holds only its image.
        good = client.submit(job, apikey=owner_key)
        assert good.status_code == 200, good.text
        status = client.wait_done(request_id, timeout=30)
        assert [g["worker_name"] for g in status["generations"]] == ["wendy-gpu"]


def test_request_and_job_ids_are_random(live: Any) -> None:
    key = live.create_user("alice")
    worker_key = live.create_user("wendy")
    with HordeClient(live.api, key) as client:
        request_ids = [client.request_id() for _ in range(20)]
        job_ids = [client.pop("ids-worker", apikey=worker_key).json()["id"] for _ in range(5)]
    for ids in (request_ids, job_ids):
        assert len(set(ids)) == len(ids)
        for value in ids:
            assert not value.isdigit(), f"sequential-looking id {value}"
            # ≥ 122 random bits as hex/UUID/base64 text is at least 22 characters.
            assert len(value.replace("-", "")) >= 22, value
        # No shared prefix beyond chance: ids are not counters in disguise.
        assert _common_prefix_length(ids) <= 3, ids[:3]


def _common_prefix_length(values: list[str]) -> int:
    length = 0
    while all(len(v) > length and v[length] == values[0][length] for v in values):
        length += 1
    return length


def test_unknown_ids_are_404(live: Any) -> None:
    with HordeClient(live.api) as client:
        for unknown in ("00000000-0000-0000-0000-000000000000", "nope", "a" * 40):
            for reply in (client.check(unknown), client.status(unknown), client.cancel(unknown)):
                assert reply.status_code == 404, reply.text
                assert reply.json()["rc"] == "NotFound"


# ---- result URLs ---------------------------------------------------------------------------

TRAVERSALS = [
    "../",
    "..%2f",
    "%2e%2e/",
    "%2e%2e%2f",
    "%252e%252e%252f",
    "..%5c",
    "..\\",
    "....//",
    "%c0%ae%c0%ae/",
    "..;/",
]
SENSITIVE = [b"SQLite format 3", b"root:x:0:0", b"HORDE_"]


def test_result_urls_are_unguessable_and_not_traversable(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'results.sqlite3'}"
    # Over TLS, as result links are only handed out over https.
    tls = make_tls_files(tmp_path / "tls")
    with horde(tmp_path, database_url=database_url, tls=tls) as live:
        key = live.create_user("alice")
        worker_key = live.create_user("wendy")
        with HordeClient(live.api, key, verify=live.verify) as client:
            request_id = client.request_id(r2=True)
            with SimWorker(live.api, worker_key, "wendy-1", verify=live.verify):
                status = client.wait_done(request_id, timeout=30)
            url = status["generations"][0]["img"]
            assert url.startswith("https://"), "r2=true over TLS should give a link"
            fetched = httpx.get(url, timeout=10, verify=live.verify)
            assert fetched.status_code == 200
            assert fetched.content[:4] == b"RIFF" and fetched.content[8:12] == b"WEBP"

            parts = urlsplit(url)
            segments = [s for s in parts.path.split("/") if s]
            assert max(len(s.split(".")[0]) for s in segments) >= 22, "no unguessable part"
            base = f"{parts.scheme}://{parts.netloc}"
            parent = base + "/" + "/".join(segments[:-1]) + "/"
            probes = [parent, parent + "x" + segments[-1][1:], url + "/.."]
            for traversal in TRAVERSALS:
                for depth in (1, 3, 8):
                    probes.append(parent + traversal * depth + "etc/passwd")
                    probes.append(parent + traversal * depth + "horde.sqlite3")
                    probes.append(parent + traversal * depth + "results.sqlite3")
            with httpx.Client(timeout=10, verify=live.verify) as raw:
                for probe in probes:
                    reply = raw.get(probe)
                    assert reply.status_code in (400, 403, 404, 405), (probe, reply.status_code)
                    for marker in SENSITIVE:
                        assert marker not in reply.content, (probe, marker)
            assert client.call("GET", "/status/heartbeat").status_code == 200


# ---- CORS, outbound fetches ----------------------------------------------------------------


def test_cors_is_off_by_default(live: Any) -> None:
    origin = "https://evil.example"
    with httpx.Client(timeout=10) as raw:
        preflight = raw.options(
            f"{live.api}/generate/async",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "apikey, content-type",
            },
        )
        simple = raw.get(f"{live.api}/status/heartbeat", headers={"Origin": origin})
    for reply in (preflight, simple):
        assert "access-control-allow-origin" not in reply.headers, dict(reply.headers)
        assert "access-control-allow-credentials" not in reply.headers


class _Listener:
    """A TCP listener that only counts who connects to it."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


def test_the_server_never_fetches_user_supplied_urls(live: Any) -> None:
    listener = _Listener()
    try:
        key = live.create_user("alice")
        worker_key = live.create_user("wendy")
        target = f"http://127.0.0.1:{listener.port}"
        with HordeClient(live.api, key) as client:
            for field in ("source_image", "source_mask"):
                body: dict[str, Any] = {
                    "prompt": "fetch this",
                    "params": {"width": 64, "height": 64, "steps": 1},
                    "source_image": webp_b64(64, 64),
                    "source_processing": "inpainting",
                    "source_mask": webp_b64(64, 64),
                }
                body[field] = f"{target}/{field}.png"
                reply = client.generate(body)
                assert reply.status_code == 400, reply.text
                assert reply.json()["rc"]
            request_id = client.request_id(webhook=f"{target}/hook")
            with SimWorker(live.api, worker_key, "wendy-1"):
                client.wait_done(request_id, timeout=30)
            # Give a webhook call (if any were made) the time it would need to arrive.
            threading.Event().wait(1.0)
        assert listener.connections == 0, "the server connected to a user-supplied URL"
    finally:
        listener.close()
