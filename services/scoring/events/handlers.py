"""Event handlers: facts from ingest, remediation items from tasks. Set-based, one batch each."""

from __future__ import annotations

import json

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.domain.profile import Profile
from services.scoring.store.facts_store import upsert_facts
from services.scoring.store.snapshots import import_official
from shared.events.consumer import Handler
from shared.events.envelope import CloudEvent
from shared.events.payloads import (
    DossiersChanged,
    OfficialScoresPublished,
    Payload,
    PetitionsChanged,
    ProceduresChanged,
    RemediationItemEvent,
)


async def handle_facts(session: AsyncSession, event: CloudEvent, payload: Payload) -> None:
    if isinstance(payload, DossiersChanged):
        await upsert_facts(session, payload.dossiers)
    elif isinstance(payload, ProceduresChanged):
        await upsert_facts(session, payload.procedures)
    elif isinstance(payload, PetitionsChanged):
        await upsert_facts(session, payload.petitions)


UPSERT_ITEM = text("""
INSERT INTO scoring.remediation_items AS r (item_id, unit_id, origin, status, deadline,
                                            completed_on, criteria, updated_at)
VALUES (:item_id, :unit_id, :origin, :status, :deadline, :completed_on, CAST(:criteria AS jsonb),
        :updated_at)
ON CONFLICT (item_id) DO UPDATE SET unit_id = excluded.unit_id, origin = excluded.origin,
    status = excluded.status, deadline = excluded.deadline,
    completed_on = excluded.completed_on, criteria = excluded.criteria,
    updated_at = excluded.updated_at
WHERE excluded.updated_at >= r.updated_at
""")


async def handle_remediation(session: AsyncSession, event: CloudEvent, payload: Payload) -> None:
    """Keep the item as it stands after the change (events carry the whole item); an event
    older than what is stored is ignored."""
    if not isinstance(payload, RemediationItemEvent):
        return
    await session.execute(
        UPSERT_ITEM,
        {
            "item_id": payload.item_id,
            "unit_id": payload.unit_id,
            "origin": payload.origin,
            "status": payload.status,
            "deadline": payload.deadline,
            "completed_on": payload.completed_on,
            "criteria": json.dumps(payload.criteria),
            "updated_at": event.time,
        },
    )


def official_rows(profile: Profile, payload: OfficialScoresPublished) -> list[dict[str, object]]:
    """The published figures as official-score rows of `profile`: the total, each group and
    each metric under our group / indicator id (by the portal's codes); codes the profile does
    not know are kept under the portal's code."""
    groups = {g.external_code: g.id for g in profile.groups if g.external_code}
    rows: list[dict[str, object]] = []
    for u in payload.units:
        base = {"unit_id": u.unit_id, "period": payload.period, "profile": profile.key}
        rows.append({**base, "item": "total", "points": u.total, "max_points": u.total_max,
                     "external_code": u.external_code})  # fmt: skip
        for g in u.groups:
            rows.append({**base, "item": groups.get(g.code, g.code), "points": g.score,
                         "max_points": g.max, "external_code": g.code})  # fmt: skip
        for m in u.metrics:
            ind = profile.by_external_code(m.code)
            rows.append({**base, "item": ind.id if ind else m.code, "points": m.score,
                         "max_points": m.max, "external_code": m.code,
                         "numerator": m.numerator, "denominator": m.denominator,
                         "ratio": None if m.ratio is None else m.ratio / 100})  # fmt: skip
    return rows


def make_official_handler(profile: Profile) -> Handler:
    async def handle_official(session: AsyncSession, event: CloudEvent, payload: Payload) -> None:
        """Store what the portal published beside our scores (never overwriting ours); a
        later publication of the same unit, period and item replaces the earlier one."""
        if not isinstance(payload, OfficialScoresPublished):
            return
        await import_official(session, official_rows(profile, payload), payload.source,
                              f"ingest:{payload.source_id}")  # fmt: skip

    return handle_official
