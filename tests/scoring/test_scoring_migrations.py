"""The scoring Alembic history goes upgrade → downgrade → upgrade on its own database."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Any

import asyncpg
import msgspec

from services.scoring.domain.engine import Scorecard, card_from_doc, indicator_constants, score
from services.scoring.domain.facts import FLOW_COUNTERS
from services.scoring.domain.profile import load_profile
from services.scoring.store.snapshots import digest, encode_doc, encode_points
from shared import migrate
from shared.devstack import Postgres


@contextlib.asynccontextmanager
async def scratch_database(pg: Postgres) -> AsyncIterator[str]:
    """A throwaway database's URL, dropped afterwards."""
    name = f"cchc_scoring_mig_{uuid.uuid4().hex[:8]}"
    url = await pg.create_database(name)
    try:
        yield url
    finally:
        await pg.drop_database(name)


@contextlib.asynccontextmanager
async def connected(url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(url)
    try:
        yield conn
    finally:
        await conn.close()


async def migrate_to(url: str, revision: str = "head", *, down: bool = False) -> None:
    await asyncio.to_thread(migrate.downgrade if down else migrate.upgrade, "scoring", url,
                            revision)  # fmt: skip


SAMPLE_COUNTERS = {"received": 40, "finished": 30, "finished_on_time": 24, "finished_late": 6,
                   "received_online": 25}  # fmt: skip


async def insert_snapshot(
    url: str, doc: dict[str, Any], digest_: str, points: str | None = None
) -> None:
    """Unit C1's 202503 snapshot, version 1, with the document `doc` as stored before 0010
    (from 0010 on, with its `points`)."""
    columns, values = ("", "") if points is None else (", points", ", $8::jsonb")
    async with connected(url) as conn:
        await conn.execute(
            f"""INSERT INTO scoring.snapshots (unit_id, period, profile, version, total,
                   max_total, applicable_max, groups, indicators, counters, digest{columns})
               VALUES ('C1', '202503', '766@1', 1, $1, $2, $3, $4::jsonb, $5::jsonb,
                       $6::jsonb, $7{values})""",
            doc["total"], doc["max_total"], doc["applicable_max"], json.dumps(doc["groups"]),
            json.dumps(doc["indicators"]), json.dumps(doc["counters"]), digest_,
            *([] if points is None else [points]),
        )  # fmt: skip


async def _tables(url: str) -> set[str]:
    async with connected(url) as conn:
        rows = await conn.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'scoring'"
        )
    return {r["table_name"] for r in rows}


async def test_upgrade_downgrade_upgrade(pg_server: Postgres) -> None:
    async with scratch_database(pg_server) as url:
        await migrate_to(url)
        full = await _tables(url)
        assert {"units", "facts", "leaf_counters", "snapshots", "alerts", "stale"} <= full
        await migrate_to(url, "base", down=True)
        assert await _tables(url) <= {"alembic_version"}
        await migrate_to(url)
        assert await _tables(url) == full


async def test_leaf_flows_has_a_column_per_flow_counter_and_keeps_narrow_rows(
    pg_server: Postgres,
) -> None:
    """0006 turns the narrow leaf rows into wide ones and back without losing a value, and its
    frozen column list is the domain's flow counters."""
    narrow = [
        ("C1", "TTHC001", "202503", "received", 7),
        ("C1", "TTHC001", "202503", "finished_late", 2),
        ("C1", "", "202504", "pakn_handled", 3),
        ("C2", "TTHC002", "202503", "received_online", 1),
    ]
    select = "SELECT unit_id, procedure, month, counter, value FROM scoring.leaf_counters"
    async with scratch_database(pg_server) as url:
        await migrate_to(url, "scoring_0005")
        async with connected(url) as conn:
            await conn.executemany(
                "INSERT INTO scoring.leaf_counters VALUES ($1, $2, $3, $4, $5)", narrow
            )
        await migrate_to(url)
        async with connected(url) as conn:
            columns = {
                r[0]
                for r in await conn.fetch(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_schema = 'scoring' AND table_name = 'leaf_flows'"
                )
            }
            assert columns - {"unit_id", "procedure", "month"} == set(FLOW_COUNTERS)
            wide = await conn.fetchrow(
                "SELECT received, finished_late, finished FROM scoring.leaf_flows "
                "WHERE unit_id = 'C1' AND procedure = 'TTHC001' AND month = '202503'"
            )
            assert tuple(wide) == (7, 2, 0)
            assert sorted(tuple(r) for r in await conn.fetch(select)) == sorted(narrow)
        await migrate_to(url, "scoring_0005", down=True)
        async with connected(url) as conn:
            assert sorted(tuple(r) for r in await conn.fetch(select)) == sorted(narrow)


