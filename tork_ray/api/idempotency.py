"""Request ids for the coordinator's write calls: a uuid per call, or the client's Idempotency-Key."""

from __future__ import annotations

import hashlib
import uuid

from fastapi import Request

from tork_ray.errors import BadRequest

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
IDEMPOTENCY_HEADER = {
    "name": HEADER,
    "in": "header",
    "required": False,
    "description": "Retry-safe submit: the same key with the same body gives back the same job for 24 h; "
    "with another body, 409",
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
}


def call_id() -> str:
    """A fresh id for one call: Ray's retries of that call (max_task_retries) then cannot apply it twice."""
    return f"call:{uuid.uuid4().hex}"


def submit_id(request: Request, body: bytes, user: str = "guest") -> tuple[str, str]:
    """(request id, fingerprint) for POST /jobs. With an Idempotency-Key the id is the key, scoped to the user
    (the guest with auth off or with the API key), and the fingerprint is the body's sha256: the
    same key and body give back the same job; the same key with another body is refused (409)."""
    key = request.headers.get(HEADER)
    if key is None:
        return call_id(), ""
    if not 0 < len(key) <= MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise BadRequest(f"header {HEADER} must be 1 to {MAX_KEY_LENGTH} printable ASCII characters")
    return f"key:{user}:{key}", hashlib.sha256(body).hexdigest()
