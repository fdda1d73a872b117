"""Reference connector: a one-stop system serving the national-style JSON API.

`GET {base}/api/v1/{feed}?updated_since=yyyyMMddHHmmss&cursor=&limit=` answers
`{"items": [...], "next_cursor": str | null, "server_time": "yyyyMMddHHmmss"}` with items in
(NgayCapNhat, code) order. Paths and the envelope's keys can be overridden per source through
`ConnectorConfig.options` (`path_template`, `items_key`, `cursor_key`).
"""

from __future__ import annotations

import asyncio
import functools
import http.client
import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from opentelemetry.trace import SpanKind

from services.ingest.connectors.auth import ClientCredentialsFlow, build_auth
from services.ingest.connectors.base import (
    ApiKeyAuth,
    BasicAuth,
    Capabilities,
    ConnectorConfig,
    Feed,
    OAuth2ClientCredentials,
    Page,
    Sink,
    SourceError,
)
from services.ingest.connectors.wire import (
    PageContext,
    WireFormat,
    envelope_keys,
    register_wire,
    wire_format,
)
from shared import tracing

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
    """Subclasses for other vendors override `path`, `params` and `headers` (and declare their
    own `capabilities` with their wire format); fetching, auth and errors stay shared."""

    kind = "national-json"
    capabilities = Capabilities(wire="national-json", into_buffer=True)

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
        self._delegable = transport is None
        self._idle: list[http.client.HTTPConnection] = []  # keep-alive, for `fetch_blocking`
        self._clock: datetime | None = None  # the latest HTTP Date the source answered with
        self._flow = (
            ClientCredentialsFlow(config.auth, config.base_url)
            if isinstance(config.auth, OAuth2ClientCredentials)
            else None
        )
        self._client = httpx.AsyncClient(
            base_url=config.base_url,
            auth=build_auth(config.auth, config.base_url),
            timeout=httpx.Timeout(config.timeout_s),
            transport=transport,
            headers={"Accept": "application/json", "User-Agent": "cchc-monitor-ingest/1"},
        )

    # ------------------------------------------------------------------ what a vendor changes

    def path(self, feed: Feed) -> str:
        return self._path.format(feed=feed)

    def params(
        self, updated_since: datetime | None, cursor: str | None, limit: int
    ) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        elif updated_since is not None:
            params["updated_since"] = format_since(updated_since)
        return params

    def headers(self) -> dict[str, str]:
        """Extra request headers (not secrets: those come from the auth)."""
        return {}

    # ------------------------------------------------------------------ fetching

    async def fetch_page(
        self, feed: Feed, *, updated_since: datetime | None, cursor: str | None, limit: int
    ) -> Page:
        body = await self.fetch_body(feed, updated_since=updated_since, cursor=cursor, limit=limit)
        assert isinstance(body, bytes)
        wire = wire_format(self.capabilities.wire)
        if wire.to_national is not None:
            ctx = PageContext(cursor=cursor, limit=limit, since=updated_since,
                              options=self.config.options)  # fmt: skip
            return decode_envelope(wire.to_national(body, feed, ctx))
        return decode_envelope(body, self._items_key, self._cursor_key)

    async def fetch_body(
        self, feed: Feed, *, updated_since: datetime | None, cursor: str | None, limit: int,
        sink: Sink | None = None,
    ) -> bytes | int:  # fmt: skip
        """The page's body, undecoded (the engine decodes it in a worker process). The
        standard library's blocking client reads it in a thread, in one piece: for bodies of
        megabytes that costs a fraction of httpx's per-chunk work; then a `sink` may take the
        body (see `fetch_blocking`: its length comes back). An OAuth2 token is fetched once,
        cached until shortly before it expires, and refreshed once on a 401."""
        path, params = self.path(feed), self.params(updated_since, cursor, limit)
        if not self._delegable:  # an injected transport (tests): the httpx client
            return await http_get(self._client, path, params, self.config.timeout_s,
                                  self.headers(), self.saw_date)  # fmt: skip
        for attempt in (0, 1):
            try:
                request = await self.raw_request(path, params, refresh=attempt > 0)
            except (httpx.InvalidURL, ValueError) as exc:
                raise SourceError("client", f"invalid source URL: {type(exc).__name__}") from exc
            try:
                # httpx calls are traced by its instrumentation; this client gets its own span
                # and hands the trace context to the source (W3C traceparent)
                with tracing.span(
                    f"GET {feed}", kind=SpanKind.CLIENT, attributes={"url.full": request.url}
                ):
                    request = replace(
                        request, headers=(*request.headers, *tracing.inject_headers({}).items())
                    )
                    return await asyncio.to_thread(
                        fetch_blocking, request, self._idle, sink, self.saw_date
                    )
            except SourceError as exc:
                if self._flow is None or exc.status != 401 or attempt:
                    raise
        raise AssertionError("unreachable")

    def saw_date(self, value: str | None) -> None:
        """Keep the source's clock from a response's HTTP Date header (the latest one seen;
        called from fetch threads: one assignment, and a stale read only loses a second)."""
        when = parse_http_date(value)
        if when is not None and (self._clock is None or when > self._clock):
            self._clock = when

    def source_clock(self) -> datetime | None:
        """The source's own time at its latest answer (its HTTP Date header), None when it
        sends none."""
        return self._clock

    async def raw_request(
        self, path: str, params: dict[str, Any], *, refresh: bool = False
    ) -> RawRequest:
        """The page request as plain values for `fetch_blocking`."""
        request = self._client.build_request("GET", path, params=params, headers=self.headers())
        headers = [(k, v) for k, v in request.headers.items() if k.lower() != "accept-encoding"]
        headers.append(await self._auth_header(refresh))
        return RawRequest(str(request.url), tuple(headers), self.config.timeout_s)

    async def _auth_header(self, refresh: bool) -> tuple[str, str]:
        auth = self.config.auth
        if isinstance(auth, ApiKeyAuth):
            return auth.header, auth.key.get_secret_value()
        if isinstance(auth, BasicAuth):
            return "Authorization", auth.header_value()
        assert self._flow is not None
        if refresh or not self._flow.valid():
            try:
                response = await self._client.send(self._flow.token_request(), auth=None)
            except httpx.TimeoutException as exc:
                raise SourceError("timeout", f"token endpoint: {type(exc).__name__}") from exc
            except httpx.TransportError as exc:
                raise SourceError("connect", f"token endpoint: {type(exc).__name__}") from exc
            except (httpx.InvalidURL, ValueError) as exc:  # a token_url no client can use
                raise SourceError("client", f"token endpoint URL: {type(exc).__name__}") from exc
            self._flow.store(response)
        return "Authorization", f"Bearer {self._flow.token}"

    async def aclose(self) -> None:
        while self._idle:
            self._idle.pop().close()
        await self._client.aclose()


