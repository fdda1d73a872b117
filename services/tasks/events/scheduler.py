"""Deadline scheduler: reminders 7/3/1 days before a deadline, overdue notices, escalation of
long-overdue items, and one item per period for recurring duties.

Each pass runs one statement per kind: an INSERT … SELECT into ``notifications_sent`` keyed by
(item, kind, threshold, deadline) with ON CONFLICT DO NOTHING RETURNING the items that were
newly due, so every (item, threshold) is announced once even with several scheduler
instances, and an extension (new deadline) re-arms the reminders.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.tasks.config import TasksSettings
from services.tasks.domain import digest as dg
from services.tasks.domain import notifications as dn
from services.tasks.domain import recurrence as rec
from services.tasks.domain import timeliness as tl
from services.tasks.metrics import DEADLINE_NOTICES, ITEMS
from services.tasks.store import digest as digest_store
from services.tasks.store import notifications as notes_store
from services.tasks.store import repo
from services.tasks.store.models import Item, ItemHistory, Notification
from shared.events.outbox import Outbox
from shared.events.payloads import (
    Payload,
    RemediationCreated,
    RemediationOverdue,
    RemediationReminderDue,
)
from shared.workers import PeriodicWorker

log = logging.getLogger("cchc.tasks.scheduler")

ESCALATE_AFTER_DAYS = int(os.environ.get("TASKS_ESCALATE_AFTER_DAYS", "14"))
RECURRENCE_HORIZON_DAYS = int(os.environ.get("TASKS_RECURRENCE_HORIZON_DAYS", "31"))
OPEN = ("not_started", "in_progress", "reported")


@dataclass
class PassResult:
    reminders: int = 0
    overdue: int = 0
    escalated: int = 0
    recurring_created: int = 0
    idempotency_keys_purged: int = 0
    digests: int = 0


_REMINDERS = text(
    """
    WITH due AS (
        SELECT i.id, i.deadline,
               CASE WHEN i.deadline - CAST(:today AS date) <= 1 THEN 1
                    WHEN i.deadline - CAST(:today AS date) <= 3 THEN 3
                    ELSE 7 END AS threshold
        FROM items i
        WHERE i.status IN ('not_started', 'in_progress')
          AND i.deadline IS NOT NULL
          AND i.deadline BETWEEN CAST(:today AS date) AND CAST(:today AS date) + 7
    ), ins AS (
        INSERT INTO notifications_sent (item_id, kind, threshold, deadline)
        SELECT id, 'reminder', threshold, deadline FROM due
        ON CONFLICT DO NOTHING
        RETURNING item_id, threshold
    )
    SELECT ins.item_id, ins.threshold FROM ins
    """
)

_OVERDUE = text(
    """
    WITH late AS (
        SELECT i.id, i.deadline, (CAST(:today AS date) - i.deadline) AS days_overdue
        FROM items i
        WHERE i.status IN ('not_started', 'in_progress')
          AND i.deadline IS NOT NULL
          AND i.deadline < CAST(:today AS date)
    ), ins AS (
        INSERT INTO notifications_sent (item_id, kind, threshold, deadline)
        SELECT late.id, k.kind, k.threshold, late.deadline
        FROM late
        CROSS JOIN (VALUES ('overdue', 1), ('escalation', CAST(:escalate AS integer))) AS k(kind, threshold)
        WHERE late.days_overdue >= k.threshold
        ON CONFLICT DO NOTHING
        RETURNING item_id, kind
    )
    SELECT ins.item_id, bool_or(ins.kind = 'escalation') AS escalated
    FROM ins GROUP BY ins.item_id
    """
)


async def send_notifications(
    session: AsyncSession, outbox: Outbox, now: datetime, escalate_after: int = ESCALATE_AFTER_DAYS
) -> PassResult:
    """One pass of reminders and overdue notices (a 'reported' item awaits the inspector and
    is not chased)."""
    today = tl.local_date(now)
    result = PassResult()
    due = (await session.execute(_REMINDERS, {"today": today})).all()
    late = (await session.execute(_OVERDUE, {"today": today, "escalate": escalate_after})).all()
    ids = [r[0] for r in due] + [r[0] for r in late]
    if not ids:
        return result
    items = {
        i.id: i
        for i in (await session.execute(select(Item).where(Item.id.in_(ids)))).scalars().all()
    }
    events: list[tuple[Payload, str, str | None]] = []
    for item_id, threshold in due:
        item = items[item_id]
        events.append(
            (
                RemediationReminderDue(**repo.event_fields(item), days_before=threshold),
                item.lead_unit_id,
                item.id,
            )
        )
        result.reminders += 1
    for item_id, escalated in late:
        item = items[item_id]
        assert item.deadline is not None
        events.append(
            (
                RemediationOverdue(
                    **repo.event_fields(item),
                    days_overdue=(today - item.deadline).days,
                    escalated=bool(escalated),
                ),
                item.lead_unit_id,
                item.id,
            )
        )
        result.overdue += 1
        result.escalated += int(bool(escalated))
    notes: list[dn.NewNotification] = []
    for item_id, threshold in due:
        item = items[item_id]
        left = (item.deadline - today).days if item.deadline else None
        notes.append(dn.reminder(notes_store.facts(item), threshold, left))
    for item_id, escalated in late:
        item = items[item_id]
        assert item.deadline is not None
        days = (today - item.deadline).days
        notes.append(dn.overdue(notes_store.facts(item), days))
        if escalated:
            notes.extend(dn.escalation(notes_store.facts(item), days))
    # the people hear it in the same transaction as the event (outbox-style)
    await notes_store.add(session, notes)
    escalated_ids = [item_id for item_id, escalated in late if escalated]
    if escalated_ids:
        # long overdue: raise to urgent (one statement) and record why
        await session.execute(
            update(Item)
            .where(Item.id.in_(escalated_ids))
            .values(priority="urgent", version=Item.version + 1, updated_at=func.now())
        )
        for item_id in escalated_ids:
            deadline = items[item_id].deadline
            session.add(
                ItemHistory(
                    item_id=item_id,
                    actor="system:scheduler",
                    action="escalated",
                    details={"days_overdue": (today - deadline).days if deadline else None},
                )
            )
    await outbox.add_many(session, events)
    return result


async def create_recurring(session: AsyncSession, outbox: Outbox, now: datetime) -> int:
    """One child item per period for recurring duties whose period is due within the horizon."""
    today = tl.local_date(now)
    horizon = today + timedelta(days=RECURRENCE_HORIZON_DAYS)
    templates = (
        (
            await session.execute(
                select(Item).where(
                    Item.recurrence.is_not(None),
                    Item.parent_item_id.is_(None),
                    Item.status.in_(OPEN),
                )
            )
        )
        .scalars()
        .all()
    )
    rows = []
    for t in templates:
        assert t.recurrence is not None
        try:
            instances = rec.expand(t.recurrence, today, horizon)
        except rec.InvalidRecurrence:
            log.warning("bad recurrence code", extra={"item_id": t.id, "code": t.recurrence})
            continue
        for inst in instances:
            rows.append(
                {
                    "id": repo.new_id("itm"),
                    "conclusion_id": t.conclusion_id,
                    "finding_id": t.finding_id,
                    "origin": "recurrence",
                    "indicator": t.indicator,
                    "title": f"{t.title} — kỳ {inst.key}",
                    "lead_unit_id": t.lead_unit_id,
                    "supporting_unit_ids": t.supporting_unit_ids,
                    "responsible_person": t.responsible_person,
                    "criteria": t.criteria,
                    "priority": t.priority,
                    "deadline": inst.due_on,
                    "original_deadline": inst.due_on,
                    "parent_item_id": t.id,
                    "period_key": inst.key,
                    "status": "not_started",
                    "progress_percent": 0,
                    "version": 1,
                    "created_by": "system:recurrence",
                    "created_at": now,
                    "updated_at": now,
                }
            )
    if not rows:
        return 0
    created = (
        (
            await session.execute(
                pg_insert(Item)
                .values(rows)
                .on_conflict_do_nothing(constraint="uq_items_parent_period")
                .returning(Item)
            )
        )
        .scalars()
        .all()
    )
    for item in created:
        session.add(
            ItemHistory(
                item_id=item.id,
                actor="system:recurrence",
                action="created",
                to_status="not_started",
                details={"parent_item_id": item.parent_item_id, "period": item.period_key},
            )
        )
    await outbox.add_many(
        session,
        [(RemediationCreated(**repo.event_fields(i)), i.lead_unit_id, i.id) for i in created],
    )
    await notes_store.add(
        session, [n for i in created for n in dn.item_assigned(notes_store.facts(i))]
    )
    return len(created)


async def send_digest(session: AsyncSession, now: datetime, settings: TasksSettings) -> int:
    """The leaders' morning digest, once a day from `TASKS_DIGEST_TIME` (local): a
    notification to `TASKS_DIGEST_AUDIENCE`, delivered through its targets' channels."""
    today = tl.local_date(now)
    if now < dg.due_at(today, settings.digest_time):
        return 0
    key = dg.dedup_key(today, settings.digest_audience)
    if await session.scalar(select(Notification.id).where(Notification.dedup_key == key)):
        return 0  # sent today already: don't gather the facts again every pass
    facts = await digest_store.digest_facts(session, province_id=settings.province_id, today=today)
    return len(await notes_store.add(session, [dg.compose(facts, settings.digest_audience)]))


