"""The job state machine over real HTTP against the scriptable stub horde (tests/plugin/
stub_horde.py): the paths a correct horde rarely or never takes — errors, garbage, drops,
slowness — plus polling, long-poll, cancel and max wait."""

from __future__ import annotations

import base64
import itertools
import logging
import shutil
import socket
import ssl
import struct
import subprocess
import time
import zlib
from collections.abc import Iterator

import pytest
from PyQt5.QtCore import QTimer
from PyQt5.QtGui import QColor, QImage
from PyQt5.QtNetwork import QSslSocket

from krita_horde.client import HordeClient
from krita_horde.images import encode_base64
from krita_horde.job import CANCELLED, DONE, FAILED, HordeJob, PollPolicy
from krita_horde.network import JsonHttp

from .stub_horde import Canned, StubHorde

FAST = PollPolicy(
    interval_s=0.05, long_poll_s=1, min_gap_s=0.01, max_errors=3, impossible_grace_s=0.3
)
PAYLOAD = {"prompt": "a fox", "params": {"width": 64, "height": 64}, "models": ["m"]}


def _image_b64(colour: QColor) -> str:
    image = QImage(64, 64, QImage.Format_RGB32)
    image.fill(colour)
    return encode_base64(image, fmt="png")


@pytest.fixture
def stub(qapp) -> Iterator[StubHorde]:
    horde = StubHorde()
    horde.state.images = [_image_b64(QColor(255, 0, 0)), _image_b64(QColor(0, 0, 255))]
    horde.start()
    yield horde
    horde.stop()


def _job(url: str, max_wait_s: float = 30, timeout_s: float = 10, key: str = "secret-key"):
    client = HordeClient(url, key, timeout_s=timeout_s)
    return HordeJob("job-1", client, PAYLOAD, max_wait_s, policy=FAST)


def _run_to_end(qtbot, job: HordeJob, timeout_ms: int = 10_000) -> None:
    job.start()
    qtbot.waitUntil(lambda: not job.is_active, timeout=timeout_ms)


def test_job_polls_until_done_and_decodes_every_image(qtbot, stub: StubHorde) -> None:
    stub.state.checks_until_done = 3
    job = _job(stub.url)
    with qtbot.waitSignal(job.finished, timeout=10_000) as finished:
        job.start()
    images = finished.args[0]
    assert [image.seed for image in images] == ["1000", "1001"]
    assert images[0].image.pixelColor(1, 1) == QColor(255, 0, 0)
    assert images[1].worker_name == "stub-worker"
    assert job.status.state == DONE
    submit = stub.calls("POST", "/api/v2/generate/async")[0]
    assert submit.body == PAYLOAD
    assert submit.headers["apikey"] == "secret-key"
    assert submit.headers["Client-Agent"].startswith("krita-horde:")
    checks = stub.calls("GET", "/api/v2/generate/check/stub-request-1")
    assert len(checks) == 3
    # A horde without the progress extension gets no long-poll parameter.
    assert all("wait=" not in call.path for call in checks)
    assert len(stub.calls("GET", "/api/v2/generate/status/")) == 1


