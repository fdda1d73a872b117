"""Consumer handler of `scoring.snapshots` SnapshotUpdated: the latest total and rank per
(unit, period, profile), for the leaders' digest. Tasks learns scores only from these events
(never scoring's API). An older or replayed version changes nothing; the first version of a
new Vietnam day moves the stored value into `previous_*`, so the digest's change is "since
yesterday"."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.tasks.store.repo import utcnow
from shared.events.consumer import Handler
from shared.events.envelope import CloudEvent
from shared.events.payloads import Payload, SnapshotUpdated

_UPSERT = text(
    """
    INSERT INTO unit_scores AS s
        (unit_id, period, profile, version, total, max_total, rank,
         previous_total, previous_rank, updated_at)
    VALUES (:unit_id, :period, :profile, :version, :total, :max_total, :rank, NULL, NULL, :at)
    ON CONFLICT (unit_id, period, profile) DO UPDATE SET
        previous_total = CASE
            WHEN timezone('Asia/Ho_Chi_Minh', s.updated_at)::date
                 < timezone('Asia/Ho_Chi_Minh', excluded.updated_at)::date
            THEN s.total ELSE s.previous_total END,
        previous_rank = CASE
            WHEN timezone('Asia/Ho_Chi_Minh', s.updated_at)::date
                 < timezone('Asia/Ho_Chi_Minh', excluded.updated_at)::date
            THEN s.rank ELSE s.previous_rank END,
        version = excluded.version,
        total = excluded.total,
        max_total = excluded.max_total,
        rank = excluded.rank,
        updated_at = excluded.updated_at
    WHERE excluded.version > s.version
    """
)


def make_score_handlers() -> dict[str, Handler]:
    async def on_snapshot(session: AsyncSession, event: CloudEvent, payload: Payload) -> None:
        assert isinstance(payload, SnapshotUpdated)
        at = event.time or utcnow()  # when scoring computed it
        await session.execute(
            _UPSERT,
            {
                "unit_id": payload.unit_id,
                "period": payload.period,
                "profile": payload.profile,
                "version": payload.version,
                "total": payload.total,
                "max_total": payload.max_total,
                "rank": payload.rank,
                "at": at,
            },
        )

    return {SnapshotUpdated.event_type: on_snapshot}
