"""`voice-agent privacy export|delete` (a caller's data, on request) and `voice-agent purge`
(apply every business's retention now; the service also does it daily)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from storage.privacy_deletion import caller_summary, delete_caller
from storage.privacy_export import write_export
from storage.recordings import KEY_FILE, RecordingStore
from storage.retention import purge as purge_retention
from voice_agent.app import recording_store
from voice_agent.cli.database import database
from voice_agent.settings import Settings

ACTOR = "cli"

LABELS = {
    "calls": "calls (kept as anonymous statistics: number replaced, duration and outcome kept)",
    "calls_in_progress": "of them still in progress (number kept: delete again after the call)",
    "transcript_segments": "transcript lines",
    "turns": "turn timings",
    "recordings": "recordings (encrypted files and their records)",
    "messages": "messages taken",
    "bookings": "bookings (name, phone, address and problem erased; slot and status kept)",
    "handoffs": "handoffs (summary erased)",
    "sms_messages": "SMS to the number or about its calls (text erased)",
    "consent_records_kept": "consent records KEPT (proof of opt-in / opt-out)",
}


def _require_key(settings: Settings) -> None:
    """Export decrypts with the service's key and both commands key the audit entry's phone
    reference with it: a key made up here would do neither, so it must already exist."""
    if not settings.recording_key and not (settings.data_dir / KEY_FILE).exists():
        raise LookupError(
            "no recording key: set RECORDING_KEY as the service has it, or use the service's "
            f"data dir (VOICE_AGENT_DATA_DIR; {settings.data_dir / KEY_FILE} is missing)"
        )


def add_parsers(subparsers: Any) -> None:
    privacy = subparsers.add_parser("privacy", help="a caller's data: export or delete it")
    sub = privacy.add_subparsers(dest="privacy_command", required=True)
    export = sub.add_parser(
        "export", help="write everything kept about a number to FILE (+ FILE.recordings/)"
    )
    delete = sub.add_parser("delete", help="delete what a business keeps about a number")
    for p in (export, delete):
        p.add_argument("--business", type=int, required=True, metavar="ID")
        p.add_argument("--phone", required=True, help="E.164, as stored: +15555550123")
    export.add_argument("--out", type=Path, required=True, metavar="FILE")
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    delete.add_argument("--json", action="store_true", help="print the result as JSON")

    purge = subparsers.add_parser("purge", help="apply the retention periods now")
    purge.add_argument("--json", action="store_true")


def privacy(args: argparse.Namespace, settings: Settings) -> int:
    with database(settings) as engine:
        try:
            _require_key(settings)
            store = recording_store(settings, engine)
            if args.privacy_command == "export":
                return _export(args, engine, store)
            return _delete(args, engine, store)
        except (LookupError, ValueError, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1


def _export(args: argparse.Namespace, engine: Engine, store: RecordingStore) -> int:
    data = write_export(engine, store, args.business, args.phone, args.out, actor=ACTOR)
    wavs = [r for r in data["recordings"] if r.get("file")]
    print(
        f"exported {len(data['calls'])} calls, {len(data['bookings'])} bookings, "
        f"{len(data['messages'])} messages, {len(data['consent_records'])} consent records, "
        f"{len(data['sms_messages'])} SMS to {args.out}"
    )
    if data["recordings"]:
        print(f"{len(wavs)} recordings to {args.out}.recordings/")
    for r in data["recordings"]:
        if not r.get("file"):
            print(f"warning: recording of {r['call_sid']} not exported: {r['error']}")
    print("the export holds personal data: hand it over securely, then delete it")
    return 0


def _delete(args: argparse.Namespace, engine: Engine, store: RecordingStore) -> int:
    preview = caller_summary(engine, args.business, args.phone)
    found = {k: v for k, v in preview.items() if k != "consent_records_kept"}
    if not any(found.values()):
        print(
            f"nothing stored for {args.phone} at business {args.business} "
            f"({preview['consent_records_kept']} consent records, which are kept); numbers are "
            "stored in E.164 form, e.g. +15555550123"
        )
        return 0
    if not args.yes:
        print(f"Business {args.business}, number {args.phone}:")
        for key, label in LABELS.items():
            if preview[key] or key in ("calls", "consent_records_kept"):
                print(f"  {preview[key]:>5}  {label}")
        if not sys.stdin.isatty():
            print(
                "refusing to delete without confirmation: run it in a terminal, or add --yes",
                file=sys.stderr,
            )
            return 2
        try:
            answer = input("Delete this permanently? Type 'yes' to confirm: ")
        except EOFError:
            answer = ""
        if answer.strip().lower() != "yes":
            print("nothing deleted")
            return 1
    result = delete_caller(engine, store, args.business, args.phone, actor=ACTOR)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"deleted: {result['transcript_segments']} transcript lines, "
            f"{result['recordings']} recordings, {result['messages']} messages; "
            f"redacted {result['bookings_redacted']} bookings, {result['handoffs_redacted']} "
            f"handoffs, {result['sms_bodies_blanked']} SMS; anonymized "
            f"{result['calls_anonymized']} calls; kept {result['consent_records_kept']} "
            "consent records"
        )
    if result["calls_in_progress"]:
        print(
            f"note: {result['calls_in_progress']} call(s) from this number are in progress: "
            "what they stored is deleted, their number is kept until they end, and nothing "
            "more of them is stored",
            file=sys.stderr,
        )
    return 0


def purge(args: argparse.Namespace, settings: Settings) -> int:
    with database(settings) as engine:
        try:
            summary = purge_retention(engine, recording_store(settings, engine))
        except (ValueError, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    for b in summary["businesses"]:
        print(
            f"business {b['business_id']}: {b['recordings']} recordings "
            f"(> {b['recording_retention_days']} d), {b['transcript_segments']} transcript lines "
            f"and {b['sms_bodies']} SMS texts (> {b['transcript_retention_days']} d) purged"
        )
    if summary["totals"]["orphan_files"]:
        print(f"{summary['totals']['orphan_files']} unregistered recording files removed")
    return 0


HANDLERS = {"privacy": privacy, "purge": purge}
