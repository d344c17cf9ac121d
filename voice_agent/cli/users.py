"""`voice-agent users add|list|disable`: the people who use the dashboard API, and their
tokens. A token is printed once, when the user is added; only its hash is stored."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from storage.audit import AuditLog
from storage.users import ROLES, UserStore
from voice_agent.cli.database import database
from voice_agent.settings import Settings


def add_parsers(subparsers: Any) -> None:
    users = subparsers.add_parser("users", help="dashboard users and their API tokens")
    sub = users.add_subparsers(dest="users_command", required=True)
    add = sub.add_parser("add", help="add a user and print their token, once")
    add.add_argument("--business", type=int, required=True, metavar="ID")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--name")
    add.add_argument("--json", action="store_true")
    lst = sub.add_parser("list")
    lst.add_argument("--business", type=int, required=True, metavar="ID")
    lst.add_argument("--json", action="store_true")
    disable = sub.add_parser("disable", help="refuse a user's token from now on")
    disable.add_argument("user_id", type=int)


def users(args: argparse.Namespace, settings: Settings) -> int:
    with database(settings) as engine:
        try:
            return _run(args, UserStore(engine), AuditLog(engine))
        except (LookupError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1


def _run(args: argparse.Namespace, store: UserStore, audit: AuditLog) -> int:
    if args.users_command == "add":
        user_id, token = store.add(args.business, args.role, args.name)
        audit.record(args.business, "cli", "create_user", f"user:{user_id}", {"role": args.role})
        if args.json:
            print(json.dumps({"user_id": user_id, "token": token}))
        else:
            print(f"user {user_id} ({args.role}) added to business {args.business}")
            print(f"token (shown this once, only its hash is kept): {token}")
    elif args.users_command == "list":
        rows = store.list(args.business)
        if args.json:
            print(json.dumps(rows, indent=2))
        for r in [] if args.json else rows:
            state = "disabled" if r["disabled"] else "active"
            print(f"{r['id']:>4}  {r['role']:<10} {state:<8} {r['created_at']}  {r['name'] or '-'}")
    else:
        business_id = store.disable(args.user_id)
        audit.record(business_id, "cli", "disable_user", f"user:{args.user_id}")
        print(f"user {args.user_id} disabled")
    return 0


HANDLERS = {"users": users}
