"""Redaction: secret values and values under secret-looking keys never leave the server in clear."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

REDACTED = "[REDACTED]"
DEFAULT_KEY_MARKERS = ("SECRET", "PASSWORD", "ACCESS_KEY")
# Maps whose every value is secret, whatever its key (a job's and a sub-job's `secrets`).
SECRET_MAPS = frozenset({"secrets"})
# Values found under secret-looking keys are also hidden wherever else they appear (a log, a result), but only
# from this length on: hiding every "1" or "ab" of a response would make it unreadable and protect nothing.
MIN_HARVESTED_LENGTH = 4
# Bounds the walk over a document that failed validation (it may be anything a client sent).
DEFAULT_WALK_BUDGET = 200_000
# A stream holds back at most this much text of an unfinished line before letting part of it go.
MAX_HELD_LINE = 64 * 1024


@dataclass(frozen=True)
class Redactor:
    """Walks any JSON-like value and hides secrets in it.

    `patterns` are wildcard patterns over keys (case-insensitive) that replace the default markers, as Tork's
    `middleware.job.redact.patterns`. Unlike Tork, every response is redacted, not only single reads.
    """

    patterns: tuple[str, ...] = ()
    enabled: bool = True

    def key_is_secret(self, key: str) -> bool:
        upper = key.upper()
        if self.patterns:
            return any(fnmatch.fnmatchcase(upper, pattern.upper()) for pattern in self.patterns)
        return any(marker in upper for marker in DEFAULT_KEY_MARKERS)

    # --- what to hide ---------------------------------------------------------------------------------

    def hidden_values(self, *documents: Any, budget: int = DEFAULT_WALK_BUDGET) -> list[str]:
        """Every value to hide in text: the values of `secrets` maps, and values under secret-looking keys
        (a registry password, an env var `DB_PASSWORD`, an input `api_secret`, ...), longest first."""
        found: set[str] = set()
        remaining = [budget]
        for document in documents:
            self._harvest(document, found, remaining)
        return sorted(found, key=len, reverse=True)

    def _harvest(self, value: Any, found: set[str], remaining: list[int]) -> None:
        stack: list[tuple[str | None, Any]] = [(None, value)]
        while stack and remaining[0] > 0:
            remaining[0] -= 1
            key, item = stack.pop()
            if isinstance(item, Mapping):
                if key in SECRET_MAPS:
                    found.update(str(v) for v in item.values() if _is_scalar(v) and str(v))
                stack.extend((str(k), v) for k, v in item.items())
            elif isinstance(item, list | tuple):
                stack.extend((key, v) for v in item)
            elif key is not None and _is_scalar(item) and self._secret_entry(key):
                text = str(item)
                if len(text) >= MIN_HARVESTED_LENGTH:
                    found.add(text)

    def _secret_entry(self, key: str) -> bool:
        return key == "password" or self.key_is_secret(key)

    # --- hiding ---------------------------------------------------------------------------------------

    def redact(self, value: Any, secrets: Iterable[str]) -> Any:
        """`value` with secret maps and secret-keyed values replaced, and every secret value in any text."""
        if not self.enabled:
            return value
        values = sorted({s for s in secrets if s}, key=len, reverse=True)
        return self._walk(value, values)

    def redact_text(self, text: str, secrets: Sequence[str]) -> str:
        return redact_text(text, secrets) if self.enabled else text

    def redact_parts(self, texts: Sequence[str], secrets: Sequence[str]) -> list[str]:
        return redact_parts(texts, secrets) if self.enabled else list(texts)

    def stream(self, secrets: Sequence[str]) -> StreamRedactor:
        return StreamRedactor(secrets if self.enabled else ())

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
        if _is_scalar(value) and self.key_is_secret(key):
            return REDACTED
        return self._walk(value, secrets)


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def _spans(text: str, secrets: Iterable[str]) -> list[tuple[int, int]]:
    """Where secrets occur in `text`, overlapping and touching occurrences merged, in order."""
    found: list[tuple[int, int]] = []
    for secret in secrets:
        if not secret:
            continue
        start = text.find(secret)
        while start != -1:
            found.append((start, start + len(secret)))
            start = text.find(secret, start + 1)
    if not found:
        return []
    found.sort()
    merged = [found[0]]
    for start, end in found[1:]:
        if start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def redact_parts(texts: Sequence[str], secrets: Iterable[str]) -> list[str]:
    """Redacts consecutive pieces of one text (log parts) as if they were one: a secret split across pieces is
    hidden too. The marker goes where the secret starts; the pieces that only continue it lose those chars."""
    joined = "".join(texts)
    spans = _spans(joined, secrets)
    if not spans:
        return list(texts)
    out: list[str] = []
    offset = 0
    for text in texts:
        start, end = offset, offset + len(text)
        pieces: list[str] = []
        position = start
        for span_start, span_end in spans:
            if span_end <= start or span_start >= end:
                continue
            if span_start > position:
                pieces.append(joined[position:span_start])
            if span_start >= start:
                pieces.append(REDACTED)
            position = max(position, min(span_end, end))
        pieces.append(joined[position:end])
        out.append("".join(pieces))
        offset = end
    return out


def redact_text(text: str, secrets: Iterable[str]) -> str:
    return redact_parts([text], secrets)[0]


class StreamRedactor:
    """Redacts text that arrives in chunks (a live log): it lets out whole lines only, so a secret cut by a
    chunk boundary is hidden once its end arrives. A secret that itself spans lines keeps enough text back."""

    def __init__(self, secrets: Sequence[str]) -> None:
        self._secrets = [s for s in secrets if s]
        longest = max((len(s) for s in self._secrets), default=0)
        self._tail = max(longest - 1, 0)
        self._multiline_tail = max((len(s) - 1 for s in self._secrets if "\n" in s), default=0)
        self._buffer = ""

    def feed(self, text: str) -> str:
        """What can be shown now of everything fed so far (redacted), possibly ""."""
        self._buffer += text
        cut = self._cut()
        ready, self._buffer = self._buffer[:cut], self._buffer[cut:]
        return redact_text(ready, self._secrets)

    def finish(self) -> str:
        rest, self._buffer = self._buffer, ""
        return redact_text(rest, self._secrets)

    def _cut(self) -> int:
        buffer = self._buffer
        limit = len(buffer) - self._multiline_tail
        cut = buffer.rfind("\n", 0, max(limit, 0)) + 1 if limit > 0 else 0
        if cut == 0 and len(buffer) > MAX_HELD_LINE:
            cut = len(buffer) - self._tail  # a very long line: release all that no future text can complete
        # Never cut through a secret that is already whole in the buffer.
        for start, end in _spans(buffer, self._secrets):
            if start < cut < end:
                cut = start
        return cut


class PartRedactor:
    """Redacts a log as it is stored, part by part (at rest, where no later pass can fix a part): each part is
    stored as soon as it arrives, less a tail that could be the start of a secret, held back until the next
    part tells whether it is one. Unlike StreamRedactor it never waits for a line's end, so a log still shows
    at once; what it holds is at most a secret's length, and `finish` lets it go when the task ends."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)
        self._fallbacks = {s: _prefix_function(s) for s in self._secrets if len(s) > 1}
        self._held = ""

    def feed(self, text: str) -> str:
        """What can be stored now (redacted), possibly ""."""
        buffer = self._held + text
        cut = len(buffer) - max((self._open_prefix(buffer, s) for s in self._fallbacks), default=0)
        # Never cut through a secret already whole in the buffer: it is redacted with what follows it.
        for start, end in _spans(buffer, self._secrets):
            if start < cut < end:
                cut = start
        ready, self._held = buffer[:cut], buffer[cut:]
        return redact_text(ready, self._secrets)

    def finish(self) -> str:
        rest, self._held = self._held, ""
        return redact_text(rest, self._secrets)

    def _open_prefix(self, text: str, secret: str) -> int:
        """Length of the longest proper prefix of `secret` that `text` ends with: a KMP scan of the last
        len(secret) - 1 characters, linear whatever the secret (a hostile one cannot make it quadratic)."""
        fallback = self._fallbacks[secret]
        matched = 0
        for char in text[-(len(secret) - 1) :]:
            while matched and (matched == len(secret) or secret[matched] != char):
                matched = fallback[matched - 1]
            if secret[matched] == char:
                matched += 1
        return matched if matched < len(secret) else fallback[matched - 1]


def _prefix_function(text: str) -> list[int]:
    """KMP's table: for each i, the length of the longest proper prefix of text[:i + 1] that is also its suffix."""
    table = [0] * len(text)
    k = 0
    for i in range(1, len(text)):
        while k and text[i] != text[k]:
            k = table[k - 1]
        if text[i] == text[k]:
            k += 1
        table[i] = k
    return table


def secret_values(*maps: Mapping[str, Any] | None) -> set[str]:
    """Every secret value of the given secrets maps."""
    return {str(value) for mapping in maps if mapping for value in mapping.values() if value}
