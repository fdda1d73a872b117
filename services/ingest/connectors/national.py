"""Reference connector: a one-stop system serving the national-style JSON API.

`GET {base}/api/v1/{feed}?updated_since=yyyyMMddHHmmss&cursor=&limit=` answers
`{"items": [...], "next_cursor": str | null, "server_time": "yyyyMMddHHmmss"}` with items in
(NgayCapNhat, code) order. Paths and the envelope's keys can be overridden per source through
`ConnectorConfig.options` (`path_template`, `items_key`, `cursor_key`).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from services.ingest.connectors.auth import build_auth
from services.ingest.connectors.base import ConnectorConfig, Feed, Page, SourceError

VN = timezone(timedelta(hours=7))


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(when.tzinfo or VN)).total_seconds())


def format_since(ts: datetime) -> str:
    return ts.astimezone(VN).strftime("%Y%m%d%H%M%S")


class NationalJsonConnector:
    kind = "national-json"

    def __init__(
        self,
        config: ConnectorConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.config = config
        opts = config.options
        self._path = str(opts.get("path_template", "/api/v1/{feed}"))
        self._items_key = str(opts.get("items_key", "items"))
        self._cursor_key = str(opts.get("cursor_key", "next_cursor"))
        self._client = httpx.AsyncClient(
            base_url=config.base_url,
            auth=build_auth(config.auth, config.base_url),
            timeout=httpx.Timeout(config.timeout_s),
            transport=transport,
            headers={"Accept": "application/json", "User-Agent": "cchc-monitor-ingest/1"},
        )

    async def fetch_page(
        self, feed: Feed, *, updated_since: datetime | None, cursor: str | None, limit: int
    ) -> Page:
        body = await self.fetch_raw(feed, updated_since=updated_since, cursor=cursor, limit=limit)
        return decode_envelope(body, self._items_key, self._cursor_key)

    @property
    def envelope_keys(self) -> tuple[str, str]:
        return self._items_key, self._cursor_key

    async def fetch_raw(
        self, feed: Feed, *, updated_since: datetime | None, cursor: str | None, limit: int
    ) -> bytes:
        """The page's body, undecoded (the engine may decode it in a worker process)."""
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        elif updated_since is not None:
            params["updated_since"] = format_since(updated_since)
        try:
            response = await self._client.get(self._path.format(feed=feed), params=params)
        except httpx.TimeoutException as exc:
            raise SourceError(
                "timeout", f"{type(exc).__name__} after {self.config.timeout_s}s"
            ) from exc
        except httpx.TransportError as exc:
            raise SourceError("connect", f"{type(exc).__name__}: {exc}") from exc
        except SourceError:
            raise
        status = response.status_code
        if status == 429:
            raise SourceError(
                "rate_limited",
                "429 Too Many Requests",
                status=status,
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
            )
        if status >= 500:
            raise SourceError(
                "http_5xx",
                f"HTTP {status}",
                status=status,
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
            )
        if status in (401, 403):
            raise SourceError("auth", f"HTTP {status}", status=status)
        if status >= 400:
            raise SourceError("client", f"HTTP {status}: {response.text[:200]}", status=status)
        return response.content

    async def aclose(self) -> None:
        await self._client.aclose()


def decode_envelope(body: bytes, items_key: str = "items", cursor_key: str = "next_cursor") -> Page:
    """Parse a page body; a body that is not the expected envelope is a `protocol` error."""
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise SourceError("protocol", f"invalid JSON body ({len(body)} bytes)") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get(items_key), list):
        raise SourceError("protocol", f"body has no {items_key!r} list")
    records: list[dict[str, Any]] = []
    invalid: list[Any] = []
    for item in doc[items_key]:
        (records if isinstance(item, dict) else invalid).append(item)
    next_cursor = doc.get(cursor_key)
    if next_cursor is not None and not isinstance(next_cursor, str):
        raise SourceError("protocol", "next_cursor is not a string")
    return Page(
        records=records,
        next_cursor=next_cursor or None,
        server_time=_parse_server_time(doc.get("server_time")),
        raw_bytes=len(body),
        invalid=invalid,
        may_contain_nul=b"\\u0000" in body,
    )


def _parse_server_time(value: Any) -> datetime | None:
    if isinstance(value, str) and len(value) == 14 and value.isdigit():
        return datetime.strptime(value, "%Y%m%d%H%M%S").replace(tzinfo=VN)
    return None
