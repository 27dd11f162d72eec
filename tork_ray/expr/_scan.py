"""Finding the `{{ … }}` segments of a template in one linear pass (SPEC §3.1).

Tork's rule is the regular expression `{{\\s*(.+?)\\s*}}` (DOTALL), run by Go's linear-time engine. Python's
backtracking engine needs quadratic time for it when a `{{` has no closing `}}`: each of n openings scans to the
end of the text (8,000 times `{{` took seconds, a megabyte hours). The same rule is written out with str.find: a
segment opens at the first `{{` and closes at the first `}}` that leaves at least one character between them;
when an opening has no such `}}`, no later opening can have one either, so scanning stops there.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Segment:
    start: int  # index of the opening `{{`
    end: int  # index just past the closing `}}`
    source: str  # the expression between them, surrounding white space trimmed


def segments(text: str) -> Iterator[Segment]:
    """The segments of `text`, left to right, exactly as Tork's regular expression finds them."""
    pos = 0
    while (start := text.find("{{", pos)) >= 0:
        close = text.find("}}", start + 3)
        if close < 0:
            return
        yield Segment(start, close + 2, _trimmed(text[start + 2 : close]))
        pos = close + 2


def first_segment(text: str) -> Segment | None:
    return next(segments(text), None)


def _trimmed(body: str) -> str:
    # The regular expression's `\s*` on each side give up characters to the lazy `.+?`, which takes at least one:
    # a body of spaces only keeps its last space.
    stripped = body.strip()
    return stripped if stripped else body[-1]
