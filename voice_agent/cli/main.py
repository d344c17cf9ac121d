"""`voice-agent`: serve, replay, calls, db."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from pathlib import Path

import httpx
import pydantic
from sqlalchemy.exc import ArgumentError, OperationalError

from media.wav import AudioFileError, write_wav
from storage.calls import CallStore
from voice_agent.cli import business as cli_business
from voice_agent.cli import notifications as cli_notifications
from voice_agent.cli import privacy as cli_privacy
from voice_agent.cli import users as cli_users
from voice_agent.cli.database import database
from voice_agent.ops import log_redaction
from voice_agent.settings import DATABASE_FILE, ConfigError, Settings, shown_database_url

PROG = "voice-agent"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__)
    parser.add_argument(
        "--debug",
        action="store_true",
        help="on an error, show the traceback (also VOICE_AGENT_DEBUG=1)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the service")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes on the port (above 1 needs REDIS_URL); SIGTERM drains them",
    )

    replay = sub.add_parser(
        "replay",
        help="place a call from WAV files (one per caller turn) or from a recorded call",
    )
    replay.add_argument("files", nargs="*", type=Path)
    replay.add_argument(
        "--from-call",
        metavar="CALL_SID",
        help="replay the caller channel of this stored call's recording as one stream",
    )
    replay.add_argument(
        "--save-caller-audio",
        type=Path,
        metavar="OUT.wav",
        help="with --from-call: also write the recorded caller channel as a WAV fixture",
    )
    replay.add_argument("--url", default="http://127.0.0.1:8000", help="the service's base URL")
    replay.add_argument(
        "--fast", action="store_true", help="send caller audio faster than real time"
    )
    replay.add_argument("--from", dest="caller", default="+15555550123")
    replay.add_argument(
        "--to", dest="line", help="default +15550100200; with --from-call, the call's line"
    )
    replay.add_argument("--save-agent-audio", type=Path, metavar="OUT.wav")

    calls = sub.add_parser("calls", help="stored calls")
    calls_sub = calls.add_subparsers(dest="calls_command", required=True)
    calls_list = calls_sub.add_parser("list")
    calls_list.add_argument("--json", action="store_true")
    calls_list.add_argument("--limit", type=int, default=50)
    calls_show = calls_sub.add_parser("show")
    calls_show.add_argument("call_sid")
    calls_show.add_argument("--json", action="store_true")

    database = sub.add_parser("db", help="database schema")
    database.add_subparsers(dest="db_command", required=True).add_parser("upgrade")
    cli_notifications.add_parsers(sub)
    cli_business.add_parsers(sub)
    cli_users.add_parsers(sub)
    cli_privacy.add_parsers(sub)

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=log_redaction.LOG_FORMAT)
    if args.command not in ("serve", "db"):  # the schema check on every command is no news
        logging.getLogger("alembic").setLevel(logging.WARNING)
    if args.command != "serve":  # nor is each request `replay` makes (it says what happened)
        logging.getLogger("httpx").setLevel(logging.WARNING)
    log_redaction.install()
    handlers = {"serve": _serve, "replay": _replay, "calls": _calls, "db": _db}
    for module in (cli_notifications, cli_business, cli_users, cli_privacy):
        handlers.update(module.HANDLERS)
    handler = handlers[args.command]
    settings: Settings | None = None
    try:
        settings = Settings()
        return handler(args, settings)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        explained = explain(exc, settings)
        if explained is None or args.debug or os.environ.get("VOICE_AGENT_DEBUG") == "1":
            raise
        message, code = explained
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return code


def explain(exc: Exception, settings: Settings | None) -> tuple[str, int] | None:
    """What to fix, and the exit code (2: a setting, 1: something not there), for errors
    that are a setting or the world rather than a bug; None for anything else."""
    from voice_agent.replay.calls import ReplayError

    if isinstance(exc, pydantic.ValidationError) and exc.title == "Settings":
        problems = [
            f"{'.'.join(map(str, e['loc'])).upper()}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        ]
        return "; ".join(problems), 2
    if isinstance(exc, ConfigError):
        return str(exc), 2
    if isinstance(exc, ArgumentError):  # a URL SQLAlchemy refused past the settings' checks
        return f"DATABASE_URL: {_first_line(exc)}", 2
    if isinstance(exc, OperationalError):  # refused, unknown host, bad password, no file
        reason = _first_line(exc.orig if exc.orig is not None else exc)
        where, is_file = _database(settings)
        hint = "may this user write to its directory?" if is_file else "is it running?"
        return f"cannot use the database at {where}: {reason} ({hint} is DATABASE_URL right?)", 1
    if isinstance(exc, ReplayError):
        return str(exc), 1
    if isinstance(exc, httpx.TransportError):
        return f"cannot reach the service: {_first_line(exc)}", 1
    return None


def _database(settings: Settings | None) -> tuple[str, bool]:
    """The database for a message (no password), and whether it is a SQLite file."""
    if settings is None or not settings.database_url:
        where = settings.data_dir / DATABASE_FILE if settings else "the data dir"
        return str(where), True
    return shown_database_url(settings.database_url), settings.database_url.startswith("sqlite")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from voice_agent.cli.serve import serve

    settings.resolved_database_url()  # a URL that cannot work stops here, in one line
    serve(args.host, args.port, args.workers, settings)
    return 0


def _replay(args: argparse.Namespace, settings: Settings) -> int:
    from voice_agent.replay.audio import load_turn
    from voice_agent.replay.calls import ReplayError, place_call, place_stream_call, recorded_caller

    if bool(args.files) == bool(args.from_call):
        print("error: give caller audio files or --from-call CALL_SID (one)", file=sys.stderr)
        return 2
    if args.save_caller_audio and not args.from_call:
        print("error: --save-caller-audio needs --from-call", file=sys.stderr)
        return 2
    if args.from_call:
        try:
            recorded = recorded_caller(settings, args.from_call)
        except ReplayError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        if recorded.streams > 1:
            print(f"call {args.from_call} has {recorded.streams} recordings; replaying the first")
        print(f"call {args.from_call}: {len(recorded.audio) / 8000:.1f} s of caller audio")
        if args.save_caller_audio:
            write_wav(args.save_caller_audio, recorded.audio)
            print(f"caller channel written to {args.save_caller_audio}")
        call = place_stream_call(
            args.url,
            settings.auth_token(),
            recorded.audio,
            name=args.from_call,
            caller=args.caller,  # never the real caller's number: no texts to a customer
            line=args.line or recorded.line,
            fast=args.fast,
            on_event=print,
        )
    else:
        for path in args.files:  # reject a bad file before the call is placed
            try:
                load_turn(path)
            except AudioFileError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
        call = place_call(
            args.url,
            settings.auth_token(),
            args.files,
            caller=args.caller,
            line=args.line or "+15550100200",
            fast=args.fast,
            on_event=print,
        )
    result = asyncio.run(call)
    print(f"call {result.call_sid}: after the stream, Twilio was told: {result.after_stream_twiml}")
    if args.save_agent_audio:
        write_wav(args.save_agent_audio, result.agent_audio)
    with database(settings) as engine:
        stored = CallStore(engine).call_json(result.call_sid)
    if stored:
        for line in stored["transcript"]:
            print(f"  {line['speaker']:>6}: {line['text']}")
    return 0 if result.greeted else 1


def _calls(args: argparse.Namespace, settings: Settings) -> int:
    with database(settings) as engine:
        return _show_calls(args, CallStore(engine))


def _show_calls(args: argparse.Namespace, store: CallStore) -> int:
    if args.calls_command == "list":
        rows = store.list_calls(args.limit)
        if args.json:
            print(json.dumps(rows, indent=2))
        for r in [] if args.json else rows:
            print(
                f"{r['call_sid']}  {r['started_at']}  {r['from']} -> {r['to']}  "
                f"{r['status']}  {r['outcome'] or '-'}  {r['duration_s'] or 0:.1f}s"
            )
        return 0
    call = store.call_json(args.call_sid)
    if call is None:
        print(f"error: no call {args.call_sid}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(call, indent=2))
        return 0
    print(
        f"{call['call_sid']}  {call['from']} -> {call['to']}  {call['status']}  {call['outcome']}"
    )
    for line in call["transcript"]:
        flag = " [interrupted]" if line["interrupted"] else ""
        print(f"  {line['start_ms'] / 1000:7.2f}s {line['speaker']:>6}: {line['text']}{flag}")
    for turn in call["turns"]:
        print(f"  turn {turn['index']}: latency {turn['latency_ms']} ms")
    return 0


def _db(args: argparse.Namespace, settings: Settings) -> int:
    with database(settings):
        print("database is at the newest schema")
    return 0


if __name__ == "__main__":
    sys.exit(main())
