"""What a record keeps instead of a phone number when it must point at a caller (the audit
log's entries about a caller's data): a keyed reference.

An HMAC under a server secret, per business: a plain or salted hash of a phone number is
reversed by trying every number, this is not without the key. Recomputing it answers "was
+1555... deleted?" without the record ever holding the number. The key is the service's
recording key (`RecordingStore.key`, from RECORDING_KEY or data_dir/recording.key), so the
service and the CLI compute the same reference."""

from __future__ import annotations

import hashlib
import hmac


def phone_ref(key: bytes, business_id: int, phone: str) -> str:
    message = f"audit-phone\0{business_id}\0{phone.strip()}".encode()
    return "phone-hmac:" + hmac.new(key, message, hashlib.sha256).hexdigest()[:40]
