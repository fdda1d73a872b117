"""Process-wide ingest objects: the asyncpg pools and the sync engine, kept in `runtime.extras`.

Two pools, so runs can never exhaust a pool into a deadlock (issue 16 item 7): each run holds
one connection of the lock pool for its life (its advisory lock), and borrows from the work pool
only to write pages and end. The engine admits at most `max_runs` runs (= the lock pool size);
the work pool is never asked for a connection by someone already holding one of it.
"""

from __future__ import annotations

import logging
import time

import asyncpg

from services.ingest.connectors.retry import RetryPolicy
from services.ingest.settings import IngestSettings
from services.ingest.store.credentials import Keyring, reseal
from services.ingest.sync.engine import SyncEngine
from shared.app import Runtime
from shared.settings import to_plain_url

SOURCE = "/cchc-monitor/ingest"
log = logging.getLogger("cchc.ingest.watchdog")


async def make_engine(
    database_url: str, ingest: IngestSettings, keyring: Keyring | None = None
) -> SyncEngine:
    url = to_plain_url(database_url)
    pool = await asyncpg.create_pool(
        url, min_size=1, max_size=ingest.db_pool_size, server_settings={"timezone": "UTC"}
    )
    lock_pool = await asyncpg.create_pool(
        url, min_size=0, max_size=max(1, ingest.max_runs), server_settings={"timezone": "UTC"}
    )
    return SyncEngine(
        pool,
        event_source=SOURCE,
        policy=RetryPolicy(
            attempts=ingest.retry_attempts, base_s=ingest.retry_base_s, cap_s=ingest.retry_cap_s
        ),
        breaker_threshold=ingest.breaker_threshold,
        breaker_cooldown_s=ingest.breaker_cooldown_s,
        prefetch=ingest.prefetch_pages,
        workers=ingest.parse_workers,
        keyring=keyring,
        lock_pool=lock_pool,
        max_runs=ingest.max_runs,
        start_wait_s=ingest.start_wait_s,
    )


class Watchdog:
    """Readiness of the sync engine: not ready when the work pool gives no connection within
    `probe_s` (exhausted: wedged or overloaded) or a run of this process has committed no page
    for `stall_s` (each check compares a run's page count with what the previous check saw)."""

    def __init__(self, engine: SyncEngine, *, stall_s: float, probe_s: float) -> None:
        self.engine = engine
        self.stall_s = stall_s
        self.probe_s = probe_s
        self._progress: dict[str, tuple[int, float]] = {}  # run id → (pages, when they changed)

    async def healthy(self) -> bool:
        run_ids = list(self.engine.tasks)
        try:
            async with self.engine.pool.acquire(timeout=self.probe_s) as conn:
                rows = await conn.fetch(
                    "SELECT id, pages FROM ingest.runs WHERE id = ANY($1::text[])", run_ids
                )
        except TimeoutError:
            log.warning("ingest pool exhausted", extra={"runs": len(run_ids)})
            return False
        except Exception:
            return False
        now = time.monotonic()
        pages = {r["id"]: int(r["pages"]) for r in rows}
        stalled = []
        progress: dict[str, tuple[int, float]] = {}
        for run_id in run_ids:
            count = pages.get(run_id, 0)
            seen, since = self._progress.get(run_id, (count, now))
            if count != seen:
                since = now
            progress[run_id] = (count, since)
            if now - since > self.stall_s:
                stalled.append(run_id)
        self._progress = progress
        if stalled:
            log.warning("ingest runs stalled", extra={"runs": stalled})
        return not stalled


async def on_startup(runtime: Runtime) -> None:
    ingest = IngestSettings()
    runtime.extras["ingest_settings"] = ingest
    keyring = Keyring.from_environment()
    runtime.extras["keyring"] = keyring
    sync = runtime.extras["sync"] = await make_engine(
        runtime.settings.database_url, ingest, keyring
    )
    # credentials still in plain text, or sealed with a key rotated out, are sealed anew
    await reseal(sync.pool, keyring)
    watchdog = Watchdog(sync, stall_s=ingest.stall_s, probe_s=ingest.pool_probe_s)
    runtime.extras["watchdog"] = watchdog
    runtime.readiness["sync_engine"] = watchdog.healthy


def engine(runtime: Runtime) -> SyncEngine:
    sync: SyncEngine = runtime.extras["sync"]
    return sync


def keyring(runtime: Runtime) -> Keyring:
    ring: Keyring = runtime.extras["keyring"]
    return ring
