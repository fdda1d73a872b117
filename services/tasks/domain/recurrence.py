"""Expand recurrence codes (see ``parser`` for the vocabulary) into one instance per period.

Each instance has a period key (stable, used to create exactly one item per period), the
period's first and last day, and the due date of that instance:

* ``monthly`` – due on the last day of the month;
* ``monthly:days=A-B`` – due on day B of the month (the work happens on days A..B);
* ``monthly:by=D`` – due on day D of the month;
* ``weekly`` – ISO weeks, due on Sunday;
* ``quarterly`` – due on the last day of the quarter;
* ``half_yearly`` / ``yearly`` – due on 30/6, 31/12 / 31/12;
* ``yearly:by=MM-DD`` – due on that day each year;
* ``reports:…`` – the PAR reporting calendar (domain brief §4): Q1 report by 15/3, H1 (and
  Q2) by 15/6, Q3 / 9-month by 15/9, annual (and Q4) by 10/12.

A code may carry bounds after ``|``: ``monthly:by=20|from=2025-11-18|until=2026-12-31``.
Instances due before ``from`` (the conclusion's date: no work for periods before it) or
after ``until`` (the plan's horizon, the year written, an explicit end) are never produced,
so a confirmed duty is never an endless series.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta

REPORT_CALENDAR: dict[str, tuple[int, int]] = {
    "Q1": (3, 15),
    "Q2": (6, 15),
    "H1": (6, 15),
    "Q3": (9, 15),
    "M9": (9, 15),
    "Q4": (12, 10),
    "year": (12, 10),
}
_REPORT_PERIOD_START: dict[str, int] = {
    "Q1": 1,
    "Q2": 4,
    "H1": 1,
    "Q3": 7,
    "M9": 1,
    "Q4": 10,
    "year": 1,
}


class InvalidRecurrence(ValueError):
    pass


@dataclass(frozen=True)
class PeriodInstance:
    key: str  # e.g. "2024-03", "2024-Q2", "2024-H1", "2024-W05", "2024-report-Q1"
    period_start: date
    period_end: date
    due_on: date


def _month_end(y: int, m: int) -> date:
    return date(y, m, calendar.monthrange(y, m)[1])


def _clamp_day(y: int, m: int, d: int) -> date:
    return date(y, m, min(d, calendar.monthrange(y, m)[1]))


def _months(start: date, end: date) -> list[tuple[int, int]]:
    out = []
    y, m = start.year, start.month
    while (y, m) <= (end.year, end.month):
        out.append((y, m))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def bounds(code: str) -> tuple[date | None, date | None]:
    """The (from, until) bounds of a code (None when not written)."""
    lo: date | None = None
    hi: date | None = None
    for part in code.split("|")[1:]:
        k, _, v = part.partition("=")
        try:
            if k == "from":
                lo = date.fromisoformat(v)
            elif k == "until":
                hi = date.fromisoformat(v)
            else:
                raise InvalidRecurrence(code)
        except ValueError as exc:
            raise InvalidRecurrence(code) from exc
    return lo, hi


def bounded(code: str, start: date | None, until: date | None) -> str:
    """`code` with its bounds set (any earlier bounds replaced)."""
    base = code.split("|")[0]
    if start is not None:
        base += f"|from={start.isoformat()}"
    if until is not None:
        base += f"|until={until.isoformat()}"
    return base


def parse_code(code: str) -> tuple[str, dict[str, str]]:
    code = code.split("|")[0]
    kind, _, rest = code.partition(":")
    params: dict[str, str] = {}
    if rest:
        if kind == "reports":
            params["periods"] = rest
        else:
            for part in rest.split(";"):
                k, _, v = part.partition("=")
                params[k] = v
    return kind, params


def expand(code: str, start: date, end: date) -> list[PeriodInstance]:
    """Instances whose due date falls within [start, end] (inclusive) and within the code's
    own bounds, in due order."""
    lo, hi = bounds(code)
    if lo is not None and lo > start:
        start = lo
    if hi is not None and hi < end:
        end = hi
    if end < start:
        parse_code(code)  # still reject a malformed code
        _ = expand(code.split("|")[0], start, start)
        return []
    kind, params = parse_code(code)
    out: list[PeriodInstance] = []
    if kind == "monthly":
        for y, m in _months(start, end):
            first, last = date(y, m, 1), _month_end(y, m)
            if "days" in params:
                a, _, b = params["days"].partition("-")
                if not (a.isdigit() and b.isdigit()):
                    raise InvalidRecurrence(code)
                due = _clamp_day(y, m, int(b))
            elif "by" in params:
                if not params["by"].isdigit():
                    raise InvalidRecurrence(code)
                due = _clamp_day(y, m, int(params["by"]))
            else:
                due = last
            out.append(PeriodInstance(f"{y:04d}-{m:02d}", first, last, due))
    elif kind == "weekly":
        monday = start - timedelta(days=start.weekday())
        while monday <= end:
            iso = monday.isocalendar()
            sunday = monday + timedelta(days=6)
            out.append(PeriodInstance(f"{iso.year:04d}-W{iso.week:02d}", monday, sunday, sunday))
            monday += timedelta(days=7)
    elif kind == "quarterly":
        for y in range(start.year, end.year + 1):
            for q in range(1, 5):
                first, last = date(y, 3 * q - 2, 1), _month_end(y, 3 * q)
                out.append(PeriodInstance(f"{y:04d}-Q{q}", first, last, last))
    elif kind == "half_yearly":
        for y in range(start.year, end.year + 1):
            out.append(PeriodInstance(f"{y:04d}-H1", date(y, 1, 1), date(y, 6, 30), date(y, 6, 30)))
            out.append(
                PeriodInstance(f"{y:04d}-H2", date(y, 7, 1), date(y, 12, 31), date(y, 12, 31))
            )
    elif kind == "yearly":
        mm, dd = 12, 31
        if "by" in params:
            m_s, _, d_s = params["by"].partition("-")
            if not (m_s.isdigit() and d_s.isdigit()):
                raise InvalidRecurrence(code)
            mm, dd = int(m_s), int(d_s)
        for y in range(start.year, end.year + 1):
            try:
                due = date(y, mm, dd)
            except ValueError as exc:
                raise InvalidRecurrence(code) from exc
            out.append(PeriodInstance(f"{y:04d}", date(y, 1, 1), date(y, 12, 31), due))
    elif kind == "reports":
        periods = [p for p in params.get("periods", "").split(",") if p]
        if not periods or any(p not in REPORT_CALENDAR for p in periods):
            raise InvalidRecurrence(code)
        for y in range(start.year, end.year + 1):
            for p in periods:
                m, d = REPORT_CALENDAR[p]
                first = date(y, _REPORT_PERIOD_START[p], 1)
                out.append(
                    PeriodInstance(f"{y:04d}-report-{p}", first, date(y, m, d), date(y, m, d))
                )
    else:
        raise InvalidRecurrence(code)
    return sorted((i for i in out if start <= i.due_on <= end), key=lambda i: (i.due_on, i.key))
