"""The hot path: one committed page = one transaction, set-based.

For a page of normalised records the writer, inside a single transaction:
1. COPYs the records into a temporary staging table (binary COPY, no per-row statements);
2. upserts them with one `INSERT … SELECT … ON CONFLICT … WHERE excluded.source_updated_at >
   current.source_updated_at RETURNING`, so a newer version replaces, a stale or repeated one
   changes nothing, and only rows that really changed come back;
3. appends status-history rows for stored dossiers whose status changed (same statement);
   (dossier pages prepared as a binary COPY stream for this run can instead have their codes
   that are not stored yet COPYed straight into `ingest.dossiers`, and only the stored ones
   take steps 1–3; see `write_prepared`)
4. COPYs one `…Changed` outbox event per unit containing only the changed records;
5. upserts the rejected records into quarantine (one open entry per record code, updated as
   the record changes; records without a code deduplicated by payload fingerprint) and
   supersedes open quarantine entries of codes that now stored a valid newer version;
6. advances the checkpoint (next cursor) and the run's counters.
A crash anywhere before COMMIT leaves none of it; after COMMIT all of it.
"""

from __future__ import annotations

import hashlib
import io
import json
import uuid
from array import array
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import asyncpg
import msgspec

from services.ingest.domain.copybin import (
    copy_stream,
    encode_dossier_row,
    row_prefix,
    row_suffix,
    select_rows,
)
from services.ingest.domain.normalise import Feed, Record, Rejection
from services.ingest.domain.pull import newest_wins
from shared.events.budget import EVENT_BUDGET_BYTES, in_parts
from shared.events.payloads import (
    DossiersChanged,
    Payload,
    PetitionsChanged,
    ProceduresChanged,
)
from shared.tracing import current_traceparent

SCHEMA = "ingest"
SEP = "\x1f"  # joins quarantine reasons in one text parameter (split back in SQL)


@dataclass(frozen=True)
class FeedTable:
    feed: Feed
    table: str
    columns: tuple[str, ...]
    history: bool
    event: type[DossiersChanged] | type[ProceduresChanged] | type[PetitionsChanged]
    event_field: str

    @property
    def stage(self) -> str:
        return f"stage_{self.table}"


DOSSIER_COLUMNS = (
    "source_id", "code", "unit_id", "procedure_code", "field_code", "channel", "status",
    "submitted_at", "received_at", "due_at", "finished_at", "returned_at", "rejected_at",
    "supplement_count", "supplement_days", "apology_count", "has_fee", "paid_online",
    "digitised", "reused_data", "has_e_result", "synced_national", "vneid_verified",
    "pds_synced", "citizen_data_used", "source_updated_at",
)  # fmt: skip
PROCEDURE_COLUMNS = (
    "source_id", "code", "name", "field_code", "unit_id", "online_level", "has_fee",
    "result_type", "published_on", "publish_due_on", "public_on", "public_due_on",
    "content_complete", "full_online_eligible", "citizen_data_connected", "certification",
    "e_certified_copy", "source_updated_at",
)  # fmt: skip
# A dossier COPY stream's columns (`copybin`): the record's, then what a new row stores beyond
# them (its status start, the view's details, the run), so the stream can also go straight
# into `ingest.dossiers`.
COPY_COLUMNS = (*DOSSIER_COLUMNS, "status_since", "details", "run_id")
PETITION_COLUMNS = (
    "source_id", "code", "unit_id", "received_at", "due_at", "handled_at", "satisfied",
    "category", "source_updated_at",
)  # fmt: skip

TABLES: dict[str, FeedTable] = {
    "dossiers": FeedTable("dossiers", "dossiers", DOSSIER_COLUMNS, True, DossiersChanged,
                          "dossiers"),
    "procedures": FeedTable("procedures", "procedures", PROCEDURE_COLUMNS, False,
                            ProceduresChanged, "procedures"),
    "petitions": FeedTable("petitions", "petitions", PETITION_COLUMNS, False, PetitionsChanged,
                           "petitions"),
}  # fmt: skip


# The changed codes come back as one text[] (in RETURNING order): decoding one array is far
# cheaper for the client than one result row per changed record; dossiers also count the
# inserted ones (for `next_mode`).
CODES = "coalesce(array_agg(code), '{}')"


