"""Consumer of `scoring.snapshots`: an AlertRaised becomes one remediation item for the unit,
linked to the indicator; AlertCleared is noted on that item and closes it if still open
(cancelled with the event's reason, "chỉ số đã đạt"). Replays change nothing: the
consumer deduplicates event ids, and the item is unique per alert id."""

from __future__ import annotations

import os
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.tasks.domain import notifications as dn
from services.tasks.domain import timeliness as tl
from services.tasks.domain import workflow
from services.tasks.store import notifications as notes_store
from services.tasks.store import repo
from services.tasks.store.models import Item, ItemHistory, ProgressNote, UnitRow
from shared.events.consumer import Handler
from shared.events.envelope import CloudEvent
from shared.events.outbox import Outbox
from shared.events.payloads import AlertCleared, AlertRaised, Payload, RemediationCreated

ALERT_ITEM_DAYS = int(os.environ.get("TASKS_ALERT_ITEM_DAYS", "30"))
SYSTEM_ACTOR = "system:scoring-alerts"


def make_handlers(outbox: Outbox) -> dict[str, Handler]:
    async def on_alert_raised(session: AsyncSession, event: CloudEvent, payload: Payload) -> None:
        assert isinstance(payload, AlertRaised)
        known = await session.scalar(select(UnitRow.id).where(UnitRow.id == payload.unit_id))
        now = repo.utcnow()
        deadline = tl.local_date(now) + timedelta(days=ALERT_ITEM_DAYS)
        values = {
            "id": repo.new_id("itm"),
            "origin": "alert",
            "alert_id": payload.alert_id,
            "indicator": payload.indicator,
            "period": payload.period,
            # scoring names the agency, indicator and period in Vietnamese (older events: not)
            "title": payload.title
            or f"Khắc phục chỉ số {payload.indicator} ({payload.period}): {payload.message}",
            "lead_unit_id": payload.unit_id,
            "supporting_unit_ids": [],
            "criteria": [],
            "priority": "high",
            "deadline": deadline,
            "status": "not_started",
            "progress_percent": 0,
            "version": 1,
            "created_by": SYSTEM_ACTOR,
            "created_at": now,
            "updated_at": now,
        }
        inserted = (
            await session.execute(
                pg_insert(Item)
                .values(**values)
                .on_conflict_do_nothing(index_elements=[Item.alert_id])
                .returning(Item)
            )
        ).scalar_one_or_none()
        if inserted is None:
            return  # the alert already has its item (a replay with a new event id)
        session.add(
            ItemHistory(
                item_id=inserted.id,
                actor=SYSTEM_ACTOR,
                action="created",
                to_status="not_started",
                details={
                    "alert_id": payload.alert_id,
                    "rule": payload.rule,
                    "value": payload.value,
                    "threshold": payload.threshold,
                    "known_unit": known is not None,
                },
            )
        )
        await repo.emit(session, outbox, RemediationCreated(**repo.event_fields(inserted)))
        await notes_store.add(session, dn.item_assigned(notes_store.facts(inserted)))

    async def on_alert_cleared(session: AsyncSession, event: CloudEvent, payload: Payload) -> None:
        assert isinstance(payload, AlertCleared)
        item = (
            await session.execute(
                select(Item).where(Item.alert_id == payload.alert_id).with_for_update()
            )
        ).scalar_one_or_none()
        if item is None:
            return
        note = f"Cảnh báo đã được gỡ: {payload.message or payload.rule} ({payload.reason})"
        session.add(ProgressNote(item_id=item.id, author=SYSTEM_ACTOR, note=note, evidence=[]))
        session.add(
            ItemHistory(
                item_id=item.id,
                actor=SYSTEM_ACTOR,
                action="alert_cleared",
                details={"alert_id": payload.alert_id, "value": payload.value},
            )
        )
        if workflow.Status(item.status) in workflow.OPEN_STATES:
            # the indicator recovered: the item it raised is closed, with the reason
            await repo.transition(session, outbox, item, workflow.Action.cancel,
                                  actor=SYSTEM_ACTOR, reason=payload.reason)  # fmt: skip
        else:
            item.version += 1
            item.updated_at = repo.utcnow()

    return {
        AlertRaised.event_type: on_alert_raised,
        AlertCleared.event_type: on_alert_cleared,
    }
