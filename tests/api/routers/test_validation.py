"""Bad input gets a clear 4xx with an `rc`, never a 500."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from tests.api.conftest import Horde, image_b64


def _post(horde: Horde, body: dict, apikey: str = "0000000000"):  # type: ignore[no-untyped-def]
    return horde.client.post("/api/v2/generate/async", json=body, headers={"apikey": apikey})


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"width": 100}, "multiple of 64"),
        ({"height": 32}, "params.height"),
        ({"width": 4096}, "params.width"),
        ({"steps": 0}, "params.steps"),
        ({"steps": 501}, "params.steps"),
        ({"n": 0}, "params.n"),
        ({"n": 21}, "params.n"),
        ({"sampler_name": "k_magic"}, "unknown sampler 'k_magic'"),
    ],
)
def test_bad_params_are_400_with_the_field_named(
    embedded_horde: Horde, params: dict, fragment: str
) -> None:
    reply = _post(embedded_horde, {"prompt": "x", "params": params})
    assert reply.status_code == 400
    body = reply.json()
    assert body["rc"] == "ValidationError"
    assert fragment in body["message"]


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ({"source_image": "not base64!!"}, "not valid base64"),
        ({"source_image": base64.b64encode(b"hello world").decode()}, "could not be decoded"),
        (
            {"source_image": image_b64(), "source_processing": "inpainting"},
            "needs a source_mask or a source_image with transparent pixels",
        ),
        (
            {
                "source_image": image_b64(64, 64),
                "source_mask": image_b64(128, 64, mode="L"),
                "source_processing": "inpainting",
            },
            "must be the same size",
        ),
        ({"source_mask": image_b64(mode="L")}, "without a source_image"),
        ({"source_processing": "inpainting"}, "needs a source_image"),
        ({"models": ["a,b"]}, "invalid model name"),
    ],
)
def test_bad_images_are_400(embedded_horde: Horde, extra: dict, fragment: str) -> None:
    reply = _post(embedded_horde, {"prompt": "x", **extra})
    assert reply.status_code == 400, reply.text
    assert fragment in reply.json()["message"]
    assert reply.json()["rc"] in ("ValidationError", "ImageValidationFailed")


def test_decompression_bomb_is_refused_before_decoding(embedded_horde: Horde) -> None:
    # A tiny PNG declaring a huge canvas: refused from its header.
    out = io.BytesIO()
    Image.new("1", (8000, 8000)).save(out, format="PNG", optimize=True)
    assert len(out.getvalue()) < 100_000
    reply = _post(
        embedded_horde,
        {"prompt": "x", "source_image": base64.b64encode(out.getvalue()).decode()},
    )
    assert reply.status_code == 400
    assert "at most" in reply.json()["message"] and "pixels" in reply.json()["message"]


def test_source_byte_limit(make_horde) -> None:  # type: ignore[no-untyped-def]
    horde = make_horde(max_source_bytes=1000)
    noisy = Image.effect_noise((128, 128), 50).convert("RGB")
    out = io.BytesIO()
    noisy.save(out, format="PNG")
    reply = _post(horde, {"prompt": "x", "source_image": base64.b64encode(out.getvalue()).decode()})
    assert reply.status_code == 400
    assert "1000 bytes" in reply.json()["message"]


def test_oversized_body_is_413(make_horde) -> None:  # type: ignore[no-untyped-def]
    horde = make_horde(max_body_bytes=10_000)
    reply = _post(horde, {"prompt": "x" * 20_000})
    assert reply.status_code == 413
    assert reply.json()["rc"] == "BodyTooLarge"


def test_unknown_fields_are_ignored_and_seed_may_be_a_number(embedded_horde: Horde) -> None:
    reply = _post(
        embedded_horde, {"prompt": "x", "trust_workers": True, "params": {"seed": 7, "foo": 1}}
    )
    assert reply.status_code == 202


def test_dry_run_prices_without_queueing(embedded_horde: Horde) -> None:
    reply = _post(embedded_horde, {"prompt": "x", "dry_run": True})
    assert reply.status_code == 200
    assert set(reply.json()) == {"kudos"}
    assert embedded_horde.pop(embedded_horde.user("w"))["id"] is None


def test_unknown_model_is_accepted_but_not_possible(embedded_horde: Horde) -> None:
    embedded_horde.pop(embedded_horde.user("w"))
    reply = _post(embedded_horde, {"prompt": "x", "models": ["nobody-serves-this"]})
    assert reply.status_code == 202
    assert reply.json()["warnings"][0]["code"] == "NoAvailableWorker"
    assert embedded_horde.check(reply.json()["id"])["is_possible"] is False


def test_bad_keys_are_401(embedded_horde: Horde) -> None:
    for key in ("garbage", "kh_000000000000_" + "0" * 32):
        reply = _post(embedded_horde, {"prompt": "x"}, apikey=key)
        assert reply.status_code == 401
        assert reply.json()["rc"] == "InvalidAPIKey"


def test_malformed_json_and_wrong_types_are_400(embedded_horde: Horde) -> None:
    reply = embedded_horde.client.post(
        "/api/v2/generate/async", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert reply.status_code == 400
    reply = _post(embedded_horde, {"prompt": ["list"], "params": "nope"})
    assert reply.status_code == 400
    assert reply.json()["rc"] == "ValidationError"


def test_bad_submit_bodies(embedded_horde: Horde) -> None:
    key = embedded_horde.user("w")
    embedded_horde.request()
    job = embedded_horde.pop(key)
    assert embedded_horde.submit(key, job["id"], generation="").status_code == 400
    reply = embedded_horde.submit(key, job["id"], generation="!!!")
    assert reply.status_code == 400 and reply.json()["rc"] == "ImageValidationFailed"
    # The lease is still usable after refused submits.
    assert embedded_horde.submit(key, job["id"]).status_code == 200


def test_long_poll_wait_is_capped(embedded_horde: Horde) -> None:
    rid = embedded_horde.request()["id"]
    reply = embedded_horde.client.get(f"/api/v2/generate/check/{rid}", params={"wait": 31})
    assert reply.status_code == 400


def test_unreachable_redis_is_503_not_500(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from horde_api.app import create_app
    from horde_api.settings import HordeSettings

    # Nothing listens on port 1: every Redis call fails to connect.
    settings = HordeSettings(data_dir=tmp_path / "data", redis_url="redis://127.0.0.1:1/0")
    app = create_app(settings, run_janitor=False)
    with TestClient(app) as client:
        reply = client.post("/api/v2/generate/async", json={"prompt": "x"})
    assert reply.status_code == 503
    assert reply.json()["rc"] == "ServiceUnavailable"


def test_openapi_lists_the_statuses_the_server_sends(embedded_horde: Horde) -> None:
    schema = embedded_horde.client.get("/openapi.json").json()
    operations = [op for path in schema["paths"].values() for op in path.values()]
    assert all("422" not in op["responses"] for op in operations), "validation answers 400"
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    asynchronous = schema["paths"]["/api/v2/generate/async"]["post"]["responses"]
    assert asynchronous["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/DryRunReply"
    )
    assert {"202", "400", "401", "413", "429", "503"} <= set(asynchronous)
    # What the schema promises for a bad body is what the server answers.
    bad = _post(embedded_horde, {"prompt": "x", "params": {"width": 100}})
    assert bad.status_code == 400 and str(bad.status_code) in asynchronous
