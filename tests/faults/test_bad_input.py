"""Bad input over real HTTP: broken images, bombs, huge bodies and out-of-range parameters get a
clear 4xx with an `rc` and a message, and the server stays up for the next caller."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.faults import images
from tests.faults.conftest import horde
from tests.faults.horde_client import HordeClient

pytestmark = pytest.mark.slow

BODY_LIMIT = 2 * 1024 * 1024  # the server's HORDE_MAX_BODY_BYTES for this module


class Env:
    def __init__(self, live: Any, client: HordeClient, worker_key: str) -> None:
        self.live = live
        self.client = client
        self.worker_key = worker_key


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    extra = {
        "HORDE_MAX_BODY_BYTES": str(BODY_LIMIT),
        "HORDE_RATE_LIMIT_PER_KEY_PER_MINUTE": "1000000",
        "HORDE_RATE_LIMIT_PER_IP_PER_MINUTE": "1000000",
        "HORDE_DEFAULT_CONCURRENCY": "1000",
    }
    with horde(tmp_path_factory.mktemp("bad-input"), extra_env=extra) as live:
        key = live.create_user("mallory")
        worker_key = live.create_user("wendy")
        with HordeClient(live.api, key, timeout=30) as client:
            yield Env(live, client, worker_key)


def assert_clear_4xx(reply: httpx.Response, *statuses: int) -> dict[str, Any]:
    assert reply.status_code in (statuses or (400,)), (reply.status_code, reply.text[:500])
    body = reply.json()
    assert body.get("rc"), body
    assert isinstance(body.get("message"), str) and len(body["message"]) > 5, body
    return body


def assert_still_up(env: Env) -> None:
    assert env.client.call("GET", "/status/heartbeat").status_code == 200


def _request(**extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"prompt": "a cat", "params": {"width": 64, "height": 64, "steps": 1}}
    body.update(extra)
    return body


BAD_SOURCES = {
    "truncated-webp": images.truncated_webp_b64,
    "corrupt-png": images.corrupt_png_b64,
    "decompression-bomb": images.bomb_png_b64,
    "huge-dimensions": lambda: images.header_only_png_b64(20_000, 20_000),
    "just-over-max-side": lambda: images.header_only_png_b64(4096, 4096),
    "not-an-image": images.not_an_image_b64,
    "not-base64": lambda: images.NOT_BASE64,
    "empty-string-as-image": lambda: "data:image/png;base64,",
}


@pytest.mark.parametrize("kind", sorted(BAD_SOURCES))
@pytest.mark.parametrize("processing", ["img2img", "inpainting"])
def test_bad_source_image_is_refused(env: Env, kind: str, processing: str) -> None:
    body = _request(source_image=BAD_SOURCES[kind](), source_processing=processing)
    if processing == "inpainting":
        body["source_mask"] = images.mask_png_b64(64, 64)
    assert_clear_4xx(env.client.generate(body))
    assert_still_up(env)


@pytest.mark.parametrize("kind", ["truncated-webp", "decompression-bomb", "not-an-image"])
def test_bad_mask_is_refused(env: Env, kind: str) -> None:
    body = _request(
        source_image=images.png_b64(64, 64),
        source_processing="inpainting",
        source_mask=BAD_SOURCES[kind](),
    )
    assert_clear_4xx(env.client.generate(body))


def test_mask_of_another_size_is_refused(env: Env) -> None:
    body = _request(
        source_image=images.png_b64(64, 64),
        source_processing="inpainting",
        source_mask=images.mask_png_b64(128, 64),
    )
    reply = assert_clear_4xx(env.client.generate(body))
    assert "mask" in reply["message"].lower()


def test_inpainting_without_mask_or_alpha_is_refused(env: Env) -> None:
    body = _request(source_image=images.png_b64(64, 64), source_processing="inpainting")
    reply = assert_clear_4xx(env.client.generate(body))
    assert "mask" in reply["message"].lower() or "alpha" in reply["message"].lower()


@pytest.mark.parametrize(
    ("params", "word"),
    [
        ({"width": 65}, "width"),
        ({"height": 4096}, "height"),
        ({"steps": 0}, "steps"),
        ({"n": 21}, "n"),
        ({"sampler_name": "k_magic"}, "sampler"),
        ({"cfg_scale": "lots"}, "cfg_scale"),
    ],
)
def test_out_of_range_parameters_say_what_is_allowed(
    env: Env, params: dict[str, Any], word: str
) -> None:
    body = _request()
    body["params"].update(params)
    reply = assert_clear_4xx(env.client.generate(body))
    assert word in reply["message"], reply


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b"[]", b'"a string"', b"null", b'{"prompt": 5}', b"\xff\xfe\x00garbage"],
)
def test_malformed_json_is_a_400(env: Env, raw: bytes) -> None:
    reply = env.client.call(
        "POST", "/generate/async", content=raw, headers={"Content-Type": "application/json"}
    )
    assert_clear_4xx(reply)


def test_body_over_the_limit_is_413(env: Env) -> None:
    big = base64.b64encode(os.urandom(BODY_LIMIT)).decode()
    reply = env.client.generate(_request(source_image=big))
    assert_clear_4xx(reply, 413)
    assert_still_up(env)


def test_body_over_the_limit_without_content_length_is_413(env: Env) -> None:
    chunk = b"A" * 65536

    def stream() -> Iterator[bytes]:
        yield b'{"prompt": "a cat", "source_image": "'
        for _ in range(BODY_LIMIT // len(chunk) + 2):
            yield chunk
        yield b'"}'

    try:
        reply = env.client.call(
            "POST",
            "/generate/async",
            content=stream(),
            headers={"Content-Type": "application/json"},
        )
    except httpx.TransportError:
        # Closing the connection on an oversized stream is also a refusal; the server must live.
        assert_still_up(env)
        return
    assert_clear_4xx(reply, 413)
    assert_still_up(env)


def test_ten_megabyte_source_image_within_the_body_limit_is_refused(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """With the default body limit, a 10 MB+ image still meets the source byte/pixel limits."""
    extra = {"HORDE_MAX_SOURCE_BYTES": str(4 * 1024 * 1024)}
    with horde(tmp_path_factory.mktemp("ten-mb"), extra_env=extra) as live:
        key = live.create_user("mallory")
        with HordeClient(live.api, key, timeout=60) as client:
            noise = images.b64(images.image_bytes(64, 64, tag="head") + os.urandom(10 * 2**20))
            reply = client.generate(_request(source_image=noise))
            assert_clear_4xx(reply, 400, 413)
            assert client.call("GET", "/status/heartbeat").status_code == 200


def test_bad_results_from_a_worker_are_refused(env: Env) -> None:
    request_id = env.client.request_id()
    job = env.client.pop("careless", apikey=env.worker_key).json()["id"]
    assert job
    for bad in (
        images.truncated_webp_b64(),
        images.not_an_image_b64(),
        images.NOT_BASE64,
        images.bomb_png_b64(),
    ):
        reply = env.client.submit(job, apikey=env.worker_key, generation=bad)
        assert_clear_4xx(reply)
    # The job is still the worker's to deliver properly.
    good = env.client.submit(job, apikey=env.worker_key)
    assert good.status_code == 200, good.text
    status = env.client.wait_done(request_id, timeout=30)
    assert len(status["generations"]) == 1
    decoded = base64.b64decode(status["generations"][0]["img"])
    assert decoded[:4] == b"RIFF" and decoded[8:12] == b"WEBP"


@settings(
    max_examples=40,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    data=st.one_of(
        st.binary(max_size=2048),
        st.builds(
            lambda base, cut, flips: _mutate(base, cut, flips),
            st.sampled_from(["WEBP", "PNG"]),
            st.integers(min_value=0, max_value=400),
            st.lists(st.integers(min_value=0, max_value=10_000), max_size=8),
        ),
    )
)
def test_any_bytes_as_source_image_get_202_or_a_clear_400(env: Env, data: bytes) -> None:
    body = _request(source_image=images.b64(data))
    reply = env.client.generate(body)
    if reply.status_code == 202:
        # Whatever got through must be an image the server could decode.
        images.decode_size(images.b64(data))
        env.client.cancel(reply.json()["id"])
    else:
        assert_clear_4xx(reply)


def _mutate(fmt: str, cut: int, flips: list[int]) -> bytes:
    """A valid image, cut short and with some bytes flipped: the decoder's hard cases."""
    data = bytearray(images.image_bytes(64, 64, tag="mutate", fmt=fmt))
    for position in flips:
        data[position % len(data)] ^= 0xFF
    return bytes(data[: max(1, len(data) - cut)])
