"""The sync engine: runs a (source, feed) walk page by page into the store.

- One run per (source, feed) at a time, cluster-wide: a session-level PostgreSQL advisory lock
  held by a dedicated connection for the run's life (a killed process releases it).
- Incremental runs start at the watermark minus the source's look-back window; backfills walk a
  given date range and leave the watermark alone.
- Every committed page advances the checkpoint in its own transaction, so a run that dies
  (crash, kill, source outage) is resumed from the next cursor by the next start — the crashed
  run's id is kept and its `resumes` counter goes up.
- A run's walk is `sync.walk.PageWalk`: fetch → decode → write (+ checkpoint), page by page.
- Source calls go through a per-source token bucket and concurrency semaphore, and are retried
  with exponential backoff and jitter, honouring Retry-After.
- Runs end `succeeded` (walk complete, nothing quarantined), `partial` (walk complete with
  quarantined records, or interrupted after committing pages: the checkpoint stays) or `failed`
  (nothing committed). Consecutive failed runs trip a circuit breaker that marks the source
  `degraded` for a cool-down, during which the scheduler leaves it alone.
- The end of a run commits, in one transaction: run outcome, watermark, checkpoint removal,
  source health and an `IngestRunCompleted` outbox event.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import json
import logging
import multiprocessing
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from pydantic import ValidationError

from services.ingest.connectors import (
    WIRE_FORMATS,
    ConnectorConfig,
    SourceError,
    capabilities,
    create_connector,
    push_kinds,
)
from services.ingest.connectors.base import Connector, Feed
from services.ingest.connectors.retry import RetryPolicy
from services.ingest.domain.details import details_json
from services.ingest.domain.normalise import NORMALISERS, Record, Rejection
from services.ingest.store.credentials import CredentialError, Keyring
from services.ingest.store.pages import OUTBOX_COLUMNS, SCHEMA, outbox_record, write_page
from services.ingest.sync import metrics
from services.ingest.sync.prepare import SharedBodies, warm
from services.ingest.sync.ratelimit import TokenBucket
from services.ingest.sync.walk import PageWalk
from shared import tracing
from shared.events.payloads import IngestRunCompleted
from shared.logging import register_secret

log = logging.getLogger("cchc.ingest.sync")


class RunInProgress(Exception):
    """Another run of this (source, feed) holds the lock."""


class EngineBusy(Exception):
    """Every run slot is taken (see `max_runs`): try again when a run has ended."""


class SourceNotFound(Exception):
    pass


class SourceDisabled(Exception):
    pass


@dataclass
class RunPlan:
    run_id: str
    source: dict[str, Any]
    feed: Feed
    kind: str
    since: datetime | None
    until: datetime | None
    cursor: str | None
    resumed: bool
    walked: bool = False  # the last page was committed but the run not closed (crash)


@dataclass
class RunResult:
    run_id: str
    status: str
    pulled: int = 0
    stored: int = 0
    unchanged: int = 0
    quarantined: int = 0
    pages: int = 0
    error: str | None = None
    errors: dict[str, int] = field(default_factory=dict)


def lock_key(source_id: str, feed: str) -> str:
    return f"cchc-ingest:{source_id}:{feed}"


def connector_config(source: dict[str, Any], keyring: Keyring) -> ConnectorConfig:
    """The connector's configuration, its credentials opened (they stay `SecretStr`s)."""
    auth = source["auth"]
    auth = json.loads(auth) if isinstance(auth, str) else auth
    opened = keyring.open(auth, source["id"])
    for field_name in ("key", "client_secret", "password"):  # never in a log line of this process
        value = opened.get(field_name)
        register_secret(value if isinstance(value, str) else None)
    return ConnectorConfig(
        kind=source["kind"],
        base_url=source["base_url"],
        auth=opened,
        timeout_s=source["timeout_s"],
        options=source.get("options") or {},
    )


def _source_dict(row: asyncpg.Record) -> dict[str, Any]:
    out = dict(row)
    for key in ("auth", "agencies", "options"):
        if isinstance(out.get(key), str):
            out[key] = json.loads(out[key])
    return out