def test_long_poll_and_progress_on_a_horde_with_the_extension(qtbot, stub: StubHorde) -> None:
    stub.state.checks_until_done = 4
    stub.state.progress_extension = True
    job = _job(stub.url)
    seen: list[float | None] = []
    job.updated.connect(lambda: seen.append(job.status.progress))
    _run_to_end(qtbot, job)
    assert job.status.state == DONE
    checks = stub.calls("GET", "/api/v2/generate/check/")
    assert "wait=" not in checks[0].path
    assert all("?wait=1" in call.path for call in checks[1:])
    assert 0.5 in seen and 0.75 in seen


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (
            Canned(401, {"message": "No user matching sent API Key.", "rc": "InvalidAPIKey"}),
            "the horde refused the API key: No user matching sent API Key.",
        ),
        (
            Canned(429, {"message": "Too many prompts", "rc": "TooManyPrompts"}),
            "rate-limiting you",
        ),
        (
            Canned(400, {"message": "Input payload validation failed", "rc": "BadRequest"}),
            "refused the request: Input payload validation failed",
        ),
        (
            Canned(502, "<html><body>Bad Gateway</body></html>", "text/html"),
            "the horde failed (HTTP 502): <html><body>Bad Gateway",
        ),
        (Canned(200, "certainly not json", "text/plain"), "did not answer like a horde"),
        (Canned(202, {"kudos": 1}), "no request id"),
        (Canned(drop=True), "closed the connection"),
    ],
)
def test_submit_problems_become_clear_messages(
    qtbot, stub: StubHorde, reply: Canned, message: str
) -> None:
    # Qt re-sends a request once when the connection drops before any reply byte.
    stub.script("POST", "/api/v2/generate/async", reply, reply)
    job = _job(stub.url)
    with qtbot.waitSignal(job.failed, timeout=10_000) as failed:
        job.start()
    assert message in failed.args[0]
    assert failed.args[0].startswith("could not submit") or "made no sense" in failed.args[0]
    assert "secret-key" not in failed.args[0]


def test_connection_refused_is_reported(qtbot, qapp) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    job = _job(f"http://127.0.0.1:{port}")
    with qtbot.waitSignal(job.failed, timeout=10_000) as failed:
        job.start()
    assert "connection refused" in failed.args[0]


def test_a_few_garbage_check_replies_are_retried(qtbot, stub: StubHorde) -> None:
    stub.script(
        "GET",
        "/api/v2/generate/check/",
        Canned(200, "<html>oops</html>", "text/html"),
        Canned(200, {"done": "yes"}),
        Canned(drop=True),
    )
    job = HordeJob(
        "j",
        HordeClient(stub.url, "k"),
        PAYLOAD,
        30,
        policy=PollPolicy(**{**FAST.__dict__, "max_errors": 4}),
    )
    _run_to_end(qtbot, job)
    assert job.status.state == DONE
    assert len(stub.calls("GET", "/api/v2/generate/check/")) == 4


def test_persistent_garbage_fails_the_job_and_cancels_the_request(qtbot, stub: StubHorde) -> None:
    stub.script("GET", "/api/v2/generate/check/", *[Canned(200, {"done": 1})] * 5)
    job = _job(stub.url)
    with qtbot.waitSignal(job.failed, timeout=10_000) as failed:
        job.start()
    assert "status reply made no sense: field 'done' has the wrong type" in failed.args[0]
    qtbot.waitUntil(lambda: len(stub.calls("DELETE")) == 1, timeout=5000)


def test_corrupt_image_is_a_clear_failure(qtbot, stub: StubHorde) -> None:
    stub.state.images = ["aGVsbG8gd29ybGQ="]  # valid base64, not an image
    job = _job(stub.url)
    with qtbot.waitSignal(job.failed, timeout=10_000) as failed:
        job.start()
    assert "the horde sent a broken image" in failed.args[0]


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims `width` x `height` (its pixel data is empty): decoding it
    would make Qt allocate 4 bytes per claimed pixel."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )


def _webp_claiming(width: int, height: int) -> bytes:
    """A WebP with only its extended-format (VP8X) header, claiming `width` x `height`."""
    payload = bytes(4) + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    body = b"WEBP" + b"VP8X" + struct.pack("<I", len(payload)) + payload
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _no_error_logged(caplog: pytest.LogCaptureFixture) -> bool:
    """An exception escaping a reply handler is logged at ERROR by the handler's guard."""
    return not [record for record in caplog.records if record.levelno >= logging.ERROR]


@pytest.mark.parametrize(
    ("image", "size"),
    [(_png_claiming(30000, 30000), "30000x30000"), (_webp_claiming(16000, 16000), "16000x16000")],
    ids=["png", "webp"],
)
def test_huge_result_image_is_refused_with_a_clear_message(
    qtbot, stub: StubHorde, caplog, image: bytes, size: str
) -> None:
    caplog.set_level("DEBUG")
    stub.state.images = [base64.b64encode(image).decode("ascii")]
    job = _job(stub.url)
    with qtbot.waitSignal(job.failed, timeout=10_000) as failed:
        job.start()
    assert failed.args[0] == (
        f"the horde sent an image too large to use: the image is {size} pixels; the plug-in"
        " accepts at most 67 megapixels (8192x8192)"
    )
    assert job.status.state == FAILED
    assert _no_error_logged(caplog)


