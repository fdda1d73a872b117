"""Page preparation that can run in a worker process: bytes in, plain picklable values out.

Decoding the JSON body and normalising thousands of records is the CPU-heavy part of a sync;
the engine can hand it to a process pool so it runs beside the database work of the previous
page. Errors come back as values (a `SourceError` with keyword arguments does not pickle).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from multiprocessing.shared_memory import SharedMemory
from typing import Any

from services.ingest.connectors import WIRE_FORMATS, PageContext, WireFormat
from services.ingest.connectors.base import SourceError
from services.ingest.connectors.national import decode_envelope, parse_server_time
from services.ingest.connectors.wire import envelope_keys
from services.ingest.domain import fast
from services.ingest.domain.copybin import (
    PG_EPOCH,
    copy_stream,
    encode_dossier_row,
    micros,
    row_prefix,
    row_suffix,
)
from services.ingest.domain.details import details_json
from services.ingest.domain.normalise import (
    NORMALISERS,
    Feed,
    Record,
    Rejection,
    find_nul,
    normalise_dossier,
)
from services.ingest.store.pages import (
    DOSSIER_COLUMNS,
    PreparedPage,
    fingerprint,
    prepare,
    prepare_rejections,
    raw_text,
    stream_rows,
)
from shared.gc_pause import gc_paused


@dataclass(frozen=True, slots=True)
class PrepareError:
    kind: str
    message: str


def warm() -> int:
    """A no-op task for `SyncEngine.warm_up`: unpickling it imports this module and the decoding
    modules it uses into the worker; returns the worker's pid."""
    return os.getpid()


def normalise_page(
    feed: Feed, records: list[dict[str, Any]], invalid: list[Any], *, source_id: str,
    agencies: dict[str, str], now: datetime, scan_nul: bool,
) -> tuple[list[Record], list[Rejection], list[bytes | None] | None]:  # fmt: skip
    """(valid records, rejections, each valid dossier's details or None for other feeds)."""
    normaliser = NORMALISERS[feed]
    good: list[Record] = []
    bad: list[Rejection] = []
    details: list[bytes | None] | None = [] if feed == "dossiers" else None
    for raw in records:
        out = normaliser(raw, source_id=source_id, agencies=agencies, now=now, scan_nul=scan_nul)
        if isinstance(out, Rejection):
            bad.append(out)
        else:
            good.append(out)
            if details is not None:
                details.append(details_json(raw))
    bad.extend(Rejection(feed, None, ("not_an_object",), item) for item in invalid)
    return good, bad, details


def decode_body(
    body: bytes | memoryview, wire: str, feed: Feed, source_id: str, agencies: dict[str, str],
    now: datetime, ctx: PageContext, run_id: str | None = None,
) -> tuple[PreparedPage, int] | PrepareError:  # fmt: skip
    """THE decode stage: a body of wire format `wire` → (prepared page, rejected count), or the
    protocol error that makes the engine fetch the page again. A vendor format is translated
    into the national envelope first, so every format ends on the typed fast path."""
    fmt = WIRE_FORMATS[wire]
    if feed == "dossiers" and fmt.to_typed is not None:
        try:
            typed = fmt.to_typed(body, feed, ctx)
        except SourceError as exc:
            return PrepareError(exc.kind, str(exc))
        if typed is not None:
            may_contain_nul = _has(body, b"\\") and _has(body, b"\\u0000")
            with gc_paused():
                return prepare_typed(
                    typed.items, typed.next_cursor, typed.server_time, typed.raws,
                    may_contain_nul, source_id, agencies, now, run_id, typed.sources,
                    typed.steps_wire,
                )  # fmt: skip
    if fmt.to_national is None:
        items_key, cursor_key = envelope_keys(ctx.options)
        return prepare_body(body, feed, source_id, agencies, now, items_key, cursor_key, run_id)
    try:
        national = fmt.to_national(body, feed, ctx)
    except SourceError as exc:
        return PrepareError(exc.kind, str(exc))
    out = prepare_body(national, feed, source_id, agencies, now, run_id=run_id)
    if not isinstance(out, PrepareError) and out[0].rejections:
        keep_sources(out[0], body, fmt, ctx)
    return out


