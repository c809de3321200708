"""Prompt filters: the moderators' /v2/filters API (the public horde's shape), and what a filter
does to a request: refuse it (400 CorruptPrompt) or turn the NSFW censor on."""

from __future__ import annotations

import time
from typing import Any

import pytest

from horde_api.db.users import create_user
from tests.api.conftest import Horde, HordeFactory

MINORS, SEXUAL, EXPLICIT = 10, 20, 29


def moderator_key(horde: Horde, name: str = "mod") -> str:
    with horde.ctx.sessions() as session:
        _, key = create_user(session, name, moderator=True)
    return key.apikey


def add(horde: Horde, key: str, regex: str, filter_type: int, **extra: Any) -> dict[str, Any]:
    reply = horde.client.put(
        "/api/v2/filters",
        json={"regex": regex, "filter_type": filter_type, **extra},
        headers={"apikey": key},
    )
    assert reply.status_code == 201, reply.text
    return reply.json()


def submit(horde: Horde, prompt: str, **body: Any) -> Any:
    params = {"width": 64, "height": 64, "steps": 4}
    return horde.client.post(
        "/api/v2/generate/async", json={"prompt": prompt, "params": params, **body}
    )


def test_only_moderators_reach_the_filters(horde: Horde) -> None:
    artist = horde.user("artist")
    for method, path in (("get", ""), ("put", ""), ("post", ""), ("get", "/regex")):
        body = {"regex": "x", "filter_type": 10, "prompt": "x"}
        anonymous = horde.client.request(method, f"/api/v2/filters{path}", json=body)
        assert anonymous.status_code == 401, anonymous.text
        refused = horde.client.request(
            method, f"/api/v2/filters{path}", json=body, headers={"apikey": artist}
        )
        assert refused.status_code == 403
        assert refused.json()["rc"] == "Forbidden"
        assert "moderator" in refused.json()["message"]


def test_moderators_add_list_change_and_delete_filters(horde: Horde) -> None:
    key = moderator_key(horde)
    child = add(horde, key, r"\bchild\w*", MINORS, description="minors")
    assert child["filter_type"] == MINORS
    assert child["user"].startswith("mod#")
    assert child["replacement"] == ""
    add(horde, key, r"\bnude\b", SEXUAL)
    listed = horde.client.get("/api/v2/filters", headers={"apikey": key}).json()
    assert [f["regex"] for f in listed] == [r"\bchild\w*", r"\bnude\b"]
    only_sexual = horde.client.get(
        "/api/v2/filters", params={"filter_type": SEXUAL}, headers={"apikey": key}
    ).json()
    assert [f["regex"] for f in only_sexual] == [r"\bnude\b"]
    containing = horde.client.get(
        "/api/v2/filters", params={"contains": "chi"}, headers={"apikey": key}
    ).json()
    assert [f["id"] for f in containing] == [child["id"]]

    one = horde.client.get(f"/api/v2/filters/{child['id']}", headers={"apikey": key})
    assert one.json() == child
    changed = horde.client.patch(
        f"/api/v2/filters/{child['id']}",
        json={"regex": r"\bkids?\b", "description": "minors, short"},
        headers={"apikey": key},
    ).json()
    assert (changed["regex"], changed["description"]) == (r"\bkids?\b", "minors, short")
    combined = horde.client.get("/api/v2/filters/regex", headers={"apikey": key}).json()
    assert combined == [
        {"filter_type": MINORS, "regex": r"\bkids?\b"},
        {"filter_type": SEXUAL, "regex": r"\bnude\b"},
    ]

    deleted = horde.client.delete(f"/api/v2/filters/{child['id']}", headers={"apikey": key})
    assert deleted.json() == {"message": "OK"}
    gone = horde.client.get(f"/api/v2/filters/{child['id']}", headers={"apikey": key})
    assert gone.status_code == 404
    assert (
        horde.client.delete(f"/api/v2/filters/{child['id']}", headers={"apikey": key}).status_code
        == 404
    )


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"regex": "(unclosed", "filter_type": MINORS}, "not a valid regular expression"),
        ({"regex": "a*", "filter_type": MINORS}, "matches the empty text"),
        ({"regex": "(?<=a)b", "filter_type": MINORS}, "no lookaround"),
        ({"regex": "x", "filter_type": 30}, "filter_type"),
        ({"regex": "x", "filter_type": 9}, "filter_type"),
        ({"regex": "", "filter_type": MINORS}, "regex"),
    ],
)
def test_bad_filters_are_refused_with_the_reason(
    embedded_horde: Horde, body: dict[str, Any], says: str
) -> None:
    key = moderator_key(embedded_horde)
    reply = embedded_horde.client.put("/api/v2/filters", json=body, headers={"apikey": key})
    assert reply.status_code == 400
    assert says in reply.json()["message"]


