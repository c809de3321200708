"""The library API (`/api/v2/library`, our extension) in both storage modes: what is kept and how,
isolation between users and anonymous browsers, quota, retention, restarts."""

from __future__ import annotations

import base64
from datetime import timedelta

from horde_api.db.models import utcnow
from horde_api.studio import library
from tests.api.conftest import image_b64
from tests.studio.conftest import StudioFactory, StudioHorde

SETTINGS = {"width": 64, "height": 64, "steps": 5, "seed": "1234", "cfg_scale": 6.5, "n": 2}


def _kept(studio: StudioHorde, who: str, request_id: str) -> dict:
    reply = studio.library(who, "GET", f"/requests/{request_id}")
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_a_kept_request_gets_its_images_settings_and_timing(studio: StudioHorde) -> None:
    request_id = studio.make(
        "alice", prompt="a red fox ### blurry", params=SETTINGS, source_image=image_b64()
    )
    pending = _kept(studio, "alice", request_id)
    assert pending["state"] == "pending" and pending["images"] == []
    summary = studio.library("alice", "GET", "").json()
    assert (summary["owner"], summary["images"], summary["pending_images"]) == ("alice#1", 0, 2)

    studio.clock.advance(3)
    studio.work(2)
    studio.clock.advance(1)
    kept = _kept(studio, "alice", request_id)
    assert kept["state"] == "done"
    assert (kept["prompt"], kept["negative_prompt"], kept["model"]) == (
        "a red fox",
        "blurry",
        "krita-horde-tiny",
    )
    params = kept["params"]
    assert (params["seed"], params["steps"], params["cfg_scale"], params["width"]) == (
        "1234",
        5,
        6.5,
        64,
    )
    assert kept["source_processing"] == "img2img" and kept["source_url"]
    assert kept["wait_seconds"] == 3 and kept["total_seconds"] == 3
    assert [image["index"] for image in kept["images"]] == [0, 1]
    # The bytes are the worker's, served to their owner only.
    image = studio.library("alice", "GET", kept["images"][0]["url"].removeprefix("/api/v2/library"))
    assert image.status_code == 200 and image.headers["content-type"] == "image/webp"
    assert image.content == base64.b64decode(image_b64(fmt="WEBP"))
    source = studio.library("alice", "GET", f"/requests/{request_id}/source")
    assert source.status_code == 200 and source.content == base64.b64decode(image_b64())
    assert source.headers["content-type"] == "image/png"


def test_images_outlive_the_hordes_retention_of_results(studio: StudioHorde) -> None:
    request_id = studio.make("alice", params={**SETTINGS, "n": 1})
    studio.work(1)
    image_id = _kept(studio, "alice", request_id)["images"][0]["id"]
    studio.clock.advance(studio.ctx.settings.result_retention_seconds + 60)
    assert studio.janitor()["requests_purged"] == 1
    assert studio.client.get(f"/api/v2/generate/status/{request_id}").status_code == 404
    assert studio.library("alice", "GET", f"/images/{image_id}.webp").status_code == 200
    assert _kept(studio, "alice", request_id)["state"] == "done"


def test_the_sweeper_keeps_results_nobody_is_looking_at(studio: StudioHorde) -> None:
    sweeper = studio.client.app.state.studio.sweeper
    first = studio.make("alice", params={**SETTINGS, "n": 1})
    studio.work(1)
    # No library call in between: the background sweep alone copies the images. Its first run
    # looks at every pending request...
    assert sweeper.run_once() == 1
    # ...later runs at those the horde's index says finished since (no full pass for a minute).
    second = studio.make("alice", params={**SETTINGS, "n": 1})
    waiting = studio.make("bob", params={**SETTINGS, "n": 1})
    studio.clock.advance(5)
    assert sweeper.run_once() == 0
    studio.work(1)
    assert sweeper.run_once() == 1
    ids = {
        name: studio.client.get("/api/v2/find_user", headers=studio.headers(name)).json()["id"]
        for name in ("alice", "bob")
    }
    with studio.ctx.sessions() as session:
        for name, request_id, state, images in (
            ("alice", first, "done", 1),
            ("alice", second, "done", 1),
            ("bob", waiting, "pending", 0),
        ):
            row = library.find_request(session, f"user:{ids[name]}", request_id)
            assert row is not None and (row.state, len(row.images)) == (state, images)


