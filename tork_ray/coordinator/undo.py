"""What one event changed in the coordinator's memory, so that a failed event can be put back whole."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from pydantic import BaseModel

_MISSING = object()


class UndoLog:
    """Snapshots of the live records an event touched, and the cache entries it added or removed.

    A snapshot is a shallow copy of the record's fields: handlers change a record only through the writer, which
    replaces field values (copy-on-write: `{**job.context, ...}`, never `job.context[...] = ...`), so the old
    values stay intact for as long as the snapshot keeps them. Taken once per record per event, it costs the
    number of fields, not the size of the job document."""

    def __init__(self) -> None:
        self._models: dict[int, tuple[BaseModel, dict[str, Any], set[str]]] = {}
        self._entries: list[tuple[MutableMapping[str, Any], str, Any]] = []

    def touch(self, model: BaseModel) -> None:
        """Call before the first change of `model` in this event."""
        if id(model) not in self._models:
            self._models[id(model)] = (model, dict(model.__dict__), set(model.__pydantic_fields_set__))

    def set(self, mapping: MutableMapping[str, Any], key: str, value: Any) -> None:
        self._entries.append((mapping, key, mapping.get(key, _MISSING)))
        mapping[key] = value

    def pop(self, mapping: MutableMapping[str, Any], key: str) -> None:
        if key in mapping:
            self._entries.append((mapping, key, mapping.pop(key)))

    def undo(self) -> None:
        """Puts every touched record and cache entry back as it was before the event, newest change first."""
        for mapping, key, old in reversed(self._entries):
            if old is _MISSING:
                mapping.pop(key, None)
            else:
                mapping[key] = old
        for model, fields, fields_set in self._models.values():
            model.__dict__.clear()
            model.__dict__.update(fields)
            object.__setattr__(model, "__pydantic_fields_set__", fields_set)
        self.clear()

    def clear(self) -> None:
        self._models.clear()
        self._entries.clear()