class SyncEngine:
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        event_source: str = "/cchc-monitor/ingest",
        policy: RetryPolicy | None = None,
        breaker_threshold: int = 3,
        breaker_cooldown_s: float = 300,
        prefetch: int = 2,
        connector_factory: Callable[[ConnectorConfig], Connector] = create_connector,
        workers: int = 0,
        keyring: Keyring | None = None,
        lock_pool: asyncpg.Pool | None = None,
        max_runs: int | None = None,
        start_wait_s: float = 10.0,
    ) -> None:
        """`workers` > 0 decodes and normalises pages in that many worker processes; `keyring`
        opens the sources' sealed credentials (default: from the environment).

        A run holds its lock connection for its whole life and needs a second connection to
        write pages: with both from one pool, as many runs as connections wedge for good
        (each holds one and waits for another). So lock connections come from `lock_pool`
        (one per run) and at most `max_runs` runs exist at once; without a separate lock pool
        `max_runs` stays one below the pool size, so a page writer always finds a connection.
        A start that finds no free slot within `start_wait_s` raises EngineBusy."""
        self.pool = pool
        self.keyring = keyring or Keyring.from_environment()
        self.lock_pool = lock_pool or pool
        if max_runs is None:
            max_runs = lock_pool.get_max_size() if lock_pool else pool.get_max_size() - 1
        self.max_runs = max(1, max_runs)
        self._slots = asyncio.Semaphore(self.max_runs)
        self.start_wait_s = start_wait_s
        self.executor: ProcessPoolExecutor | None = (
            ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
            if workers > 0
            else None
        )
        self.workers = max(0, workers)
        self.event_source = event_source
        self.policy = policy or RetryPolicy()
        self.breaker_threshold = breaker_threshold
        self.breaker_cooldown_s = breaker_cooldown_s
        self.prefetch = max(1, prefetch)
        # page bodies on their way to the workers (one segment per page that can be in flight)
        self._bodies = SharedBodies(keep=self.prefetch + 1)
        self.connector_factory = connector_factory
        self.tasks: dict[str, asyncio.Task[RunResult]] = {}
        self._buckets: dict[str, TokenBucket] = {}
        self._semaphores: dict[str, asyncio.Semaphore] = {}
        self._stopping = False

    # ------------------------------------------------------------------ public

    async def start(
        self,
        source_id: str,
        feed: Feed,
        *,
        kind: str = "incremental",
        trigger: str = "manual",
        since: datetime | None = None,
        until: datetime | None = None,
        wait_s: float | None = None,
    ) -> str:
        """Take a run slot and the (source, feed) lock, open or resume a run, walk it in the
        background. `wait_s` (default `start_wait_s`) bounds the wait for a free slot."""
        await self._take_slot(self.start_wait_s if wait_s is None else wait_s)
        try:
            lock_conn: asyncpg.Connection = await self.lock_pool.acquire()
        except BaseException:
            self._slots.release()
            raise
        try:
            got = await lock_conn.fetchval(
                "SELECT pg_try_advisory_lock(hashtext($1))", lock_key(source_id, feed)
            )
            if not got:
                raise RunInProgress(f"a {feed} run of source {source_id} is in progress")
            try:
                plan = await self._open(lock_conn, source_id, feed, kind, trigger, since, until)
            except BaseException:
                await self._unlock(lock_conn, source_id, feed)
                raise
        except BaseException:
            await self.lock_pool.release(lock_conn)
            self._slots.release()
            raise
        task = asyncio.create_task(self._execute(lock_conn, plan), name=f"ingest-{plan.run_id}")
        self.tasks[plan.run_id] = task
        task.add_done_callback(functools.partial(self._forget, plan.run_id))
        return plan.run_id

    async def _take_slot(self, wait_s: float) -> None:
        if self._slots.locked() and wait_s <= 0:
            raise EngineBusy(f"{self.max_runs} runs in progress")
        try:
            async with asyncio.timeout(wait_s):
                await self._slots.acquire()
        except TimeoutError as exc:
            raise EngineBusy(f"{self.max_runs} runs in progress") from exc

    def _forget(self, run_id: str, _task: object) -> None:
        self.tasks.pop(run_id, None)

    async def run(self, source_id: str, feed: Feed, **kwargs: Any) -> RunResult:
        """Start and wait for the run to end."""
        run_id = await self.start(source_id, feed, **kwargs)
        task = self.tasks.get(run_id)
        if task is None:  # already finished
            return await self.result(run_id)
        return await task

    async def result(self, run_id: str) -> RunResult:
        row = await self.pool.fetchrow(f"SELECT * FROM {SCHEMA}.runs WHERE id = $1", run_id)
        assert row is not None
        return RunResult(
            run_id=run_id, status=row["status"], pulled=row["pulled"], stored=row["stored"],
            unchanged=row["unchanged"], quarantined=row["quarantined"], pages=row["pages"],
            error=row["error"], errors=json.loads(row["errors"]),
        )  # fmt: skip

    async def warm_up(self) -> None:
        """Start the decoding worker processes now (spawning one and importing the ingest
        modules takes about a second) rather than on the first page of the first run: done
        when every worker has run a task (a worker still starting takes none meanwhile)."""
        if self.executor is None:
            return
        loop = asyncio.get_running_loop()
        ready: set[int] = set()
        while len(ready) < self.workers:
            ready.update(
                await asyncio.gather(
                    *(loop.run_in_executor(self.executor, warm) for _ in range(self.workers))
                )
            )
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        """Let every run finish the page in hand, then end it (the checkpoint stays)."""
        self._stopping = True
        if self.tasks:
            await asyncio.wait(list(self.tasks.values()), timeout=20)
        if self.executor is not None:
            self.executor.shutdown(wait=False, cancel_futures=True)
        self._bodies.close()

    async def close(self) -> None:
        await self.pool.close()
        if self.lock_pool is not self.pool:
            await self.lock_pool.close()

    async def due(self) -> list[tuple[str, Feed]]:
        """(source, feed) pairs the scheduler should start now."""
        rows = await self.pool.fetch(f"""
            SELECT s.id, f.feed FROM {SCHEMA}.sources s CROSS JOIN LATERAL unnest(s.feeds) f(feed)
            WHERE s.enabled AND (s.degraded_until IS NULL OR s.degraded_until < now())
              AND s.kind <> ALL($1::text[])
              AND (EXISTS (SELECT 1 FROM {SCHEMA}.checkpoints c JOIN {SCHEMA}.runs r
                           ON r.id = c.run_id
                           WHERE c.source_id = s.id AND c.feed = f.feed AND r.status = 'running')
                   OR NOT EXISTS (SELECT 1 FROM {SCHEMA}.runs r
                           WHERE r.source_id = s.id AND r.feed = f.feed
                             AND r.started_at > now() - make_interval(secs => s.schedule_s)))
            ORDER BY s.id, f.feed""", push_kinds())  # fmt: skip
        return [(r["id"], r["feed"]) for r in rows]

    # ------------------------------------------------------------------ opening a run

    async def _open(
        self, conn: asyncpg.Connection, source_id: str, feed: Feed, kind: str, trigger: str,
        since: datetime | None, until: datetime | None,
    ) -> RunPlan:  # fmt: skip
        async with conn.transaction():
            row = await conn.fetchrow(f"SELECT * FROM {SCHEMA}.sources WHERE id = $1", source_id)
            if row is None:
                raise SourceNotFound(source_id)
            source = _source_dict(row)
            if not source["enabled"]:
                raise SourceDisabled(source_id)
            cp = await conn.fetchrow(
                f"SELECT c.*, r.status AS run_status, r.kind AS run_kind "
                f"FROM {SCHEMA}.checkpoints c LEFT JOIN {SCHEMA}.runs r ON r.id = c.run_id "
                f"WHERE c.source_id = $1 AND c.feed = $2",
                source_id, feed,
            )  # fmt: skip
            if cp is not None and kind == "backfill":
                # An explicit backfill replaces an unfinished walk (the watermark is untouched,
                # so the next incremental run re-reads what that walk had not reached).
                if cp["run_status"] == "running":
                    await conn.execute(
                        f"UPDATE {SCHEMA}.runs SET status = 'failed', finished_at = now(), "
                        f"error = 'superseded by a backfill' WHERE id = $1",
                        cp["run_id"],
                    )
                await conn.execute(
                    f"DELETE FROM {SCHEMA}.checkpoints WHERE source_id = $1 "
                    f"AND (feed = $2 OR feed LIKE $2 || '#%')",
                    source_id, feed,
                )  # fmt: skip
                cp = None
            if cp is not None:
                if cp["run_status"] == "running":  # the process running it died: same run
                    run_id = cp["run_id"]
                    await conn.execute(
                        f"UPDATE {SCHEMA}.runs SET resumes = resumes + 1 WHERE id = $1", run_id
                    )
                else:  # a previous run was interrupted: a new run continues the walk
                    run_id = str(uuid.uuid4())
                    await self._insert_run(
                        conn, run_id, source_id, feed, cp["run_kind"] or "incremental", trigger,
                        cp["since"], cp["until"],
                    )  # fmt: skip
                    await conn.execute(
                        f"UPDATE {SCHEMA}.checkpoints SET run_id = $3 "
                        f"WHERE source_id = $1 AND feed = $2",
                        source_id, feed, run_id,
                    )  # fmt: skip
                return RunPlan(run_id, source, feed, cp["run_kind"] or "incremental",
                               cp["since"], cp["until"], cp["cursor"], resumed=True,
                               walked=cp["pages"] > 0 and cp["cursor"] is None)  # fmt: skip
            if kind == "incremental":
                watermark = await conn.fetchval(
                    f"SELECT watermark FROM {SCHEMA}.watermarks "
                    f"WHERE source_id = $1 AND feed = $2",
                    source_id, feed,
                )  # fmt: skip
                since = watermark - timedelta(seconds=source["lookback_s"]) if watermark else None
                until = None
            run_id = str(uuid.uuid4())
            await self._insert_run(conn, run_id, source_id, feed, kind, trigger, since, until)
            await conn.execute(
                f"INSERT INTO {SCHEMA}.checkpoints (source_id, feed, run_id, since, until) "
                f"VALUES ($1, $2, $3, $4, $5)",
                source_id, feed, run_id, since, until,
            )  # fmt: skip
            return RunPlan(run_id, source, feed, kind, since, until, None, resumed=False)

    @staticmethod
    async def _insert_run(
        conn: asyncpg.Connection, run_id: str, source_id: str, feed: str, kind: str,
        trigger: str, since: datetime | None, until: datetime | None,
    ) -> None:  # fmt: skip
        await conn.execute(
            f"INSERT INTO {SCHEMA}.runs (id, source_id, feed, kind, trigger, status, since, until)"
            f" VALUES ($1, $2, $3, $4, $5, 'running', $6, $7)",
            run_id, source_id, feed, kind, trigger, since, until,
        )  # fmt: skip

    # ------------------------------------------------------------------ walking

    def _bucket(self, source: dict[str, Any]) -> TokenBucket:
        bucket = self._buckets.get(source["id"])
        if bucket is None or bucket.rate != max(source["rate_limit_per_s"], 0.001):
            bucket = self._buckets[source["id"]] = TokenBucket(source["rate_limit_per_s"])
        return bucket

    def _semaphore(self, source: dict[str, Any]) -> asyncio.Semaphore:
        sem = self._semaphores.get(source["id"])
        if sem is None:
            sem = self._semaphores[source["id"]] = asyncio.Semaphore(max(1, source["concurrency"]))
        return sem

    async def _execute(self, lock_conn: asyncpg.Connection, plan: RunPlan) -> RunResult:
        started = time.monotonic()
        source, feed = plan.source, plan.feed
        sid = source["id"]
        errors: Counter[str] = Counter()
        committed = 0
        complete = False
        error: str | None = None
        connector: Connector | None = None
        try:
            connector = self.connector_factory(connector_config(source, self.keyring))
            if plan.walked:
                committed, complete = 0, True
            elif plan.kind == "backfill" and self._slices(plan, connector) > 1:
                committed, complete = await self._walk_slices(connector, plan, errors)
            else:
                with tracing.span(
                    "ingest.sync",
                    attributes={
                        "ingest.source": sid,
                        "ingest.feed": feed,
                        "ingest.run": plan.run_id,
                    },
                ):
                    committed, complete = await PageWalk(self, connector, plan, errors).run()
        except SourceError as exc:
            error = str(exc)
        except (CredentialError, ValidationError) as exc:  # the stored auth: not the code
            error = f"auth: the source's credentials cannot be used ({type(exc).__name__})"
        except Exception as exc:  # a bug or the database: end the run, keep the checkpoint
            log.exception("ingest run crashed", extra={"run_id": plan.run_id})
            error = f"internal: {exc!r}"[:1000]
        finally:
            if connector is not None:
                with contextlib.suppress(Exception):
                    await connector.aclose()
        try:
            result = await self._finish(plan, committed, complete, error, errors)
            metrics.RUN_DURATION.labels(sid, feed, result.status).observe(
                time.monotonic() - started
            )
            return result
        finally:
            await self._unlock(lock_conn, sid, feed)
            await self.lock_pool.release(lock_conn)
            self._slots.release()

    @staticmethod
    def _slices(plan: RunPlan, connector: Connector) -> int:
        """Date slices a backfill is walked in, in parallel (source option `backfill_slices`):
        a source answering slowly is then asked as fast as its rate limit allows. Only for
        sources filtered by update time (an ascending wire format)."""
        if WIRE_FORMATS[connector.capabilities.wire].descending or plan.since is None:
            return 1
        try:
            n = int((plan.source.get("options") or {}).get("backfill_slices", 1))
        except (TypeError, ValueError):
            return 1
        return max(1, min(n, 16))

    async def _walk_slices(
        self, connector: Connector, plan: RunPlan, errors: Counter[str]
    ) -> tuple[int, bool]:
        """A backfill as date slices walked side by side, each checkpointed in its own row
        (`{feed}#{i}`, same run): a resumed run walks on from each slice's cursor and skips
        the slices already walked. Complete when every slice is."""
        sid, feed = plan.source["id"], plan.feed
        n = self._slices(plan, connector)
        assert plan.since is not None
        async with self.pool.acquire() as conn:
            rows = {
                r["feed"]: r
                for r in await conn.fetch(
                    f"SELECT feed, since, until, cursor, pages FROM {SCHEMA}.checkpoints "
                    f"WHERE source_id = $1 AND feed LIKE $2",
                    sid,
                    f"{feed}#%",
                )
            }
            if not rows:  # a new backfill: equal slices of its range, fixed from now on
                end = plan.until or datetime.now(UTC)
                step = (end - plan.since) / n
                await conn.executemany(
                    f"INSERT INTO {SCHEMA}.checkpoints (source_id, feed, run_id, since, until)"
                    f" VALUES ($1, $2, $3, $4, $5)",
                    [(sid, f"{feed}#{i}", plan.run_id, plan.since + step * i,
                      end if i == n - 1 else plan.since + step * (i + 1)) for i in range(n)],
                )  # fmt: skip
                rows = {
                    f"{feed}#{i}": {"since": plan.since + step * i, "cursor": None, "pages": 0,
                                    "until": end if i == n - 1 else plan.since + step * (i + 1)}
                    for i in range(n)
                }  # fmt: skip
        walks = [
            PageWalk(self, connector, dataclasses.replace(
                plan, since=r["since"], until=r["until"], cursor=r["cursor"]), errors,
                slice_key=key).run()
            for key, r in sorted(rows.items())
            if not (r["pages"] > 0 and r["cursor"] is None)  # walked already
        ]  # fmt: skip
        outcomes = await asyncio.gather(*walks, return_exceptions=True)
        for out in outcomes:
            if isinstance(out, BaseException):
                raise out
        done = [o for o in outcomes if isinstance(o, tuple)]
        return sum(c for c, _ in done), all(ok for _, ok in done)

    @staticmethod
    def _count(sid: str, feed: str, result: Any, reason_kinds: list[str]) -> None:
        metrics.PAGES.labels(sid, feed).inc()
        metrics.RECORDS.labels(sid, feed, "pulled").inc(result.pulled)
        metrics.RECORDS.labels(sid, feed, "stored").inc(result.stored)
        metrics.RECORDS.labels(sid, feed, "unchanged").inc(result.unchanged)
        metrics.RECORDS.labels(sid, feed, "quarantined").inc(result.quarantined)
        for kind in reason_kinds:
            metrics.QUARANTINE_REASONS.labels(sid, feed, kind).inc()

    # ------------------------------------------------------------------ ending a run

    async def _finish(
        self, plan: RunPlan, committed: int, complete: bool, error: str | None,
        errors: Counter[str],
    ) -> RunResult:  # fmt: skip
        sid, feed = plan.source["id"], plan.feed
        async with self.pool.acquire() as conn, conn.transaction():
            cp = await conn.fetchrow(
                f"SELECT max(max_seen) AS max_seen, max(source_time) AS source_time, "
                f"max(source_clock) AS source_clock FROM {SCHEMA}.checkpoints "
                f"WHERE source_id = $1 AND (feed = $2 OR feed LIKE $2 || '#%')",
                sid, feed,
            )  # fmt: skip
            max_seen = cp["max_seen"] if cp else None
            source_time = cp["source_time"] if cp else None
            clock = (cp["source_clock"] or "server_time") if source_time is not None else "local"
            if complete:
                if plan.kind == "incremental" and max_seen is not None:
                    await conn.execute(
                        f"""INSERT INTO {SCHEMA}.watermarks (source_id, feed, watermark)
                        VALUES ($1, $2, $3) ON CONFLICT (source_id, feed) DO UPDATE
                        SET watermark = GREATEST({SCHEMA}.watermarks.watermark, excluded.watermark),
                            updated_at = now()""",
                        sid, feed, max_seen,
                    )  # fmt: skip
                await conn.execute(
                    f"DELETE FROM {SCHEMA}.checkpoints WHERE source_id = $1 "
                    f"AND (feed = $2 OR feed LIKE $2 || '#%')",
                    sid, feed,
                )  # fmt: skip
            watermark = await conn.fetchval(
                f"SELECT watermark FROM {SCHEMA}.watermarks WHERE source_id = $1 AND feed = $2",
                sid, feed,
            )  # fmt: skip
            row = await conn.fetchrow(
                f"SELECT pages, quarantined FROM {SCHEMA}.runs WHERE id = $1", plan.run_id
            )
            total_pages = row["pages"] if row else committed
            if complete:
                status = "partial" if row and row["quarantined"] else "succeeded"
            else:
                status = "partial" if total_pages > 0 else "failed"
            newest = watermark if plan.kind == "incremental" else max_seen
            # Lag on the source's own clock (the time it reported in its pages, or its HTTP
            # Date header) when it reports one: a source whose clock is off, or a simulator at
            # a fixed date, is then not "behind". `clock` says which was used.
            lag = ((source_time or datetime.now(UTC)) - newest).total_seconds() if newest else None
            if error is None and not complete:
                error = "stopped before the end of the walk (service shutting down)"
            run = await conn.fetchrow(
                f"""UPDATE {SCHEMA}.runs SET status = $2, finished_at = now(), error = $3,
                    errors = $4::jsonb, lag_s = $5, lag_clock = $6 WHERE id = $1
                    RETURNING pulled, stored, unchanged, quarantined, pages""",
                plan.run_id, status, error, json.dumps(dict(errors)), lag,
                clock if lag is not None else None,
            )  # fmt: skip
            if status == "failed":
                await conn.execute(
                    f"""UPDATE {SCHEMA}.sources SET consecutive_failures = consecutive_failures + 1,
                        last_error = $2, updated_at = now(),
                        health = CASE WHEN consecutive_failures + 1 >= $3 THEN 'degraded'
                                      ELSE health END,
                        degraded_until = CASE WHEN consecutive_failures + 1 >= $3
                            THEN now() + make_interval(secs => $4) ELSE degraded_until END
                        WHERE id = $1""",
                    sid, error, self.breaker_threshold, float(self.breaker_cooldown_s),
                )  # fmt: skip
            else:
                await conn.execute(
                    f"""UPDATE {SCHEMA}.sources SET consecutive_failures = 0, health = 'ok',
                        degraded_until = NULL, updated_at = now(),
                        last_error = CASE WHEN $2::text IS NULL THEN last_error ELSE $2 END,
                        source_time = CASE WHEN $4 THEN $3 ELSE source_time END,
                        newest_seen = CASE WHEN $4 THEN $5 ELSE newest_seen END,
                        lag_clock = CASE WHEN $4 THEN $6 ELSE lag_clock END
                        WHERE id = $1""",
                    sid, error, source_time, feed == "dossiers" and newest is not None, newest,
                    clock,
                )  # fmt: skip
            event = IngestRunCompleted(
                run_id=plan.run_id, source_id=sid, feed=feed, outcome=status,
                pulled=run["pulled"], stored=run["stored"], unchanged=run["unchanged"],
                quarantined=run["quarantined"], error=error,
            )  # fmt: skip
            await conn.copy_records_to_table(
                "outbox",
                schema_name=SCHEMA,
                records=[outbox_record(event, source=self.event_source, key=sid)],
                columns=OUTBOX_COLUMNS,
            )  # fmt: skip
        if lag is not None:
            metrics.LAG.labels(sid, feed).set(lag)
        log.info(
            "ingest run ended",
            extra={"run_id": plan.run_id, "source": sid, "feed": feed, "status": status,
                   "pulled": run["pulled"], "stored": run["stored"]},
        )  # fmt: skip
        return RunResult(
            run_id=plan.run_id, status=status, pulled=run["pulled"], stored=run["stored"],
            unchanged=run["unchanged"], quarantined=run["quarantined"], pages=run["pages"],
            error=error, errors=dict(errors),
        )  # fmt: skip

    async def _unlock(self, conn: asyncpg.Connection, source_id: str, feed: str) -> None:
        with contextlib.suppress(Exception):
            await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", lock_key(source_id, feed))


