"""Call recordings, encrypted at rest.

A recording is interleaved 16-bit stereo PCM at 8 kHz (caller left, agent right), cut into
records of about a second, each sealed with AES-GCM under its own nonce. A crash loses at
most the record being filled; nothing unencrypted ever touches the disk. Reading yields a
WAV whose header is computed from what was actually written."""

from __future__ import annotations

import base64
import glob
import os
import secrets
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from storage.db import iso, session_factory
from storage.models import Call, Recording
from storage.secret_files import read_or_create

MAGIC = b"VAREC1\n"
KEY_FILE = "recording.key"  # in the data dir, when RECORDING_KEY is not set
RATE, CHANNELS, WIDTH = 8000, 2, 2
BYTES_PER_SECOND = RATE * CHANNELS * WIDTH
NONCE, TAG = 12, 16


class RecordingError(ValueError):
    """A recording that cannot be read: wrong key, truncated or tampered."""


def load_key(env_value: str | None, key_file: Path, *, create: bool = True) -> bytes:
    """RECORDING_KEY (base64 of 32 bytes) or a key file made once, readable by us only.
    `create=False` (readers such as `replay --from-call`): a missing key is an error, not
    a new key that could never decrypt what exists."""
    if env_value:
        return _decode_key(env_value, "RECORDING_KEY")
    if not create and not key_file.exists():
        raise RecordingError(f"no recording key: RECORDING_KEY is unset and {key_file} is missing")
    # Made once: workers starting together on one data dir all get the key that won.
    text, _ = read_or_create(
        key_file, lambda: base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()
    )
    return _decode_key(text, str(key_file))


def _decode_key(text: str, where: str) -> bytes:
    try:
        key = base64.b64decode(text, validate=True)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise ValueError(f"{where}: a recording key is 32 bytes, base64-encoded")
    return key


class EncryptedWriter:
    def __init__(self, path: Path, key: bytes, flush_bytes: int = BYTES_PER_SECOND) -> None:
        self.path = path
        self._aead = AESGCM(key)
        self._flush_bytes = flush_bytes
        self._buffer = bytearray()
        self._index = 0
        self.pcm_bytes = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self._file = os.fdopen(fd, "wb")
        self._file.write(MAGIC)

    def write(self, pcm: bytes) -> None:
        self._buffer += pcm
        self.pcm_bytes += len(pcm)
        if len(self._buffer) >= self._flush_bytes:
            self.flush()

    def flush(self) -> None:
        if not self._buffer:
            return
        nonce = secrets.token_bytes(NONCE)
        sealed = self._aead.encrypt(nonce, bytes(self._buffer), _aad(self._index))
        self._file.write(struct.pack(">I", len(sealed) + NONCE) + nonce + sealed)
        self._file.flush()
        os.fsync(self._file.fileno())
        self._index += 1
        self._buffer.clear()

    def close(self) -> None:
        self.flush()
        self._file.close()

    @property
    def duration_s(self) -> float:
        return self.pcm_bytes / BYTES_PER_SECOND


def _aad(index: int) -> bytes:
    return MAGIC + struct.pack(">Q", index)  # records cannot be reordered or swapped


def decrypted_pcm(path: Path, key: bytes) -> Iterator[bytes]:
    aead = AESGCM(key)
    with open(path, "rb") as f:
        if f.read(len(MAGIC)) != MAGIC:
            raise RecordingError(f"{path.name}: not a recording")
        file_size = os.fstat(f.fileno()).st_size
        index = 0
        while header := f.read(4):
            if len(header) < 4:
                return  # a crash mid-header: everything before it is intact
            (size,) = struct.unpack(">I", header)
            if size < NONCE + TAG:
                raise RecordingError(f"{path.name}: record {index} is malformed")
            if size > file_size - f.tell():
                return  # a crash mid-record: that last second is lost, no more
            record = f.read(size)  # (checked first: a bad size must not allocate gigabytes)
            try:
                yield aead.decrypt(record[:NONCE], record[NONCE:], _aad(index))
            except Exception as exc:  # InvalidTag: wrong key or tampering
                raise RecordingError(f"{path.name}: record {index} failed to decrypt") from exc
            index += 1


def readable_pcm_bytes(path: Path, key: bytes) -> int:
    """How much audio a file holds, up to its last complete record (a file cut short by a
    crash reads up to there; see decrypted_pcm). Raises RecordingError for a wrong key or
    a tampered record."""
    return sum(len(chunk) for chunk in decrypted_pcm(path, key))


def call_sid_of(path: Path) -> str:
    """The call a recording file belongs to, from its name (`<call_sid>-<random>.rec`)."""
    return path.name.rsplit("-", 1)[0]


def wav_header(pcm_bytes: int) -> bytes:
    return (
        b"RIFF"
        + struct.pack("<I", 36 + pcm_bytes)
        + b"WAVE"
        + b"fmt "
        + struct.pack(
            "<IHHIIHH", 16, 1, CHANNELS, RATE, BYTES_PER_SECOND, CHANNELS * WIDTH, 8 * WIDTH
        )
        + b"data"
        + struct.pack("<I", pcm_bytes)
    )