def keep_sources(
    page: PreparedPage, body: bytes | memoryview, fmt: WireFormat, ctx: PageContext
) -> None:
    """Beside each rejected record's national translation, the record as the vendor sent it,
    found again by translating the body's records (a page with rejections only)."""
    if fmt.records is None or fmt.translate is None:
        return
    try:
        sources = fmt.records(body)
    except (SourceError, ValueError):
        return
    by_fp: dict[str, Any] = {}
    for source in sources:
        national = fmt.translate(source, ctx.options) if isinstance(source, dict) else source
        by_fp.setdefault(fingerprint(raw_text(national)), source)
    page.rejections = [
        (code, reasons, raw, fp, raw_text(by_fp[fp]) if fp in by_fp else src)
        for code, reasons, raw, fp, src in page.rejections
    ]


def prepare_body(
    body: bytes | memoryview, feed: Feed, source_id: str, agencies: dict[str, str], now: datetime,
    items_key: str = "items", cursor_key: str = "next_cursor", run_id: str | None = None,
) -> tuple[PreparedPage, int] | PrepareError:  # fmt: skip
    """(prepared page, rejected count) or the protocol error that makes the fetch retry.
    `run_id` is written into the dossier COPY rows (see `copybin`)."""
    try:
        page, rejected = prepare_page(
            body, feed, source_id, agencies, now, items_key, cursor_key, run_id
        )
    except SourceError as exc:
        return PrepareError(exc.kind, str(exc))
    if feed == "dossiers" and page.rows:  # the engine then only forwards bytes to COPY
        stream_rows(page, source_id, run_id)
    return page, rejected


# Page bodies at least this big reach a worker through shared memory: one copy in, one out,
# instead of pickling megabytes through the executor's pipe (four copies and a syscall per
# 64 KiB). Segments are reused, so neither side faults fresh pages in for every page.
SHARE_MIN = 64 * 1024


