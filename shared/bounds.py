"""Bounded parameter types: a number or date the store cannot hold is a 422 at the edge.

PostgreSQL `integer` is 32-bit, `bigint` 64-bit, and Python's `date`/`datetime` arithmetic
overflows past year 9999; an unbounded `int` or `date` in a route lets such a value travel down
to the database or a `timedelta` and come back as a 500. Every router parameter and request
field takes one of these types instead of a bare `int`/`date`/`datetime` (they document their
bounds in the OpenAPI schema too):

    limit: Annotated[Limit, Query()] = 50
    after_id: Annotated[Id64, Query(description="...")] = 0
    year: Year
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

import annotated_types as at
from pydantic import AfterValidator

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MIN_YEAR, MAX_YEAR = 1900, 2200

Int32 = Annotated[int, at.Interval(ge=INT32_MIN, le=INT32_MAX)]
Int64 = Annotated[int, at.Interval(ge=INT64_MIN, le=INT64_MAX)]
Count32 = Annotated[int, at.Interval(ge=0, le=INT32_MAX)]  # a count/duration in an int column
Id64 = Annotated[int, at.Interval(ge=0, le=INT64_MAX)]  # a bigint id or keyset position
Version = Annotated[int, at.Interval(ge=1, le=INT32_MAX)]  # a version number (integer column)
Year = Annotated[int, at.Interval(ge=MIN_YEAR, le=MAX_YEAR)]
Limit = Annotated[int, at.Interval(ge=1, le=1000)]  # a page size; routes may lower the maximum
Day = Annotated[date, at.Interval(ge=date(MIN_YEAR, 1, 1), le=date(MAX_YEAR, 12, 31))]


def _in_era(value: datetime) -> datetime:
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise ValueError(f"year must be between {MIN_YEAR} and {MAX_YEAR}")
    return value


# datetimes: a validator, not an interval (an interval cannot compare naive and aware values)
Instant = Annotated[datetime, AfterValidator(_in_era)]