def test_users_never_see_each_others_libraries(studio: StudioHorde) -> None:
    request_id = studio.make("alice", params={**SETTINGS, "n": 1})
    studio.work(1)
    image_id = _kept(studio, "alice", request_id)["images"][0]["id"]
    for other in ("bob", "anon:someone"):
        assert studio.library(other, "GET", "/requests").json()["total"] == 0
        for method, path in (
            ("GET", f"/requests/{request_id}"),
            ("GET", f"/requests/{request_id}/source"),
            ("DELETE", f"/requests/{request_id}"),
            ("GET", f"/images/{image_id}.webp"),
            ("DELETE", f"/images/{image_id}"),
        ):
            reply = studio.library(other, method, path)
            assert reply.status_code == 404, (other, method, path, reply.text)
        # Nor can they take it into their own library.
        stolen = studio.library(other, "POST", "/requests", json={"id": request_id})
        assert stolen.status_code == 403 and stolen.json()["rc"] == "WrongCredentials"
    assert studio.library("alice", "GET", f"/images/{image_id}.webp").status_code == 200


def test_each_anonymous_browser_has_a_library_of_its_own(studio: StudioHorde) -> None:
    request_id = studio.make("anon:first", params={**SETTINGS, "n": 1})
    studio.work(1)
    first = studio.library("anon:first", "GET", "/requests").json()
    assert first["total"] == 1 and len(first["requests"][0]["images"]) == 1
    assert studio.library("anon:second", "GET", "/requests").json()["total"] == 0
    image_id = first["requests"][0]["images"][0]["id"]
    assert studio.library("anon:second", "GET", f"/images/{image_id}.webp").status_code == 404
    # An anonymous call without a token is told what to send.
    bare = studio.client.get("/api/v2/library/requests", headers={"apikey": "0000000000"})
    assert bare.status_code == 400 and "library-token" in bare.json()["message"]
    short = studio.client.get("/api/v2/library", headers={"library-token": "short"})
    assert short.status_code == 400 and "22 to 64" in short.json()["message"]
    # A registered user's request is not an anonymous browser's to keep, nor the other way.
    registered = str(studio.request(studio.user("carol"))["id"])
    reply = studio.library("anon:first", "POST", "/requests", json={"id": registered})
    assert reply.status_code == 403
    assert studio.library("carol", "POST", "/requests", json={"id": request_id}).status_code == 403


def test_the_quota_refuses_a_request_that_would_not_fit(make_studio: StudioFactory) -> None:
    studio = make_studio(env={"HORDE_LIBRARY_MAX_IMAGES": "3"})
    studio.make("alice", params={**SETTINGS, "n": 2})
    apikey = studio.user("alice")
    second = str(studio.request(apikey, params={**SETTINGS, "n": 2})["id"])
    reply = studio.library("alice", "POST", "/requests", json={"id": second})
    assert reply.status_code == 403
    message = reply.json()["message"]
    assert "library is full" in message and "2 of 3" in message and "makes 2" in message
    summary = studio.library("alice", "GET", "").json()
    assert (summary["max_images"], summary["pending_images"]) == (3, 2)


