"""Encryption at rest (`datastore.encryption.key`): AES-256-GCM values, and the column types that seal them."""

# What is sealed, and why whole values: a job's `doc` holds its secrets, but also their copies in `context`,
# literal values under secret-looking keys (a registry password, an input `db_password`), and webhook headers;
# a task's `spec` holds its rendered env and registry credentials; results and errors can echo any of them.
# None of these is ever queried by part (search reads name, description, state and tags), so each is sealed
# whole: nothing has to know which part of a document may carry a secret, and a new table (scheduled jobs)
# seals a column by declaring it `SealedJSON("scheduled_jobs.doc")`.
#
# Format: "enc:v1:" + base64(nonce ‖ ciphertext ‖ tag), a fresh random 96-bit nonce per value. The key is the
# SHA-256 of the configured string, as Tork derives it. The column's name is the associated data, so a sealed
# value copied into another column does not open there. Rows written without a key stay readable after one is
# set (they are not sealed until next written), so a store can be switched to encryption in place.

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import JSON, Text
from sqlalchemy.engine import Dialect, Engine, make_url
from sqlalchemy.types import TypeDecorator

from tork_ray.errors import TorkError

SEALED = "enc:v1:"
# Every stored value that starts with "enc:" is ours: a clear text that happens to start so (a task's output,
# say) is stored escaped behind this marker, so it can never be mistaken for a sealed value.
RESERVED = "enc:"
ESCAPED = "enc:clear:"
NONCE_BYTES = 12
_CIPHER_ATTRIBUTE = "tork_ray_cipher"

log = logging.getLogger("tork_ray")


class SealError(TorkError):
    """A stored value cannot be opened: no key is set, the key is not the one it was sealed with, or it was
    altered. The message names the column, never the value."""


class Cipher:
    """AES-256-GCM with the key derived from `datastore.encryption.key`."""

    def __init__(self, key: str) -> None:
        if not key:
            raise ValueError("an encryption key must not be empty")
        self._aead = AESGCM(hashlib.sha256(key.encode()).digest())

    def seal(self, plaintext: str, label: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), label.encode())
        return SEALED + base64.b64encode(nonce + sealed).decode("ascii")

    def open(self, token: str, label: str) -> str:
        try:
            data = base64.b64decode(token.removeprefix(SEALED), validate=True)
            if len(data) <= NONCE_BYTES:
                raise ValueError("too short")
            return self._aead.decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], label.encode()).decode()
        except (InvalidTag, ValueError, binascii.Error):
            raise SealError(
                f"stored {label} cannot be decrypted: datastore.encryption.key is not the key it was encrypted "
                "with, or the stored value was altered"
            ) from None


def bind_cipher(engine: Engine, cipher: Cipher | None) -> None:
    """Makes `engine`'s sealed columns use `cipher` (None: write in clear, read only clear values).

    The column types are module-level (the tables are), but the key is per store: it rides on the engine's
    dialect, which SQLAlchemy hands to every bind and result processor and which each engine has its own of.
    """
    setattr(engine.dialect, _CIPHER_ATTRIBUTE, cipher)


def _cipher(dialect: Dialect) -> Cipher | None:
    cipher: Cipher | None = getattr(dialect, _CIPHER_ATTRIBUTE, None)
    return cipher


def seal_text(text: str, label: str, cipher: Cipher | None) -> str:
    if cipher is not None:
        return cipher.seal(text, label)
    return ESCAPED + text if text.startswith(RESERVED) else text


def open_text(stored: str, label: str, cipher: Cipher | None) -> str:
    if stored.startswith(SEALED):
        if cipher is None:
            raise SealError(f"stored {label} is encrypted: set datastore.encryption.key to read it")
        return cipher.open(stored, label)
    return stored.removeprefix(ESCAPED)


class SealedText(TypeDecorator[str]):
    """A text column sealed when the store has a key."""

    impl = Text
    cache_ok = True

    def __init__(self, label: str) -> None:
        super().__init__()
        self.label = label

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else seal_text(value, self.label, _cipher(dialect))

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else open_text(value, self.label, _cipher(dialect))


class SealedJSON(TypeDecorator[Any]):
    """A JSON column sealed when the store has a key: the sealed form is a JSON string, the clear form the
    document itself, so both live in the same column (no migration) and tell themselves apart."""

    impl = JSON
    cache_ok = True

    def __init__(self, label: str) -> None:
        super().__init__()
        self.label = label

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        cipher = _cipher(dialect)
        if value is None or cipher is None:
            return value
        return cipher.seal(json.dumps(value, separators=(",", ":")), self.label)

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if isinstance(value, str) and value.startswith(SEALED):
            return json.loads(open_text(value, self.label, _cipher(dialect)))
        return value


def cipher_for(key: str) -> Cipher | None:
    return Cipher(key) if key else None


_warned: set[str] = set()


def warn_if_unencrypted(key: str, url: str) -> bool:
    """Logs, once per process and store, that secrets will be stored in clear; True when it did."""
    if key or url in _warned:
        return False
    _warned.add(url)
    where = make_url(url).render_as_string(hide_password=True)  # a PostgreSQL DSN carries a password
    log.warning(
        "datastore.encryption.key is not set: job secrets (and their copies in contexts, task env and results) "
        "are stored in clear in %s; set it (TORK_DATASTORE_ENCRYPTION_KEY) to encrypt them",
        where,
    )
    return True
