"""Notifications in the database: written in the caller's transaction (outbox-style — the
fact and its notification commit together), with one delivery row per matching target, and
the feed and delivery queries. Set-based: two statements per batch of notifications."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, literal, or_, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.tasks.domain import notifications as dn
from services.tasks.store.clock import utcnow
from services.tasks.store.models import (
    Item,
    Notification,
    NotificationDelivery,
    NotificationRead,
)


def facts(item: Item) -> dn.ItemFacts:
    return dn.ItemFacts(
        item_id=item.id,
        title=item.title,
        lead_unit_id=item.lead_unit_id,
        deadline=item.deadline,
        supporting_unit_ids=tuple(item.supporting_unit_ids or []),
    )


_FAN_OUT = text(
    """
    INSERT INTO notification_deliveries (notification_id, target_id, channel, next_attempt_at)
    SELECT n.id, t.id, t.channel, CAST(:now AS timestamptz)
    FROM notifications n
    JOIN notification_targets t ON t.audience = n.audience AND t.active
    WHERE n.id = ANY(:ids)
    ON CONFLICT ON CONSTRAINT uq_delivery_once DO NOTHING
    """
)


async def add(session: AsyncSession, notes: Sequence[dn.NewNotification]) -> list[int]:
    """Insert notifications (a fact already notified is skipped) and their deliveries."""
    if not notes:
        return []
    rows = []
    now = utcnow()  # the service's clock, as the reads' and the workers' (not the database's)
    for n in notes:
        d = asdict(n)
        d["kind"] = n.kind.value
        d.setdefault("created_at", now)
        rows.append(d)
    ids = list(
        (
            await session.execute(
                pg_insert(Notification)
                .values(rows)
                .on_conflict_do_nothing(index_elements=[Notification.dedup_key])
                .returning(Notification.id)
            )
        )
        .scalars()
        .all()
    )
    if ids:
        # due at once on the service's clock (the worker compares with that clock too)
        await session.execute(_FAN_OUT, {"ids": ids, "now": now})
    return ids


def _updated() -> Any:
    return func.greatest(
        Notification.created_at, func.coalesce(NotificationRead.read_at, Notification.created_at)
    )


async def feed(
    session: AsyncSession,
    *,
    audiences: list[str],
    subject: str,
    updated_since: datetime | None,
    unread_only: bool,
    after: tuple[datetime, int] | None,
    limit: int,
) -> list[tuple[Notification, datetime | None, datetime]]:
    """(notification, read_at, updated_at) for the caller, oldest change first."""
    updated = _updated().label("updated")
    stmt = (
        select(Notification, NotificationRead.read_at, updated)
        .outerjoin(
            NotificationRead,
            and_(
                NotificationRead.notification_id == Notification.id,
                NotificationRead.subject == subject,
            ),
        )
        .where(Notification.audience.in_(audiences))
    )
    if updated_since is not None:
        stmt = stmt.where(_updated() > updated_since)
    if unread_only:
        stmt = stmt.where(NotificationRead.read_at.is_(None))
    if after is not None:
        stmt = stmt.where(
            or_(_updated() > after[0], and_(_updated() == after[0], Notification.id > after[1]))
        )
    stmt = stmt.order_by(_updated(), Notification.id).limit(limit)
    return [(n, r, u) for n, r, u in (await session.execute(stmt)).all()]


async def unread_count(session: AsyncSession, *, audiences: list[str], subject: str) -> int:
    stmt = (
        select(func.count())
        .select_from(Notification)
        .outerjoin(
            NotificationRead,
            and_(
                NotificationRead.notification_id == Notification.id,
                NotificationRead.subject == subject,
            ),
        )
        .where(Notification.audience.in_(audiences), NotificationRead.read_at.is_(None))
    )
    return int(await session.scalar(stmt) or 0)


async def mark_read(
    session: AsyncSession,
    *,
    audiences: list[str],
    subject: str,
    ids: Sequence[int] | None,
    now: datetime,
) -> int:
    """Mark the caller's notifications read (all when `ids` is None); already read stay as
    they were. Returns how many became read."""
    source = select(Notification.id, literal(subject), literal(now)).where(
        Notification.audience.in_(audiences)
    )
    if ids is not None:
        source = source.where(Notification.id.in_(list(ids)))
    result = await session.execute(
        pg_insert(NotificationRead)
        .from_select(["notification_id", "subject", "read_at"], source)
        .on_conflict_do_nothing()
        .returning(NotificationRead.notification_id)
    )
    return len(result.all())


async def deliveries_of(
    session: AsyncSession, ids: Sequence[int]
) -> dict[int, list[NotificationDelivery]]:
    if not ids:
        return {}
    rows = (
        (
            await session.execute(
                select(NotificationDelivery)
                .where(NotificationDelivery.notification_id.in_(list(ids)))
                .order_by(NotificationDelivery.id)
            )
        )
        .scalars()
        .all()
    )
    out: dict[int, list[NotificationDelivery]] = {}
    for d in rows:
        out.setdefault(d.notification_id, []).append(d)
    return out