def decrypted_wav(path: Path, key: bytes) -> Iterator[bytes]:
    """The whole WAV, streamed: the size comes from a first pass that only checks tags."""
    total = sum(len(chunk) for chunk in decrypted_pcm(path, key))
    yield wav_header(total)
    yield from decrypted_pcm(path, key)


@dataclass(frozen=True)
class RecordingInfo:
    id: int
    call_sid: str
    business_id: int
    path: Path
    bytes: int
    duration_s: float | None


class RecordingStore:
    def __init__(self, engine: Engine, directory: Path, key: bytes) -> None:
        self._sessions = session_factory(engine)
        self.directory, self.key = directory, key

    def writer(self, call_sid: str) -> EncryptedWriter:
        day = datetime.now(UTC).strftime("%Y/%m/%d")
        name = f"{call_sid}-{secrets.token_hex(4)}.rec"
        return EncryptedWriter(self.directory / day / name, self.key)

    def keep(self, call_sid: str, writer: EncryptedWriter) -> bool:
        """After the stream: register the closed writer's file, or remove it if no audio
        ever reached it or the caller's data was deleted while the call was live. Every
        file on disk has its row, so retention can find it."""
        if writer.pcm_bytes == 0 or self._erased(call_sid):
            writer.path.unlink(missing_ok=True)
            return False
        self.save(call_sid, writer)
        return True

    def _erased(self, call_sid: str) -> bool:
        with self._sessions() as s:
            return bool(s.scalar(select(Call.erased).where(Call.call_sid == call_sid)))

    def save(self, call_sid: str, writer: EncryptedWriter) -> None:
        """Register a closed writer's file with its call."""
        self.register(call_sid, writer.path, round(writer.duration_s, 2))

    def register(
        self, call_sid: str, path: Path, duration_s: float, created_at: datetime | None = None
    ) -> bool:
        """Register a file under the recordings directory with its call. Idempotent: a file
        already registered (say by recovery, then by the stream's own `keep`) keeps its one
        row; returns False then."""
        relative = str(path.relative_to(self.directory))
        with self._sessions.begin() as s:
            # Locked (PostgreSQL) so two processes registering the same file wait in turn.
            call_id = s.scalar(select(Call.id).where(Call.call_sid == call_sid).with_for_update())
            if call_id is None:
                raise LookupError(f"no call {call_sid}")
            if s.scalar(select(Recording.id).where(Recording.path == relative)) is not None:
                return False
            s.add(
                Recording(
                    call_id=call_id,
                    path=relative,
                    bytes=path.stat().st_size,
                    duration_s=duration_s,
                    created_at=created_at or datetime.now(UTC),
                )
            )
            return True

    def unregistered(self) -> list[Path]:
        """Encrypted files under the directory that no Recording row points to."""
        if not self.directory.is_dir():
            return []
        with self._sessions() as s:
            known = set(s.scalars(select(Recording.path)))
        files = self.directory.rglob("*.rec")
        return sorted(p for p in files if str(p.relative_to(self.directory)) not in known)

    def files_of(self, call_sid: str) -> list[Path]:
        """Every file written for a call, registered or not (names start with its SID)."""
        if not self.directory.is_dir():
            return []
        return sorted(self.directory.rglob(f"{glob.escape(call_sid)}-*.rec"))

    def for_call(self, call_sid: str) -> RecordingInfo | None:
        """The call's (first) recording."""
        found = self.all_for_call(call_sid)
        return found[0] if found else None

    def all_for_call(self, call_sid: str) -> list[RecordingInfo]:
        """One per stream: a message taken after an unanswered <Dial> is a second one."""
        with self._sessions() as s:
            rows = s.execute(
                select(Recording, Call.call_sid, Call.business_id)
                .join(Call, Recording.call_id == Call.id)
                .where(Call.call_sid == call_sid)
                .order_by(Recording.id)
            ).all()
            return [
                RecordingInfo(
                    rec.id, sid, business_id, self.directory / rec.path, rec.bytes, rec.duration_s
                )
                for rec, sid, business_id in rows
            ]

    def pcm(self, info: RecordingInfo) -> Iterator[bytes]:
        """Interleaved stereo int16 (caller left, agent right), a record at a time."""
        return decrypted_pcm(info.path, self.key)

    def wav(self, info: RecordingInfo) -> Iterator[bytes]:
        return decrypted_wav(info.path, self.key)

    def delete(self, info: RecordingInfo) -> None:
        """The file first: a row without a file is an honest record of a deletion."""
        info.path.unlink(missing_ok=True)
        with self._sessions.begin() as s:
            rec = s.get(Recording, info.id)
            if rec is not None:
                s.delete(rec)


def recording_json(session: Session, call_id: int) -> dict[str, Any] | None:
    """`recording` in a call's JSON: None, or the recording's length, size on disk and
    creation time. A call with two streams (a message taken after an unanswered <Dial>) has
    two files: their durations and sizes are summed, created_at is the first one's."""
    rows = session.scalars(
        select(Recording).where(Recording.call_id == call_id).order_by(Recording.id)
    ).all()
    if not rows:
        return None
    return {
        "duration_s": round(sum(r.duration_s or 0.0 for r in rows), 2),
        "bytes": sum(r.bytes for r in rows),
        "created_at": iso(rows[0].created_at),
    }