def test_deleting_removes_rows_and_files(studio: StudioHorde) -> None:
    request_id = studio.make("alice", params=SETTINGS, source_image=image_b64())
    studio.work(2)
    kept = _kept(studio, "alice", request_id)
    first, second = kept["images"]
    with studio.ctx.sessions() as session:
        row = library.find_request(session, "user:1", request_id)
        assert row is not None
        refs = [image.ref for image in row.images] + [row.source_ref]
    assert all(studio.ctx.store.read(ref) for ref in refs)

    assert studio.library("alice", "DELETE", f"/images/{first['id']}").json() == {
        "deleted_images": 1
    }
    assert [i["id"] for i in _kept(studio, "alice", request_id)["images"]] == [second["id"]]
    assert studio.ctx.store.read(refs[0]) is None
    # The last image takes its request (and the source) with it.
    assert studio.library("alice", "DELETE", f"/images/{second['id']}").status_code == 200
    assert studio.library("alice", "GET", f"/requests/{request_id}").status_code == 404
    assert all(studio.ctx.store.read(ref) is None for ref in refs)


def test_retention_deletes_old_requests(make_studio: StudioFactory) -> None:
    studio = make_studio(
        env={"HORDE_LIBRARY_RETENTION_DAYS": "7", "HORDE_LIBRARY_ANONYMOUS_RETENTION_DAYS": "0"}
    )
    old = studio.make("alice", params={**SETTINGS, "n": 1})
    anonymous = studio.make("anon:keeper", params={**SETTINGS, "n": 1})
    studio.work(2)
    studio.library("alice", "GET", "/requests")
    studio.library("anon:keeper", "GET", "/requests")
    settings = studio.client.app.state.studio.settings
    with studio.ctx.sessions() as session:
        assert library.purge_expired(session, studio.ctx.store, settings) == 0
        later = utcnow() + timedelta(days=8)
        assert library.purge_expired(session, studio.ctx.store, settings, now=later) == 1
    assert studio.library("alice", "GET", f"/requests/{old}").status_code == 404
    # Anonymous retention 0 keeps forever.
    assert studio.library("anon:keeper", "GET", f"/requests/{anonymous}").status_code == 200


def test_the_library_survives_a_restart(make_studio: StudioFactory) -> None:
    studio = make_studio("stores")
    done = studio.make("alice", params={**SETTINGS, "n": 1})
    studio.work(1)
    image_id = _kept(studio, "alice", done)["images"][0]["id"]
    waiting = studio.make("alice", params={**SETTINGS, "n": 1})
    key = studio.user("alice")
    studio.client.__exit__(None, None, None)

    again = make_studio("stores")
    again.keys["alice"] = key
    again.keys["volunteer"] = studio.keys["volunteer"]
    page = again.library("alice", "GET", "/requests").json()
    assert [r["request_id"] for r in page["requests"]] == [waiting, done]
    assert again.library("alice", "GET", f"/images/{image_id}.webp").status_code == 200
    # The request queued before the restart is still collected when it finishes.
    again.work(1)
    assert _kept(again, "alice", waiting)["state"] == "done"


def test_a_cancelled_request_keeps_what_was_finished(studio: StudioHorde) -> None:
    request_id = studio.make("alice", params=SETTINGS)
    studio.work(1)
    cancelled = studio.client.delete(
        f"/api/v2/generate/status/{request_id}", headers=studio.headers("alice")
    )
    assert cancelled.status_code == 200
    kept = _kept(studio, "alice", request_id)
    assert kept["state"] == "cancelled" and len(kept["images"]) == 1
    listing = studio.library("alice", "GET", "/requests?state=pending").json()
    assert listing["total"] == 0


def test_keeping_asks_for_a_real_request(studio: StudioHorde) -> None:
    for bad in ("not-an-id", "00000000-0000-4000-8000-000000000000"):
        reply = studio.library("alice", "POST", "/requests", json={"id": bad})
        assert reply.status_code == 404 and "No request" in reply.json()["message"]
    reply = studio.library("alice", "GET", "/requests?limit=500")
    assert reply.status_code == 400 and reply.json()["rc"] == "ValidationError"
    bad_key = studio.client.get("/api/v2/library", headers={"apikey": "x" * 22})
    assert bad_key.status_code == 401
