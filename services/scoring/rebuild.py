"""Full rebuild of a province-year: `python -m services.scoring.rebuild --province P21 --year 2026`.

Recomputes the leaf counters of every unit aggregated into the province (its subtree and the
units merged into it) for the year's months from the stored facts, then every period of the year
(months, quarters, YTD, year) with ranks and alerts. One transaction; safe to re-run (snapshots
only get a new version where something changed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import defaultdict
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.domain.periods import Period, month_of, periods_for_year
from services.scoring.recompute import RecomputeStats, Scoring, recompute
from services.scoring.store.facts_store import add_leaf_deltas, contributions, parse_doc
from services.scoring.store.models import outbox_table
from services.scoring.store.registry import MEMBERS_CTE
from shared.db import make_engine, make_sessionmaker, transaction
from shared.events.outbox import Outbox
from shared.settings import Settings


async def rebuild_province_year(
    session: AsyncSession, ctx: Scoring, province: str, year: int, as_of: datetime | None = None
) -> RecomputeStats:
    as_of = as_of or datetime.now(UTC)
    members = list(
        (
            await session.execute(
                text(MEMBERS_CTE + "SELECT member FROM members ORDER BY member"),
                {"units": [province]},
            )
        ).scalars()
    )
    months = list(Period.parse(str(year)).months)
    await session.execute(
        text("""
        DELETE FROM scoring.leaf_counters
        WHERE unit_id = ANY(CAST(:u AS text[])) AND month = ANY(CAST(:m AS text[]))
        """),
        {"u": members, "m": months},
    )
    year_p = Period.parse(str(year))
    docs = await session.execute(
        text("""
        SELECT kind, doc FROM scoring.facts
        WHERE unit_id = ANY(CAST(:u AS text[]))
          AND (kind <> 'dossier'
               OR (reception_at >= :start AND reception_at < :end)
               OR (end_at >= :start AND end_at < :end))
        """),
        {"u": members, "start": year_p.start, "end": year_p.end},
    )
    month_set = set(months)
    leaves: dict[tuple[str, str, str, str], int] = defaultdict(int)
    for kind, doc in docs.all():
        for c in contributions(parse_doc(kind, doc)):
            if c.month in month_set:
                leaves[(c.unit_id, c.procedure, c.month, c.counter)] += c.value
    await add_leaf_deltas(session, leaves)
    await session.execute(
        text("""
        DELETE FROM scoring.stale
        WHERE unit_id = ANY(CAST(:u AS text[])) AND month = ANY(CAST(:m AS text[]))
        """),
        {"u": members, "m": months},
    )
    now_m = month_of(as_of)
    last = 12 if as_of >= year_p.end else (int(now_m[4:]) if now_m[:4] == str(year) else 1)
    return await recompute(session, ctx, members, periods_for_year(year, last), as_of)


async def main_async(province: str, year: int) -> RecomputeStats:
    settings = Settings(service_name="scoring")
    engine = make_engine(settings.async_database_url, schema="scoring")
    try:
        ctx = Scoring(outbox=Outbox(outbox_table, "/cchc-monitor/scoring"))
        async with transaction(make_sessionmaker(engine)) as session:
            return await rebuild_province_year(session, ctx, province, year)
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--province", required=True)
    parser.add_argument("--year", type=int, required=True)
    args = parser.parse_args()
    stats = asyncio.run(main_async(args.province, args.year))
    print(json.dumps(stats.__dict__))


if __name__ == "__main__":
    main()
