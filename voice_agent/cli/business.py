"""`voice-agent business add|list|export|import`: businesses and their receptionist profiles."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from storage.businesses import BusinessStore
from storage.profiles import ProfileError, check_timezone
from voice_agent.cli.database import database
from voice_agent.settings import Settings


def add_parsers(subparsers: Any) -> None:
    business = subparsers.add_parser("business", help="businesses and their profiles")
    sub = business.add_subparsers(dest="business_command", required=True)
    add = sub.add_parser("add", help="add a business answering calls to --line")
    add.add_argument("--name", required=True)
    add.add_argument("--line", required=True, help="its Twilio number, E.164 (+15550100200)")
    add.add_argument("--timezone", required=True, help="IANA name, e.g. America/Chicago")
    add.add_argument("--json", action="store_true")
    lst = sub.add_parser("list")
    lst.add_argument("--json", action="store_true")
    export = sub.add_parser("export", help="print the profile as YAML")
    export.add_argument("id", type=int)
    imp = sub.add_parser("import", help="set the profile from a YAML file (as export prints)")
    imp.add_argument("id", type=int)
    imp.add_argument("file", type=Path)


def business(args: argparse.Namespace, settings: Settings) -> int:
    with database(settings) as engine:
        try:
            return _run(args, BusinessStore(engine))
        except ProfileError as exc:
            print(f"error: {args.file}: {exc}", file=sys.stderr)
            return 1
        except (LookupError, ValueError, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1


def _run(args: argparse.Namespace, store: BusinessStore) -> int:
    if args.business_command == "add":
        check_timezone(args.timezone)
        business_id = store.add(args.name, args.line, args.timezone)
        row = {"id": business_id, "name": args.name, "line": args.line}
        print(json.dumps(row) if args.json else f"business {business_id}: {args.name}")
    elif args.business_command == "list":
        rows = store.list()
        if args.json:
            print(json.dumps(rows, indent=2))
        for r in [] if args.json else rows:
            print(f"{r['id']:>4}  {r['line']:<14} {r['timezone']:<20} {r['name']}")
    elif args.business_command == "export":
        print(store.export_yaml(args.id), end="")
    else:
        notes = store.import_yaml(args.id, args.file.read_text(encoding="utf-8"))
        print(f"profile of business {args.id} updated from {args.file}")
        for note in notes:
            print(f"note: {note}")
    return 0


HANDLERS = {"business": business}
