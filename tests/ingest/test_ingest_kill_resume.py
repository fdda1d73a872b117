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
import httpx
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


def _start_service(env: dict[str, str], port: int | None = None) -> subprocess.Popen[bytes]:
    port = port or free_port()
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


async def test_sigterm_mid_backfill_and_restart_resumes_the_partial_run(
    pool: asyncpg.Pool, subprocess_env: dict[str, str], auth: Callable[..., dict[str, str]]
) -> None:
    """SIGTERM stops the walk cleanly: the run ends `partial` and keeps its checkpoint. The
    restarted service resumes it at once (not after the source's schedule, an hour here)."""
    sim = build(43, 3_000, faults=Faults(latency_ms=40))
    with serve_simulator(sim) as url:
        sid = await add_source(pool, url, page_size=40, timeout_s=5.0)
        await pool.execute("UPDATE ingest.sources SET enabled = (id = $1)", sid)
        try:
            # a recent run: the schedule leaves the source alone, the backfill is the only walk
            await pool.execute(
                "INSERT INTO ingest.runs (id, source_id, feed, kind, trigger, status, finished_at)"
                " VALUES ($1, $2, 'dossiers', 'incremental', 'schedule', 'succeeded', now())",
                f"seed-{sid}", sid,
            )  # fmt: skip
            port = free_port()
            first = _start_service(subprocess_env, port)
            try:
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:

                    async def backfill() -> bool:
                        try:
                            r = await client.post(
                                f"/api/v1/sources/{sid}/sync", headers=auth("admin"),
                                json={"kind": "backfill", "since": "2000-01-01T00:00:00Z"},
                            )  # fmt: skip
                        except httpx.TransportError:
                            return False  # not listening yet
                        assert r.status_code == 202, r.text
                        return True

                    await _until(backfill, 60, "the service to take the backfill")

                async def pages() -> int:
                    return int(await pool.fetchval(
                        "SELECT coalesce(max(pages), 0) FROM ingest.checkpoints "
                        "WHERE source_id = $1", sid) or 0)  # fmt: skip

                await _until(lambda: _ge(pages, 8), 60, "eight committed pages")
            finally:
                first.terminate()  # SIGTERM: the service shuts down in order
                first.wait(40)
            run = await pool.fetchrow(
                "SELECT * FROM ingest.runs WHERE source_id = $1 AND kind = 'backfill'", sid
            )
            assert run["status"] == "partial" and run["finished_at"] is not None
            cp = await pool.fetchrow("SELECT * FROM ingest.checkpoints WHERE source_id = $1", sid)
            assert cp is not None and cp["cursor"] is not None
            good, _ = expected(sim, sid)
            assert 0 < len(await stored(pool, sid)) < len(good)

            second = _start_service(subprocess_env)
            try:

                async def succeeded() -> bool:
                    n = await pool.fetchval(
                        "SELECT count(*) FROM ingest.runs WHERE source_id = $1 "
                        "AND kind = 'backfill' AND status = 'succeeded'", sid)  # fmt: skip
                    return bool(n)

                await _until(succeeded, 120, "the interrupted walk to be resumed and finished")
            finally:
                second.terminate()
                try:
                    second.wait(30)
                except subprocess.TimeoutExpired:
                    second.kill()
            runs = await pool.fetch(
                "SELECT * FROM ingest.runs WHERE source_id = $1 AND id <> $2 ORDER BY started_at",
                sid, f"seed-{sid}",
            )  # fmt: skip
            assert [(r["kind"], r["status"]) for r in runs] == [
                ("backfill", "partial"),
                ("backfill", "succeeded"),
            ]
            assert await pool.fetchval(
                "SELECT count(*) FROM ingest.checkpoints WHERE source_id = $1", sid) == 0  # fmt: skip
            assert await stored(pool, sid) == good  # nothing skipped
            events = await event_records(pool, sid)
            assert len(events) == len(set(events)) == len(good)  # nothing announced twice
            assert sum(r["stored"] for r in runs) == len(good)  # the second run went on
        finally:
            await pool.execute("UPDATE ingest.sources SET enabled = true")
