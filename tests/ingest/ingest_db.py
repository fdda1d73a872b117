"""Database helpers of the ingest tests (real PostgreSQL from the session fixtures)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

import asyncpg

from services.ingest.domain.agencies import mapping_from_registry
from services.ingest.domain.normalise import Rejection, normalise
from services.ingest.simulator import Simulator
from services.ingest.simulator.data import VN
from services.ingest.store.pages import DOSSIER_COLUMNS
from shared.events.payloads import DossierRecord

AGENCIES = mapping_from_registry("demo-igate")


async def add_source(pool: asyncpg.Pool, base_url: str, **overrides: Any) -> str:
    source_id = overrides.pop("id", None) or f"sim-{uuid.uuid4().hex[:8]}"
    values: dict[str, Any] = {
        "id": source_id,
        "name": "Hưng Yên iGate (simulator)",
        "kind": "national-json",
        "base_url": base_url,
        "auth": json.dumps({"type": "api_key", "header": "X-API-Key", "key": "demo-key"}),
        "agencies": json.dumps(AGENCIES),
        "feeds": ["dossiers"],
        "page_size": 97,
        "rate_limit_per_s": 1000.0,
        "concurrency": 2,
        "timeout_s": 1.0,
        "schedule_s": 3600,
        "lookback_s": 3600,
    }
    values.update(overrides)
    cols = list(values)
    casts = {"auth": "::jsonb", "agencies": "::jsonb"}
    params = ", ".join(f"${i + 1}{casts.get(c, '')}" for i, c in enumerate(cols))
    await pool.execute(
        f"INSERT INTO ingest.sources ({', '.join(cols)}) VALUES ({params})", *values.values()
    )
    return source_id


def expected(sim: Simulator, source_id: str) -> tuple[dict[str, DossierRecord], set[str]]:
    """The source's dossiers at its current clock, normalised; and the codes it rejects."""
    now = datetime.fromtimestamp(sim.clock, VN)
    good: dict[str, DossierRecord] = {}
    bad: set[str] = set()
    for code, raw in sim.truth("dossiers").items():
        out = normalise("dossiers", raw, source_id=source_id, agencies=AGENCIES, now=now)
        if isinstance(out, Rejection):
            bad.add(code)
        else:
            assert isinstance(out, DossierRecord)
            good[out.code] = out
    return good, bad


async def stored(pool: asyncpg.Pool, source_id: str) -> dict[str, DossierRecord]:
    rows = await pool.fetch(
        f"SELECT {', '.join(DOSSIER_COLUMNS)} FROM ingest.dossiers WHERE source_id = $1",
        source_id,
    )
    return {r["code"]: DossierRecord.model_validate(dict(r)) for r in rows}


async def event_records(pool: asyncpg.Pool, source_id: str) -> list[tuple[str, str]]:
    """(code, source_updated_at) of every dossier carried by this source's outbox events."""
    rows = await pool.fetch(
        """SELECT d->>'code' AS code, d->>'source_updated_at' AS updated
           FROM ingest.outbox o, jsonb_array_elements(o.payload::jsonb->'dossiers') d
           WHERE o.type = 'vn.cchc.ingest.dossiers.changed.v1' AND d->>'source_id' = $1""",
        source_id,
    )
    return [(r["code"], r["updated"]) for r in rows]


async def new_run(pool: asyncpg.Pool, sid: str, run_id: str | None = None) -> str:
    """A running incremental dossier run of `sid` (by default `run-<sid>`), for pages written
    directly with `write_page`."""
    run_id = run_id or f"run-{sid}"
    await pool.execute(
        "INSERT INTO ingest.runs (id, source_id, feed, kind, trigger, status) "
        "VALUES ($1, $2, 'dossiers', 'incremental', 'manual', 'running')",
        run_id, sid,
    )  # fmt: skip
    return run_id
