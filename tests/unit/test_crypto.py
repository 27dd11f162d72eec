"""Encryption at rest (store/crypto.py): sealing, opening, wrong keys, tampering, clear values, the warning."""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import pytest
from sqlalchemy.dialects import sqlite

from tork_ray.domain.redact import REDACTED, PartRedactor
from tork_ray.settings import load_settings
from tork_ray.store.crypto import (
    SEALED,
    Cipher,
    SealedJSON,
    SealedText,
    SealError,
    open_text,
    seal_text,
    warn_if_unencrypted,
)

CANARY = "CANARY-7f3a9b"


def test_round_trip_with_a_fresh_nonce_each_time() -> None:
    cipher = Cipher("the key")
    first, second = cipher.seal(CANARY, "jobs.doc"), cipher.seal(CANARY, "jobs.doc")
    assert first.startswith(SEALED) and CANARY not in first
    assert first != second  # a random 96-bit nonce per value: equal secrets do not look equal at rest
    assert len(base64.b64decode(first.removeprefix(SEALED))) == 12 + len(CANARY) + 16
    assert cipher.open(first, "jobs.doc") == cipher.open(second, "jobs.doc") == CANARY
    assert Cipher("the key").open(first, "jobs.doc") == CANARY  # the key is derived, not random


def test_a_wrong_key_is_a_clear_error_that_names_the_column_not_the_value() -> None:
    sealed = Cipher("right").seal(CANARY, "tasks.spec")
    with pytest.raises(SealError) as raised:
        Cipher("wrong").open(sealed, "tasks.spec")
    assert "tasks.spec" in raised.value.message and "datastore.encryption.key" in raised.value.message
    assert CANARY not in raised.value.message


def test_tampering_and_moving_a_value_to_another_column_are_detected() -> None:
    cipher = Cipher("k")
    sealed = cipher.seal(CANARY, "tasks.result")
    raw = bytearray(base64.b64decode(sealed.removeprefix(SEALED)))
    raw[15] ^= 1
    with pytest.raises(SealError):
        cipher.open(SEALED + base64.b64encode(bytes(raw)).decode(), "tasks.result")
    with pytest.raises(SealError):
        cipher.open(sealed, "tasks.error")  # the column is the associated data
    for garbage in (SEALED, SEALED + "!!!", SEALED + base64.b64encode(b"short").decode()):
        with pytest.raises(SealError):
            cipher.open(garbage, "tasks.result")


def test_clear_values_stay_readable_and_cannot_pass_for_sealed_ones() -> None:
    cipher = Cipher("k")
    assert open_text("plain old row", "jobs.error", cipher) == "plain old row"
    # Without a key a clear text that looks sealed is escaped, so reading it back never tries to decrypt it.
    looks_sealed = SEALED + "AAAA"
    stored = seal_text(looks_sealed, "tasks.result", None)
    assert stored != looks_sealed
    assert open_text(stored, "tasks.result", None) == looks_sealed
    assert open_text(stored, "tasks.result", cipher) == looks_sealed
    with pytest.raises(SealError, match=r"set datastore\.encryption\.key"):
        open_text(cipher.seal("x", "tasks.result"), "tasks.result", None)


def test_column_types_seal_with_the_dialects_cipher_and_read_both_forms() -> None:
    dialect = sqlite.dialect()
    dialect.tork_ray_cipher = Cipher("k")  # type: ignore[attr-defined]  # what bind_cipher does
    doc = {"secrets": {"token": CANARY}, "n": 1}
    column = SealedJSON("jobs.doc")
    stored = column.process_bind_param(doc, dialect)
    assert isinstance(stored, str) and CANARY not in stored
    assert column.process_result_value(stored, dialect) == doc
    assert column.process_result_value(doc, dialect) == doc  # a row written before the key was set
    text = SealedText("jobs.error")
    assert text.process_result_value(text.process_bind_param(CANARY, dialect), dialect) == CANARY
    assert text.process_bind_param(None, dialect) is None


def test_the_warning_without_a_key_comes_once(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="tork_ray"):
        assert warn_if_unencrypted("", "sqlite:///unit-test-a.db")
        assert not warn_if_unencrypted("", "sqlite:///unit-test-a.db")
        assert not warn_if_unencrypted("a key", "sqlite:///unit-test-b.db")
        assert warn_if_unencrypted("", "postgresql+psycopg://tork:pw-of-the-db@db/tork")
    warnings = [r.getMessage() for r in caplog.records if "datastore.encryption.key is not set" in r.getMessage()]
    assert len(warnings) == 2 and "pw-of-the-db" not in warnings[1]


def test_part_redactor_holds_back_only_what_could_start_a_secret() -> None:
    guard = PartRedactor([CANARY])
    assert guard.feed("line one\nthe token is CANARY-7f") == "line one\nthe token is "
    assert guard.feed("3a9b, done CA") == f"{REDACTED}, done "
    assert guard.feed("T\n") == "CAT\n"
    assert guard.feed("ends with CANARY") == "ends with "
    assert guard.finish() == "CANARY"  # the task ended: not a secret after all


def test_part_redactor_never_stores_a_secret_however_the_log_is_cut() -> None:
    import random

    rng = random.Random(7)
    for _ in range(3000):
        secrets = ["".join(rng.choice("ab") for _ in range(rng.randint(2, 6))) for _ in range(rng.randint(1, 3))]
        text = "".join(rng.choice("abc") for _ in range(rng.randint(0, 30)))
        cuts = sorted(rng.sample(range(len(text) + 1), min(len(text) + 1, rng.randint(0, 5))))
        pieces = [text[i:j] for i, j in zip([0, *cuts], [*cuts, len(text)], strict=True)]
        guard = PartRedactor(secrets)
        stored = "\x00".join([*(guard.feed(piece) for piece in pieces), guard.finish()])
        for secret in secrets:
            # Joined without separators too: a reader that concatenates the parts sees no secret either.
            assert secret not in stored.replace(REDACTED, "|").replace("\x00", ""), (secrets, pieces)


def test_part_redactor_is_linear_for_a_long_repetitive_secret() -> None:
    secret = "a" * 50_000 + "b"
    guard = PartRedactor([secret])
    assert guard.feed("a" * 60_000) == "a" * 10_000  # the rest could still become the secret
    assert guard.feed("b") == REDACTED


def test_the_key_setting_is_read_from_toml_and_env_and_never_printed(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[datastore.encryption]\nkey = "from toml"\n')
    assert load_settings({}, str(config)).datastore.encryption_key == "from toml"
    settings = load_settings({"TORK_DATASTORE_ENCRYPTION_KEY": "from env"}, str(config))
    assert settings.datastore.encryption_key == "from env"
    assert "from env" not in repr(settings)