async def test_snapshot_digests_follow_the_document_encoding(pg_server: Postgres) -> None:
    """0007 recomputes stored digests so that an unchanged scorecard still matches its latest
    version under the new encoding (no spurious new version), and downgrade restores them."""
    card = score(load_profile("766"), SAMPLE_COUNTERS)
    doc = {
        "total": card.total, "max_total": card.max_total, "applicable_max": card.applicable_max,
        "groups": {k: asdict(g) for k, g in card.groups.items()},
        "indicators": {k: asdict(i) for k, i in card.indicators.items()},
        "counters": card.counters,
    }  # fmt: skip
    legacy = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()
    digest_sql = "SELECT digest FROM scoring.snapshots WHERE unit_id = 'C1'"
    async with scratch_database(pg_server) as url:
        await migrate_to(url, "scoring_0006")
        await insert_snapshot(url, doc, legacy)
        await migrate_to(url)
        async with connected(url) as conn:
            assert await conn.fetchval(digest_sql) == digest(encode_doc(card)) != legacy
        await migrate_to(url, "scoring_0006", down=True)
        async with connected(url) as conn:
            assert await conn.fetchval(digest_sql) == legacy


def full_document(card: Scorecard) -> dict[str, Any]:
    """A scorecard's document as the writer stored it before 0018: every field of each
    indicator's result, the profile's constants included."""
    doc = json.loads(msgspec.json.encode({
        "total": card.total, "max_total": card.max_total, "applicable_max": card.applicable_max,
        "groups": card.groups, "indicators": card.indicators, "counters": card.counters,
    }))  # fmt: skip
    assert isinstance(doc, dict)
    return doc


async def test_snapshots_keep_each_indicators_figures_and_the_profile_the_rest(
    pg_server: Postgres,
) -> None:
    """0018 rewrites a snapshot stored in full into what the writer now stores: its digest is
    the one the writer gives the same scorecard (so the next recompute writes no new version)
    and reading it back with the profile gives the same scorecard. Downgrade puts the
    constants back, byte for byte the document and digest stored before."""
    profile = load_profile("766", 1)
    card = score(profile, SAMPLE_COUNTERS)
    before = full_document(card)
    before_digest = hashlib.sha256(msgspec.json.encode(before, order="sorted")).hexdigest()
    select = "SELECT indicators::text, digest FROM scoring.snapshots WHERE unit_id = 'C1'"
    async with scratch_database(pg_server) as url:
        await migrate_to(url, "scoring_0017")
        await insert_snapshot(url, before, before_digest, encode_points(card).decode())
        await migrate_to(url)
        async with connected(url) as conn:
            indicators, digest_ = await conn.fetchrow(select)
            kept = await conn.fetch(
                "SELECT indicator, constants::text FROM scoring.snapshot_indicator_constants"
            )
        stored = json.loads(indicators)
        assert stored == json.loads(encode_doc(card))["indicators"]
        assert "code" not in stored["prog_on_time"] and "rule" not in stored["prog_on_time"]
        assert digest_ == digest(encode_doc(card)) != before_digest
        doc = {**before, "indicators": stored}
        assert card_from_doc(profile, doc) == card
        assert {i: json.loads(c) for i, c in kept} == indicator_constants(profile)
        await migrate_to(url, "scoring_0017", down=True)
        async with connected(url) as conn:
            indicators, digest_ = await conn.fetchrow(select)
        assert json.loads(indicators) == before["indicators"]
        assert digest_ == before_digest


async def test_snapshot_points_are_filled_from_the_documents(pg_server: Postgres) -> None:
    """0010 fills the `points` of existing snapshots from their documents with what the writer
    now stores for the same scorecard (`encode_points`), so rankings read old and new rows
    alike; downgrade drops the column."""
    card = score(load_profile("766"), SAMPLE_COUNTERS)
    async with scratch_database(pg_server) as url:
        await migrate_to(url, "scoring_0009")
        await insert_snapshot(url, full_document(card), digest(encode_doc(card)))
        await migrate_to(url)
        async with connected(url) as conn:
            assert await conn.fetchval(
                "SELECT points = $1::jsonb FROM scoring.snapshots WHERE unit_id = 'C1'",
                encode_points(card).decode(),
            )
            stored = json.loads(await conn.fetchval("SELECT points::text FROM scoring.snapshots"))
        assert stored["indicators"]["prog_on_time"] == card.indicators["prog_on_time"].points
        assert set(stored["groups"]) == set(card.groups)
        await migrate_to(url, "scoring_0009", down=True)
        async with connected(url) as conn:
            assert not await conn.fetchval(
                """SELECT count(*) FROM information_schema.columns WHERE table_schema = 'scoring'
                   AND table_name = 'snapshots' AND column_name = 'points'"""
            )