def test_a_filter_is_not_added_twice_and_a_patch_must_change_something(
    embedded_horde: Horde,
) -> None:
    key = moderator_key(embedded_horde)
    first = add(embedded_horde, key, "dup", SEXUAL)
    again = embedded_horde.client.put(
        "/api/v2/filters", json={"regex": "dup", "filter_type": SEXUAL}, headers={"apikey": key}
    )
    assert again.status_code == 400
    assert "exists already" in again.json()["message"]
    empty = embedded_horde.client.patch(
        f"/api/v2/filters/{first['id']}", json={}, headers={"apikey": key}
    )
    assert empty.status_code == 400
    assert "Nothing to change" in empty.json()["message"]
    bad = embedded_horde.client.patch(
        f"/api/v2/filters/{first['id']}", json={"regex": "(("}, headers={"apikey": key}
    )
    assert bad.status_code == 400


def test_moderators_try_a_prompt_against_the_filters(embedded_horde: Horde) -> None:
    key = moderator_key(embedded_horde)
    add(embedded_horde, key, r"\bchild\b", MINORS)
    add(embedded_horde, key, r"\bnude\b", SEXUAL)

    def suspicion(prompt: str, **extra: Any) -> dict[str, Any]:
        reply = embedded_horde.client.post(
            "/api/v2/filters", json={"prompt": prompt, **extra}, headers={"apikey": key}
        )
        assert reply.status_code == 200, reply.text
        return reply.json()

    assert suspicion("a child, nude") == {"suspicion": 2, "matches": ["child", "nude"]}
    assert suspicion("a child in a park") == {"suspicion": 1, "matches": ["child"]}
    assert suspicion("a child, nude", filter_type=SEXUAL) == {"suspicion": 1, "matches": ["nude"]}
    assert suspicion("a cat") == {"suspicion": 0, "matches": []}


def test_a_prompt_matching_both_groups_is_refused(horde: Horde) -> None:
    key = moderator_key(horde)
    add(horde, key, r"\bchild\b", MINORS)
    add(horde, key, r"\bnude\b", SEXUAL)
    refused = submit(horde, "A CHILD, nude")
    assert refused.status_code == 400
    assert refused.json()["rc"] == "CorruptPrompt"
    assert "prompt filters" in refused.json()["message"]
    # One group alone, or the words only in the negative prompt, are allowed.
    assert submit(horde, "a child in a park").status_code == 202
    assert submit(horde, "a portrait ### child, nude").status_code == 202
    # Nothing was queued for the refused prompt.
    assert horde.pop(horde.user("worker-owner"))["payload"]["prompt"] == "a child in a park"


def test_explicit_words_censor_a_safe_for_work_request(horde: Horde) -> None:
    key = moderator_key(horde)
    add(horde, key, r"\bnsfwword\b", EXPLICIT)
    owner = horde.user("owner")
    reply = submit(horde, "a nsfwword scene", nsfw=False).json()
    assert "CensorshipApplied" in [w["code"] for w in reply["warnings"]]

    # A worker that says it has no safety checker is never given the image ...
    skipped = horde.pop(owner, name="no-checker", nsfw_censor=False)
    assert skipped["id"] is None
    assert skipped["skipped"]["nsfw_censor"] == 1
    # ... one that has one (or says nothing, as the public horde's workers) is, with the censor on.
    popped = horde.pop(owner, name="checker")
    assert popped["payload"]["use_nsfw_censor"] is True

    # An NSFW request with the same words is not censored.
    submit(horde, "a nsfwword scene", nsfw=True)
    assert horde.pop(owner, name="checker", nsfw=True)["payload"]["use_nsfw_censor"] is False


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.parametrize("storage_env", ["redis-postgres"], indirect=True)
def test_every_process_picks_up_a_change_made_by_another(make_horde: HordeFactory) -> None:
    first = make_horde()
    second = make_horde(filter_refresh_seconds=0.01)
    add(first, moderator_key(first), r"\bchild\b|\bnude\b", MINORS)
    add(first, moderator_key(first, "mod2"), r"\bnude\b", SEXUAL)
    assert submit(first, "child nude").status_code == 400
    deadline = time.monotonic() + 10
    while submit(second, "child nude").status_code != 400:
        assert time.monotonic() < deadline, "the second process never reloaded the filters"
        second.janitor()