def test_reply_over_the_size_limit_is_refused_at_once(qtbot, stub: StubHorde, caplog) -> None:
    caplog.set_level("DEBUG")
    stub.state.images = ["A" * (2 * 1024 * 1024)]  # a 2 MiB "image": the reply is over 1 MiB
    client = HordeClient(stub.url, "k", http=JsonHttp(max_reply_bytes=1024 * 1024))
    job = HordeJob("j", client, PAYLOAD, 30, policy=FAST)
    with qtbot.waitSignal(job.failed, timeout=10_000) as failed:
        job.start()
    host = stub.url.split("://")[1]
    assert failed.args[0] == (
        f"could not download the images: the reply from {host} is larger than 1 MiB, the most"
        " the plug-in reads: refused"
    )
    # The same reply would be as large again: no retry.
    assert len(stub.calls("GET", "/api/v2/generate/status/")) == 1
    assert _no_error_logged(caplog)


def test_faulted_request_fails(qtbot, stub: StubHorde) -> None:
    stub.script("GET", "/api/v2/generate/check/", Canned(200, {"done": False, "faulted": True}))
    job = _job(stub.url)
    with qtbot.waitSignal(job.failed, timeout=10_000) as failed:
        job.start()
    assert "faulted" in failed.args[0]


def test_impossible_request_is_given_up_after_the_grace_time(qtbot, stub: StubHorde) -> None:
    stub.state.checks_until_done = 10_000
    stub.state.is_possible = False
    job = _job(stub.url)
    with qtbot.waitSignal(job.failed, timeout=10_000) as failed:
        job.start()
    assert "no worker on this horde can take this request (m, 64x64)" in failed.args[0]
    qtbot.waitUntil(lambda: len(stub.calls("DELETE")) == 1, timeout=5000)


def test_cancel_deletes_the_request(qtbot, stub: StubHorde) -> None:
    stub.state.checks_until_done = 10_000
    job = _job(stub.url)
    job.start()
    qtbot.waitUntil(lambda: len(stub.calls("GET", "/api/v2/generate/check/")) >= 2)
    with qtbot.waitSignal(job.cancelled, timeout=5000):
        job.cancel()
    assert job.status.state == CANCELLED
    qtbot.waitUntil(lambda: stub.state.cancelled, timeout=5000)
    assert stub.calls("DELETE")[0].path == "/api/v2/generate/status/stub-request-1"


def test_cancel_before_the_horde_answered_deletes_once_the_id_arrives(
    qtbot, stub: StubHorde
) -> None:
    stub.script("POST", "/api/v2/generate/async", Canned(202, {"id": "late-id"}, delay_s=0.5))
    job = _job(stub.url)
    job.start()
    job.cancel()
    assert job.status.state == CANCELLED
    qtbot.waitUntil(lambda: len(stub.calls("DELETE")) == 1, timeout=5000)
    assert stub.calls("DELETE")[0].path.endswith("/late-id")
    assert not stub.calls("GET", "/api/v2/generate/check/")


def test_max_wait_gives_up_and_deletes(qtbot, stub: StubHorde) -> None:
    stub.state.checks_until_done = 10_000
    job = _job(stub.url, max_wait_s=0.5)
    with qtbot.waitSignal(job.failed, timeout=10_000) as failed:
        job.start()
    assert "no result after 0.5 s (the max wait)" in failed.args[0]
    qtbot.waitUntil(lambda: len(stub.calls("DELETE")) == 1, timeout=5000)


