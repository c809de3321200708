"""POST /api/v2/kudos/transfer: the public horde's checks and codes, and no overdraft under
concurrent transfers (real PostgreSQL in the redis-postgres mode)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from horde_api.kudos.ledger import NotEnoughKudos, to_cents, transfer
from tests.api.conftest import Horde


def _send(horde: Horde, sender_key: str, username: str, amount: Any) -> Any:
    return horde.client.post(
        "/api/v2/kudos/transfer",
        json={"username": username, "amount": amount},
        headers={"apikey": sender_key},
    )


def test_a_transfer_moves_kudos_and_shows_in_both_users_details(horde: Horde) -> None:
    alice = horde.user("alice")
    horde.user("bob")
    horde.give_kudos("alice", 10)
    reply = _send(horde, alice, "bob", 2.5)
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"transferred": 2.5}
    horde.ctx.verifier.forget_cached()
    assert (horde.balance("alice"), horde.balance("bob")) == (7.5, 2.5)
    sender = horde.client.get("/api/v2/find_user", headers={"apikey": alice}).json()
    assert sender["kudos"] == 7.5 and sender["kudos_details"]["gifted"] == -2.5
    receiver = horde.client.get("/api/v2/find_user", headers={"apikey": horde.user("bob")}).json()
    assert receiver["kudos_details"]["received"] == 2.5


@pytest.mark.parametrize(
    ("sender", "target", "amount", "rc"),
    [
        ("anonymous", "bob", 1, "KudosTransferFromAnon"),
        ("alice", "Anonymous", 1, "KudosTransferToAnon"),
        ("alice", "nobody", 1, "InvalidTargetUsername"),
        ("alice", "alice", 1, "KudosTransferToSelf"),
        ("alice", "bob", -1, "NegativeKudosTransfer"),
        ("alice", "bob", 0, "InvalidKudosTransferAmount"),
        ("alice", "bob", 0.001, "InvalidKudosTransferAmount"),
        ("alice", "bob", 11, "KudosTransferNotEnough"),
        ("alice", "bob", 1e300, "KudosTransferNotEnough"),
        ("alice", "³", 1, "InvalidTargetUsername"),
        ("alice", "99999999999999999999999", 1, "InvalidTargetUsername"),
    ],
)
def test_refused_transfers_say_why_and_move_nothing(
    horde: Horde, sender: str, target: str, amount: float, rc: str
) -> None:
    horde.user("bob")
    horde.user("alice")
    horde.give_kudos("alice", 10)
    key = "0000000000" if sender == "anonymous" else horde.user(sender)
    reply = _send(horde, key, target, amount)
    assert reply.status_code == 400, reply.text
    assert reply.json()["rc"] == rc
    assert reply.json()["message"]
    assert (horde.balance("alice"), horde.balance("bob")) == (10, 0)


def test_kudos_cannot_go_straight_back_to_their_sender(horde: Horde) -> None:
    alice, bob = horde.user("alice"), horde.user("bob")
    horde.give_kudos("alice", 10)
    assert _send(horde, alice, "bob", 5).status_code == 200
    back = _send(horde, bob, "alice", 1)
    assert back.status_code == 400 and back.json()["rc"] == "TooFastKudosTransfers"
    recent = horde.ctx.keys.recent_transfer(horde.user_id("alice"), horde.user_id("bob"))
    horde.ctx.redis.delete(recent)
    assert _send(horde, bob, "alice", 1).status_code == 200


def test_concurrent_transfers_never_overdraw(horde: Horde) -> None:
    """Twenty transfers of 1 kudos from a balance of 5, all at once in their own sessions: exactly
    five go through, and every kudos is accounted for."""
    names = [f"receiver{i}" for i in range(20)]
    sender_id, receiver_ids = horde.user_id("sender"), [horde.user_id(name) for name in names]
    horde.give_kudos("sender", 5)

    def attempt(index: int) -> bool:
        with horde.ctx.sessions() as session:
            try:
                transfer(session, sender_id, receiver_ids[index], to_cents(1), f"race{index}")
            except NotEnoughKudos:
                return False
            return True

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(attempt, range(20)))
    assert sum(outcomes) == 5
    assert horde.balance("sender") == 0
    assert sum(horde.balance(name) for name in names) == 5
