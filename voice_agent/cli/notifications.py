"""`voice-agent webhooks add|list`: CRM webhook endpoints of a business."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from storage.webhook_store import EVENTS, WebhookStore
from voice_agent.cli.database import database
from voice_agent.settings import Settings


def add_parsers(subparsers: Any) -> None:  # argparse's _SubParsersAction is private
    hooks = subparsers.add_parser("webhooks", help="CRM webhook endpoints")
    sub = hooks.add_subparsers(dest="webhooks_command", required=True)

    add = sub.add_parser("add", help="add an endpoint; prints its signing secret once")
    add.add_argument("--business", type=int, required=True, metavar="ID")
    add.add_argument("--url", required=True)
    add.add_argument(
        "--event",
        dest="events",
        action="extend",
        nargs="+",
        choices=EVENTS,
        default=[],
        metavar="EVENT",
        help=f"one or more of {', '.join(EVENTS)} (repeatable); default: every event",
    )
    add.add_argument("--json", action="store_true")

    lst = sub.add_parser("list", help="endpoints of a business (secrets are not shown)")
    lst.add_argument("--business", type=int, required=True, metavar="ID")
    lst.add_argument("--json", action="store_true")


def webhooks(args: argparse.Namespace, settings: Settings) -> int:
    with database(settings) as engine:
        return _run(args, WebhookStore(engine))


def _run(args: argparse.Namespace, store: WebhookStore) -> int:
    if args.webhooks_command == "add":
        try:
            endpoint_id, secret = store.add_endpoint(args.business, args.url, args.events)
        except (LookupError, ValueError) as exc:
            print(f"error: {exc.args[0] if exc.args else exc}", file=sys.stderr)
            return 1
        events = sorted(set(args.events))
        if args.json:
            row = {"id": endpoint_id, "business_id": args.business, "url": args.url}
            print(json.dumps({**row, "events": events, "secret": secret}, indent=2))
            return 0
        print(f"endpoint {endpoint_id}: {args.url} (events: {', '.join(events) or 'all'})")
        print(f"signing secret, shown only this once: {secret}")
        return 0
    rows = store.list_endpoints(args.business)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        state = "active" if r["active"] else "inactive"
        print(f"{r['id']}  {state}  {r['url']}  {', '.join(r['events']) or 'all events'}")
    return 0


HANDLERS = {"webhooks": webhooks}