class SharedBodies:
    """The engine's shared-memory segments for page bodies. `take` hands out a free segment
    (or a new one) for a fetch to read a body into; `put` copies a body into one; `done` takes
    a segment back once the worker has read it, or unlinks it when the page was dropped (its
    task may still be reading); `close` unlinks them all. Fetch threads take segments, so the
    free list is guarded by a lock."""

    def __init__(self, keep: int = 4) -> None:
        self.keep = keep
        self.free: list[SharedMemory] = []
        self.closed = False
        self._lock = threading.Lock()

    def take(self, size: int) -> SharedMemory | None:
        """A segment of at least `size` bytes, or None when shared memory is short (then the
        body travels pickled): a write into a segment that tmpfs cannot back is a SIGBUS."""
        with self._lock:
            for i, shm in enumerate(self.free):
                if shm.size >= size:
                    del self.free[i]
                    return shm
        if _shm_free() < 4 * size:
            return None
        return SharedMemory(create=True, size=size + size // 4)

    def put(self, body: bytes) -> SharedMemory | None:
        """The segment now holding `body`, or None (see `take`)."""
        shm = self.take(len(body))
        if shm is not None:
            buf = shm.buf
            assert buf is not None
            buf[: len(body)] = body
        return shm

    def done(self, shm: SharedMemory, future: asyncio.Future[Any] | None = None) -> None:
        """Take `shm` back after its worker task (`future`), or unused (no future)."""
        dropped = future is not None and future.cancelled()
        with self._lock:
            if not (self.closed or dropped or len(self.free) >= self.keep):
                self.free.append(shm)
                return
        release(shm)

    def abandon(self, shm: SharedMemory) -> None:
        """A segment a cancelled fetch thread may still be writing into: unlinked, never reused
        (its mapping goes when the thread is done with it)."""
        with contextlib.suppress(FileNotFoundError):
            shm.unlink()

    def close(self) -> None:
        with self._lock:
            self.closed = True
            free, self.free = self.free, []
        for shm in free:
            release(shm)


def tail_of(shm: SharedMemory, size: int, tail: int = 16_384) -> bytes:
    """The last `tail` bytes of the body of `size` bytes in `shm` (for `peek_cursor`)."""
    buf = shm.buf
    assert buf is not None
    with buf[max(0, size - tail) : size] as view:
        return bytes(view)


def _shm_free() -> int:
    """Bytes free in POSIX shared memory (/dev/shm), 0 when unknown."""
    try:
        st = os.statvfs("/dev/shm")
    except OSError:
        return 0
    return st.f_bavail * st.f_frsize


def release(shm: SharedMemory) -> None:
    shm.close()
    with contextlib.suppress(FileNotFoundError):
        shm.unlink()


# A worker's attached segments, by name (attaching maps it afresh: page faults on every read).
_ATTACHED: dict[str, SharedMemory] = {}


def prepare_shared(
    name: str, size: int, feed: Feed, source_id: str, agencies: dict[str, str], now: datetime,
    items_key: str = "items", cursor_key: str = "next_cursor", run_id: str | None = None,
) -> tuple[PreparedPage, int] | PrepareError:  # fmt: skip
    """`prepare_body` of a body the engine put in shared memory `name` (the engine owns and
    unlinks the segment; this process only reads it, and keeps a few attached)."""
    with _attached(name, size) as view:
        return prepare_body(view, feed, source_id, agencies, now, items_key, cursor_key, run_id)


def decode_shared(
    name: str, size: int, wire: str, feed: Feed, source_id: str, agencies: dict[str, str],
    now: datetime, ctx: PageContext, run_id: str | None = None,
) -> tuple[PreparedPage, int] | PrepareError:  # fmt: skip
    """`decode_body` of a body the engine put in shared memory `name`."""
    with _attached(name, size) as view:
        return decode_body(view, wire, feed, source_id, agencies, now, ctx, run_id)


@contextlib.contextmanager
def _attached(name: str, size: int) -> Iterator[memoryview]:
    """The first `size` bytes of segment `name`, decoded in place (nothing may keep a reference
    to the view). The engine owns and unlinks the segment; this process only reads it, and keeps
    a few attached."""
    shm = _ATTACHED.pop(name, None) or SharedMemory(name=name)
    try:
        assert shm.buf is not None
        with shm.buf[:size] as view:
            yield view
    finally:
        _ATTACHED[name] = shm
        while len(_ATTACHED) > 8:
            _ATTACHED.pop(next(iter(_ATTACHED))).close()


def prepare_page(
    body: bytes | memoryview, feed: Feed, source_id: str, agencies: dict[str, str], now: datetime,
    items_key: str = "items", cursor_key: str = "next_cursor", run_id: str | None = None,
) -> tuple[PreparedPage, int]:  # fmt: skip
    """(prepared page, rejected count); a body that is not the expected envelope raises the
    connector's `protocol` `SourceError`. Dossier pages take the typed fast path (its COPY
    rows carry `run_id`)."""
    if feed == "dossiers" and (items_key, cursor_key) == ("items", "next_cursor"):
        with gc_paused():
            fast_page = prepare_dossiers_fast(body, source_id, agencies, now, run_id)
        if fast_page is not None:
            return fast_page
    page = decode_envelope(bytes(body), items_key, cursor_key)
    good, bad, details = normalise_page(
        feed, page.records, page.invalid, source_id=source_id, agencies=agencies, now=now,
        scan_nul=page.may_contain_nul,
    )  # fmt: skip
    prepared = prepare(feed, good, bad, page.next_cursor, details)
    prepared.server_time = page.server_time
    return prepared, len(bad)


def _has(body: bytes | memoryview, needle: bytes) -> bool:
    """`needle in body`. A view is one from the start of its buffer (`SharedMemory.buf[:n]`,
    whose object, an mmap, can `find` within the first n bytes without a copy)."""
    if isinstance(body, bytes):
        return needle in body
    obj: Any = body.obj
    if not hasattr(obj, "find"):
        return needle in bytes(body)
    return bool(obj.find(needle, 0, len(body)) >= 0)


def prepare_dossiers_fast(
    body: bytes | memoryview, source_id: str, agencies: dict[str, str], now: datetime,
    run_id: str | None = None,
) -> tuple[PreparedPage, int] | None:  # fmt: skip
    """A dossier page through `domain.fast` (records it is unsure of go through the reference
    normaliser); None when the whole page needs the reference path. Same result as
    `decode_envelope` + `normalise_page` + `prepare` + `encode_dossier_rows`, except that the
    rows travel only as the binary COPY stream (`copy_data`, rows carrying `run_id`; `rows`
    is empty)."""
    page = fast.decode_page(body)
    if page is None:
        return None
    # A NUL can only come as an escape; most bodies hold no backslash at all, and finding one
    # byte (memchr) is far cheaper than finding the six-byte escape in megabytes of digits.
    may_contain_nul = _has(body, b"\\") and _has(body, b"\\u0000")
    return prepare_typed(
        page.items, page.next_cursor, page.server_time,
        lambda: json.loads(bytes(body))["items"], may_contain_nul, source_id, agencies, now,
        run_id,
    )  # fmt: skip


def prepare_typed(
    items: list[Any], next_cursor: str | None, server_time: Any,
    load_raws: Callable[[], list[Any]], may_contain_nul: bool, source_id: str,
    agencies: dict[str, str], now: datetime, run_id: str | None,
    load_sources: Callable[[], list[Any]] | None = None, steps_wire: str | None = None,
) -> tuple[PreparedPage, int]:  # fmt: skip
    """`prepare_dossiers_fast` of typed records however they were decoded; `load_raws` gives
    the records as raw dicts, for the reference normaliser when a record is deferred, and
    `load_sources` (a vendor's page) the records as the vendor sent them, kept with the
    rejected ones; `steps_wire` the shape of the typed records' raw steps (None: national)."""
    future = fast.future_limit(now)
    prefix, suffix = row_prefix(source_id), row_suffix(run_id)
    cols = DOSSIER_COLUMNS
    fast_dossier = fast.fast_dossier
    # code → (updated µs, unit, JSON, COPY row); the newest version wins, ties keep the first
    latest: dict[str, tuple[int, str, str, bytes]] = {}
    bad: list[Rejection] = []
    raws: list[Any] | None = load_raws() if may_contain_nul else None
    sources: list[Any] | None = None
    received = 0
    for i, item in enumerate(items):
        try:
            if raws is not None and find_nul(raws[i]):
                raise fast.Defer
            code, unit, updated, text, row = fast_dossier(
                item, source_id, agencies, future, prefix, suffix, steps_wire
            )
        except fast.Defer:
            if raws is None:
                raws = load_raws()
            out = normalise_dossier(
                raws[i], source_id=source_id, agencies=agencies, now=now, scan_nul=may_contain_nul
            )
            if isinstance(out, Rejection):
                if load_sources is not None:
                    if sources is None:
                        sources = load_sources()
                    out = dataclasses.replace(out, source=sources[i])
                bad.append(out)
                continue
            code, unit, updated = out.code, out.unit_id, micros(out.source_updated_at)
            text = out.model_dump_json()
            row = encode_dossier_row(
                tuple(getattr(out, c) for c in cols), prefix, suffix, details_json(raws[i])
            )
        received += 1
        old = latest.get(code)
        if old is None or updated > old[0]:
            latest[code] = (updated, unit, text, row)
    fast.forget_deferral()
    values = latest.values()
    quarantine, kinds = prepare_rejections(bad)
    newest = max((v[0] for v in values), default=None)
    copy_data, starts = copy_stream([v[3] for v in values]) if latest else (None, None)
    prepared = PreparedPage(
        next_cursor=next_cursor or None,
        received=received,
        rows=[],
        record_json=[v[2] for v in values],
        codes=list(latest),
        units=[v[1] for v in values],
        max_seen=None if newest is None else PG_EPOCH + timedelta(microseconds=newest),
        rejections=quarantine,
        reason_kinds=kinds,
        copy_data=copy_data,
        row_starts=starts,
        run_id=run_id,
        server_time=parse_server_time(server_time),
    )
    return prepared, len(bad)
