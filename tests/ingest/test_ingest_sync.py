"""The sync engine against the simulator over real HTTP and a real PostgreSQL."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime

import asyncpg
import pytest

from services.ingest.connectors.retry import RetryPolicy
from services.ingest.simulator import Faults, build
from services.ingest.simulator.data import DAY, VN
from services.ingest.store.pages import write_page
from services.ingest.sync.engine import RunInProgress, SyncEngine, reprocess_quarantine
from shared.events.budget import EVENT_BUDGET_BYTES
from shared.settings import to_plain_url

from .conftest import serve_simulator
from .ingest_db import add_source, event_records, expected, new_run, stored

FAST = RetryPolicy(attempts=40, base_s=0.005, cap_s=0.05, max_retry_after_s=0.05)
ALL_FAULTS = Faults(
    latency_ms=1, latency_jitter_ms=3, error_rate=0.1, rate_limit_rate=0.1, retry_after_s=0.01,
    hang_rate=0.05, hang_s=1.6, garble_rate=0.05, duplicate_rate=0.5, advance_per_page_s=1800,
)  # fmt: skip


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await asyncpg.create_pool(to_plain_url(database_url), min_size=1, max_size=6)
    yield p
    await p.close()


async def _assert_events_match_changes(pool: asyncpg.Pool, source_id: str) -> None:
    events = await event_records(pool, source_id)
    assert len(events) == len(set(events)), "a change was announced twice"
    versions = await pool.fetchval(
        "SELECT sum(version) FROM ingest.dossiers WHERE source_id = $1", source_id
    )
    assert len(events) == versions, "every stored version has exactly one event"


@pytest.mark.parametrize("workers", [0, 1], ids=["in-process", "worker-process"])
async def test_every_fault_on_ends_with_the_exact_source_set(
    pool: asyncpg.Pool, workers: int
) -> None:
    sim = build(21, 3_000, malformed_rate=0.01, faults=ALL_FAULTS)
    with serve_simulator(sim) as url:
        sid = await add_source(pool, url)
        engine = SyncEngine(pool, policy=FAST, workers=workers)
        result = await engine.run(sid, "dossiers")
        assert result.status == "partial", result  # complete walk, some records quarantined
        assert {"timeout", "http_5xx", "rate_limited", "protocol"} <= set(result.errors)
        good, bad = expected(sim, sid)
        assert await stored(pool, sid) == good  # record by record
        await _assert_events_match_changes(pool, sid)

        # Quarantine: every malformed record, with its reasons and raw payload.
        rows = await pool.fetch(
            "SELECT code, reasons, raw FROM ingest.quarantine WHERE source_id = $1", sid
        )
        malformed = sim.malformed_codes()
        assert set(malformed) == bad
        named = {c for c, k in malformed.items() if k != "missing_code"}
        assert {r["code"] for r in rows} - {None} == named
        assert all(r["reasons"] for r in rows)
        nul = [r for r in rows if r["code"] in named and malformed[r["code"]] == "nul_byte"]
        assert nul and all("\\u0000" in r["raw"] for r in nul)

        # Status history: transitions of already stored dossiers only (records changing between
        # pages can store a dossier twice); a dossier stored once has none.
        hist = await pool.fetchrow(
            "SELECT count(*) AS n, count(*) FILTER (WHERE previous_status IS DISTINCT FROM status"
            " AND previous_status IS NOT NULL) AS transitions,"
            " (SELECT sum(version - 1) FROM ingest.dossiers WHERE source_id = $1) AS updates"
            " FROM ingest.dossier_status_history WHERE source_id = $1",
            sid,
        )
        assert hist["n"] == hist["transitions"] <= hist["updates"]

        # The run is recorded and announced.
        run = await pool.fetchrow("SELECT * FROM ingest.runs WHERE id = $1", result.run_id)
        versions = await pool.fetchval(
            "SELECT sum(version) FROM ingest.dossiers WHERE source_id = $1", sid)  # fmt: skip
        assert run["status"] == "partial" and run["stored"] == versions >= len(good)
        assert run["quarantined"] >= len(bad)
        done = await pool.fetchval(
            "SELECT count(*) FROM ingest.outbox WHERE type = $1 AND payload::jsonb->>'run_id' = $2",
            "vn.cchc.ingest.run.completed.v1", result.run_id,
        )  # fmt: skip
        assert done == 1
        assert await pool.fetchval(
            "SELECT count(*) FROM ingest.checkpoints WHERE source_id = $1", sid) == 0  # fmt: skip

        # Incremental: two days later, from the watermark minus the look-back window.
        sim.advance(2 * DAY)
        again = await engine.run(sid, "dossiers")
        assert again.stored > 0 and again.unchanged > 0  # the look-back re-read some
        good, _ = expected(sim, sid)
        assert await stored(pool, sid) == good
        await _assert_events_match_changes(pool, sid)
        changed = await pool.fetch(
            "SELECT h.status, h.previous_status, h.previous_status_since, h.source_updated_at,"
            " d.status AS now, d.status_since FROM ingest.dossier_status_history h"
            " JOIN ingest.dossiers d USING (source_id, code) WHERE h.source_id = $1",
            sid,
        )
        assert changed
        assert all(r["status"] != r["previous_status"] is not None for r in changed)
        assert all(r["previous_status_since"] < r["source_updated_at"] for r in changed)
        moved = [r for r in changed if r["status"] == r["now"]]
        assert moved and all(r["status_since"] >= r["source_updated_at"] for r in moved)
        await engine.stop()


async def test_newer_wins_stale_and_duplicates_change_nothing(pool: asyncpg.Pool) -> None:
    sim = build(5, 300)
    sid = await add_source(pool, "http://unused")
    good, _ = expected(sim, sid)
    recs = list(good.values())[:20]
    run_id = await new_run(pool, sid, "test-" + sid)
    async with pool.acquire() as conn:
        first = await write_page(conn, source_id=sid, feed="dossiers", run_id=run_id,
                                 event_source="/t", records=recs + recs[:5], rejections=[],
                                 next_cursor=None, checkpoint=False)  # fmt: skip
        assert first.stored == 20 and first.unchanged == 5
        newer = [
            r.model_copy(
                update={"status": 10, "source_updated_at": r.source_updated_at.replace(year=2027)}
            )
            for r in recs[:3]
        ]
        stale = [
            r.model_copy(
                update={"status": 3, "source_updated_at": r.source_updated_at.replace(year=2024)}
            )
            for r in recs[3:6]
        ]
        second = await write_page(conn, source_id=sid, feed="dossiers", run_id=run_id,
                                  event_source="/t", records=newer + stale + recs[6:10],
                                  rejections=[], next_cursor=None, checkpoint=False)  # fmt: skip
    assert second.stored == 3 and second.unchanged == 7
    now = await stored(pool, sid)
    assert [now[r.code].status for r in recs[:3]] == [10, 10, 10]
    assert [now[r.code] for r in recs[3:6]] == recs[3:6]
    await _assert_events_match_changes(pool, sid)


async def test_a_large_page_of_one_unit_is_announced_in_events_that_fit_a_message(
    pool: asyncpg.Pool,
) -> None:
    """A page may hold 5,000 dossiers of one commune: in one event that is over the broker's
    1 MB message limit, which would stall the outbox behind it. The page's changes go out in
    several events, each within the budget, every dossier announced exactly once."""
    sim = build(5, 300)
    sid = await add_source(pool, "http://unused")
    good, _ = expected(sim, sid)
    first = next(iter(good.values()))
    recs = [first.model_copy(update={"code": f"{first.code}-{i}"}) for i in range(2500)]
    run_id = await new_run(pool, sid, "test-" + sid)
    async with pool.acquire() as conn:
        page = await write_page(conn, source_id=sid, feed="dossiers", run_id=run_id,
                                event_source="/t", records=recs, rejections=[],
                                next_cursor=None, checkpoint=False)  # fmt: skip
    assert page.stored == 2500
    sizes = await pool.fetch(
        "SELECT octet_length(payload) AS n FROM ingest.outbox"
        " WHERE type = 'vn.cchc.ingest.dossiers.changed.v1' AND payload LIKE $1",
        f"%{sid}%",
    )
    assert len(sizes) > 1 and all(r["n"] < EVENT_BUDGET_BYTES + 1024 for r in sizes)
    announced = await event_records(pool, sid)
    assert sorted(code for code, _ in announced) == sorted(r.code for r in recs)


async def test_one_run_per_source_feed_and_reprocess(pool: asyncpg.Pool) -> None:
    sim = build(8, 600, malformed_rate=0.05, faults=Faults(latency_ms=20))
    with serve_simulator(sim) as url:
        # A mapping without one commune: its dossiers are quarantined as unknown_agency.
        from .ingest_db import AGENCIES

        missing = "102.00.00.H33"
        partial_map = {k: v for k, v in AGENCIES.items() if k != missing}
        sid = await add_source(pool, url, agencies=json.dumps(partial_map), page_size=50)
        engine = SyncEngine(pool, policy=FAST)
        run_id = await engine.start(sid, "dossiers")
        with pytest.raises(RunInProgress):
            await engine.start(sid, "dossiers")
        result = await engine.tasks[run_id]
        assert result.status == "partial"
        reasons = Counter(
            r["reason"] for r in await pool.fetch(
                "SELECT split_part(unnest(reasons), ':', 1) AS reason FROM ingest.quarantine "
                "WHERE source_id = $1", sid)
        )  # fmt: skip
        assert reasons["unknown_agency"] > 0
        # The mapping gets the commune; reprocessing stores its dossiers.
        await pool.execute(
            "UPDATE ingest.sources SET agencies = $2::jsonb WHERE id = $1",
            sid, json.dumps(AGENCIES),
        )  # fmt: skip
        before = len(await stored(pool, sid))
        out = await reprocess_quarantine(engine, sid, "dossiers")
        assert out["resolved"] > 0 and out["still_rejected"] > 0
        after = await stored(pool, sid)
        assert len(after) == before + out["stored"]
        assert any(r.unit_id == "P21.C102" for r in after.values())
        good, _ = expected(sim, sid)
        assert after == good
        await _assert_events_match_changes(pool, sid)


async def test_circuit_breaker_marks_a_failing_source_degraded(pool: asyncpg.Pool) -> None:
    sim = build(9, 100, faults=Faults(error_rate=1))
    with serve_simulator(sim) as url:
        sid = await add_source(pool, url)
        engine = SyncEngine(pool, policy=RetryPolicy(attempts=2, base_s=0.001, cap_s=0.002),
                            breaker_threshold=2, breaker_cooldown_s=60)  # fmt: skip
        for _ in range(2):
            result = await engine.run(sid, "dossiers")
            assert result.status == "failed" and result.errors["http_5xx"] == 2
        row = await pool.fetchrow("SELECT * FROM ingest.sources WHERE id = $1", sid)
        assert row["health"] == "degraded" and row["degraded_until"] > datetime.now(VN)
        assert (sid, "dossiers") not in await engine.due()
        sim.faults = Faults()
        result = await engine.run(sid, "dossiers")  # a manual run probes and heals it
        assert result.status == "succeeded"
        row = await pool.fetchrow("SELECT * FROM ingest.sources WHERE id = $1", sid)
        assert row["health"] == "ok" and row["consecutive_failures"] == 0
