"""Event handlers: facts from ingest, remediation items from tasks. Set-based, one batch each."""

from __future__ import annotations

import json

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.store.facts_store import upsert_facts
from shared.events.envelope import CloudEvent
from shared.events.payloads import (
    DossiersChanged,
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
