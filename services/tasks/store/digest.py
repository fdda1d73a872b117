"""What the leaders' digest reads: the stored unit scores (from scoring.snapshots events), the
open overdue items and their agencies — a handful of set-based queries."""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.tasks.domain import digest as dg
from services.tasks.store.models import Item, UnitRow, UnitScore

OPEN = ("not_started", "in_progress")


async def digest_facts(session: AsyncSession, *, province_id: str, today: date) -> dg.DigestFacts:
    units = dict(
        (
            await session.execute(
                select(UnitRow.id, UnitRow.name).where(
                    (UnitRow.parent_id == province_id) | (UnitRow.id == province_id)
                )
            )
        ).all()
    )
    # the period: this year's when scored, else the one scored most recently
    periods = (
        await session.execute(
            select(UnitScore.period, func.max(UnitScore.updated_at))
            .where(UnitScore.unit_id.in_(list(units)))
            .group_by(UnitScore.period)
            .order_by(func.max(UnitScore.updated_at).desc())
        )
    ).all()
    names = [p for p, _ in periods]
    period = str(today.year) if str(today.year) in names else (names[0] if names else None)
    scores: list[dg.Score] = []
    province: dg.Score | None = None
    if period is not None:
        rows = (
            (
                await session.execute(
                    select(UnitScore).where(
                        UnitScore.period == period, UnitScore.unit_id.in_(list(units))
                    )
                )
            )
            .scalars()
            .all()
        )
        for r in rows:
            s = dg.Score(
                unit_id=r.unit_id,
                name=units.get(r.unit_id),
                total=r.total,
                previous_total=r.previous_total,
                rank=r.rank,
                previous_rank=r.previous_rank,
            )
            if r.unit_id == province_id:
                province = s
            else:
                scores.append(s)
    overdue_rows = (
        await session.execute(
            select(Item.id, Item.title, Item.lead_unit_id, Item.priority, Item.deadline)
            .where(Item.status.in_(OPEN), Item.deadline < today)
            .where(Item.lead_unit_id.in_(list(units)))
            .order_by(Item.deadline, Item.id)
        )
    ).all()
    issues = [
        dg.Issue(
            item_id=i,
            title=t,
            unit_id=u,
            unit_name=units.get(u),
            priority=p,
            days_overdue=(today - d).days if d else 0,
        )
        for i, t, u, p, d in overdue_rows
    ]
    counts: dict[str, int] = {}
    for i in issues:
        counts[i.unit_id] = counts.get(i.unit_id, 0) + 1
    by_agency = sorted(
        ((u, units.get(u), n) for u, n in counts.items()), key=lambda x: (-x[2], x[0])
    )
    return dg.DigestFacts(
        day=today,
        province_id=province_id,
        province_name=units.get(province_id),
        period=period,
        province=province,
        units=scores,
        issues=issues,
        overdue_by_agency=by_agency,
    )
