"""Keep callers' phone numbers (and labelled names) out of the logs.

`install()` adds a `RedactingFilter` to every handler of the root logger and of uvicorn's
loggers (whose access log carries query strings such as `?caller=%2B15555550123`). The
filter rewrites each record in place, before any handler formats it:

- phone numbers: E.164 (`+15555550123`, also `%2B`-encoded and with separators such as
  `+44 20 7946 0958`) and US numbers of 10 or 11 digits (`(555) 555-0123`, `555.555.0123`,
  `1-555-555-0123`, `5555550123`) keep their country code and last four digits:
  `+1******0123`, `(***) ***-0123`;
- names, only where the message labels them: `name=…`, `caller_name=…`, `'name': '…'`,
  `"name": "…"` (also customer_name, contact_name, dispatcher_name, full_name, first_name,
  last_name). A quoted value is redacted whole; an unquoted one up to the first space, so
  log names with `%r`;
- the formatted message (after `%` args), the exception text and the stack text.

What it cannot do, honestly: it does not find names in free text ("Maria called about her
sink" goes through as is), nor numbers spoken as words in a transcript ("five five five…").
So the service must not log names or transcript text at all; where a name has to appear
in a format string, pass it as `private(name)`, which always renders as `[redacted]`,
filter or no filter. Numbers in other shapes (7-digit local numbers, extensions) are not
caught either, and a 10-digit number that looks like a US phone number (a numeric id) is
masked even if it is not one.

It guards handlers, not loggers: a handler added after `install()` (or a logger with
`propagate=False` and handlers of its own, other than uvicorn's) is not covered, so call
`install()` once logging is configured (the app does it at start-up). Exception text is
rendered with the standard formatter so that it can be redacted; `record.exc_info` is left
in place, so a handler that renders the exception itself (a JSON or error-tracking handler)
sees the raw exception.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

REDACTED = "[redacted]"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")
NAME_KEYS = (
    "name",
    "caller_name",
    "customer_name",
    "contact_name",
    "dispatcher_name",
    "full_name",
    "first_name",
    "last_name",
)

# A `+` (or %2B) and a country code, then 7 to 15 digits in all, maybe with separators.
_E164 = re.compile(r"(?:\+|%2[Bb])[1-9](?:[ .\-]?\(?\)?[ .\-]?\d){6,14}(?!\d)")
# NANP: optional trunk 1, area code and exchange starting 2-9, four more digits.
_US = re.compile(
    r"(?<![\w.+*])"
    r"(?:1[ .\-]?)?"
    r"(?:\(\s*[2-9]\d{2}\s*\)|[2-9]\d{2})[ .\-]?"
    r"[2-9]\d{2}[ .\-]?"
    r"\d{4}"
    r"(?![\w*]|\.\d)"
)
_NAME = re.compile(
    r"(?P<key>(?<!\w)(?P<q>[\"']?)(?:" + "|".join(NAME_KEYS) + r")(?P=q)\s*[:=]\s*)"
    r"(?P<value>\[redacted\]|\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|[^\s,;&)}\]]+)"
)


def _mask(text: str, keep_head: int) -> str:
    """Star every digit but the first `keep_head` and the last four; keep the rest."""
    digits = [i for i, ch in enumerate(text) if ch.isdigit()]
    hidden = set(digits[keep_head:-4])
    return "".join("*" if i in hidden else ch for i, ch in enumerate(text))


def _mask_e164(match: re.Match[str]) -> str:
    text = match.group()
    plus = 1 if text.startswith("+") else 3  # "+" or "%2B"
    return text[:plus] + _mask(text[plus:], 1)  # the first digit of the country code stays


def _mask_us(match: re.Match[str]) -> str:
    text = match.group()
    trunk = 1 if sum(ch.isdigit() for ch in text) == 11 else 0
    return _mask(text, trunk)


def _mask_name(match: re.Match[str]) -> str:
    value = match.group("value")
    quote = value[0] if value[0] in "\"'" else ""
    return f"{match.group('key')}{quote}{REDACTED}{quote}"


def redact_phones(text: str) -> str:
    return _US.sub(_mask_us, _E164.sub(_mask_e164, text))


def redact(text: str) -> str:
    """Phone numbers masked, labelled names replaced. Idempotent."""
    return _NAME.sub(_mask_name, redact_phones(text))


class private:
    """A value that never renders: `str()`, `repr()` and `format()` give `[redacted]`."""

    __slots__ = ("value",)

    def __init__(self, value: object) -> None:
        self.value = value

    def __str__(self) -> str:
        return REDACTED

    __repr__ = __str__

    def __format__(self, spec: str) -> str:
        return REDACTED


_exceptions = logging.Formatter()


class RedactingFilter(logging.Filter):
    """Rewrites records in place; never drops one."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            full = record.getMessage()
        except Exception:  # bad args: logging would print msg and args raw in its error
            record.msg = redact(f"{record.msg!s} (unformattable arguments: {record.args!r})")
            record.args = None
        else:
            clean = redact(full)
            if clean != full and not _redact_args(record, clean):
                record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = _exceptions.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def _redact_args(record: logging.LogRecord, clean: str) -> bool:
    """Redact the template and each argument, keeping the record's shape (uvicorn's access
    formatter unpacks `record.args`), if that gives the same text as redacting the whole."""
    if not isinstance(record.msg, str) or not record.args:
        return False
    args: Any
    if isinstance(record.args, Mapping):
        args = {k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()}
    else:
        args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
    msg = redact_phones(record.msg)  # not names: `name=%s` must keep its placeholder
    try:
        if msg % args != clean:
            return False
    except Exception:
        return False
    record.msg, record.args = msg, args
    return True


def _loggers(logger: logging.Logger | None, extra: Iterable[str]) -> list[logging.Logger]:
    return [logger or logging.getLogger(), *(logging.getLogger(name) for name in extra)]


def install(
    logger: logging.Logger | None = None, extra: Iterable[str] = UVICORN_LOGGERS
) -> RedactingFilter:
    """Add the filter to every handler of `logger` (the root logger by default) and of the
    `extra` loggers. Idempotent: a handler that has one already is left alone."""
    redactor = RedactingFilter()
    for lg in _loggers(logger, extra):
        for handler in lg.handlers:
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(redactor)
    return redactor


def uninstall(logger: logging.Logger | None = None, extra: Iterable[str] = UVICORN_LOGGERS) -> None:
    for lg in _loggers(logger, extra):
        for handler in lg.handlers:
            for f in [f for f in handler.filters if isinstance(f, RedactingFilter)]:
                handler.removeFilter(f)