def _upsert_sql(t: FeedTable) -> str:
    """One statement per page. The staging table holds exactly this page's rows, already
    deduplicated by code (newest wins) by `prepare`, so it is read as is.

    Dossiers also keep their status trail: `status_since` moves when the status changes, and a
    history row is written only for a transition of an already stored dossier (with the status
    it left and when that one began). Every part of the statement reads the snapshot from
    before it, so a key lookup from the history part still sees the old row; inserted rows
    (`xmax = 0`) had none and skip the lookup."""
    cols = ", ".join(t.columns)
    updates = ", ".join(f"{c} = excluded.{c}" for c in t.columns if c not in ("source_id", "code"))
    if t.history:
        # a version without details (a page written from rows alone) keeps the stored ones
        updates += (
            ", status_since = CASE WHEN cur.status = excluded.status THEN cur.status_since"
            " ELSE excluded.source_updated_at END,"
            " details = coalesce(excluded.details, cur.details)"
        )
    upsert = f"""
        INSERT INTO {SCHEMA}.{t.table} AS cur ({cols}, run_id{
        ", status_since, details" if t.history else ""
    })
        SELECT {cols}, $2{", source_updated_at, details" if t.history else ""} FROM {t.stage}
        WHERE source_id = $1
        ON CONFLICT (source_id, code) DO UPDATE SET {updates},
            run_id = excluded.run_id, version = cur.version + 1, ingested_at = now()
        WHERE excluded.source_updated_at > cur.source_updated_at
        RETURNING cur.code{
        ", cur.status, (cur.xmax = 0) AS inserted, cur.source_updated_at" if t.history else ""
    }"""
    if not t.history:
        return f"WITH up AS ({upsert}) SELECT {CODES}, 0 FROM up"
    return f"""
        WITH up AS ({upsert}),
        hist AS (
            INSERT INTO {SCHEMA}.dossier_status_history (source_id, code, status,
                previous_status, previous_status_since, source_updated_at, run_id)
            SELECT $1, up.code, up.status, old.status, old.status_since, up.source_updated_at, $2
            FROM up CROSS JOIN LATERAL (
                SELECT d.status, d.status_since FROM {SCHEMA}.{t.table} d
                WHERE d.code = up.code AND d.source_id = $1 LIMIT 1) old
            WHERE NOT up.inserted AND old.status <> up.status)
        SELECT {CODES}, count(*) FILTER (WHERE up.inserted) FROM up"""


UPSERT_SQL = {feed: _upsert_sql(t) for feed, t in TABLES.items()}

QUARANTINE_SQL = f"""
    WITH t AS (
        SELECT code, string_to_array(reasons, E'\\x1f') AS reasons, raw, fp, src, ord
        FROM unnest($4::text[], $5::text[], $6::text[], $7::text[], $8::text[])
             WITH ORDINALITY AS t(code, reasons, raw, fp, src, ord)
    ), latest AS (  -- a record twice in the page: its last version
        SELECT DISTINCT ON (coalesce(code, fp)) * FROM t ORDER BY coalesce(code, fp), ord DESC
    ), updated AS (  -- the record's open entry follows its latest malformed version
        UPDATE {SCHEMA}.quarantine q
        SET reasons = l.reasons, raw = l.raw, fingerprint = l.fp, run_id = $3,
            source_raw = coalesce(l.src, q.source_raw),
            last_seen_at = now(), seen_count = q.seen_count + 1
        FROM latest l
        WHERE q.source_id = $1 AND q.feed = $2 AND q.status = 'open' AND q.code = l.code
        RETURNING q.code
    )
    INSERT INTO {SCHEMA}.quarantine AS q
        (source_id, feed, code, reasons, raw, fingerprint, run_id, source_raw)
    SELECT $1, $2, l.code, l.reasons, l.raw, l.fp, $3, l.src FROM latest l
    WHERE l.code IS NULL OR l.code NOT IN (SELECT code FROM updated)
    ON CONFLICT (source_id, feed, fingerprint) WHERE status = 'open' DO UPDATE
        SET last_seen_at = now(), seen_count = q.seen_count + 1, run_id = excluded.run_id,
            reasons = excluded.reasons,
            source_raw = coalesce(excluded.source_raw, q.source_raw)
    RETURNING (xmax = 0) AS inserted"""

# A page's codes travel as one text joined by SEP, split back in SQL (asyncpg encodes a text[]
# parameter at ~0.3 us per element, a text at memcpy speed), or, should a code hold SEP, as
# a text[] (`codes_param`).
CODES_PARAM = "coalesce(string_to_array({0}::text, E'\\x1f'), {1}::text[])"

