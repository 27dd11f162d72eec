"""What the sync and async clients share: each route as a Call (request + how to read its answer), the error
of each status code, job documents as request bodies, and the reading of server-sent events."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeAlias, TypeVar

import httpx
from pydantic import TypeAdapter

from tork_ray.errors import (
    AlreadyExists,
    BadRequest,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    TooManyRequests,
    TorkError,
    Unauthorized,
    Unavailable,
    WaitTimedOut,
)

if TYPE_CHECKING:
    from tork_ray.spec.models import JobInput, ScheduledJobInput

T = TypeVar("T")

ERRORS: dict[int, type[TorkError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    408: WaitTimedOut,
    409: AlreadyExists,
    413: PayloadTooLarge,
    429: TooManyRequests,
    503: Unavailable,
}
# A job (or scheduled job) document: YAML or JSON text, a path to a file of it, a dict, or a typed input.
Document: TypeAlias = "str | bytes | os.PathLike[str] | Mapping[str, Any] | JobInput | ScheduledJobInput"


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request, and how its answer (JSON, or None for an empty body) becomes a T."""

    method: str
    path: str
    read: Callable[[Any], T]
    params: dict[str, Any] = field(default_factory=dict)
    content: bytes | None = None
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    text: bool = False  # the answer is text, not JSON
    accept: tuple[int, ...] = ()  # error statuses whose body is the answer all the same

    def request_args(self) -> dict[str, Any]:
        args: dict[str, Any] = {"params": self.params, "headers": self.headers}
        if self.content is not None:
            args["content"] = self.content
        if self.json is not None:
            args["json"] = self.json
        return args


def call(method: str, path: str, model: Any = None, **kwargs: Any) -> Call[Any]:
    """A Call whose answer is validated as `model` (a pydantic model or a type such as list[Node]); no model:
    the answer is dropped (routes that answer {"status": "OK"} or nothing)."""
    read: Callable[[Any], Any] = TypeAdapter(model).validate_python if model is not None else _nothing
    params = {key: value for key, value in kwargs.pop("params", {}).items() if value is not None}
    return Call(method, path, read, params=params, **kwargs)


def _nothing(_answer: Any) -> None:
    return None


def error_of(response: httpx.Response) -> TorkError:
    """The TorkError subclass of the status code, with the API's `message`."""
    try:
        body = response.json()
        message = str(body.get("message", response.text)) if isinstance(body, dict) else response.text
    except ValueError:
        message = response.text or response.reason_phrase
    kind = ERRORS.get(response.status_code, TorkError)
    if kind is TooManyRequests:
        retry = response.headers.get("Retry-After")
        return TooManyRequests(message, float(retry) if retry and retry.isdigit() else None)
    error = kind(message)
    if kind is TorkError:
        error.status_code = response.status_code
    return error


def read_answer(response: httpx.Response, spec: Call[T]) -> T:
    if response.status_code >= 400 and response.status_code not in spec.accept:
        raise error_of(response)
    if spec.text:
        return spec.read(response.text)
    return spec.read(response.json() if response.content else None)


def unreachable(base_url: httpx.URL, exc: Exception) -> Unavailable:
    return Unavailable(f"cannot reach {base_url}: {exc or type(exc).__name__}")


def document_body(document: Document) -> tuple[bytes, str]:
    """(body, content type) of a job document given as YAML/JSON text, a path, a dict or a typed input.

    A str that has no line break and names an existing file is read as a path (`"job.yaml"`); any other str
    is the document itself."""
    if isinstance(document, os.PathLike) or (
        isinstance(document, str) and "\n" not in document and document.strip() and Path(document).is_file()
    ):
        path = Path(document)
        return path.read_bytes(), "application/json" if path.suffix == ".json" else "text/yaml"
    if isinstance(document, str):
        return document.encode(), "text/yaml"
    if isinstance(document, bytes):
        return document, "text/yaml"
    if isinstance(document, Mapping):
        return json.dumps(dict(document)).encode(), "application/json"
    if hasattr(document, "model_dump"):  # a JobInput / ScheduledJobInput (pydantic)
        from tork_ray.spec.models import to_dict

        return json.dumps(to_dict(document)).encode(), "application/json"
    raise TypeError(f"a job document is YAML/JSON text, a path, a dict or a JobInput, not {type(document).__name__}")


class EventReader:
    """Server-sent events from the lines of a stream: feed lines, get (event, data) pairs."""

    def __init__(self) -> None:
        self.event, self.data = "message", list[str]()

    def feed(self, line: str) -> tuple[str, str] | None:
        if line.startswith("event:"):
            self.event = line[len("event:") :].strip()
        elif line.startswith("data:"):
            self.data.append(line[len("data:") :].removeprefix(" "))
        elif not line and self.data:
            out = (self.event, "\n".join(self.data))
            self.event, self.data = "message", []
            return out
        return None

    def events(self, lines: Iterable[str]) -> Iterable[tuple[str, str]]:
        for line in lines:
            if (event := self.feed(line)) is not None:
                yield event
