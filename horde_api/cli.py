"""`horde-api`: run the server, manage users and keys, migrate the database.

The client that sends requests is `horde` (horde_client/, docs/cli.md).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from horde_api.auth.keys import NewKey
from horde_api.settings import HordeSettings

if TYPE_CHECKING:  # the CLI starts fast: SQLAlchemy is imported only by commands that use it
    from sqlalchemy.orm import Session

    from horde_api.db.models import User


def _sessions(settings: HordeSettings):  # type: ignore[no-untyped-def]
    from horde_api.db.engine import make_engine, make_session_factory
    from horde_api.db.migrate import upgrade

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.resolved_database_url())
    upgrade(engine)
    return make_session_factory(engine)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = HordeSettings()
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    workers = args.workers or settings.serve_processes()
    certfile = args.ssl_certfile or settings.tls_cert_file
    keyfile = args.ssl_keyfile or settings.tls_key_file
    if bool(certfile) != bool(keyfile):
        print("error: TLS needs both a certificate and its key", file=sys.stderr)
        return 2
    tls = {"ssl_certfile": str(certfile), "ssl_keyfile": str(keyfile)} if certfile else {}
    if workers > 1:
        if settings.embedded:
            print(
                "error: --workers > 1 needs HORDE_REDIS_URL (the embedded store lives inside"
                " one process)",
                file=sys.stderr,
            )
            return 2
        uvicorn.run(
            "horde_api.asgi:app_from_env",
            factory=True,
            host=args.host,
            port=args.port,
            workers=workers,
            log_level=args.log_level,
            access_log=False,
            # Forwarded headers are read by the app itself, from HORDE_TRUSTED_PROXIES only.
            proxy_headers=False,
            **tls,
        )
        return 0
    from horde_api.app import create_app

    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
        proxy_headers=False,
        **tls,
    )
    return 0


def cmd_db_upgrade(_: argparse.Namespace) -> int:
    _sessions(HordeSettings())
    print("database is at the newest schema")
    return 0


def _key_json(user_id: int, username: str, key: NewKey) -> dict[str, object]:
    return {"id": user_id, "username": username, "apikey": key.apikey, "key_id": key.key_id}


def cmd_user_create(args: argparse.Namespace) -> int:
    from horde_api.db.users import UsernameTaken, create_user

    settings = HordeSettings()
    with _sessions(settings)() as session:
        try:
            user, key = create_user(
                session,
                args.name,
                trusted=args.trusted,
                concurrency=args.concurrency or settings.default_concurrency,
                moderator=args.moderator,
            )
        except UsernameTaken:
            print(f"error: user {args.name!r} exists already", file=sys.stderr)
            return 1
    if args.json:
        print(json.dumps(_key_json(user.id, user.username, key)))
    else:
        print(
            f"user {user.username}#{user.id} created; API key (key id {key.key_id};"
            " the key is shown once, keep it secret):"
        )
        print(key.apikey)
    return 0


def _named_user(session: Session, name: str) -> User | None:
    """The user `name` (a name or an id), or None after saying there is none."""
    from horde_api.db.users import find_user

    user = find_user(session, name)
    if user is None:
        print(f"error: no user {name!r}", file=sys.stderr)
    return user


def cmd_user_moderator(args: argparse.Namespace) -> int:
    with _sessions(HordeSettings())() as session:
        user = _named_user(session, args.user)
        if user is None:
            return 1
        user.moderator = not args.off
        session.commit()
        name = f"{user.username}#{user.id}"
    # Keys already verified keep their old rights for HORDE_KEY_CACHE_SECONDS (1 s by default).
    print(f"{name} is {'no longer ' if args.off else ''}a moderator")
    return 0


def cmd_kudos_show(args: argparse.Namespace) -> int:
    from horde_api.kudos.ledger import recent_entries

    with _sessions(HordeSettings())() as session:
        user = _named_user(session, args.user)
        if user is None:
            return 1
        print(f"{user.username}#{user.id}: {user.kudos_cents / 100:.2f} kudos")
        parts = {
            "accumulated": user.accumulated_cents,
            "gifted": user.gifted_cents,
            "received": user.received_cents,
            "admin": user.admin_cents,
        }
        print("  " + ", ".join(f"{name} {cents / 100:.2f}" for name, cents in parts.items()))
        for entry in recent_entries(session, user.id, args.last):
            where = entry.request_id or entry.worker_id or entry.note or ""
            when = f"{entry.created_at:%Y-%m-%d %H:%M:%S}"
            print(f"  {when}  {entry.cents / 100:+10.2f}  {entry.kind:<11} {where}")
    return 0


def cmd_kudos_add(args: argparse.Namespace) -> int:
    import uuid

    from horde_api.kudos.ledger import KudosEvent, UserKudos, apply_events, to_cents

    with _sessions(HordeSettings())() as session:
        user = _named_user(session, args.user)
        if user is None:
            return 1
        event = KudosEvent(
            event_id=f"admin:{uuid.uuid4().hex}",
            user_id=user.id,
            cents=to_cents(args.amount),
            kind=UserKudos.ADMIN,
            note=args.note,
        )
        apply_events(session, [event])
        session.commit()
        session.refresh(user)
        print(f"{user.username}#{user.id} now has {user.kudos_cents / 100:.2f} kudos")
    return 0


def cmd_key_create(args: argparse.Namespace) -> int:
    from horde_api.db.users import add_key

    with _sessions(HordeSettings())() as session:
        user = _named_user(session, args.user)
        if user is None:
            return 1
        key = add_key(session, user)
        session.commit()
    if args.json:
        print(json.dumps(_key_json(user.id, user.username, key)))
    else:
        print(
            f"new key for {user.username}#{user.id} (key id {key.key_id};"
            " the key is shown once, keep it secret):"
        )
        print(key.apikey)
    return 0


def cmd_key_list(args: argparse.Namespace) -> int:
    from horde_api.db.users import list_keys

    with _sessions(HordeSettings())() as session:
        user = None
        if args.user:
            user = _named_user(session, args.user)
            if user is None:
                return 1
        rows = list_keys(session, user)
    for row in rows:
        state = "revoked" if row.revoked else "active"
        print(f"{row.key_id}\t{row.username}#{row.user_id}\t{row.created_at}\t{state}")
    return 0


def cmd_key_revoke(args: argparse.Namespace) -> int:
    from horde_api.db.users import revoke_key

    with _sessions(HordeSettings())() as session:
        if not revoke_key(session, args.key_id):
            print(f"error: no key with id {args.key_id!r}", file=sys.stderr)
            return 1
    print(f"key {args.key_id} revoked")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="horde-api", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the API server (settings from HORDE_* env vars)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=7420)
    serve.add_argument(
        "--workers",
        type=int,
        default=0,
        help="API processes (>1 needs HORDE_REDIS_URL); default HORDE_PROCESSES, else 1 embedded"
        " or one per CPU with Redis",
    )
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.add_argument(
        "--ssl-certfile",
        help="PEM certificate: serve HTTPS (default HORDE_TLS_CERT_FILE); r2 results are then"
        " https links (unless they are links to a results bucket)",
    )
    serve.add_argument("--ssl-keyfile", help="PEM key of the certificate (HORDE_TLS_KEY_FILE)")
    serve.set_defaults(func=cmd_serve)

    db = sub.add_parser("db", help="database schema").add_subparsers(
        dest="db_command", required=True
    )
    db.add_parser("upgrade", help="apply migrations").set_defaults(func=cmd_db_upgrade)

    user = sub.add_parser("user", help="users").add_subparsers(dest="user_command", required=True)
    create = user.add_parser("create", help="create a user and print its first API key")
    create.add_argument("name")
    create.add_argument("--trusted", action="store_true", help="highest priority tier")
    create.add_argument("--concurrency", type=int, default=0, help="images in flight at once")
    create.add_argument(
        "--moderator", action="store_true", help="may manage the prompt filters (/v2/filters)"
    )
    create.add_argument("--json", action="store_true")
    create.set_defaults(func=cmd_user_create)
    moderator = user.add_parser(
        "moderator", help="let a user (name or id) manage the prompt filters"
    )
    moderator.add_argument("user")
    moderator.add_argument("--off", action="store_true", help="take the right away")
    moderator.set_defaults(func=cmd_user_moderator)

    kudos = sub.add_parser("kudos", help="balances").add_subparsers(
        dest="kudos_command", required=True
    )
    show = kudos.add_parser("show", help="a user's balance, its parts and latest movements")
    show.add_argument("user", help="name, name#id or id")
    show.add_argument("--last", type=int, default=20, help="movements to list")
    show.set_defaults(func=cmd_kudos_show)
    add = kudos.add_parser("add", help="add kudos to a user's balance (negative: take some)")
    add.add_argument("user", help="name, name#id or id")
    add.add_argument("amount", type=float)
    add.add_argument("--note", help="why, kept in the ledger")
    add.set_defaults(func=cmd_kudos_add)

    key = sub.add_parser("key", help="API keys").add_subparsers(dest="key_command", required=True)
    key_create = key.add_parser("create", help="add a key to a user (name or id)")
    key_create.add_argument("user")
    key_create.add_argument("--json", action="store_true")
    key_create.set_defaults(func=cmd_key_create)
    key_list = key.add_parser("list", help="list keys (ids only; secrets are never stored)")
    key_list.add_argument("user", nargs="?")
    key_list.set_defaults(func=cmd_key_list)
    key_revoke = key.add_parser("revoke", help="revoke a key by its id")
    key_revoke.add_argument("key_id")
    key_revoke.set_defaults(func=cmd_key_revoke)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
