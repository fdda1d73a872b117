"""Receiving the national synchronisation push (see `connectors.push`): one batch = one run
and one transaction (records, events, quarantine entries, the run, its acknowledgement),
acknowledged only after it commits. Repeats are recognised by the store (newest wins), so a
batch sent twice stores nothing the second time and announces nothing; a batch that names its
`session` and is sent again unchanged (a sync retrying after a lost answer) is answered with
the acknowledgement of the first, `replayed`, and opens no run."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from services.ingest.connectors import capabilities
from services.ingest.domain.details import details_json, merge_progress
from services.ingest.domain.normalise import Record, Rejection, normalise_dossier
from services.ingest.domain.push import apply_progress, stamped
from services.ingest.store.pages import (
    DOSSIER_COLUMNS,
    OUTBOX_COLUMNS,
    SCHEMA,
    outbox_record,
    write_page,
)
from services.ingest.sync.engine import SourceDisabled, SourceNotFound, SyncEngine, _source_dict
from shared.events.payloads import DossierRecord, IngestRunCompleted

SERVICES = ("DongBoHoSoMC", "CapNhatTienDoHoSoMC")


class NotAPushSource(Exception):
    """The source is pulled, not pushed to."""


class _Replay(Exception):
    """An identical batch committed meanwhile (a concurrent twin): answer with its ack."""

    def __init__(self, ack: dict[str, Any]) -> None:
        self.ack = ack


ACK_SQL = f"""SELECT ack FROM {SCHEMA}.push_acks
    WHERE source_id = $1 AND service = $2 AND session = $3 AND digest = $4"""


def _replayed(ack: Any) -> dict[str, Any]:
    return {**(json.loads(ack) if isinstance(ack, str) else ack), "replayed": True}


def ack_message(received: int, stored: int, unchanged: int, quarantined: int) -> str:
    return (
        f"Đã nhận {received} hồ sơ: lưu {stored}, không thay đổi {unchanged}, "
        f"cách ly {quarantined}."
    )


async def receive_push(
    engine: SyncEngine, source_id: str, service: str, data: list[Any], *,
    session: str | None = None, digest: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Store one batch and return its acknowledgement. With a `session` and the batch's
    `digest`, the same batch sent again is answered with the first acknowledgement."""
    pool = engine.pool
    now = datetime.now(UTC)
    key = (source_id, service, session, digest) if session and digest else None
    async with pool.acquire() as conn:
        row = await conn.fetchrow(f"SELECT * FROM {SCHEMA}.sources WHERE id = $1", source_id)
        if row is None:
            raise SourceNotFound(source_id)
        source = _source_dict(row)
        if capabilities(source["kind"]).pull:
            raise NotAPushSource(source_id)
        if not source["enabled"]:
            raise SourceDisabled(source_id)
        if key is not None:  # the batch was committed before: its acknowledgement again
            hit = await conn.fetchval(ACK_SQL, *key)
            if hit is not None:
                return _replayed(hit)
        records: list[Record] = []
        rejections: list[Rejection] = []
        details: list[bytes | None] = []  # each stored record's (`domain.details`)
        if service == "DongBoHoSoMC":
            for raw in data:
                out = normalise_dossier(
                    stamped(raw), source_id=source_id, agencies=source["agencies"], now=now
                )
                if isinstance(out, Rejection):
                    rejections.append(out)
                else:
                    records.append(out)
                    details.append(details_json(raw))
        else:
            codes = [r.get("MaHoSo") for r in data if isinstance(r, dict)]
            rows = await conn.fetch(
                f"SELECT {', '.join(DOSSIER_COLUMNS)}, details FROM {SCHEMA}.dossiers "
                f"WHERE source_id = $1 AND code = ANY($2::text[])",
                source_id, [c for c in codes if isinstance(c, str)],
            )  # fmt: skip
            known = {
                r["code"]: (DossierRecord.model_validate({c: r[c] for c in DOSSIER_COLUMNS}),
                            r["details"])
                for r in rows
            }  # fmt: skip
            for raw in data:
                code = raw.get("MaHoSo") if isinstance(raw, dict) else None
                stored = known.get(code) if isinstance(code, str) else None
                progress = apply_progress(raw, stored[0] if stored else None, now=now)
                if isinstance(progress, Rejection):
                    rejections.append(progress)
                else:
                    # the update's steps join the stored ones
                    merged = merge_progress(stored[1] if stored else None, raw)
                    records.append(progress)
                    details.append(merged)
                    # later steps of the batch build on it
                    known[progress.code] = (progress, merged.decode() if merged else None)
        run_id = str(uuid.uuid4())
        try:
            ack = await _commit(engine, conn, key, run_id, source_id, records, rejections,
                                details, session, len(data))  # fmt: skip
        except _Replay as twin:
            return _replayed(twin.ack)
    return ack


