"""Rankings as the portal ranks (profile 766@2): peer classes, ties, total out of 100 with what
is not applicable, and how fresh the figures are."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.domain.periods import Period
from services.scoring.domain.profile import load_profile
from services.scoring.recompute import Scoring, recompute
from services.scoring.store import snapshots as snap
from services.scoring.store.facts_store import upsert_facts
from services.scoring.store.models import outbox_table
from services.scoring.store.registry import import_units
from shared.events.outbox import Outbox
from tests.scoring import test_scoring_store as store
from tests.scoring.test_scoring_store import AS_OF, dossier, unit, vn

db = store.db


async def test_peer_classes_ties_and_not_applicable(db: AsyncSession) -> None:
    p = "R" + __import__("uuid").uuid4().hex[:8]
    units = [
        unit(p, None, "province", "tỉnh"),
        unit(f"{p}.S1", p, "department", "sở"), unit(f"{p}.S2", p, "department", "sở"),
        unit(f"{p}.TT", p, "department", "trung tâm"),
        unit(f"{p}.X1", p, "commune", "xã"), unit(f"{p}.X2", p, "commune", "xã"),
        unit(f"{p}.P1", p, "commune", "phường"),
    ]  # fmt: skip
    await import_units(db, units)
    late = {"finished_at": vn(2026, 9, 15)}
    facts = [
        # S1 all on time, S2 half late; the centre alone in its class
        *[dossier(f"{p}.S1", i) for i in range(4)],
        *[dossier(f"{p}.S2", i, **(late if i % 2 else {})) for i in range(4)],
        dossier(f"{p}.TT", 1, **late),
        # X1 and P1 tie (same facts), X2 below them
        *[dossier(f"{p}.X1", i, **(late if i == 0 else {})) for i in range(4)],
        *[dossier(f"{p}.P1", i, **(late if i == 0 else {})) for i in range(4)],
        *[dossier(f"{p}.X2", i, **late) for i in range(4)],
    ]
    await upsert_facts(db, facts, now=AS_OF)
    v2 = load_profile("766", 2)
    ctx = Scoring(outbox=Outbox(outbox_table, "/cchc-monitor/scoring"), profile=v2)
    await recompute(db, ctx, [u.id for u in units], [Period.parse("202609")], AS_OF,
                    today=date(2026, 10, 5))  # fmt: skip
    rows = {r["unit_id"]: r for r in await snap.list_rankings(db, "202609", v2.key, None, p)}

    def rank(u: str) -> tuple[Any, Any, Any]:
        r = rows[f"{p}.{u}"]
        return r["peer_group"], r["rank"], r["peers"]

    # departments apart from centres, communes (xã and phường together) apart from departments
    assert rank("S1") == (f"department|{p}", 1, 2) and rank("S2") == (f"department|{p}", 2, 2)
    assert rank("TT") == (f"centre|{p}", 1, 1)
    # a tie shares the rank and the next one skips (1, 1, 3)
    assert rows[f"{p}.X1"]["total"] == rows[f"{p}.P1"]["total"]
    assert rank("X1") == (f"commune|{p}", 1, 3) and rank("P1") == (f"commune|{p}", 1, 3)
    assert rank("X2") == (f"commune|{p}", 3, 3)
    # out of 100, saying what is not applicable: no procedure list, so the three procedure
    # publicity indicators (6 + 4 + 2) and the population-data TTHC share (2) are null, not 0
    s1 = rows[f"{p}.S1"]
    assert s1["max_total"] == 100 and s1["applicable_max"] == 86
    assert s1["not_applicable"] == []  # every group still has something to score


async def test_freshness_says_when_the_last_event_was_applied_and_if_a_recompute_is_due(
    db: AsyncSession,
) -> None:
    await db.execute(text(
        "INSERT INTO scoring.processed_events (consumer, event_source, event_id, event_type, "
        "processed_at) VALUES ('test', 'test', gen_random_uuid()::text, 't', "
        "'2999-01-01T00:00:00Z')"))  # fmt: skip
    await db.execute(text(
        "INSERT INTO scoring.stale (unit_id, month) VALUES ('FRESH.X', '202609') "
        "ON CONFLICT DO NOTHING"))  # fmt: skip
    f = await snap.freshness(db)
    assert f["last_event_at"].year == 2999
    assert f["recompute_pending"] and f["stale_pairs"] >= 1
