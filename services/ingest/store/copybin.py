"""PostgreSQL binary COPY of dossier rows, built where the rows are built (a decoding worker),
so the engine only forwards bytes. Same wire data asyncpg's `copy_records_to_table` sends
for the staging table (`LIKE ingest.dossiers`); a test compares the stored rows."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
TRAILER = struct.pack(">h", -1)
PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_NULL = struct.pack(">i", -1)
_TRUE = struct.pack(">i", 1) + b"\x01"
_FALSE = struct.pack(">i", 1) + b"\x00"
_i16 = struct.Struct(">ih").pack  # length 2 + smallint
_f64 = struct.Struct(">id").pack  # length 8 + float8
_i64 = struct.Struct(">iq").pack  # length 8 + int64 (timestamptz: us since 2000-01-01 UTC)
_len = struct.Struct(">i").pack
_channel_status = struct.Struct(">ihih").pack
# supplement_count … source_updated_at: fixed-width and never NULL, so one pack per row.
_tail = struct.Struct(">ih id ih i? ih i? i? i? i? i? iq".replace(" ", "")).pack

# Column kinds of `pages.DOSSIER_COLUMNS`, in order.
DOSSIER_KINDS = (
    "text", "text", "text", "text", "text", "int2", "int2",
    "ts", "ts", "ts", "ts", "ts", "ts",
    "int2", "float8", "int2", "bool", "int2", "bool", "bool", "bool", "bool", "bool", "ts",
)  # fmt: skip


def _field(kind: str, value: Any) -> bytes:
    if value is None:
        return _NULL
    if kind == "text":
        data = value.encode()
        return _len(len(data)) + data
    if kind == "ts":
        return _i64(8, (value - PG_EPOCH) // _US)
    if kind == "int2":
        return _i16(2, value)
    if kind == "bool":
        return _TRUE if value else _FALSE
    return _f64(8, value)


def encode_dossier_rows(rows: Sequence[tuple[Any, ...]]) -> bytes:
    count = struct.pack(">h", len(DOSSIER_KINDS))
    out = [HEADER]
    append = out.append
    for row in rows:
        (source_id, code, unit_id, procedure, field, channel, status, t1, t2, t3, t4, t5, t6,
         supplements, supplement_days, apologies, has_fee, paid, b1, b2, b3, b4, b5,
         updated) = row  # fmt: skip
        s, c, u, p = source_id.encode(), code.encode(), unit_id.encode(), procedure.encode()
        append(count)
        append(_len(len(s)))
        append(s)
        append(_len(len(c)))
        append(c)
        append(_len(len(u)))
        append(u)
        append(_len(len(p)))
        append(p)
        append(_field("text", field))
        append(_channel_status(2, channel, 2, status))
        for t in (t1, t2, t3, t4, t5, t6):
            append(_NULL if t is None else _i64(8, (t - PG_EPOCH) // _US))
        append(
            _tail(
                2, supplements, 8, supplement_days, 2, apologies, 1, has_fee, 2, paid,
                1, b1, 1, b2, 1, b3, 1, b4, 1, b5, 8, (updated - PG_EPOCH) // _US,
            )
        )  # fmt: skip
    append(TRAILER)
    return b"".join(out)
