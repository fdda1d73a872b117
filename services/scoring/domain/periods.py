"""Reporting periods with DHIS2-like ids: `2026`, `2026Q3`, `202609`, `2026YTD09`.

Every period is a whole number of calendar months in Vietnam time (Asia/Ho_Chi_Minh). Its figures
are built from monthly leaf counters: flow counters are summed over `months`, stock counters are
read at `last_month` (the month containing the period's end). See `facts.py`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Literal
from zoneinfo import ZoneInfo

VN_TZ = ZoneInfo("Asia/Ho_Chi_Minh")

PeriodKind = Literal["year", "quarter", "month", "ytd"]

_PATTERNS: tuple[tuple[PeriodKind, re.Pattern[str]], ...] = (
    ("ytd", re.compile(r"^(\d{4})YTD(0[1-9]|1[0-2])$")),
    ("quarter", re.compile(r"^(\d{4})Q([1-4])$")),
    ("month", re.compile(r"^(\d{4})(0[1-9]|1[0-2])$")),
    ("year", re.compile(r"^(\d{4})$")),
)


class InvalidPeriod(ValueError):
    """A period id that does not match any known form."""


def month_id(year: int, month: int) -> str:
    return f"{year:04d}{month:02d}"


def month_of(instant: datetime | date) -> str:
    """The month id an instant falls in, in Vietnam time (naive datetimes are taken as VN time)."""
    if isinstance(instant, datetime):
        local = instant.astimezone(VN_TZ) if instant.tzinfo else instant
        return month_id(local.year, local.month)
    return month_id(instant.year, instant.month)


def _first_of_next(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


@dataclass(frozen=True, order=True)
class Period:
    """A span of whole months: `first_month`..`last_month` (1..12) of `year`."""

    year: int
    first_month: int
    last_month: int
    kind: PeriodKind

    @classmethod
    def parse(cls, period_id: str) -> Period:
        for kind, pattern in _PATTERNS:
            m = pattern.match(period_id)
            if not m:
                continue
            year = int(m.group(1))
            if year < 1900:
                break
            if kind == "year":
                return cls(year, 1, 12, "year")
            n = int(m.group(2))
            if kind == "quarter":
                return cls(year, 3 * n - 2, 3 * n, "quarter")
            if kind == "month":
                return cls(year, n, n, "month")
            return cls(year, 1, n, "ytd")
        raise InvalidPeriod(f"not a period id: {period_id!r}")

    @classmethod
    def month(cls, year: int, month: int) -> Period:
        return cls(year, month, month, "month")

    @classmethod
    def containing(cls, instant: datetime | date) -> Period:
        """The month containing an instant (Vietnam time)."""
        mid = month_of(instant)
        return cls.month(int(mid[:4]), int(mid[4:]))

    @property
    def id(self) -> str:
        if self.kind == "year":
            return f"{self.year:04d}"
        if self.kind == "quarter":
            return f"{self.year:04d}Q{(self.last_month + 2) // 3}"
        if self.kind == "month":
            return month_id(self.year, self.first_month)
        return f"{self.year:04d}YTD{self.last_month:02d}"

    def __str__(self) -> str:
        return self.id

    @property
    def months(self) -> tuple[str, ...]:
        """Month ids the period covers, in order: flow counters are summed over these."""
        return tuple(month_id(self.year, m) for m in range(self.first_month, self.last_month + 1))

    @property
    def end_month(self) -> str:
        """The month containing the period's end: stock counters are read here."""
        return month_id(self.year, self.last_month)

    @property
    def start_date(self) -> date:
        return date(self.year, self.first_month, 1)

    @property
    def end_date(self) -> date:
        """Exclusive end date (first day after the period)."""
        y, m = _first_of_next(self.year, self.last_month)
        return date(y, m, 1)

    @property
    def start(self) -> datetime:
        """Inclusive start instant, Vietnam time."""
        return datetime.combine(self.start_date, time(0), tzinfo=VN_TZ)

    @property
    def end(self) -> datetime:
        """Exclusive end instant, Vietnam time (00:00 of the first day after the period)."""
        return datetime.combine(self.end_date, time(0), tzinfo=VN_TZ)

    def contains(self, instant: datetime) -> bool:
        return self.start <= instant < self.end

    def previous(self) -> Period:
        """The preceding period of the same kind: 2026 → 2025, 2026Q1 → 2025Q4,
        202601 → 202512, 2026YTD09 → 2026YTD08, 2026YTD01 → 2025YTD12."""
        if self.kind == "year":
            return Period(self.year - 1, 1, 12, "year")
        if self.kind == "quarter":
            if self.first_month == 1:
                return Period(self.year - 1, 10, 12, "quarter")
            return Period(self.year, self.first_month - 3, self.last_month - 3, "quarter")
        if self.kind == "month":
            if self.first_month == 1:
                return Period.month(self.year - 1, 12)
            return Period.month(self.year, self.first_month - 1)
        if self.last_month == 1:
            return Period(self.year - 1, 1, 12, "ytd")
        return Period(self.year, 1, self.last_month - 1, "ytd")

    def same_period_last_year(self) -> Period:
        return Period(self.year - 1, self.first_month, self.last_month, self.kind)

    def is_complete(self, as_of: datetime) -> bool:
        return as_of >= self.end


def periods_for_year(year: int, through_month: int = 12) -> list[Period]:
    """Every period of a year whose end month is ≤ `through_month`: months, quarters, YTDs, year."""
    out: list[Period] = [Period.month(year, m) for m in range(1, through_month + 1)]
    out += [
        Period(year, 3 * q - 2, 3 * q, "quarter") for q in range(1, 5) if 3 * q <= through_month
    ]
    out += [Period(year, 1, m, "ytd") for m in range(1, through_month + 1)]
    if through_month == 12:
        out.append(Period(year, 1, 12, "year"))
    return out


def periods_containing_month(mid: str) -> list[Period]:
    """Every period whose figures change when the counters of month `mid` change: the month,
    its quarter, the year, and every YTD from that month to December (used by the stale queue)."""
    year, month = int(mid[:4]), int(mid[4:])
    q = (month + 2) // 3
    out = [
        Period.month(year, month),
        Period(year, 3 * q - 2, 3 * q, "quarter"),
        Period(year, 1, 12, "year"),
    ]
    out += [Period(year, 1, m, "ytd") for m in range(month, 13)]
    return out


def vn_today() -> date:
    """Today's date in Vietnam (business dates such as deadlines are Vietnam dates)."""
    return datetime.now(VN_TZ).date()
