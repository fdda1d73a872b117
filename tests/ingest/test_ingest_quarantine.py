"""One open quarantine entry per (source, feed, record) (issue 16 item 5).

A malformed record that changes again and is still malformed updates its open entry (reasons,
payload, count) instead of opening a second one; a valid version supersedes it; after that a
malformed version opens a new entry. Records without a readable code are told apart by payload.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence

import asyncpg
import pytest

from services.ingest.domain.normalise import Record, Rejection
from services.ingest.simulator import build
from services.ingest.store.pages import write_page
from shared.settings import to_plain_url

from .ingest_db import add_source, expected, new_run


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await asyncpg.create_pool(to_plain_url(database_url), min_size=1, max_size=2)
    yield p
    await p.close()


async def _page(
    pool: asyncpg.Pool, sid: str, rejections: Sequence[Rejection], records: Sequence[Record] = ()
) -> None:
    run_id = await new_run(pool, sid, str(uuid.uuid4()))
    async with pool.acquire() as conn:
        await write_page(
            conn, source_id=sid, feed="dossiers", run_id=run_id, event_source="/test",
            records=records, rejections=rejections, next_cursor=None, checkpoint=False,
        )  # fmt: skip


def _bad(code: str | None, version: int, reason: str = "unknown_agency:999") -> Rejection:
    raw = {"MaHoSo": code, "TrangThaiHoSo": version, "MaDonVi": "999"}
    return Rejection(feed="dossiers", code=code, reasons=(reason,), raw=raw)


async def _entries(pool: asyncpg.Pool, sid: str) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT code, status, reasons, raw, seen_count FROM ingest.quarantine "
        "WHERE source_id = $1 ORDER BY id",
        sid,
    )


async def test_a_changing_malformed_record_keeps_one_open_entry(pool: asyncpg.Pool) -> None:
    sid = await add_source(pool, "http://unused")
    await _page(pool, sid, [_bad("HS-1", 1)])
    await _page(pool, sid, [_bad("HS-1", 2, "missing_field:NgayTiepNhan")])  # changed, still bad
    await _page(pool, sid, [_bad("HS-1", 2, "missing_field:NgayTiepNhan")])  # same again
    # twice in one page: its last version is the one kept
    await _page(pool, sid, [_bad("HS-1", 3), _bad("HS-1", 4, "bad_date:NgayHenTra")])
    rows = await _entries(pool, sid)
    assert [(r["code"], r["status"]) for r in rows] == [("HS-1", "open")]
    assert rows[0]["reasons"] == ["bad_date:NgayHenTra"]
    assert '"TrangThaiHoSo": 4' in rows[0]["raw"] or '"TrangThaiHoSo":4' in rows[0]["raw"]
    assert rows[0]["seen_count"] == 4
    # an unreadable code cannot be matched by record: the payload tells entries apart
    await _page(pool, sid, [_bad(None, 1), _bad(None, 2)])
    await _page(pool, sid, [_bad(None, 1)])
    nameless = [r for r in await _entries(pool, sid) if r["code"] is None]
    assert sorted(r["seen_count"] for r in nameless) == [1, 2]


async def test_after_a_valid_version_a_malformed_one_opens_a_new_entry(pool: asyncpg.Pool) -> None:
    sim = build(7, 50)
    sid = await add_source(pool, "http://unused")
    record = next(iter(expected(sim, sid)[0].values()))
    await _page(pool, sid, [_bad(record.code, 1)])
    await _page(pool, sid, [], [record])  # a valid version: the entry is superseded
    await _page(pool, sid, [_bad(record.code, 1)])  # the same bad payload once more
    rows = await _entries(pool, sid)
    assert [r["status"] for r in rows] == ["superseded", "open"]


async def test_the_database_refuses_a_second_open_entry(pool: asyncpg.Pool) -> None:
    sid = await add_source(pool, "http://unused")
    insert = (
        "INSERT INTO ingest.quarantine (source_id, feed, code, reasons, raw, fingerprint) "
        "VALUES ($1, 'dossiers', 'HS-9', '{x}', $2, $2)"
    )
    await pool.execute(insert, sid, "a")
    with pytest.raises(asyncpg.UniqueViolationError):
        await pool.execute(insert, sid, "b")