def test_slow_horde_never_blocks_the_event_loop(qtbot, stub: StubHorde) -> None:
    stub.default_delay_s = 0.4  # every reply takes 0.4 s
    ticks: list[float] = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start(20)
    job = _job(stub.url)
    _run_to_end(qtbot, job)
    timer.stop()
    assert job.status.state == DONE
    # submit + check + status ≥ 1.2 s of waiting, during which the GUI timer kept firing.
    assert len(ticks) >= 30
    gaps = [later - earlier for earlier, later in itertools.pairwise(ticks)]
    assert max(gaps) < 0.3


def test_request_timeout_is_reported(qtbot, stub: StubHorde) -> None:
    # Submitting has its own, longer timeout; the checks use the client's.
    job = _job(stub.url, timeout_s=0.3)
    stub.script("GET", "/api/v2/generate/check/", *[Canned(200, {"done": False}, delay_s=2)] * 3)
    with qtbot.waitSignal(job.failed, timeout=10_000) as failed:
        job.start()
    assert "did not answer within 0.3 s" in failed.args[0]


def test_two_jobs_run_independently(qtbot, stub: StubHorde) -> None:
    other = StubHorde()
    other.script(
        "GET",
        "/api/v2/generate/check/",
        *[Canned(500, {"message": "boom", "rc": "InternalServerError"})] * 5,
    )
    other.start()
    try:
        good, bad = _job(stub.url), _job(other.url)
        good.start()
        bad.start()
        qtbot.waitUntil(lambda: not good.is_active and not bad.is_active, timeout=10_000)
        assert good.status.state == DONE
        assert bad.status.state == FAILED
        assert "the horde failed (HTTP 500): boom" in bad.status.message
    finally:
        other.stop()


def test_api_key_never_reaches_logs_or_messages(qtbot, stub: StubHorde, caplog) -> None:
    caplog.set_level("DEBUG")
    stub.script("GET", "/api/v2/generate/check/", *[Canned(200, "<html>x</html>")] * 5)
    job = _job(stub.url, key="very-secret-key-123")
    texts: list[str] = []
    job.updated.connect(lambda: texts.append(job.status.message))
    _run_to_end(qtbot, job)
    assert job.status.state == FAILED
    assert stub.calls("POST")[0].headers["apikey"] == "very-secret-key-123"
    assert "very-secret-key-123" not in caplog.text
    assert not [text for text in texts if "very-secret-key-123" in text]
    assert "very-secret-key-123" not in repr(job.client)


def test_unknown_request_on_check_fails_at_once(qtbot, stub: StubHorde) -> None:
    stub.script(
        "GET", "/api/v2/generate/check/", Canned(404, {"message": "gone", "rc": "NotFound"})
    )
    job = _job(stub.url)
    with qtbot.waitSignal(job.failed, timeout=10_000) as failed:
        job.start()
    assert failed.args[0] == (
        "lost track of the request: the horde does not know this request (it may have"
        " expired): gone"
    )
    assert len(stub.calls("GET", "/api/v2/generate/check/")) == 1


def test_rate_limited_check_and_failed_download_are_retried(qtbot, stub: StubHorde) -> None:
    stub.script("GET", "/api/v2/generate/check/", Canned(429, {"message": "slow down"}))
    stub.script("GET", "/api/v2/generate/status/", Canned(503, "<html>busy</html>"))
    job = _job(stub.url)
    _run_to_end(qtbot, job)
    assert job.status.state == DONE
    assert len(stub.calls("GET", "/api/v2/generate/check/")) == 2
    assert len(stub.calls("GET", "/api/v2/generate/status/")) == 2


def test_tls_certificates_are_verified(qtbot, qapp, tmp_path) -> None:
    """A horde with a self-signed certificate is refused: verification is never turned off."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a self-signed certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    horde = StubHorde(tls=context).start()
    try:
        job = _job(horde.url)
        with qtbot.waitSignal(job.failed, timeout=10_000) as failed:
            job.start()
        if QSslSocket.supportsSsl():
            assert "its TLS certificate is not trusted" in failed.args[0]
        else:  # PyPI's Qt wheel may not load the system's OpenSSL 3: then no TLS at all
            assert "cannot open a secure (https) connection" in failed.args[0]
        assert not horde.calls("POST")  # nothing was sent over the untrusted connection
    finally:
        horde.stop()
