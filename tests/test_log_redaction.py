"""Phone numbers and labelled names are redacted by real logging handlers."""

from __future__ import annotations

import io
import logging
import uuid
from collections.abc import Iterator

import pytest
from uvicorn.logging import AccessFormatter

from voice_agent.ops.log_redaction import RedactingFilter, install, private, redact, uninstall

NUMBER = "+15555550123"
MASKED = "+1******0123"


class Captured:
    def __init__(self) -> None:
        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
        self.logger = logging.getLogger(f"test.redaction.{uuid.uuid4().hex}")
        self.logger.propagate = False
        self.logger.setLevel(logging.DEBUG)
        self.logger.addHandler(self.handler)

    @property
    def text(self) -> str:
        return self.stream.getvalue()


@pytest.fixture
def captured() -> Iterator[Captured]:
    c = Captured()
    install(c.logger, extra=())
    yield c
    c.logger.removeHandler(c.handler)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"from {NUMBER} to +15550100200", f"from {MASKED} to +1******0200"),
        ("GET /api/calls?caller=%2B15555550123", "GET /api/calls?caller=%2B1******0123"),
        ("+1 (555) 555-0123", "+1 (***) ***-0123"),
        ("+44 20 7946 0958", "+4* ** **** 0958"),
        ("call (555) 555-0123.", "call (***) ***-0123."),
        ("555-555-0123", "***-***-0123"),
        ("555.555.0123", "***.***.0123"),
        ("555 555 0123", "*** *** 0123"),
        ("1-555-555-0123", "1-***-***-0123"),
        ("5555550123", "******0123"),
        ("15555550123", "1******0123"),
    ],
)
def test_phone_number_shapes(text: str, expected: str) -> None:
    assert redact(text) == expected
    assert redact(expected) == expected  # idempotent: a record may pass several handlers


@pytest.mark.parametrize(
    "text",
    [
        "call CA5555550123abcdef5555550123abcdef ended",  # a CallSid's hex digits
        "at 2026-03-02T15:00:00+00:00 offset +10:00",
        "epoch 1732888888 took 0.5555550123 s",
        "from 192.168.100.200:5060",
        "turn 3: latency 1021.5 ms, p95 1163 ms",
        "filename=intake.py hostname=agent-1",
    ],
)
def test_no_false_positives_on_ordinary_log_text(text: str) -> None:
    assert redact(text) == text


def test_numbers_in_arguments_and_in_the_message_are_masked(captured: Captured) -> None:
    log = captured.logger
    log.info("call from %s to %s", NUMBER, "+15550100200")
    log.warning("callback (555) 555-0123 please")
    log.info("%(caller)s rang", {"caller": NUMBER})

    class Caller:
        def __str__(self) -> str:
            return f"Caller({NUMBER})"

    log.info("dialling %s", Caller())
    assert captured.text.splitlines() == [
        f"INFO call from {MASKED} to +1******0200",
        "WARNING callback (***) ***-0123 please",
        f"INFO {MASKED} rang",
        f"INFO dialling Caller({MASKED})",
    ]
    assert "5555550123" not in captured.text


def test_exception_text_is_masked(captured: Captured) -> None:
    try:
        raise ValueError(f"no consent on record for {NUMBER}")
    except ValueError:
        captured.logger.exception("sms failed for call %s", "CA123")
    assert "sms failed for call CA123" in captured.text
    assert f"ValueError: no consent on record for {MASKED}" in captured.text
    assert NUMBER not in captured.text


def test_labelled_names_are_redacted_free_text_names_are_not(captured: Captured) -> None:
    log = captured.logger
    log.info("booked name=%r at %s", "Maria Lopez", "9:00")
    log.info("message %s", {"name": "Sam Reyes", "reason": "quote"})
    log.info('webhook body {"caller_name": "Ann O\'Neil", "id": 4}')
    log.info("booked for %s", private("Maria Lopez"))
    # The limit, on purpose: an unlabelled name cannot be told from any other word.
    log.info("Maria Lopez called about her sink")
    assert captured.text.splitlines() == [
        "INFO booked name='[redacted]' at 9:00",
        "INFO message {'name': '[redacted]', 'reason': 'quote'}",
        'INFO webhook body {"caller_name": "[redacted]", "id": 4}',
        "INFO booked for [redacted]",
        "INFO Maria Lopez called about her sink",
    ]


def test_private_renders_redacted_even_without_the_filter() -> None:
    value = private("Maria Lopez")
    assert f"{value}" == str(value) == repr(value) == "[redacted]"
    assert "for %s" % (value,) == "for [redacted]"  # noqa: UP031 - as logging formats it
    assert value.value == "Maria Lopez"


def test_bad_arguments_do_not_leak_through_the_logging_error_report(
    captured: Captured, capsys: pytest.CaptureFixture[str]
) -> None:
    captured.logger.info("x %s %s", NUMBER)  # one argument short
    assert MASKED in captured.text and NUMBER not in captured.text
    assert NUMBER not in capsys.readouterr().err


def test_install_is_idempotent_and_covers_every_handler(captured: Captured) -> None:
    second = io.StringIO()
    extra = logging.StreamHandler(second)
    captured.logger.addHandler(extra)
    try:
        install(captured.logger, extra=())
        install(captured.logger, extra=())
        for handler in captured.logger.handlers:
            assert sum(isinstance(f, RedactingFilter) for f in handler.filters) == 1
        captured.logger.info("to %s", NUMBER)
        assert captured.text == f"INFO to {MASKED}\n" and second.getvalue() == f"to {MASKED}\n"
        uninstall(captured.logger, extra=())
        assert not any(h.filters for h in captured.logger.handlers)
    finally:
        captured.logger.removeHandler(extra)


def test_install_on_the_root_logger_with_caplog(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    install()
    try:
        assert any(isinstance(f, RedactingFilter) for f in caplog.handler.filters)
        logging.getLogger("voice_agent.notify.sms").info("sms to %s refused: no consent", NUMBER)
        assert f"sms to {MASKED} refused" in caplog.text
        assert NUMBER not in caplog.text
        assert caplog.records[-1].getMessage() == f"sms to {MASKED} refused: no consent"
    finally:
        uninstall()


def test_uvicorn_access_log_keeps_its_shape() -> None:
    """uvicorn's access formatter unpacks record.args: they are redacted one by one."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s', use_colors=False)
    )
    access = logging.getLogger("uvicorn.access")
    access.addHandler(handler)
    level = access.level
    access.setLevel(logging.INFO)
    try:
        install()  # the root logger, and uvicorn's loggers by default
        access.info(
            '%s - "%s %s HTTP/%s" %d',
            "127.0.0.1:51000",
            "GET",
            "/api/calls?caller=%2B15555550123&limit=5",
            "1.1",
            200,
        )
    finally:
        uninstall()
        access.removeHandler(handler)
        access.setLevel(level)
    assert stream.getvalue() == (
        '127.0.0.1:51000 - "GET /api/calls?caller=%2B1******0123&limit=5 HTTP/1.1" 200 OK\n'
    )
