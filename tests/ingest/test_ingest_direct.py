"""Dossier rows COPYed straight into `ingest.dossiers` (`write_prepared` modes "new" and
"lookup") store exactly what the staging upsert ("stage") stores: the same rows, status
history, events and counts, for pages of new codes, of stored codes and of both; and a code
stored by a concurrent writer meanwhile makes the page fall back to the upsert, losing and
doubling nothing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import asyncpg
import pytest

from services.ingest.domain.copybin import copy_stream, encode_dossier_row, row_suffix
from services.ingest.domain.normalise import Record
from services.ingest.simulator import build
from services.ingest.store.pages import (
    Mode,
    PageResult,
    PreparedPage,
    codes_param,
    next_mode,
    prepare,
    write_prepared,
)
from shared.events.payloads import DossierRecord
from shared.settings import to_plain_url

from .ingest_db import add_source, expected, new_run


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await asyncpg.create_pool(to_plain_url(database_url), min_size=1, max_size=4)
    yield p
    await p.close()


def stream_page(records: Sequence[Record], run_id: str) -> PreparedPage:
    """A page as a decoding worker ships it: rows only as a COPY stream carrying `run_id`."""
    page = prepare("dossiers", records, [], None)
    suffix = row_suffix(run_id)
    page.copy_data, page.row_starts = copy_stream(
        [encode_dossier_row(row, None, suffix) for row in page.rows]
    )
    page.rows, page.run_id = [], run_id
    return page


async def write(
    conn: asyncpg.Connection, sid: str, run_id: str, records: Sequence[Record], mode: Mode
) -> PageResult:
    return await write_prepared(
        conn, source_id=sid, feed="dossiers", run_id=run_id, event_source="/t",
        page=stream_page(records, run_id), rejected=0, checkpoint=False, mode=mode,
    )  # fmt: skip


async def snapshot(pool: asyncpg.Pool, sid: str) -> tuple[Any, ...]:
    """Everything a page write leaves for source `sid`, with the source id and run id masked
    (so two sources can be compared)."""

    def mask(value: Any) -> Any:
        return value.replace(sid, "SID") if isinstance(value, str) else value

    rows = await pool.fetch("SELECT * FROM ingest.dossiers WHERE source_id = $1 ORDER BY code", sid)
    dossiers = [
        {k: mask(v) for k, v in r.items() if k not in ("first_seen_at", "ingested_at")}
        for r in rows
    ]
    rows = await pool.fetch(
        "SELECT code, status, previous_status, previous_status_since, source_updated_at, run_id"
        " FROM ingest.dossier_status_history WHERE source_id = $1 ORDER BY code, id",
        sid,
    )
    history = [tuple(mask(v) for v in r) for r in rows]
    rows = await pool.fetch(
        "SELECT key, payload FROM ingest.outbox WHERE payload LIKE '%' || $1 || '%' ORDER BY id",
        sid,
    )
    events = [(r["key"], mask(r["payload"])) for r in rows]
    run = await pool.fetchrow(
        "SELECT pages, pulled, stored, unchanged FROM ingest.runs WHERE id = $1", f"run-{sid}"
    )
    return dossiers, history, events, tuple(run)


def view(result: PageResult) -> tuple[Any, ...]:
    return (result.pulled, result.stored, result.created, result.unchanged, result.events)


def versions(records: list[DossierRecord]) -> dict[str, list[DossierRecord]]:
    """The test's page contents: new, newer, stale and repeated versions of stored codes."""
    newer = [
        r.model_copy(
            update={"status": 10 if r.status != 10 else 9,
                    "source_updated_at": r.source_updated_at.replace(year=2027)}
        )
        for r in records[:4]
    ]  # fmt: skip
    stale = [
        r.model_copy(
            update={"status": 3, "source_updated_at": r.source_updated_at.replace(year=2024)}
        )
        for r in records[4:7]
    ]
    return {
        "first": records[:10],
        # new codes, two of them twice (the newest wins), then newer/stale/same versions of
        # stored ones, interleaved
        "mixed": [
            *records[10:14], newer[0], stale[0], *records[14:18], newer[1], records[7],
            *newer[2:], *stale[1:], records[8], *records[18:24], records[12],
        ],
        "stored": [*records[:4], records[9]],
    }  # fmt: skip


@pytest.mark.parametrize("mode", ["new", "lookup"])
async def test_straight_copy_stores_what_the_upsert_stores(pool: asyncpg.Pool, mode: Mode) -> None:
    sim = build(5, 300)
    direct = await add_source(pool, "http://unused")
    staged = await add_source(pool, "http://unused")
    pages = {sid: versions(list(expected(sim, sid)[0].values())[:30]) for sid in (direct, staged)}
    runs = {sid: await new_run(pool, sid) for sid in (direct, staged)}
    async with pool.acquire() as conn:
        for name in ("first", "mixed", "stored"):
            got = await write(conn, direct, runs[direct], pages[direct][name], mode)
            want = await write(conn, staged, runs[staged], pages[staged][name], "stage")
            assert view(got) == view(want), name
    assert view(want) == (5, 0, 0, 5, 0)  # the last page: all stored already, no change
    got_state, want_state = await snapshot(pool, direct), await snapshot(pool, staged)
    assert got_state == want_state
    dossiers, history, events, run = got_state
    assert len(dossiers) == 24 and len(history) == 4 and run == (3, 39, 28, 11)
    assert sum(len(json.loads(payload)["dossiers"]) for _, payload in events) == 28
    new = [d for d in dossiers if d["version"] == 1]
    assert len(new) == 20 and all(d["status_since"] == d["source_updated_at"] for d in new)
    assert all(d["run_id"] == "run-SID" for d in dossiers)


