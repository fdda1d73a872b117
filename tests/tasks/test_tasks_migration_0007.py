"""tasks_0007 backfills the deadline on-time is judged by from the deadline-change history:
an extension granted after the deadline had passed keeps the old one; one granted before it
moves it."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, datetime

import asyncpg

from shared import migrate
from shared.devstack import Postgres


async def test_backfill_keeps_lateness_from_late_extensions(pg_server: Postgres) -> None:
    name = f"cchc_tasks_0007_{uuid.uuid4().hex[:6]}"
    url = await pg_server.create_database(name)
    try:
        await asyncio.to_thread(migrate.upgrade, "tasks", url, "tasks_0004")
        conn = await asyncpg.connect(url)
        try:
            for item_id, deadline in (
                ("itm_late", date(2026, 3, 31)),
                ("itm_early", date(2026, 3, 31)),
                ("itm_twice", date(2026, 5, 30)),
                ("itm_none", date(2026, 1, 10)),
            ):
                await conn.execute(
                    "INSERT INTO tasks.items (id, title, lead_unit_id, deadline) "
                    "VALUES ($1, 'x', 'P21.SNV', $2)",
                    item_id,
                    deadline,
                )
            changes = [
                # granted on 2026-03-01, the deadline of 2026-01-31 long gone: late
                ("itm_late", "2026-03-01T03:00:00+00:00", date(2026, 1, 31), date(2026, 3, 31)),
                # asked for and granted a week before the deadline: a new plan
                ("itm_early", "2026-01-24T03:00:00+00:00", date(2026, 1, 31), date(2026, 3, 31)),
                # moved in time once (to 04-30), then again after that had passed
                ("itm_twice", "2026-01-20T03:00:00+00:00", date(2026, 1, 31), date(2026, 4, 30)),
                ("itm_twice", "2026-05-05T03:00:00+00:00", date(2026, 4, 30), date(2026, 5, 30)),
            ]
            for item_id, at, previous, new in changes:
                await conn.execute(
                    "INSERT INTO tasks.deadline_changes (item_id, at, actor, previous_deadline, "
                    "new_deadline) VALUES ($1, $2, 'inspector', $3, $4)",
                    item_id,
                    datetime.fromisoformat(at),
                    previous,
                    new,
                )
        finally:
            await conn.close()
        await asyncio.to_thread(migrate.upgrade, "tasks", url, "tasks_0007")
        conn = await asyncpg.connect(url)
        try:
            rows = dict(
                await conn.fetch("SELECT id, original_deadline FROM tasks.items ORDER BY id")
            )
        finally:
            await conn.close()
        assert rows == {
            "itm_early": date(2026, 3, 31),
            "itm_late": date(2026, 1, 31),
            "itm_none": date(2026, 1, 10),
            "itm_twice": date(2026, 4, 30),
        }
    finally:
        await pg_server.drop_database(name)
