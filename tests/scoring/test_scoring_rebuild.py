"""`python -m services.scoring.rebuild --province … --year …` as a process, on committed facts."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from collections.abc import Callable
from datetime import date

from sqlalchemy import text

from services.scoring.store.facts_store import upsert_facts
from services.scoring.store.registry import UnitIn, import_units
from shared.db import make_engine, make_sessionmaker, transaction
from shared.settings import Settings
from tests.scoring.test_scoring_store import dossier, vn


async def test_rebuild_command(
    make_settings: Callable[..., Settings], subprocess_env: dict[str, str]
) -> None:
    settings = make_settings()
    p = "R" + uuid.uuid4().hex[:8]
    c1 = f"{p}.C1"
    engine = make_engine(settings.async_database_url, schema="scoring", pool_size=2)
    sessions = make_sessionmaker(engine)
    try:
        async with transaction(sessions) as s:
            await import_units(s, [
                UnitIn(id=p, name=p, level="province", kind="tỉnh", valid_from=date(2000, 1, 1)),
                UnitIn(id=c1, name=c1, level="commune", kind="xã", parent_id=p,
                       valid_from=date(2000, 1, 1)),
            ])  # fmt: skip
            await upsert_facts(s, [
                dossier(c1, 1, received_at=vn(2025, 2, 3), due_at=vn(2025, 2, 10),
                        finished_at=vn(2025, 2, 5), source_updated_at=vn(2025, 2, 5)),
                dossier(c1, 2, received_at=vn(2025, 5, 3), due_at=vn(2025, 5, 10),
                        finished_at=vn(2025, 5, 15), source_updated_at=vn(2025, 5, 15)),
            ])  # fmt: skip
            # damage the leaf counters: the rebuild recomputes them from the facts
            await s.execute(text("UPDATE scoring.leaf_flows SET received = 99 WHERE unit_id = :u"),
                            {"u": c1})  # fmt: skip

        def run() -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "services.scoring.rebuild", "--province", p,
                 "--year", "2025"],
                env=subprocess_env, capture_output=True, text=True, timeout=120, check=False,
            )  # fmt: skip

        first = await asyncio.to_thread(run)
        assert first.returncode == 0, first.stderr
        stats = json.loads(first.stdout.strip().splitlines()[-1])
        # 12 months + 4 quarters + 12 YTD + year, for 2 units
        assert stats["pairs"] == 2 * 29 and stats["versions"] == 2 * 29
        async with sessions() as s:
            row = (await s.execute(text("""
                SELECT total, counters, indicators -> 'prog_on_time' ->> 'ratio'
                FROM scoring.snapshots WHERE unit_id = :u AND period = '2025'
                ORDER BY version DESC LIMIT 1"""), {"u": p})).one()  # fmt: skip
        assert row[1]["received"] == 2 and row[1]["finished_late"] == 1
        assert float(row[2]) == 0.5
        again = await asyncio.to_thread(run)
        assert json.loads(again.stdout.strip().splitlines()[-1])["versions"] == 0
    finally:
        await engine.dispose()
