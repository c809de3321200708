"""The studio's pages as HTTP resources: served at /, each with a Content-Security-Policy, their
static files served with them, none of it in the API's OpenAPI description."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from horde_api.app import create_app
from horde_api.settings import HordeSettings
from horde_api.studio.pages import PAGES

PATHS = [page[0] for page in PAGES]


@pytest.fixture
def client(tmp_path) -> TestClient:  # type: ignore[no-untyped-def]
    with TestClient(create_app(HordeSettings(data_dir=tmp_path), run_janitor=False)) as client:
        yield client


@pytest.mark.parametrize("path", PATHS)
def test_each_page_is_served_with_a_strict_policy(client: TestClient, path: str) -> None:
    reply = client.get(path)
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/html")
    policy = reply.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert reply.headers["x-content-type-options"] == "nosniff"
    html = reply.text
    # No inline script or style: everything the page runs comes from our static files, which
    # are all there.
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert "style=" not in html and "<style" not in html
    for url in re.findall(r'(?:src|href)="(/static/studio/[^"]+)"', html):
        assert client.get(url).status_code == 200, url


def test_every_control_has_a_label(client: TestClient) -> None:
    for path in PATHS:
        html = client.get(path).text
        ids = re.findall(r'<(?:input|select|textarea)[^>]*\bid="([^"]+)"', html)
        labelled = set(re.findall(r'<label[^>]*\bfor="([^"]+)"', html))
        named = set(
            re.findall(r'<(?:input|select|textarea)[^>]*\bid="([^"]+)"[^>]*aria-label', html)
        )
        assert ids, path
        missing = [i for i in ids if i not in labelled and i not in named]
        assert not missing, (path, missing)


def test_pages_stay_out_of_the_api_description(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "/" not in paths and "/library" not in paths
    assert "/api/v2/library/requests" in paths


def test_an_operator_can_turn_the_pages_off(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("HORDE_STUDIO_ENABLED", "false")
    with TestClient(create_app(HordeSettings(data_dir=tmp_path), run_janitor=False)) as client:
        assert client.get("/").status_code == 404
        assert client.get("/api/v2/status/heartbeat").status_code == 200
