"""Walking a feed page by page, with retries, from a watermark or a saved cursor."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.ingest.connectors.base import Connector, Feed, Page, SourceError
from services.ingest.connectors.retry import RetryPolicy, call_with_retries
from services.ingest.domain.normalise import Record


@dataclass(frozen=True, slots=True)
class FetchedPage:
    number: int  # 1-based within this walk
    cursor: str | None  # the cursor this page was fetched with (None = first page)
    page: Page


async def iterate_pages(
    connector: Connector,
    feed: Feed,
    *,
    updated_since: datetime | None,
    cursor: str | None = None,
    limit: int = 500,
    policy: RetryPolicy | None = None,
    on_error: Callable[[SourceError, int], None] | None = None,
) -> AsyncIterator[FetchedPage]:
    """Yield pages until the source reports no next cursor. Resuming = passing the cursor of
    the last committed page's `next_cursor`; `updated_since` is only sent on the first page."""
    policy = policy or RetryPolicy()
    number = 0
    while True:
        current = cursor

        async def fetch(current: str | None = current) -> Page:
            return await connector.fetch_page(
                feed, updated_since=updated_since, cursor=current, limit=limit
            )

        page = await call_with_retries(fetch, policy, on_error=on_error)
        number += 1
        yield FetchedPage(number=number, cursor=current, page=page)
        if not page.next_cursor:
            return
        cursor = page.next_cursor


def since_with_lookback(watermark: datetime | None, lookback: timedelta) -> datetime | None:
    """Where an incremental pull starts: the watermark minus the look-back window, so records
    a source commits late with an older NgayCapNhat are still seen."""
    return None if watermark is None else watermark - lookback


def newest_wins(records: Iterable[Record]) -> dict[str, Record]:
    """Collapse duplicates by code keeping the newest `source_updated_at` (ties keep the first),
    the same rule the store applies."""
    out: dict[str, Record] = {}
    for rec in records:
        old = out.get(rec.code)
        if old is None or rec.source_updated_at > old.source_updated_at:
            out[rec.code] = rec
    return out
