"""The scoring Alembic history goes upgrade → downgrade → upgrade on its own database."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

from shared import migrate
from shared.devstack import Postgres


async def _tables(url: str) -> set[str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'scoring'"
        )
    finally:
        await conn.close()
    return {r["table_name"] for r in rows}


async def test_upgrade_downgrade_upgrade(pg_server: Postgres) -> None:
    name = f"cchc_scoring_mig_{uuid.uuid4().hex[:8]}"
    url = await pg_server.create_database(name)
    try:
        await asyncio.to_thread(migrate.upgrade, "scoring", url)
        full = await _tables(url)
        assert {"units", "facts", "leaf_counters", "snapshots", "alerts", "stale"} <= full
        await asyncio.to_thread(migrate.downgrade, "scoring", url)
        assert await _tables(url) <= {"alembic_version"}
        await asyncio.to_thread(migrate.upgrade, "scoring", url)
        assert await _tables(url) == full
    finally:
        await pg_server.drop_database(name)