async def _commit(
    engine: SyncEngine, conn: Any, key: tuple[Any, ...] | None, run_id: str, source_id: str,
    records: list[Record], rejections: list[Rejection], details: list[bytes | None],
    session: str | None, received: int,
) -> dict[str, Any]:  # fmt: skip
    """The batch's one transaction; its acknowledgement is stored in it (when keyed)."""
    async with conn.transaction():
        if key is not None:  # one of two identical batches at a time; the second replays
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))",
                               json.dumps(key))  # fmt: skip
            hit = await conn.fetchval(ACK_SQL, *key)
            if hit is not None:
                raise _Replay(hit)
        await engine._insert_run(conn, run_id, source_id, "dossiers", "push", "push",
                                 None, None)  # fmt: skip
        result = await write_page(
            conn, source_id=source_id, feed="dossiers", run_id=run_id,
            event_source=engine.event_source, records=records, rejections=rejections,
            next_cursor=None, checkpoint=False, details=details,
        )  # fmt: skip
        status = "partial" if rejections else "succeeded"
        error = f"push session {session}"[:200] if session else None
        run = await conn.fetchrow(
            f"UPDATE {SCHEMA}.runs SET status = $2, finished_at = now(), error = $3 "
            f"WHERE id = $1 RETURNING pulled, stored, unchanged, quarantined",
            run_id, status, error,
        )  # fmt: skip
        await conn.execute(
            f"UPDATE {SCHEMA}.sources SET health = 'ok', consecutive_failures = 0, "
            f"updated_at = now() WHERE id = $1",
            source_id,
        )
        event = IngestRunCompleted(
            run_id=run_id, source_id=source_id, feed="dossiers", outcome=status,
            pulled=run["pulled"], stored=run["stored"], unchanged=run["unchanged"],
            quarantined=run["quarantined"], error=None,
        )  # fmt: skip
        await conn.copy_records_to_table(
            "outbox", schema_name=SCHEMA,
            records=[outbox_record(event, source=engine.event_source, key=source_id)],
            columns=OUTBOX_COLUMNS,
        )  # fmt: skip
        ack = {
            "error_code": 0,
            "message": ack_message(received, run["stored"], run["unchanged"],
                                   run["quarantined"]),
            "session": session, "run_id": run_id, "received": received,
            "stored": run["stored"], "unchanged": run["unchanged"],
            "quarantined": run["quarantined"],
            "rejected": [{"MaHoSo": r.code, "reasons": list(r.reasons)}
                         for r in rejections][:100],
            "replayed": False,
        }  # fmt: skip
        if key is not None:
            await conn.execute(
                f"INSERT INTO {SCHEMA}.push_acks (source_id, service, session, digest, ack)"
                f" VALUES ($1, $2, $3, $4, $5::jsonb)",
                *key,
                json.dumps(ack, ensure_ascii=False),
            )
    engine._count(source_id, "dossiers", result, [])
    return ack