async def http_get(
    client: httpx.AsyncClient, path: str, params: dict[str, Any], timeout_s: float,
    headers: dict[str, str] | None = None, on_date: Callable[[str | None], None] | None = None,
) -> bytes:  # fmt: skip
    """GET through httpx; transport failures and error statuses as `SourceError`s."""
    try:
        response = await client.get(path, params=params, headers=headers)
    except httpx.TimeoutException as exc:
        raise SourceError("timeout", f"{type(exc).__name__} after {timeout_s}s") from exc
    except httpx.TransportError as exc:
        raise SourceError("connect", f"{type(exc).__name__}: {exc}") from exc
    error = status_error(response.status_code, response.headers.get, lambda: response.text)
    if error is not None:
        raise error
    if on_date is not None:
        on_date(response.headers.get("Date"))
    return response.content


def parse_http_date(value: str | None) -> datetime | None:
    """An HTTP Date header (RFC 9110 IMF-fixdate, or the obsolete forms) as an aware instant."""
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def status_error(
    status: int, header: Callable[[str], str | None], text: Callable[[], str]
) -> SourceError | None:
    """The error an HTTP status stands for (None: a body to read)."""
    if status == 429:
        return SourceError(
            "rate_limited", "429 Too Many Requests", status=status,
            retry_after=parse_retry_after(header("Retry-After")),
        )  # fmt: skip
    if status >= 500:
        return SourceError(
            "http_5xx", f"HTTP {status}", status=status,
            retry_after=parse_retry_after(header("Retry-After")),
        )  # fmt: skip
    if status in (401, 403):
        return SourceError("auth", f"HTTP {status}", status=status)
    if status >= 400:
        return SourceError("client", f"HTTP {status}: {text()[:200]}", status=status)
    return None