class DeadlineScheduler(PeriodicWorker):
    """Worker: runs a pass every `interval` seconds (one transaction per pass)."""

    name = "tasks deadline scheduler"

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        outbox: Outbox,
        interval: float,
        settings: TasksSettings | None = None,
    ) -> None:
        super().__init__(interval)
        self.sessions = sessions
        self.outbox = outbox
        self.settings = settings or TasksSettings()

    async def run_once(self, now: datetime | None = None) -> PassResult:
        now = now or repo.utcnow()
        async with self.sessions() as session, session.begin():
            # one scheduler at a time across instances (transaction-scoped advisory lock)
            got = await session.scalar(
                select(text("pg_try_advisory_xact_lock(hashtext('cchc-tasks-scheduler'))"))
            )
            if not got:
                return PassResult()
            result = await send_notifications(session, self.outbox, now)
            result.recurring_created = await create_recurring(session, self.outbox, now)
            result.idempotency_keys_purged = await repo.purge_expired_keys(session, now)
            result.digests = await send_digest(session, now, self.settings)
        # counted once committed (a rolled-back pass sent nothing)
        for kind, count in (
            ("reminder", result.reminders),
            ("overdue", result.overdue),
            ("escalation", result.escalated),
        ):
            if count:
                DEADLINE_NOTICES.labels(kind).inc(count)
        return result

    async def tick(self) -> PassResult:
        result = await self.run_once()
        async with self.sessions() as session:
            await sample_items(session, repo.utcnow())
        return result


async def sample_items(session: AsyncSession, now: datetime) -> dict[tuple[str, str], int]:
    """Items by status and timeliness for `/metrics` (one GROUP BY, the SQL twin of the
    timeliness the API reports)."""
    timeliness = repo.timeliness_expr(tl.local_date(now))
    rows = (
        await session.execute(
            select(Item.status, timeliness, func.count()).group_by(Item.status, timeliness)
        )
    ).all()
    counts = {(status, str(t)): int(n) for status, t, n in rows}
    ITEMS.clear()
    for (status, t), n in counts.items():
        ITEMS.labels(status, t).set(n)
    return counts
