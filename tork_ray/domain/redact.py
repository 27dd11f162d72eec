"""Redaction: secret values and values under secret-looking keys never leave the server in clear."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

REDACTED = "[REDACTED]"
DEFAULT_KEY_MARKERS = ("SECRET", "PASSWORD", "ACCESS_KEY")
# Maps whose every value is secret, whatever its key.
SECRET_MAPS = frozenset({"secrets"})


@dataclass(frozen=True)
class Redactor:
    """Walks any JSON-like value and hides secrets in it.

    `patterns` are wildcard patterns over keys (case-insensitive) that replace the default markers, as Tork's
    `middleware.job.redact.patterns`. Unlike Tork, we redact every response, not only single reads.
    """

    patterns: tuple[str, ...] = ()
    enabled: bool = True

    def key_is_secret(self, key: str) -> bool:
        upper = key.upper()
        if self.patterns:
            return any(fnmatch.fnmatchcase(upper, pattern.upper()) for pattern in self.patterns)
        return any(marker in upper for marker in DEFAULT_KEY_MARKERS)

    def redact(self, value: Any, secrets: Iterable[str]) -> Any:
        if not self.enabled:
            return value
        # Longest first, so a secret that contains another is hidden whole.
        values = sorted({s for s in secrets if s}, key=len, reverse=True)
        return self._walk(value, values)

    def _walk(self, value: Any, secrets: list[str]) -> Any:
        if isinstance(value, Mapping):
            return {key: self._entry(str(key), item, secrets) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self._walk(item, secrets) for item in value]
        if isinstance(value, str):
            return redact_text(value, secrets)
        return value

    def _entry(self, key: str, value: Any, secrets: list[str]) -> Any:
        if key in SECRET_MAPS and isinstance(value, Mapping):
            return {name: REDACTED for name in value}
        if key == "registry" and isinstance(value, Mapping) and "password" in value:
            return {**self._walk(value, secrets), "password": REDACTED}
        if isinstance(value, str | int | float) and not isinstance(value, bool) and self.key_is_secret(key):
            return REDACTED
        return self._walk(value, secrets)


def redact_text(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, REDACTED)
    return text


def secret_values(*maps: Mapping[str, Any] | None) -> set[str]:
    """Every secret value of the given secrets maps."""
    return {str(value) for mapping in maps if mapping for value in mapping.values() if value}
