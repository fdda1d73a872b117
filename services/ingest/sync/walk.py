"""One run's walk over a feed, in three named stages per page:

1. **fetch** (`PageWalk.fetch`): one source call under the source's rate limit and concurrency
   cap, retried with backoff; the body comes back undecoded (straight into a shared-memory
   segment when the connector can), with the next cursor *peeked* from its tail by the wire
   format so the next fetch can start at once;
2. **decode** (`PageWalk.decode`): the wire format's one decode stage (`prepare.decode_body`:
   vendor translation, typed validation, COPY rows, event JSON), in a worker process;
3. **write** (`PageWalk.write`): one transaction storing the page's records, its events,
   its quarantine entries **and the checkpoint** (the next cursor), so a committed page is
   never fetched again by a resumed run.

`PageWalk.run` pipelines them: a producer task fetches up to `prefetch` pages ahead and hands
each to a worker (stage 1 → 2), the run's own loop writes decoded pages in order (stage 3). If a
decoded page's next cursor differs from the peeked one, the producer restarts from the decoded
one. Without worker processes a page is fetched and decoded here, as one retried step (a
garbled body is then fetched again like any failed call).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.shared_memory import SharedMemory
from typing import TYPE_CHECKING, Any

import asyncpg

from services.ingest.connectors import WIRE_FORMATS, PageContext
from services.ingest.connectors.base import Connector, SourceError
from services.ingest.connectors.retry import call_with_retries
from services.ingest.store.pages import Mode, PageResult, PreparedPage, next_mode, write_prepared
from services.ingest.sync import metrics
from services.ingest.sync.prepare import (
    SHARE_MIN,
    PrepareError,
    decode_body,
    decode_shared,
    tail_of,
)

if TYPE_CHECKING:
    from services.ingest.sync.engine import RunPlan, SyncEngine

log = logging.getLogger("cchc.ingest.sync")

Decoded = tuple[PreparedPage, int]  # the page, and how many of its records were rejected


@dataclass(slots=True)
class Fetched:
    """Stage 1's output: a body (bytes, or `size` bytes in the segment `shm`) and the next
    cursor peeked from it."""

    cursor: str | None  # the cursor it was fetched with
    body: bytes | None
    size: int
    shm: SharedMemory | None
    peeked: str | None


@dataclass(slots=True)
class InFlight:
    """A page between stage 1 and stage 3: its decoding, and the cursor the producer moved on
    with (the peeked one)."""

    cursor: str | None
    decoded: asyncio.Future[Decoded | PrepareError]
    moved_on: str | None


class PageWalk:
    def __init__(
        self, engine: SyncEngine, connector: Connector, plan: RunPlan, errors: Counter[str],
        slice_key: str | None = None,
    ) -> None:  # fmt: skip
        """`slice_key`: this walk is one date slice of a backfill, checkpointed in that row."""
        self.slice_key = slice_key
        self.engine = engine
        self.connector = connector
        self.plan = plan
        self.errors = errors
        self.source = plan.source
        self.sid: str = plan.source["id"]
        self.agencies: dict[str, str] = plan.source["agencies"]
        self.limit: int = plan.source["page_size"]
        self.caps = connector.capabilities
        self.wire = WIRE_FORMATS[self.caps.wire]
        self.options: dict[str, Any] = dict(plan.source.get("options") or {})
        self.bucket = engine._bucket(plan.source)
        self.sem = engine._semaphore(plan.source)
        self.workers = engine.executor is not None

    def context(self, cursor: str | None) -> PageContext:
        return PageContext(cursor=cursor, limit=self.limit, since=self.plan.since,
                           options=self.options)  # fmt: skip

    def on_error(self, exc: SourceError, attempt: int) -> None:
        self.errors[exc.kind] += 1
        metrics.SOURCE_ERRORS.labels(self.sid, exc.kind).inc()
        log.warning(
            "source call failed",
            extra={"source": self.sid, "feed": self.plan.feed, "kind": exc.kind,
                   "attempt": attempt},
        )  # fmt: skip

    async def _call(self, cursor: str | None, sink: Any = None) -> bytes | int:
        async with self.sem:
            await self.bucket.acquire()
            return await self.connector.fetch_body(
                self.plan.feed, updated_since=self.plan.since, cursor=cursor, limit=self.limit,
                sink=sink,
            )  # fmt: skip

    # ------------------------------------------------------------------ stage 1: fetch

    async def fetch(self, cursor: str | None) -> Fetched:
        """One source call (not retried here) whose body is left for a worker to decode."""
        bodies = self.engine._bodies
        taken: list[SharedMemory] = []

        def sink(size: int) -> memoryview | None:  # runs in the connector's fetch thread
            shm = bodies.take(size) if size >= SHARE_MIN else None
            if shm is None:
                return None
            taken.append(shm)
            return shm.buf

        try:
            body = await self._call(cursor, sink if self.caps.into_buffer else None)
        except asyncio.CancelledError:
            for segment in taken:  # the thread may still be writing into it
                bodies.abandon(segment)
            raise
        except BaseException:
            for segment in taken:
                bodies.done(segment)
            raise
        shm = taken.pop() if taken and isinstance(body, int) else None
        for segment in taken:  # offered but not used
            bodies.done(segment)
        ctx, tail = self.context(cursor), self.wire.tail
        if shm is None:
            assert isinstance(body, bytes)
            size = len(body)
            found, peeked = self.wire.peek(body[-tail:], ctx)
        else:
            size = int(body)
            found, peeked = self.wire.peek(tail_of(shm, size, tail), ctx)
            if not found:  # a cursor longer than the tail read
                found, peeked = self.wire.peek(tail_of(shm, size, size), ctx)
        if not found:
            if shm is not None:
                bodies.done(shm)
            raise SourceError("protocol", f"page body is truncated or malformed ({size} B)")
        return Fetched(cursor, body if isinstance(body, bytes) else None, size, shm, peeked)

    # ------------------------------------------------------------------ stage 2: decode

    def decode(self, fetched: Fetched) -> asyncio.Future[Decoded | PrepareError]:
        """Hand a fetched body to a worker process for the wire format's decode stage."""
        loop = asyncio.get_running_loop()
        plan, bodies = self.plan, self.engine._bodies
        shm = fetched.shm
        if shm is None and fetched.body is not None and fetched.size >= SHARE_MIN:
            shm = bodies.put(fetched.body)
        common = (self.caps.wire, plan.feed, self.sid, self.agencies, datetime.now(UTC),
                  self.context(fetched.cursor), plan.run_id)  # fmt: skip
        if shm is not None:
            future = loop.run_in_executor(
                self.engine.executor, decode_shared, shm.name, fetched.size, *common
            )
            future.add_done_callback(functools.partial(bodies.done, shm))
        else:
            assert fetched.body is not None
            future = loop.run_in_executor(self.engine.executor, decode_body, fetched.body, *common)
        return future

    async def decode_here(self, cursor: str | None) -> Decoded:
        """Stages 1 and 2 in this process, as one step to retry (a body that does not decode
        is a `protocol` error like a failed call)."""
        body = await self._call(cursor)
        assert isinstance(body, bytes)
        out = decode_body(body, self.caps.wire, self.plan.feed, self.sid, self.agencies,
                          datetime.now(UTC), self.context(cursor), self.plan.run_id)  # fmt: skip
        if isinstance(out, PrepareError):
            raise SourceError("protocol", out.message)
        return out

    # ------------------------------------------------------------------ stage 3: write

    async def write(self, conn: asyncpg.Connection, decoded: Decoded, mode: Mode) -> PageResult:
        """The page, its events, its quarantine entries and the checkpoint: one transaction.
        A page that carries no time of its own (a vendor's) is stamped with the source's
        clock from its HTTP Date header, so lag is measured on the source's clock (the
        latest Date seen: pages are fetched ahead, and the latest is the truest reading)."""
        page, rejected = decoded
        if page.server_time is None:
            clock = self.connector.source_clock()
            if clock is not None:
                page.server_time, page.clock = clock, "http_date"
        result = await write_prepared(
            conn, source_id=self.sid, feed=self.plan.feed, run_id=self.plan.run_id,
            event_source=self.engine.event_source, page=page, rejected=rejected, mode=mode,
            checkpoint_key=self.slice_key,
        )  # fmt: skip
        self.engine._count(self.sid, self.plan.feed, result, page.reason_kinds)
        return result

    def walk_ends(self, page: PreparedPage, result: PageResult) -> bool:
        """After a committed page: is the walk complete?"""
        if not page.next_cursor:
            return True
        until = self.plan.until
        # an ascending walk of a date range ends at the first page past its end
        return (
            not self.wire.descending and until is not None
            and result.max_seen is not None and result.max_seen > until
        )  # fmt: skip

    # ------------------------------------------------------------------ the pipeline

    async def run(self) -> tuple[int, bool]:
        """Walk pages from the plan's cursor; returns (pages committed, walk complete)."""
        queue: asyncio.Queue[InFlight | BaseException | None] = asyncio.Queue(self.engine.prefetch)
        producer = asyncio.create_task(self._produce(self.plan.cursor, queue))
        committed = 0
        # How dossier rows are stored (`write_prepared`), then judged page by page
        # (`next_mode`): a walk from the beginning (a first pull) starts with all of them new;
        # one from a watermark or date looks its first page's codes up.
        mode: Mode = "new" if self.plan.since is None else "lookup"
        try:
            async with self.engine.pool.acquire() as conn:
                while True:
                    entry = await queue.get()
                    if entry is None:
                        return committed, True
                    if isinstance(entry, BaseException):
                        raise entry
                    out = await entry.decoded
                    if isinstance(out, PrepareError):  # decoded badly: fetch it again here
                        self.on_error(SourceError("protocol", out.message), 1)
                        out = await self._retried(entry.cursor)
                    page = out[0]
                    if self.wire.descending and entry.cursor is not None:
                        # Newest first, only the walk's first page says how far the source
                        # was read: a newer record met later (moved to the front meanwhile and
                        # repeated) does not mean that the ones changed before it were seen.
                        page.max_seen = None
                    if page.next_cursor != entry.moved_on:
                        producer = await self._restart(producer, queue, page.next_cursor)
                    result = await self.write(conn, out, mode)
                    mode = next_mode(page, result, mode)
                    committed += 1
                    if self.walk_ends(page, result):
                        return committed, True
                    if self.engine._stopping:
                        return committed, False
        finally:
            producer.cancel()
            with contextlib.suppress(BaseException):
                await producer

    async def _retried(self, cursor: str | None) -> Decoded:
        return await call_with_retries(
            functools.partial(self.decode_here, cursor), self.engine.policy,
            on_error=self.on_error,
        )  # fmt: skip

    async def _produce(
        self, cursor: str | None, queue: asyncio.Queue[InFlight | BaseException | None]
    ) -> None:
        """Stages 1 → 2 for page after page, until the peeked cursor says the last."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                if self.workers:
                    fetched = await call_with_retries(
                        functools.partial(self.fetch, cursor), self.engine.policy,
                        on_error=self.on_error,
                    )  # fmt: skip
                    item = InFlight(cursor, self.decode(fetched), fetched.peeked)
                else:
                    decoded = await self._retried(cursor)
                    done: asyncio.Future[Decoded | PrepareError] = loop.create_future()
                    done.set_result(decoded)
                    item = InFlight(cursor, done, decoded[0].next_cursor)
                await queue.put(item)
                if not item.moved_on:
                    await queue.put(None)
                    return
                cursor = item.moved_on
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            await queue.put(exc)

    async def _restart(
        self, producer: asyncio.Task[None], queue: asyncio.Queue[InFlight | BaseException | None],
        cursor: str | None,
    ) -> asyncio.Task[None]:  # fmt: skip
        """Drop what the producer fetched ahead and fetch again from `cursor`."""
        producer.cancel()
        with contextlib.suppress(BaseException):
            await producer
        while not queue.empty():
            left = queue.get_nowait()
            if isinstance(left, InFlight):
                left.decoded.cancel()
        if cursor is None:  # the decoded page was the last one: nothing more to fetch
            return asyncio.create_task(asyncio.sleep(0))
        return asyncio.create_task(self._produce(cursor, queue))
