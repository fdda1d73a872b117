"""Fact counters (§2 on-time rule) and aggregation of parents as sums of leaf counters."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from services.scoring.domain.engine import score
from services.scoring.domain.facts import (
    aggregate,
    dossier_flows,
    dossier_stock_at,
    is_on_time_at,
    leaf_counters,
    shortfall_rows,
)
from services.scoring.domain.periods import VN_TZ, Period
from services.scoring.domain.profile import load_profile
from shared.events.payloads import DossierRecord, PetitionRecord, ProcedureRecord


def vn(y: int, m: int, d: int, h: int = 9) -> datetime:
    return datetime(y, m, d, h, tzinfo=VN_TZ)


_n = 0


def dossier(**kw: Any) -> DossierRecord:
    global _n
    _n += 1
    base: dict[str, Any] = {
        "source_id": "demo",
        "code": f"D{_n}",
        "unit_id": "P21.C001",
        "procedure_code": "1.001",
        "channel": 1,
        "status": 10,
        "received_at": vn(2026, 9, 1),
        "due_at": vn(2026, 9, 10),
        "finished_at": vn(2026, 9, 9),
        "source_updated_at": vn(2026, 9, 11),
    }
    base.update(kw)
    return DossierRecord(**base)


def names(d: DossierRecord) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = {}
    for c in dossier_flows(d):
        out[(c.month, c.counter)] = out.get((c.month, c.counter), 0) + 1
    return out


def test_finished_on_time_and_late() -> None:
    assert ("202609", "finished_on_time") in names(dossier())
    late = dossier(finished_at=vn(2026, 9, 10, 10))
    assert ("202609", "finished_late") in names(late)
    exactly = dossier(finished_at=vn(2026, 9, 10))  # end == due → on time
    assert ("202609", "finished_on_time") in names(exactly)


def test_supplement_wait_excluded_but_two_requests_late() -> None:
    waited = dossier(finished_at=vn(2026, 9, 13), supplement_count=1, supplement_days=4)
    assert is_on_time_at(waited, vn(2026, 9, 30))
    twice = dossier(supplement_count=2, supplement_days=1)  # dates fine, but 2 requests
    assert not is_on_time_at(twice, vn(2026, 9, 30))
    apology = dossier(apology_count=1)
    assert not is_on_time_at(apology, vn(2026, 9, 30))


def test_flows_dated_by_reception_and_end() -> None:
    d = dossier(
        channel=2,
        received_at=vn(2026, 8, 28),
        finished_at=vn(2026, 9, 2),
        has_fee=True,
        paid_online=2,
        has_e_result=True,
        digitised=True,
        synced_national=True,
    )
    n = names(d)
    for c in ("received", "received_online", "fee_dossiers", "paid_online", "synced", "digitised"):
        assert ("202608", c) in n
    assert ("202608", "digitised_e_result") in n
    for c in ("finished", "finished_on_time", "needs_result", "e_result"):
        assert ("202609", c) in n


def test_not_received_contributes_nothing() -> None:
    assert dossier_flows(dossier(status=1, received_at=None, finished_at=None)) == []
    assert dossier_flows(dossier(status=3, received_at=None)) == []


def test_open_at_period_end_within_time_or_overdue() -> None:
    open_ok = dossier(status=4, finished_at=None, due_at=vn(2026, 10, 5))
    open_late = dossier(status=4, finished_at=None, due_at=vn(2026, 9, 20))
    waiting = dossier(status=5, finished_at=None, due_at=vn(2026, 9, 20))
    end = Period.parse("202609").end
    assert dossier_stock_at(open_ok, end) == ["open_at_end", "open_within_time"]
    assert dossier_stock_at(open_late, end) == ["open_at_end", "open_overdue"]
    assert dossier_stock_at(waiting, end) == []  # supplement wait: clock stopped
    finished_later = dossier(finished_at=vn(2026, 10, 2), due_at=vn(2026, 10, 5))
    assert dossier_stock_at(finished_later, end) == ["open_at_end", "open_within_time"]
    assert dossier_stock_at(dossier(), end) == []


def _facts() -> list[DossierRecord]:
    return [
        # commune C001: 3 finished in Sept (2 on time, 1 late), 1 open overdue at end of Sept
        dossier(unit_id="P21.C001"),
        dossier(unit_id="P21.C001"),
        dossier(unit_id="P21.C001", procedure_code="1.002", finished_at=vn(2026, 9, 15)),
        dossier(unit_id="P21.C001", status=4, finished_at=None, due_at=vn(2026, 9, 25)),
        # commune C002: 1 finished on time in July, 1 in Sept
        dossier(
            unit_id="P21.C002",
            received_at=vn(2026, 7, 1),
            due_at=vn(2026, 7, 10),
            finished_at=vn(2026, 7, 3),
        ),
        dossier(unit_id="P21.C002"),
    ]


def test_quarter_and_parent_are_sums_of_monthly_leaf_counters() -> None:
    leaves = leaf_counters(dossiers=_facts(), stock_months=["202607", "202608", "202609"])
    q3 = Period.parse("2026Q3")
    c1 = aggregate(leaves, q3, {"P21.C001"})
    c2 = aggregate(leaves, q3, {"P21.C002"})
    parent = aggregate(leaves, q3, {"P21", "P21.C001", "P21.C002"})
    assert c1["on_time_or_within"] == 2 and c1["processed_or_open"] == 4
    assert c2["on_time_or_within"] == 2 and c2["processed_or_open"] == 2
    for k in ("received", "finished", "on_time_or_within", "processed_or_open", "late_total"):
        assert parent[k] == c1.get(k, 0) + c2.get(k, 0)
    p766 = load_profile("766", 1)
    s1 = score(p766, c1).indicators["prog_on_time"].points
    s2 = score(p766, c2).indicators["prog_on_time"].points
    sp = score(p766, parent).indicators["prog_on_time"].points
    assert (s1, s2) == (10.0, 20.0)
    assert sp == pytest.approx(20 * 4 / 6, abs=1e-4)  # ratio of sums, not the average 15.0
    months = [aggregate(leaves, Period.parse(m), {"P21.C002"}) for m in q3.months]
    assert sum(m.get("finished", 0) for m in months) == c2["finished"]


def test_open_stock_read_at_the_period_end_month_only() -> None:
    d = dossier(status=4, received_at=vn(2026, 7, 5), finished_at=None, due_at=vn(2026, 12, 1))
    leaves = leaf_counters(dossiers=[d], stock_months=["202607", "202608", "202609"])
    assert aggregate(leaves, Period.parse("2026Q3"), {"P21.C001"})["open_at_end"] == 1  # not 3
    assert aggregate(leaves, Period.parse("202608"), {"P21.C001"})["open_at_end"] == 1


def test_running_month_stock_read_at_as_of() -> None:
    d = dossier(status=4, finished_at=None, due_at=vn(2026, 9, 20))
    leaves = leaf_counters(dossiers=[d], stock_months=["202609"], as_of=vn(2026, 9, 15))
    agg = aggregate(leaves, Period.parse("202609"), {"P21.C001"})
    assert agg["open_within_time"] == 1 and agg.get("open_overdue", 0) == 0


def test_distinct_online_services_count_unit_procedure_pairs() -> None:
    def proc(code: str, unit: str, level: str = "full") -> ProcedureRecord:
        return ProcedureRecord(
            source_id="demo", code=code, name=code, unit_id=unit, online_level=level,
            source_updated_at=vn(2026, 1, 1),
        )  # fmt: skip

    procs = [proc("1.001", "P21.C001"), proc("1.002", "P21.C001"), proc("1.001", "P21.C002")]
    ds = [
        dossier(unit_id="P21.C001", channel=2, received_at=vn(2026, 7, 1)),
        dossier(unit_id="P21.C001", channel=2),  # same pair again, another month
        dossier(unit_id="P21.C002", channel=2),
        dossier(unit_id="P21.C002", procedure_code="9.999", channel=2),  # not in the list
    ]
    leaves = leaf_counters(dossiers=ds, procedures=procs, stock_months=["202609"])
    agg = aggregate(leaves, Period.parse("2026Q3"), {"P21.C001", "P21.C002"})
    assert agg["proc_online"] == 3
    assert agg["proc_online_with_dossiers"] == 2
    rows = shortfall_rows(
        leaves, Period.parse("2026Q3"), {"P21.C001", "P21.C002"},
        "proc_online_with_dossiers", "proc_online",
    )  # fmt: skip
    assert rows == [("1.002", "P21.C001", 1.0)]


def test_petitions_flows() -> None:
    ps = [
        PetitionRecord(
            source_id="s", code="K1", unit_id="P21", received_at=vn(2026, 9, 1),
            due_at=vn(2026, 9, 10), handled_at=vn(2026, 9, 12), satisfied=True,
            source_updated_at=vn(2026, 9, 12),
        ),
        PetitionRecord(
            source_id="s", code="K2", unit_id="P21", received_at=vn(2026, 9, 1),
            source_updated_at=vn(2026, 9, 12),
        ),
    ]  # fmt: skip
    agg = aggregate(leaf_counters(petitions=ps), Period.parse("202609"), {"P21"})
    assert agg["pakn_handled"] == 1 and agg.get("pakn_handled_on_time", 0) == 0
    assert agg["pakn_satisfied"] == 1


def test_supplement_days_shift_due() -> None:
    d = dossier(due_at=vn(2026, 9, 10), finished_at=vn(2026, 9, 11), supplement_days=1.5,
                supplement_count=1)  # fmt: skip
    assert is_on_time_at(d, vn(2026, 9, 30))
    assert not is_on_time_at(d.model_copy(update={"supplement_days": 0}), vn(2026, 9, 30))
    assert d.due_at is not None and d.due_at + timedelta(days=1.5) > vn(2026, 9, 11)
