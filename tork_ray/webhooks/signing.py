"""Optional signing of webhook calls (beyond Tork): an HMAC-SHA256 of `timestamp + "." + body`."""

from __future__ import annotations

import hashlib
import hmac

TIMESTAMP_HEADER = "X-Tork-Timestamp"
SIGNATURE_HEADER = "X-Tork-Signature"
DELIVERY_HEADER = "X-Tork-Delivery"


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=<hex>` of HMAC-SHA256(secret, timestamp + "." + body): the timestamp is signed with the body,
    so a receiver that refuses old timestamps cannot be replayed an old call."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def signed_headers(secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    stamp = str(timestamp)
    return {TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: signature(secret, stamp, body)}
