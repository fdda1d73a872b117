"""PostgreSQL binary COPY of dossier rows, built where the rows are built (a decoding worker),
so the engine only forwards bytes. A row holds the columns `pages.COPY_COLUMNS`: the record's
(`pages.DOSSIER_COLUMNS`, the same wire data asyncpg's `copy_records_to_table` sends; a test
compares the stored rows), then `status_since` (= `source_updated_at`: what a new dossier
stores), `details` (`domain.details`: JSON text, or NULL) and `run_id`, so the same stream can go into the staging table or, for dossiers not
stored yet, straight into `ingest.dossiers`.

A stream is `HEADER`, one encoded row per record, `TRAILER`. The fast path
(`domain.fast.fast_dossier`) packs its rows itself with the pieces below; `encode_dossier_row`
packs a row of Python values (datetimes) for records that went through the reference path.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from typing import Any

HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
TRAILER = struct.pack(">h", -1)
PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
NULL = struct.pack(">i", -1)
i64 = struct.Struct(">iq").pack  # length 8 + int64 (timestamptz: us since 2000-01-01 UTC)
length = struct.Struct(">i").pack
channel_status = struct.Struct(">ihih").pack
# supplement_count … source_updated_at, status_since: fixed-width and never NULL, so one pack
# per row.
tail = struct.Struct(">ih id ih i? ih i? i? i? i? i? i? i? iq iq".replace(" ", "")).pack
_COUNT = struct.pack(">h", 29)  # fields per row (`pages.COPY_COLUMNS`)

# Column kinds of `pages.DOSSIER_COLUMNS`, in order.
DOSSIER_KINDS = (
    "text", "text", "text", "text", "text", "int2", "int2",
    "ts", "ts", "ts", "ts", "ts", "ts",
    "int2", "float8", "int2", "bool", "int2", "bool", "bool", "bool", "bool", "bool", "bool",
    "bool", "ts",
)  # fmt: skip
assert len(DOSSIER_KINDS) == 26

# Encoded text fields that repeat from row to row (unit ids, procedure and field codes);
# the fast path reads it inline (`TEXTS.get(value) or text_field(value)`).
TEXTS: dict[str, bytes] = {}
TEXTS_MAX = 50_000


def text_field(value: str) -> bytes:
    """Length + UTF-8 of a text value that is likely to repeat (cached)."""
    hit = TEXTS.get(value)
    if hit is None:
        data = value.encode()
        hit = length(len(data)) + data
        if len(TEXTS) >= TEXTS_MAX:
            TEXTS.clear()
        TEXTS[value] = hit
    return hit


def row_prefix(source_id: str) -> bytes:
    """A row's field count and its `source_id` field: the same for every row of a page."""
    data = source_id.encode()
    return _COUNT + length(len(data)) + data


def row_suffix(run_id: str | None) -> bytes:
    """A row's last field, `run_id` (NULL when the page was prepared without one): the same
    for every row of a page."""
    if run_id is None:
        return NULL
    data = run_id.encode()
    return length(len(data)) + data


def micros(value: datetime) -> int:
    """A timestamptz as binary COPY carries it: µs since 2000-01-01 UTC."""
    return (value - PG_EPOCH) // _US


def encode_dossier_row(
    row: Sequence[Any], prefix: bytes | None = None, suffix: bytes = NULL,
    details: bytes | None = None,
) -> bytes:  # fmt: skip
    """One row of `pages.DOSSIER_COLUMNS` values (timestamps as aware datetimes), followed by
    `status_since`, `details` and `run_id` (`suffix`: `row_suffix(run_id)`)."""
    (source_id, code, unit_id, procedure, field, channel, status, t1, t2, t3, t4, t5, t6,
     supplements, supplement_days, apologies, has_fee, paid, b1, b2, b3, b4, b5, b6, b7,
     updated) = row  # fmt: skip
    c = code.encode()
    at = micros(updated)
    return b"".join((
        prefix or row_prefix(source_id), length(len(c)), c, text_field(unit_id),
        text_field(procedure), NULL if field is None else text_field(field),
        channel_status(2, channel, 2, status),
        *(NULL if t is None else i64(8, micros(t)) for t in (t1, t2, t3, t4, t5, t6)),
        tail(2, supplements, 8, supplement_days, 2, apologies, 1, has_fee, 2, paid,
             1, b1, 1, b2, 1, b3, 1, b4, 1, b5, 1, b6, 1, b7, 8, at, 8, at),
        NULL if details is None else length(len(details)) + details,
        suffix,
    ))  # fmt: skip


def encode_dossier_rows(
    rows: Sequence[Sequence[Any]], run_id: str | None = None,
    details: Sequence[bytes | None] | None = None,
) -> bytes:  # fmt: skip
    suffix = row_suffix(run_id)
    found = details or [None] * len(rows)
    return (
        HEADER
        + b"".join(
            [encode_dossier_row(row, None, suffix, d) for row, d in zip(rows, found, strict=True)]
        )
        + TRAILER
    )


def copy_stream(rows: list[bytes]) -> tuple[bytes, array[int]]:
    """The COPY stream of encoded `rows`, and where each row starts in it (one more offset: the
    trailer's), so a writer can send part of the rows without decoding them."""
    starts = array("I", accumulate(map(len, rows), initial=len(HEADER)))
    return HEADER + b"".join(rows) + TRAILER, starts


def select_rows(data: bytes, starts: array[int], indexes: Sequence[int]) -> bytes:
    """The COPY stream of the rows at `indexes` of the stream `data` (`copy_stream`)."""
    view = memoryview(data)
    return b"".join([HEADER, *(view[starts[i] : starts[i + 1]] for i in indexes), TRAILER])