@dataclass(frozen=True, slots=True)
class RawRequest:
    """A GET as plain values: absolute URL, headers (secret inside: not in repr), timeout."""

    url: str
    headers: tuple[tuple[str, str], ...] = field(repr=False)
    timeout_s: float


def fetch_blocking(
    request: RawRequest, idle: list[http.client.HTTPConnection], sink: Sink | None = None,
    on_date: Callable[[str | None], None] | None = None,
) -> bytes | int:  # fmt: skip
    """Send `request` with the standard library's blocking client and return the body, raising
    `SourceError` of the same kinds as the httpx path. Runs in a thread (never on the event
    loop). `idle` holds kept-alive connections to the source (popping and appending are
    atomic, so concurrent calls never share one); an idle connection the server has closed
    meanwhile is replaced once, as httpx does.

    With a `sink`, a successful plain body of known length is read straight into the buffer
    `sink(length)` returns (None: read it as bytes) and its length is returned instead.
    `on_date` is given a successful response's Date header (None: it had none)."""
    url = urlsplit(request.url)
    target = url.path + (f"?{url.query}" if url.query else "")
    try:
        port = url.port
    except ValueError as exc:
        raise SourceError("client", "invalid source URL: its port is not a number") from exc
    for attempt in (0, 1):
        try:
            conn = idle.pop()
            reused = True
        except IndexError:
            cls = (
                http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
            )
            conn = cls(url.hostname or "", port, timeout=request.timeout_s)
            reused = False
        try:
            conn.request("GET", target, headers=dict(request.headers))
            response = conn.getresponse()
            into = (
                sink(response.length)
                if sink is not None and response.status < 300 and response.length
                and not response.getheader("Content-Encoding")
                else None
            )  # fmt: skip
            body: bytes | int = response.read() if into is None else _read_into(response, into)
        except TimeoutError as exc:
            conn.close()
            raise SourceError(
                "timeout", f"{type(exc).__name__} after {request.timeout_s}s"
            ) from exc
        except ValueError as exc:  # a URL the client cannot send (host, port, characters)
            conn.close()
            raise SourceError("client", f"invalid source URL: {type(exc).__name__}") from exc
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            stale = isinstance(
                exc, http.client.RemoteDisconnected | ConnectionResetError | BrokenPipeError
            )
            if reused and attempt == 0 and stale:
                continue
            raise SourceError("connect", f"{type(exc).__name__}: {exc}") from exc
        if response.will_close:
            conn.close()
        else:
            idle.append(conn)
        if on_date is not None and response.status < 300:
            on_date(response.getheader("Date"))
        if isinstance(body, int):
            return body
        error = status_error(response.status, response.getheader, functools.partial(_text, body))
        if error is not None:
            raise error
        encoding = (response.getheader("Content-Encoding") or "").strip().lower()
        if encoding in ("gzip", "deflate"):
            try:
                body = zlib.decompress(body, zlib.MAX_WBITS | 32)
            except zlib.error as exc:
                raise SourceError("connect", f"DecodingError: {exc}") from exc
        return body
    raise AssertionError("unreachable")


def _read_into(response: http.client.HTTPResponse, into: memoryview) -> int:
    """Read the whole Content-Length body into `into`; its length."""
    size = response.length or 0
    got = 0
    while got < size:
        with into[got:size] as part:
            n = response.readinto(part)
        if not n:
            raise http.client.IncompleteRead(b"", size - got)
        got += n
    return size


def _text(body: bytes) -> str:
    return body.decode(errors="replace")


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
        server_time=parse_server_time(doc.get("server_time")),
        raw_bytes=len(body),
        invalid=invalid,
        may_contain_nul=b"\\u0000" in body,
    )


def parse_server_time(value: Any) -> datetime | None:
    """The source's clock as the national envelope reports it (`yyyyMMddHHmmss`, Vietnam)."""
    if isinstance(value, str) and len(value) == 14 and value.isdigit():
        return datetime.strptime(value, "%Y%m%d%H%M%S").replace(tzinfo=VN)
    return None


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


def _peek(tail: bytes, ctx: PageContext) -> tuple[bool, str | None]:
    return peek_cursor(tail, envelope_keys(ctx.options)[1])


# The national envelope needs no translation: the typed fast path reads it as it comes.
WIRE = register_wire(WireFormat("national-json", to_national=None, peek=_peek))
