"""Tork's paging parameters: defaults and clamps as Tork's; a value that is not a number is a 400."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from tork_ray.errors import BadRequest

# The `page` query parameter of every paged route (a string: a bad value is our 400, not a 422).
PageParam = Annotated[str | None, Query(description="Page number, from 1")]


def page_params(page: str | None, size: str | None, default_size: int, max_size: int) -> tuple[int, int]:
    try:
        number = int(page) if page not in (None, "") else 1
    except ValueError:
        raise BadRequest(f"invalid page number: {page}") from None
    try:
        count = int(size) if size not in (None, "") else default_size
    except ValueError:
        raise BadRequest(f"invalid size: {size}") from None
    return max(number, 1), min(max(count, 1), max_size)
