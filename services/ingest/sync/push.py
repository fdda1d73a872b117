"""Receiving the national synchronisation push (see `connectors.push`): one batch = one run
and one transaction (records, events, quarantine entries, the run), acknowledged only after it
commits. Repeats are recognised by the store (newest wins), so a batch sent twice stores
nothing the second time and announces nothing."""

from __future__ import annotations

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


async def receive_push(
    engine: SyncEngine, source_id: str, service: str, data: list[Any], *,
    session: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    pool = engine.pool
    now = datetime.now(UTC)
    async with pool.acquire() as conn:
        row = await conn.fetchrow(f"SELECT * FROM {SCHEMA}.sources WHERE id = $1", source_id)
        if row is None:
            raise SourceNotFound(source_id)
        source = _source_dict(row)
        if capabilities(source["kind"]).pull:
            raise NotAPushSource(source_id)
        if not source["enabled"]:
            raise SourceDisabled(source_id)
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
        async with conn.transaction():
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
    engine._count(source_id, "dossiers", result, [])
    return {
        "session": session, "run_id": run_id, "received": len(data),
        "stored": run["stored"], "unchanged": run["unchanged"],
        "quarantined": run["quarantined"],
        "rejected": [{"MaHoSo": r.code, "reasons": list(r.reasons)} for r in rejections][:100],
    }  # fmt: skip
