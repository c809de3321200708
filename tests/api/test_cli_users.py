"""`horde-api user` and `horde-api kudos` against a real database file."""

from __future__ import annotations

from pathlib import Path

import pytest

from horde_api.cli import main
from horde_api.db.engine import make_engine, make_session_factory
from horde_api.db.users import find_user
from horde_api.settings import HordeSettings


def moderator_flag(data_dir: Path, name: str) -> bool:
    engine = make_engine(HordeSettings(data_dir=data_dir).resolved_database_url())
    try:
        with make_session_factory(engine)() as session:
            user = find_user(session, name)
            assert user is not None
            return user.moderator
    finally:
        engine.dispose()


def test_users_become_moderators_and_stop_being_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HORDE_DATA_DIR", str(tmp_path))
    assert main(["user", "create", "dana", "--moderator", "--json"]) == 0
    assert main(["user", "create", "alice"]) == 0
    capsys.readouterr()
    assert moderator_flag(tmp_path, "dana") is True
    assert moderator_flag(tmp_path, "alice") is False

    assert main(["user", "moderator", "alice"]) == 0
    assert "alice#2 is a moderator" in capsys.readouterr().out
    assert moderator_flag(tmp_path, "alice") is True
    assert main(["user", "moderator", "alice", "--off"]) == 0
    assert "no longer a moderator" in capsys.readouterr().out
    assert moderator_flag(tmp_path, "alice") is False

    assert main(["user", "moderator", "nobody"]) == 1
    assert "no user 'nobody'" in capsys.readouterr().err


def test_operators_give_and_take_kudos_and_read_the_ledger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HORDE_DATA_DIR", str(tmp_path))
    assert main(["user", "create", "alice"]) == 0
    assert main(["kudos", "add", "alice", "120.5", "--note", "prize"]) == 0
    assert main(["kudos", "add", "alice", "-20"]) == 0
    assert "alice#1 now has 100.50 kudos" in capsys.readouterr().out

    assert main(["kudos", "show", "alice", "--last", "1"]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert shown[0] == "alice#1: 100.50 kudos"
    assert "admin 100.50" in shown[1]
    assert len(shown) == 3 and "-20.00" in shown[2], "only the newest entry"
    assert main(["kudos", "show", "alice"]) == 0
    assert "prize" in capsys.readouterr().out

    assert main(["kudos", "add", "nobody", "5"]) == 1
    assert "no user 'nobody'" in capsys.readouterr().err
