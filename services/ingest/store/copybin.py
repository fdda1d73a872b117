"""PostgreSQL binary COPY of dossier rows, built where the rows are built (a decoding worker),
so the engine only forwards bytes. Same wire data asyncpg's `copy_records_to_table` sends
for the staging table (`LIKE ingest.dossiers`); a test compares the stored rows.

A stream is `HEADER`, one encoded row per record, `TRAILER`. The fast path
(`domain.fast.fast_dossier`) packs its rows itself with the pieces below; `encode_dossier_row`
packs a row of Python values (datetimes) for records that went through the reference path.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
TRAILER = struct.pack(">h", -1)
PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
NULL = struct.pack(">i", -1)
i64 = struct.Struct(">iq").pack  # length 8 + int64 (timestamptz: us since 2000-01-01 UTC)
length = struct.Struct(">i").pack
channel_status = struct.Struct(">ihih").pack
# supplement_count … source_updated_at: fixed-width and never NULL, so one pack per row.
tail = struct.Struct(">ih id ih i? ih i? i? i? i? i? iq".replace(" ", "")).pack
_COUNT = struct.pack(">h", 24)  # fields per row (`pages.DOSSIER_COLUMNS`)

# Column kinds of `pages.DOSSIER_COLUMNS`, in order.
DOSSIER_KINDS = (
    "text", "text", "text", "text", "text", "int2", "int2",
    "ts", "ts", "ts", "ts", "ts", "ts",
    "int2", "float8", "int2", "bool", "int2", "bool", "bool", "bool", "bool", "bool", "ts",
)  # fmt: skip
assert len(DOSSIER_KINDS) == 24

# Encoded text fields that repeat from row to row (unit ids, procedure and field codes).
_TEXTS: dict[str, bytes] = {}
_TEXTS_MAX = 50_000


def text_field(value: str) -> bytes:
    """Length + UTF-8 of a text value that is likely to repeat (cached)."""
    hit = _TEXTS.get(value)
    if hit is None:
        data = value.encode()
        hit = length(len(data)) + data
        if len(_TEXTS) >= _TEXTS_MAX:
            _TEXTS.clear()
        _TEXTS[value] = hit
    return hit


def row_prefix(source_id: str) -> bytes:
    """A row's field count and its `source_id` field: the same for every row of a page."""
    data = source_id.encode()
    return _COUNT + length(len(data)) + data


def micros(value: datetime) -> int:
    """A timestamptz as binary COPY carries it: µs since 2000-01-01 UTC."""
    return (value - PG_EPOCH) // _US


def encode_dossier_row(row: Sequence[Any], prefix: bytes | None = None) -> bytes:
    """One row of `pages.DOSSIER_COLUMNS` values (timestamps as aware datetimes)."""
    (source_id, code, unit_id, procedure, field, channel, status, t1, t2, t3, t4, t5, t6,
     supplements, supplement_days, apologies, has_fee, paid, b1, b2, b3, b4, b5,
     updated) = row  # fmt: skip
    c = code.encode()
    return b"".join((
        prefix or row_prefix(source_id), length(len(c)), c, text_field(unit_id),
        text_field(procedure), NULL if field is None else text_field(field),
        channel_status(2, channel, 2, status),
        *(NULL if t is None else i64(8, micros(t)) for t in (t1, t2, t3, t4, t5, t6)),
        tail(2, supplements, 8, supplement_days, 2, apologies, 1, has_fee, 2, paid,
             1, b1, 1, b2, 1, b3, 1, b4, 1, b5, 8, micros(updated)),
    ))  # fmt: skip


def encode_dossier_rows(rows: Sequence[Sequence[Any]]) -> bytes:
    return HEADER + b"".join(encode_dossier_row(row) for row in rows) + TRAILER
