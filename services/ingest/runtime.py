"""Process-wide ingest objects: the asyncpg pool and the sync engine, kept in `runtime.extras`."""

from __future__ import annotations

import asyncpg

from services.ingest.connectors.retry import RetryPolicy
from services.ingest.settings import IngestSettings
from services.ingest.store.credentials import Keyring, reseal
from services.ingest.sync.engine import SyncEngine
from shared.app import Runtime
from shared.settings import to_plain_url

SOURCE = "/cchc-monitor/ingest"


async def make_engine(
    database_url: str, ingest: IngestSettings, keyring: Keyring | None = None
) -> SyncEngine:
    pool = await asyncpg.create_pool(
        to_plain_url(database_url),
        min_size=1,
        max_size=ingest.db_pool_size,
        server_settings={"timezone": "UTC"},
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
    )


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


def engine(runtime: Runtime) -> SyncEngine:
    sync: SyncEngine = runtime.extras["sync"]
    return sync


def keyring(runtime: Runtime) -> Keyring:
    ring: Keyring = runtime.extras["keyring"]
    return ring