async def test_mode_follows_the_pages() -> None:
    sim = build(5, 300)
    records = list(expected(sim, "s")[0].values())[:8]
    page = stream_page(records, "r")

    def result(created: int) -> PageResult:
        return PageResult(8, created, created, 8 - created, 0, 0, 1, None, frozenset())

    assert next_mode(page, result(8), "stage") == "new"
    assert next_mode(page, result(2), "new") == "lookup"
    assert next_mode(page, result(1), "new") == "stage"
    assert next_mode(stream_page([], "r"), result(0), "lookup") == "lookup"


@pytest.mark.parametrize("mode", ["new", "lookup"])
async def test_a_code_stored_meanwhile_falls_back_to_the_upsert(
    pool: asyncpg.Pool, mode: Mode
) -> None:
    """Another writer stores one of the page's codes (an older version) after the lookup and
    commits while the straight COPY waits on its key: the COPY fails on the primary key and
    the page is written again through the upsert — every code once, the newer version kept,
    one history row for its status change, one event per change."""
    sim = build(6, 300)
    sid = await add_source(pool, "http://unused")
    records = list(expected(sim, sid)[0].values())[:12]
    run_id = await new_run(pool, sid)
    target = records[5]
    older = target.model_copy(
        update={"status": 9 if target.status == 1 else 1,
                "source_updated_at": target.source_updated_at.replace(year=2024)}
    )  # fmt: skip
    async with pool.acquire() as other, pool.acquire() as conn:
        pid = await conn.fetchval("SELECT pg_backend_pid()")
        tx = other.transaction()
        await tx.start()
        try:
            await write(other, sid, run_id, [older], "stage")  # stored, not committed yet
            task = asyncio.create_task(write(conn, sid, run_id, records, mode))
            for _ in range(500):  # until the COPY waits for the other transaction
                waiting = await pool.fetchval(
                    "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1", pid
                )
                if waiting or task.done():
                    break
                await asyncio.sleep(0.01)
            assert waiting, "the straight COPY did not wait on the other writer's key"
        except BaseException:
            await tx.rollback()
            raise
        await tx.commit()
        result = await task
    assert (result.stored, result.created, result.unchanged) == (12, 11, 0)
    rows = await pool.fetch(
        "SELECT code, version, status, status_since, source_updated_at FROM ingest.dossiers"
        " WHERE source_id = $1",
        sid,
    )
    assert len(rows) == 12
    by_code = {r["code"]: r for r in rows}
    got = by_code[target.code]
    assert (got["version"], got["status"]) == (2, target.status)
    assert got["status_since"] == got["source_updated_at"] == target.source_updated_at
    history = await pool.fetch(
        "SELECT code, status, previous_status FROM ingest.dossier_status_history"
        " WHERE source_id = $1",
        sid,
    )
    assert [tuple(h) for h in history] == [(target.code, target.status, older.status)]
    carried = await pool.fetchval(
        "SELECT count(*) FROM ingest.outbox o, jsonb_array_elements(o.payload::jsonb->'dossiers')"
        " d WHERE d->>'source_id' = $1",
        sid,
    )
    assert carried == 13  # the older version's event, then the page's twelve changes


async def test_codes_holding_the_separator_travel_as_an_array(pool: asyncpg.Pool) -> None:
    """Codes go to SQL joined by SEP (`pages.codes_param`) unless one holds it."""
    assert codes_param(["a", "b"]) == ("a\x1fb", None)
    assert codes_param(["a\x1fb", "c"]) == (None, ["a\x1fb", "c"])
    sim = build(5, 300)
    sid = await add_source(pool, "http://unused")
    records = list(expected(sim, sid)[0].values())[:3]
    odd = [records[0].model_copy(update={"code": "X\x1fY"}), *records[1:]]
    run_id = await new_run(pool, sid)
    quarantined = await pool.fetchval(
        "INSERT INTO ingest.quarantine (source_id, feed, code, reasons, raw, fingerprint)"
        " VALUES ($1, 'dossiers', 'X\x1fY', '{bad}', '{}', 'fp') RETURNING id",
        sid,
    )
    async with pool.acquire() as conn:
        first = await write(conn, sid, run_id, odd[:2], "lookup")
        second = await write(conn, sid, run_id, odd, "lookup")
    assert (first.created, second.created, second.unchanged) == (2, 1, 2)
    status = await pool.fetchval("SELECT status FROM ingest.quarantine WHERE id = $1", quarantined)
    assert status == "superseded"
