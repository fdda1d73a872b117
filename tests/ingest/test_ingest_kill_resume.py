"""Killing the ingest service mid-run (SIGKILL of a real process) and restarting it resumes the
run from its checkpoint: nothing skipped, nothing stored or announced twice."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import pytest

from services.ingest.simulator import Faults, build
from shared.devstack import free_port
from shared.settings import REPO_ROOT, Settings, to_plain_url
from tests.support.kafka import read_topic

from .conftest import serve_simulator
from .ingest_db import add_source, event_records, expected, stored


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await asyncpg.create_pool(to_plain_url(database_url), min_size=1, max_size=4)
    yield p
    await p.close()


def _start_service(env: dict[str, str]) -> subprocess.Popen[bytes]:
    port = free_port()
    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "services.ingest.main:app", "--port", str(port),
         "--log-level", "warning"],
        cwd=REPO_ROOT,
        env={**env, "INGEST_SCHEDULER_TICK_S": "0.2", "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip


async def _until(check: Callable[[], Awaitable[Any]], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await check()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def test_kill_mid_run_and_restart_resumes_from_checkpoint(
    pool: asyncpg.Pool, subprocess_env: dict[str, str], settings: Settings
) -> None:
    sim = build(41, 3_000, faults=Faults(latency_ms=40, duplicate_rate=0.3))
    with serve_simulator(sim) as url:
        sid = await add_source(pool, url, page_size=40, timeout_s=5.0)
        # Only this test's source is scheduled by the service processes it starts.
        await pool.execute("UPDATE ingest.sources SET enabled = (id = $1)", sid)

        async def pages() -> int:
            return int(await pool.fetchval(
                "SELECT coalesce(max(pages), 0) FROM ingest.checkpoints WHERE source_id = $1",
                sid) or 0)  # fmt: skip

        first = _start_service(subprocess_env)
        try:
            await _until(lambda: _ge(pages, 8), 60, "eight committed pages")
        finally:
            first.kill()  # SIGKILL: no shutdown code runs
            first.wait(10)
        run = await pool.fetchrow("SELECT * FROM ingest.runs WHERE source_id = $1", sid)
        assert run["status"] == "running"  # it died mid-run
        cp = await pool.fetchrow("SELECT * FROM ingest.checkpoints WHERE source_id = $1", sid)
        assert cp["cursor"] is not None and cp["run_id"] == run["id"]
        good, _ = expected(sim, sid)
        half = await stored(pool, sid)
        assert 0 < len(half) < len(good)

        second = _start_service(subprocess_env)
        try:

            async def finished() -> bool:
                status = await pool.fetchval(
                    "SELECT status FROM ingest.runs WHERE id = $1", run["id"]
                )
                return bool(status != "running")

            await _until(finished, 120, "the resumed run to end")

            async def relayed() -> bool:  # the second process's relay publishes the outbox
                left = await pool.fetchval(
                    "SELECT count(*) FROM ingest.outbox WHERE published_at IS NULL"
                )
                return bool(left == 0)

            await _until(relayed, 120, "the outbox to be published")
        finally:
            second.terminate()
            try:
                second.wait(30)
            except subprocess.TimeoutExpired:
                second.kill()
        run = await pool.fetchrow("SELECT * FROM ingest.runs WHERE id = $1", run["id"])
        assert run["status"] == "succeeded" and run["resumes"] == 1
        assert await pool.fetchval(
            "SELECT count(*) FROM ingest.runs WHERE source_id = $1", sid) == 1  # fmt: skip
        assert await stored(pool, sid) == good  # nothing skipped
        events = await event_records(pool, sid)
        assert len(events) == len(set(events)) == len(good)  # nothing announced twice
        assert await pool.fetchval(  # each dossier stored once: no status transitions
            "SELECT count(*) FROM ingest.dossier_status_history WHERE source_id = $1", sid
        ) == 0  # fmt: skip
        assert run["stored"] == len(good)

        # On the bus: at-least-once delivery, so dedupe by CloudEvents id; then every dossier
        # was announced exactly once.
        messages = await read_topic(settings.kafka_bootstrap_servers, "ingest.dossiers")
        by_id: dict[bytes, list[str]] = {}
        for m in messages:
            if m.headers.get("ce_type") != b"vn.cchc.ingest.dossiers.changed.v1" or not m.value:
                continue
            payload = json.loads(m.value)
            if payload["dossiers"] and payload["dossiers"][0]["source_id"] == sid:
                by_id[m.headers["ce_id"]] = [d["code"] for d in payload["dossiers"]]
        codes = [c for batch in by_id.values() for c in batch]
        assert len(codes) == len(set(codes)) == len(good)
        await pool.execute("UPDATE ingest.sources SET enabled = true")


async def _ge(fn: Callable[[], Awaitable[int]], n: int) -> bool:
    return bool(await fn() >= n)
