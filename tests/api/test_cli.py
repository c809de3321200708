"""`horde-api` argument handling that needs no server."""

from __future__ import annotations

import pytest

from horde_api.cli import build_parser
from horde_protocol import ANONYMOUS_API_KEY


def test_generate_takes_the_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HORDE_APIKEY", "kh_from_env")
    args = build_parser().parse_args(
        ["generate", "--url", "http://h", "--prompt", "p", "--out", "o"]
    )
    assert args.apikey == "kh_from_env"
    explicit = [
        "generate",
        "--url",
        "http://h",
        "--prompt",
        "p",
        "--out",
        "o",
        "--apikey",
        "kh_flag",
    ]
    assert build_parser().parse_args(explicit).apikey == "kh_flag"


def test_generate_without_a_key_is_anonymous(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HORDE_APIKEY", raising=False)
    args = build_parser().parse_args(
        ["generate", "--url", "http://h", "--prompt", "p", "--out", "o"]
    )
    assert args.apikey == ANONYMOUS_API_KEY
