"""Finding the `{{ … }}` segments of a template in one linear pass (SPEC §3.1).

Tork's rule is the regular expression `{{\\s*(.+?)\\s*}}` (DOTALL), run by Go's linear-time engine. Python's
backtracking engine needs quadratic time for it when a `{{` has no closing `}}`: each of n openings scans to the
end of the text (8,000 times `{{` took seconds, a megabyte hours). The same rule is written out with str.find
(_segment_at says how the backtracking resolves); when an opening has no closing `}}`, no later opening can have
one either, so scanning stops there.
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
        segment = _segment_at(text, start)
        if segment is None:
            return
        yield segment
        pos = segment.end


def first_segment(text: str) -> Segment | None:
    return next(segments(text), None)


def _segment_at(text: str, start: int) -> Segment | None:
    """The match of `{{\\s*(.+?)\\s*}}` at the `{{` at `start`, as a backtracking engine finds it.

    The leading `\\s*` first takes every white space character (up to `body`); the lazy group then takes at least
    one character and ends at the first place followed by white space and `}}`. So the closing `}}` is the first
    one from `body + 1` on, and the group stops where the white space before it begins. Only when there is no such
    `}}` does the leading `\\s*` give one character back, which matches when `}}` follows the white space at once:
    the group is then that last white space character."""
    body = start + 2
    while body < len(text) and text[body].isspace():
        body += 1
    close = text.find("}}", body + 1)
    if close >= 0:
        group_end = close
        while group_end > body + 1 and text[group_end - 1].isspace():
            group_end -= 1
        return Segment(start, close + 2, text[body:group_end])
    if body > start + 2 and text.startswith("}}", body):
        return Segment(start, body + 2, text[body - 1])
    return None
