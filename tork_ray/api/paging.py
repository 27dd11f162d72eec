"""Tork's paging parameters: defaults and clamps as Tork's; a value that is not a number is a 400."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Query

from tork_ray.errors import BadRequest

# The `page` query parameter of every paged route (a string: a bad value is our 400, not a 422).
PageParam = Annotated[str | None, Query(description="Page number, from 1")]
# Past this the offset of a page no longer fits the store's 64-bit integers (it was a 500); no store holds a
# billion pages anyway.
MAX_PAGE = 1_000_000_000
# Decimal digits only, as Go's strconv.Atoi reads them in Tork: Python's int() also takes " 1", "1_0" and
# non-ASCII digits (Arabic-Indic one, U+0661).
_NUMBER = re.compile(r"[+-]?[0-9]{1,19}")


def _number(text: str | None, default: int, what: str) -> int:
    if text in (None, ""):
        return default
    if not _NUMBER.fullmatch(text):
        raise BadRequest(f"{what}: {text}")
    return int(text)


def page_params(page: str | None, size: str | None, default_size: int, max_size: int) -> tuple[int, int]:
    number = _number(page, 1, "invalid page number")
    if number > MAX_PAGE:
        raise BadRequest(f"invalid page number: {page} (at most {MAX_PAGE})")
    count = _number(size, default_size, "invalid size")
    return max(number, 1), min(max(count, 1), max_size)