async def reprocess_quarantine(
    engine: SyncEngine, source_id: str, feed: Feed, ids: list[int] | None = None,
    limit: int = 5000,
) -> dict[str, Any]:  # fmt: skip
    """Normalise open quarantine entries again (e.g. after an agency mapping was added): valid
    ones are stored like any page (newer wins, events for real changes) and marked resolved;
    the others stay open with their current reasons. An entry holding the record as a vendor
    sent it (`source_raw`) is translated again first, with the source's options as they are
    now (a status map corrected since is applied); others are read as they were stored."""
    pool = engine.pool
    async with pool.acquire() as conn:
        row = await conn.fetchrow(f"SELECT * FROM {SCHEMA}.sources WHERE id = $1", source_id)
        if row is None:
            raise SourceNotFound(source_id)
        source = _source_dict(row)
        rows = await conn.fetch(
            f"""SELECT id, raw, source_raw FROM {SCHEMA}.quarantine
            WHERE source_id = $1 AND feed = $2 AND status = 'open'
              AND ($3::bigint[] IS NULL OR id = ANY($3::bigint[]))
            ORDER BY id LIMIT $4""",
            source_id, feed, ids, limit,
        )  # fmt: skip
        normaliser = NORMALISERS[feed]
        now = datetime.now(UTC)
        records: list[Record] = []
        rejections: list[Rejection] = []
        details: list[bytes | None] = []
        ok_ids: list[int] = []
        wire = WIRE_FORMATS[capabilities(source["kind"]).wire]
        options = source.get("options") or {}
        for r in rows:
            sent = json.loads(r["source_raw"]) if r["source_raw"] is not None else None
            if sent is not None and wire.translate is not None:
                raw = wire.translate(sent, options)
            else:
                raw = json.loads(r["raw"])
            out = normaliser(raw, source_id=source_id, agencies=source["agencies"], now=now)
            if isinstance(out, Rejection):
                rejections.append(dataclasses.replace(out, source=sent))
            else:
                records.append(out)
                details.append(details_json(raw) if feed == "dossiers" else None)
                ok_ids.append(r["id"])
        run_id = str(uuid.uuid4())
        await SyncEngine._insert_run(conn, run_id, source_id, feed, "reprocess", "manual",
                                     None, None)  # fmt: skip
        result = await write_page(
            conn, source_id=source_id, feed=feed, run_id=run_id,
            event_source=engine.event_source, records=records, rejections=rejections,
            next_cursor=None, checkpoint=False, details=details,
        )  # fmt: skip
        async with conn.transaction():
            await conn.execute(
                f"UPDATE {SCHEMA}.quarantine SET status = 'resolved', resolved_at = now() "
                f"WHERE id = ANY($1::bigint[]) AND status <> 'resolved'",
                ok_ids,
            )
            await conn.execute(
                f"UPDATE {SCHEMA}.runs SET status = $2, finished_at = now() WHERE id = $1",
                run_id, "partial" if rejections else "succeeded",
            )  # fmt: skip
    return {
        "run_id": run_id, "reprocessed": len(rows), "resolved": len(ok_ids),
        "stored": result.stored, "still_rejected": len(rejections),
    }  # fmt: skip
