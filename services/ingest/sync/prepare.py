"""Page preparation that can run in a worker process: bytes in, plain picklable values out.

Decoding the JSON body and normalising thousands of records is the CPU-heavy part of a sync;
the engine can hand it to a process pool so it runs beside the database work of the previous
page. Errors come back as values (a `SourceError` with keyword arguments does not pickle).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.ingest.connectors.base import SourceError
from services.ingest.connectors.national import decode_envelope
from services.ingest.domain.normalise import NORMALISERS, Feed, Record, Rejection
from services.ingest.store.pages import PreparedPage, prepare


@dataclass(frozen=True, slots=True)
class PrepareError:
    kind: str
    message: str


def normalise_page(
    feed: Feed, records: list[dict[str, Any]], invalid: list[Any], *, source_id: str,
    agencies: dict[str, str], now: datetime, scan_nul: bool,
) -> tuple[list[Record], list[Rejection]]:  # fmt: skip
    normaliser = NORMALISERS[feed]
    good: list[Record] = []
    bad: list[Rejection] = []
    for raw in records:
        out = normaliser(raw, source_id=source_id, agencies=agencies, now=now, scan_nul=scan_nul)
        if isinstance(out, Rejection):
            bad.append(out)
        else:
            good.append(out)
    bad.extend(Rejection(feed, None, ("not_an_object",), item) for item in invalid)
    return good, bad


def prepare_body(
    body: bytes, feed: Feed, source_id: str, agencies: dict[str, str], now: datetime,
    items_key: str = "items", cursor_key: str = "next_cursor",
) -> tuple[PreparedPage, int] | PrepareError:  # fmt: skip
    """(prepared page, rejected count) or the protocol error that makes the fetch retry."""
    try:
        page = decode_envelope(body, items_key, cursor_key)
    except SourceError as exc:
        return PrepareError(exc.kind, str(exc))
    good, bad = normalise_page(
        feed, page.records, page.invalid, source_id=source_id, agencies=agencies, now=now,
        scan_nul=page.may_contain_nul,
    )  # fmt: skip
    return prepare(feed, good, bad, page.next_cursor), len(bad)
