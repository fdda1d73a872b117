"""Page preparation that can run in a worker process: bytes in, plain picklable values out.

Decoding the JSON body and normalising thousands of records is the CPU-heavy part of a sync;
the engine can hand it to a process pool so it runs beside the database work of the previous
page. Errors come back as values (a `SourceError` with keyword arguments does not pickle).
"""

from __future__ import annotations

import json
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


def peek_cursor(body: bytes, key: str = "next_cursor") -> tuple[bool, str | None]:
    """The next cursor read from the tail of a page body without decoding the items, so the
    next fetch can start while a worker decodes this page. (False, None) when the body does
    not end with a well-formed `"key": value}`; the decoded page is checked against it."""
    marker = b'"' + key.encode() + b'":'
    at = body.rfind(marker)
    if at < 0 or not body.rstrip().endswith(b"}"):
        return False, None
    try:
        value, _ = json.JSONDecoder().raw_decode(body[at + len(marker) :].decode().lstrip())
    except ValueError:
        return False, None
    if value is not None and not isinstance(value, str):
        return False, None
    return True, value or None


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
