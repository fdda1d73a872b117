from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from services.scoring.domain.periods import (
    VN_TZ,
    InvalidPeriod,
    Period,
    month_of,
    periods_containing_month,
)


@pytest.mark.parametrize(
    ("pid", "kind", "months"),
    [
        ("2026", "year", 12),
        ("2026Q3", "quarter", 3),
        ("202609", "month", 1),
        ("2026YTD09", "ytd", 9),
        ("2026YTD01", "ytd", 1),
    ],
)
def test_parse_round_trip(pid: str, kind: str, months: int) -> None:
    p = Period.parse(pid)
    assert p.id == pid and p.kind == kind and len(p.months) == months


def test_ranges_in_vietnam_time() -> None:
    q3 = Period.parse("2026Q3")
    assert q3.months == ("202607", "202608", "202609")
    assert q3.end_month == "202609"
    assert q3.start == datetime(2026, 7, 1, tzinfo=VN_TZ)
    assert q3.end == datetime(2026, 10, 1, tzinfo=VN_TZ)
    assert q3.start.utcoffset() == timedelta(hours=7)
    assert Period.parse("2026").end_date == date(2027, 1, 1)
    assert Period.parse("202612").end == datetime(2027, 1, 1, tzinfo=VN_TZ)
    # 30 Sep 17:30 UTC is already 1 Oct in Vietnam
    late = datetime(2026, 9, 30, 17, 30, tzinfo=UTC)
    assert month_of(late) == "202610"
    assert not q3.contains(late)
    assert q3.contains(datetime(2026, 9, 30, 16, 59, tzinfo=UTC))


@pytest.mark.parametrize(
    ("pid", "prev"),
    [
        ("2026", "2025"),
        ("2026Q1", "2025Q4"),
        ("2026Q3", "2026Q2"),
        ("202601", "202512"),
        ("202609", "202608"),
        ("2026YTD09", "2026YTD08"),
        ("2026YTD01", "2025YTD12"),
    ],
)
def test_previous(pid: str, prev: str) -> None:
    assert Period.parse(pid).previous().id == prev


@pytest.mark.parametrize("bad", ["26", "2026Q5", "202613", "2026YTD13", "2026YTD00", "2026-09", ""])
def test_invalid(bad: str) -> None:
    with pytest.raises(InvalidPeriod):
        Period.parse(bad)


def test_periods_touched_by_a_month() -> None:
    ids = {p.id for p in periods_containing_month("202611")}
    assert ids == {"202611", "2026Q4", "2026", "2026YTD11", "2026YTD12"}