SUPERSEDE_SQL = f"""
    UPDATE {SCHEMA}.quarantine SET status = 'superseded', resolved_at = now()
    WHERE source_id = $1 AND feed = $2 AND status = 'open'
      AND code = ANY({CODES_PARAM.format("$3", "$4")})"""

# Which of a page's codes are stored already (their primary-key entries).
STORED_CODES_SQL = f"""
    SELECT coalesce(array_agg(code), '{{}}') FROM {SCHEMA}.dossiers
    WHERE code = ANY({CODES_PARAM.format("$2", "$3")}) AND source_id = $1"""


def codes_param(codes: Sequence[str]) -> tuple[str | None, Sequence[str] | None]:
    """`CODES_PARAM`'s two parameters for `codes`: (joined, None) or (None, codes)."""
    joined = SEP.join(codes)
    if joined.count(SEP) == len(codes) - 1:
        return joined, None
    return None, codes


CHECKPOINT_SQL = f"""
    UPDATE {SCHEMA}.checkpoints
    SET cursor = $3, pages = pages + 1, updated_at = now(),
        max_seen = CASE WHEN max_seen IS NULL OR $4 > max_seen THEN $4 ELSE max_seen END,
        source_time = GREATEST(source_time, $5::timestamptz),
        source_clock = coalesce($6::text, source_clock)
    WHERE source_id = $1 AND feed = $2"""

RUN_COUNTERS_SQL = f"""
    UPDATE {SCHEMA}.runs
    SET pages = pages + 1, pulled = pulled + $2, stored = stored + $3,
        unchanged = unchanged + $4, quarantined = quarantined + $5
    WHERE id = $1"""

