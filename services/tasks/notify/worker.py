"""DeliveryWorker: sends due deliveries through their channel, once each.

A pass claims up to `batch` pending deliveries whose time has come (FOR UPDATE SKIP LOCKED,
so several instances share the work) and leases them — `next_attempt_at` moves past the
send timeout and `attempts` counts the try — in a short transaction of its own. It then
sends them concurrently with no transaction open, and records each outcome: delivered, or
back to pending after a backoff (30 s, 1 min, 2 min …), or failed after
`TASKS_DELIVERY_MAX_ATTEMPTS`. A crash mid-send leaves the lease to expire and the delivery
is tried again; receivers get the delivery id (webhook header, e-mail Message-ID) to drop a
repeat.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.tasks.config import TasksSettings
from services.tasks.domain import notifications as dn
from services.tasks.metrics import DELIVERIES
from services.tasks.notify.channels import Channel, DeliveryFailed, Outgoing, default_channels
from services.tasks.store.repo import utcnow
from shared.workers import PeriodicWorker

log = logging.getLogger("cchc.tasks.delivery")

_CLAIM = text(
    """
    WITH due AS (
        SELECT id FROM notification_deliveries
        WHERE status = 'pending' AND next_attempt_at <= :now
        ORDER BY next_attempt_at, id
        LIMIT :batch
        FOR UPDATE SKIP LOCKED
    )
    UPDATE notification_deliveries d
    SET attempts = d.attempts + 1, next_attempt_at = :lease
    FROM due, notifications n, notification_targets t
    WHERE d.id = due.id AND n.id = d.notification_id AND t.id = d.target_id
    RETURNING d.id, d.attempts, n.id, n.kind, n.title, n.body, n.item_id, n.data,
              n.created_at, d.channel, t.address, t.secret, t.keys
    """
)

_DONE = text(
    """
    UPDATE notification_deliveries
    SET status = 'delivered', delivered_at = :now, last_error = NULL
    WHERE id = ANY(:ids)
    """
)

_RETRY = text(
    """
    UPDATE notification_deliveries
    SET status = CASE WHEN attempts >= :max THEN 'failed' ELSE 'pending' END,
        next_attempt_at = :next, last_error = :error
    WHERE id = :id
    """
)


@dataclass
class DeliveryResult:
    delivered: int = 0
    retried: int = 0
    failed: int = 0


class DeliveryWorker(PeriodicWorker):
    name = "tasks notification delivery"

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: TasksSettings,
        channels: dict[str, Channel] | None = None,
        batch: int = 50,
    ) -> None:
        super().__init__(settings.delivery_interval_s)
        self.sessions = sessions
        self.settings = settings
        self.channels = channels if channels is not None else default_channels(settings)
        self.batch = batch

    async def _send(self, out: Outgoing) -> str | None:
        channel = self.channels.get(out.channel)
        if channel is None:
            return f"no channel {out.channel!r}"
        try:
            await channel.send(out)
        except DeliveryFailed as exc:
            return str(exc)[:500]
        except Exception as exc:  # a channel bug must not stop the others
            log.exception("delivery crashed", extra={"delivery_id": out.delivery_id})
            return f"{type(exc).__name__}"
        return None

    async def run_once(self, now: datetime | None = None) -> DeliveryResult:
        now = now or utcnow()
        lease = now + timedelta(seconds=self.settings.delivery_timeout_s * 3 + 30)
        async with self.sessions() as session, session.begin():
            rows = (
                await session.execute(_CLAIM, {"now": now, "lease": lease, "batch": self.batch})
            ).all()
        if not rows:
            return DeliveryResult()
        outs = [
            (
                attempts,
                Outgoing(
                    delivery_id=did,
                    notification_id=nid,
                    kind=kind,
                    title=title,
                    body=body,
                    item_id=item_id,
                    data=data or {},
                    created_at=created_at,
                    channel=channel,
                    address=address,
                    secret=secret,
                    keys=keys or {},
                ),
            )
            for did, attempts, nid, kind, title, body, item_id, data, created_at, channel, address, secret, keys in rows
        ]
        errors = await asyncio.gather(*(self._send(o) for _, o in outs))
        result = DeliveryResult()
        done = [o.delivery_id for (_, o), err in zip(outs, errors, strict=True) if err is None]
        async with self.sessions() as session, session.begin():
            if done:
                await session.execute(_DONE, {"now": now, "ids": done})
            for (attempts, o), err in zip(outs, errors, strict=True):
                if err is None:
                    continue
                await session.execute(
                    _RETRY,
                    {
                        "id": o.delivery_id,
                        "max": self.settings.delivery_max_attempts,
                        "next": now + dn.backoff(attempts, self.settings.delivery_backoff_s),
                        "error": err,
                    },
                )
                if attempts >= self.settings.delivery_max_attempts:
                    DELIVERIES.labels(o.channel, "failed").inc()
                    result.failed += 1
                    log.warning(
                        "delivery failed for good",
                        extra={"delivery_id": o.delivery_id, "channel": o.channel, "error": err},
                    )
                else:
                    DELIVERIES.labels(o.channel, "retried").inc()
                    result.retried += 1
        for (_, o), err in zip(outs, errors, strict=True):
            if err is None:
                DELIVERIES.labels(o.channel, "delivered").inc()
        result.delivered = len(done)
        return result

    async def tick(self) -> DeliveryResult:
        return await self.run_once()

    async def close(self) -> None:
        for channel in self.channels.values():
            closer = getattr(channel, "close", None)
            if closer is not None:
                await closer()