OUTBOX_COLUMNS = (
    "event_id", "topic", "key", "type", "source", "subject", "time", "payload", "traceparent",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class PageResult:
    pulled: int
    stored: int  # created or changed
    created: int  # of which not stored before (counted for dossiers only)
    unchanged: int  # stale or identical versions (incl. duplicates)
    quarantined: int  # rejected records in this page
    new_quarantine: int  # of which not seen before
    events: int
    max_seen: datetime | None
    changed_codes: frozenset[str]


def fingerprint(raw_json: str) -> str:
    return hashlib.md5(raw_json.encode(), usedforsecurity=False).hexdigest()


def raw_text(raw: Any) -> str:
    """The payload as JSON text; NUL bytes stay escaped (`\\u0000`), so PostgreSQL takes it."""
    return json.dumps(raw, ensure_ascii=False, separators=(",", ":"), sort_keys=False)


def outbox_record(payload: Payload, *, source: str, key: str) -> tuple[Any, ...]:
    return (
        str(uuid.uuid4()), payload.topic, key, payload.event_type, source, None,
        datetime.now(UTC), payload.model_dump_json(), current_traceparent(),
    )  # fmt: skip


async def ensure_stage(conn: asyncpg.Connection, feed: Feed) -> None:
    t = TABLES[feed]
    await conn.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {t.stage} "
        f"(LIKE {SCHEMA}.{t.table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    )


@dataclass(slots=True)
class PreparedPage:
    """A page reduced to plain, picklable values (so a worker process can build it): the
    deduplicated rows to COPY, each row's record as event JSON, and the rejections."""

    next_cursor: str | None
    received: int  # valid records as received, duplicates included
    rows: list[tuple[Any, ...]]
    record_json: list[str]
    codes: list[str]
    units: list[str]
    max_seen: datetime | None
    # code, reasons (SEP-joined), raw (national fields), fp, the vendor's record (or None)
    rejections: list[tuple[str | None, str, str, str, str | None]]
    reason_kinds: list[str]
    # The rows as a binary COPY stream of `COPY_COLUMNS`, when a worker process built it (then
    # `rows` does not travel back to the engine: the engine forwards these bytes), where each
    # row starts in it (`copybin.copy_stream`), and the run id its rows carry.
    copy_data: bytes | None = None
    row_starts: array[int] | None = None
    run_id: str | None = None
    server_time: datetime | None = None  # the time the source reported with the page
    # which clock `server_time` is: "server_time" (the page's own field, the default when it
    # is set) or "http_date" (the source's Date header, set by the walk)
    clock: str | None = None
    # dossier `rows` only (the reference path): each row's details (`domain.details`)
    details: list[bytes | None] | None = None

    # Pickling (worker process → engine): dossier rows travel as msgpack, encoded and decoded
    # in C; pickle spends ~25 us per row on their datetimes. Instants are kept (they come back
    # in UTC), which is all COPY needs.
    def __getstate__(self) -> tuple[Any, ...]:
        rows: Any = self.rows
        if self.copy_data is not None:
            rows = None
        elif rows and len(rows[0]) == len(DOSSIER_COLUMNS):
            rows = _ROW_ENCODER.encode(rows)
        return (
            self.next_cursor, self.received, rows, self.record_json, self.codes, self.units,
            self.max_seen, self.rejections, self.reason_kinds, self.copy_data, self.row_starts,
            self.run_id, self.server_time, self.clock, self.details,
        )  # fmt: skip

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        (self.next_cursor, self.received, rows, self.record_json, self.codes, self.units,
         self.max_seen, self.rejections, self.reason_kinds, self.copy_data, self.row_starts,
         self.run_id, self.server_time, self.clock, self.details) = state  # fmt: skip
        if rows is None:
            rows = []
        self.rows = _DOSSIER_ROWS.decode(rows) if isinstance(rows, bytes) else rows


_ROW_ENCODER = msgspec.msgpack.Encoder()
_TS = datetime | None
DossierRow = tuple[
    str, str, str, str, str | None, int, int, _TS, _TS, _TS, _TS, _TS, _TS,
    int, float, int, bool, int, bool, bool, bool, bool, bool, bool, bool, datetime,
]  # fmt: skip
_DOSSIER_ROWS = msgspec.msgpack.Decoder(list[DossierRow])


def prepare(
    feed: Feed, records: Sequence[Record], rejections: Sequence[Rejection],
    next_cursor: str | None, details: Sequence[bytes | None] | None = None,
) -> PreparedPage:  # fmt: skip
    """`details`: each dossier record's (`domain.details`), in the order of `records`."""
    cols = TABLES[feed].columns
    latest = newest_wins(records)
    values = list(latest.values())
    quarantine, kinds = prepare_rejections(rejections)
    kept: list[bytes | None] | None = None
    if details is not None:
        at = {id(r): i for i, r in enumerate(records)}
        kept = [details[at[id(r)]] for r in values]
    return PreparedPage(
        details=kept,
        next_cursor=next_cursor,
        received=len(records),
        rows=[tuple(getattr(r, c) for c in cols) for r in values],
        record_json=[r.model_dump_json() for r in values],
        codes=[r.code for r in values],
        units=[r.unit_id for r in values],
        max_seen=max((r.source_updated_at for r in values), default=None),
        rejections=quarantine,
        reason_kinds=kinds,
    )


def prepare_rejections(
    rejections: Sequence[Rejection],
) -> tuple[list[tuple[str | None, str, str, str, str | None]], list[str]]:
    """Quarantine rows (deduplicated by payload fingerprint) and the reason kinds to count."""
    seen: dict[str, tuple[str | None, str, str, str, str | None]] = {}
    kinds: list[str] = []
    for rej in rejections:
        text = raw_text(rej.raw)
        fp = fingerprint(text)
        source = None if rej.source is None else raw_text(rej.source)
        seen.setdefault(fp, (rej.code, SEP.join(rej.reasons), text, fp, source))
        kinds.extend(set(rej.kinds))
    return list(seen.values()), kinds


def stream_rows(page: PreparedPage, source_id: str, run_id: str | None) -> PreparedPage:
    """A dossier page's `rows` (and their details) as the binary COPY stream carrying `run_id`,
    which the writer forwards as it is (`rows` emptied)."""
    if page.rows:
        prefix, suffix = row_prefix(source_id), row_suffix(run_id)
        details = page.details or [None] * len(page.rows)
        page.copy_data, page.row_starts = copy_stream(
            [encode_dossier_row(row, prefix, suffix, d)
             for row, d in zip(page.rows, details, strict=True)]
        )  # fmt: skip
        page.run_id, page.rows, page.details = run_id, [], None
    return page


def event_json(feed: Feed, unit_id: str, run_id: str, record_json: list[str]) -> str:
    """A `…Changed` payload assembled from already-serialised records (same JSON as
    `DossiersChanged(...).model_dump_json()`)."""
    t = TABLES[feed]
    head = json.dumps(
        {"unit_id": unit_id, "run_id": run_id}, ensure_ascii=False, separators=(",", ":")
    )[:-1]
    return f'{head},"{t.event_field}":[{",".join(record_json)}]}}'


def unit_parts(record_json: list[str]) -> list[list[str]]:
    """One unit's changed records of a page, in events that fit a broker message
    (`shared.events.budget`): a page holds up to 5,000 records (~0.5 KB each), which in one
    event could exceed the 1 MB limit and stall the outbox. Almost always one part; the records
    are only encoded to count their bytes when their characters could pass the budget."""
    if sum(map(len, record_json)) * 4 <= EVENT_BUDGET_BYTES:  # UTF-8: at most 4 bytes a char
        return [record_json]
    return in_parts(record_json, lambda r: len(r.encode()))


async def write_page(
    conn: asyncpg.Connection,
    *,
    source_id: str,
    feed: Feed,
    run_id: str,
    event_source: str,
    records: Sequence[Record],
    rejections: Sequence[Rejection],
    next_cursor: str | None,
    checkpoint: bool = True,
    details: Sequence[bytes | None] | None = None,
) -> PageResult:
    """Write one page of normalised records in one transaction (`details`: each dossier
    record's, `domain.details`, in the order of `records`)."""
    page = prepare(feed, records, rejections, next_cursor, details)
    if feed == "dossiers":
        stream_rows(page, source_id, run_id)
    return await write_prepared(
        conn, source_id=source_id, feed=feed, run_id=run_id, event_source=event_source,
        page=page, rejected=len(rejections), checkpoint=checkpoint,
    )  # fmt: skip


# How `write_prepared` stores a dossier COPY stream's rows (see there).
Mode = Literal["new", "lookup", "stage"]


async def write_prepared(
    conn: asyncpg.Connection,
    *,
    source_id: str,
    feed: Feed,
    run_id: str,
    event_source: str,
    page: PreparedPage,
    rejected: int,
    checkpoint: bool = True,
    mode: Mode = "lookup",
    checkpoint_key: str | None = None,
) -> PageResult:
    """Write one prepared page in one transaction (the caller's connection, not in one).
    `checkpoint_key` names the checkpoint row to advance when it is not the feed's own (a
    slice of a backfill: `dossiers#2`).

    A dossier page prepared as a COPY stream for this run (`copy_data`, `run_id`) can skip the
    staging upsert for its codes that are not stored yet: those rows are COPYed straight into
    `ingest.dossiers` (a bulk insert, no upsert executor), which stores what the upsert would
    (a new row, `status_since` = `source_updated_at`, no history row). `mode`:
    - "new": the whole page is expected new (a first pull) and COPYed straight in, unchecked;
    - "lookup": the page's stored codes are looked up first; the others are COPYed straight in
      and only the stored ones take the staging upsert;
    - "stage": everything through the staging upsert (pages of mostly stored codes).
    Whatever the mode, the outcome is the same. Should a code COPYed straight in be stored
    already, e.g. by a concurrent writer after the lookup, the COPY fails on the primary key
    and the page is written again from the start: "new" → "lookup" → "stage"."""
    direct = (
        feed == "dossiers" and page.copy_data is not None and bool(page.codes)
        and page.run_id == run_id
    )  # fmt: skip
    if not direct:
        mode = "stage"
    while True:
        try:
            return await _write(
                conn, source_id=source_id, feed=feed, run_id=run_id, event_source=event_source,
                page=page, rejected=rejected, checkpoint=checkpoint, mode=mode,
                checkpoint_key=checkpoint_key,
            )  # fmt: skip
        except asyncpg.UniqueViolationError:
            if mode == "stage":
                raise
            mode = "lookup" if mode == "new" else "stage"


def next_mode(page: PreparedPage, result: PageResult, mode: Mode) -> Mode:
    """The mode for a run's next dossier page, judged by this one: a page that was all new
    (a first pull, a backfill of new dossiers) is followed by more ("new", no lookup); a
    lookup pays when at least a quarter of a page is new (its rows skip the upsert)."""
    if not page.codes:
        return mode
    if result.created == len(page.codes):
        return "new"
    return "lookup" if result.created * 4 >= len(page.codes) else "stage"


async def _write(
    conn: asyncpg.Connection,
    *,
    source_id: str,
    feed: Feed,
    run_id: str,
    event_source: str,
    page: PreparedPage,
    rejected: int,
    checkpoint: bool,
    mode: Mode,
    checkpoint_key: str | None = None,
) -> PageResult:
    t = TABLES[feed]
    async with conn.transaction():
        await ensure_stage(conn, feed)
        changed: list[str] = []
        created = 0
        in_order = True  # `changed` follows the page's order
        if page.copy_data is not None and page.codes:
            staged: bytes | None = page.copy_data
            fresh: bytes | None = None
            stored: list[str] = []
            if mode == "lookup":
                stored = await conn.fetchval(STORED_CODES_SQL, source_id, *codes_param(page.codes))
            if mode == "new" or (mode == "lookup" and not stored):
                fresh, staged, changed = page.copy_data, None, list(page.codes)
            elif mode == "lookup" and len(stored) < len(page.codes) and page.row_starts:
                old = set(stored)
                new_at = [i for i, code in enumerate(page.codes) if code not in old]
                old_at = [i for i, code in enumerate(page.codes) if code in old]
                fresh = select_rows(page.copy_data, page.row_starts, new_at)
                staged = select_rows(page.copy_data, page.row_starts, old_at)
                changed = [page.codes[i] for i in new_at]
                in_order = False
            if fresh is not None:
                await conn.copy_to_table(
                    t.table, schema_name=SCHEMA, source=io.BytesIO(fresh), columns=COPY_COLUMNS,
                    format="binary",
                )  # fmt: skip
                created = len(changed)
            if staged is not None:
                await conn.copy_to_table(
                    t.stage, source=io.BytesIO(staged), columns=COPY_COLUMNS, format="binary"
                )
                codes, inserted = await conn.fetchrow(UPSERT_SQL[feed], source_id, run_id)
                changed += codes
                created += inserted
        elif page.rows:
            await conn.copy_records_to_table(t.stage, records=page.rows, columns=t.columns)
            changed, created = await conn.fetchrow(UPSERT_SQL[feed], source_id, run_id)
        events = 0
        if changed:
            at: Sequence[int]
            if len(changed) == len(page.codes):  # all of them, in the page's order
                at = range(len(changed))
            else:
                position = {code: i for i, code in enumerate(page.codes)}
                at = [position[code] for code in changed]
                if not in_order:
                    at.sort()
            by_unit: dict[str, list[str]] = defaultdict(list)
            for i in at:
                by_unit[page.units[i]].append(page.record_json[i])
            event_type, topic = t.event.event_type, t.event.topic
            now, traceparent = datetime.now(UTC), current_traceparent()
            rows = [
                (str(uuid.uuid4()), topic, unit_id, event_type, event_source, None, now,
                 event_json(feed, unit_id, run_id, part), traceparent)
                for unit_id in sorted(by_unit)
                for part in unit_parts(by_unit[unit_id])
            ]  # fmt: skip
            await conn.copy_records_to_table(
                "outbox", schema_name=SCHEMA, records=rows, columns=OUTBOX_COLUMNS
            )
            events = len(rows)
            await conn.execute(SUPERSEDE_SQL, source_id, feed, *codes_param(changed))
        new_quarantine = 0
        if page.rejections:
            rj = page.rejections
            inserted = await conn.fetch(
                QUARANTINE_SQL, source_id, feed, run_id,
                [r[0] for r in rj], [r[1] for r in rj], [r[2] for r in rj], [r[3] for r in rj],
                [r[4] for r in rj],
            )  # fmt: skip
            new_quarantine = sum(1 for r in inserted if r[0])
        if checkpoint:
            clock = page.clock or ("server_time" if page.server_time is not None else None)
            await conn.execute(
                CHECKPOINT_SQL, source_id, checkpoint_key or feed, page.next_cursor,
                page.max_seen, page.server_time, clock,
            )  # fmt: skip
        pulled = page.received + rejected
        unchanged = page.received - len(changed)
        await conn.execute(
            RUN_COUNTERS_SQL, run_id, pulled, len(changed), unchanged, rejected
        )  # fmt: skip
    return PageResult(
        pulled=pulled, stored=len(changed), created=created, unchanged=unchanged,
        quarantined=rejected, new_quarantine=new_quarantine, events=events,
        max_seen=page.max_seen, changed_codes=frozenset(changed),
    )  # fmt: skip
