"""The seam for one-stop systems: a connector fetches page bodies of a feed.

A connector knows one vendor's API (paths, paging, auth) and nothing about our database. It
*declares* what it can do (`Capabilities`: its wire format, its feeds, whether it can read a
body into a caller's buffer, whether the source is pulled at all) and the engine reads that
declaration, never probing. It returns page bodies undecoded; the body's wire format (see
`connectors.wire`) has the one decode stage that turns it into national-field records, which
`services.ingest.domain.normalise` (or its typed fast path) validates. Errors are raised as
`SourceError` with a `kind` the sync engine uses for retries, the circuit breaker and metrics.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Literal, Protocol, runtime_checkable
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

Feed = Literal["dossiers", "procedures", "petitions"]
FEEDS: tuple[Feed, ...] = ("dossiers", "procedures", "petitions")

ErrorKind = Literal["timeout", "connect", "http_5xx", "rate_limited", "auth", "client", "protocol"]
RETRYABLE: frozenset[str] = frozenset(
    {"timeout", "connect", "http_5xx", "rate_limited", "protocol"}
)


class SourceError(Exception):
    """A failed call to a source; `kind` classifies it, `retry_after` echoes a 429/503 hint."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind: ErrorKind = kind
        self.status = status
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE


@dataclass(frozen=True, slots=True)
class Page:
    """One page of raw records and the cursor of the next page (None = this was the last)."""

    records: list[dict[str, Any]]
    next_cursor: str | None
    server_time: datetime | None = None
    raw_bytes: int = 0
    invalid: list[Any] = field(default_factory=list)  # items that were not JSON objects
    may_contain_nul: bool = True  # False when the body provably has no NUL (no `\\u0000`)


class ApiKeyAuth(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["api_key"] = "api_key"
    header: str = "X-API-Key"
    key: SecretStr


def check_http_url(value: str, *, relative: bool = False) -> str:
    """An absolute http(s) URL with a host name a resolver can take (or, with `relative`, a
    path beginning with /); ValueError (a 422 naming the field) otherwise."""
    value = value.strip()
    if relative and value.startswith("/") and not value.startswith("//"):
        return value
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            "must be an absolute http(s) URL" + (" or a path beginning with /" if relative else "")
        )
    try:
        _ = parts.port  # a port that is not a number raises here
    except ValueError as exc:
        raise ValueError(f"has no valid port ({parts.netloc!r})") from exc
    if not _valid_host(parts.hostname):
        raise ValueError(f"has no valid host name ({parts.hostname!r})")
    return value


_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def _valid_host(host: str) -> bool:
    """An IP address, or a DNS name whose labels (after IDNA) are letters, digits, hyphens."""
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return False
    labels = ascii_host.lower().removesuffix(".").split(".")
    # IDNA maps some punctuation (e.g. "…" to "...") into dots: empty labels show it
    return len(ascii_host) <= 253 and all(_LABEL.match(label) for label in labels)


class OAuth2ClientCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["oauth2_client_credentials"] = "oauth2_client_credentials"
    token_url: str = Field(description="Absolute, or relative to the source's base URL.")
    client_id: str
    client_secret: SecretStr
    scope: str | None = None

    @field_validator("token_url")
    @classmethod
    def _token_url(cls, value: str) -> str:
        return check_http_url(value, relative=True)


class BasicAuth(BaseModel):
    """HTTP Basic (OpenCPS's REST API takes a portal account this way)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["basic"] = "basic"
    username: str
    password: SecretStr

    def header_value(self) -> str:
        raw = f"{self.username}:{self.password.get_secret_value()}".encode()
        return "Basic " + base64.b64encode(raw).decode()


AuthConfig = ApiKeyAuth | BasicAuth | OAuth2ClientCredentials


class ConnectorConfig(BaseModel):
    """What a connector needs to talk to one source. Secrets are `SecretStr`: never printed."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(default="national-json", description="Registered connector kind.")
    base_url: str
    auth: AuthConfig = Field(discriminator="type")
    timeout_s: float = Field(default=30, gt=0)
    options: dict[str, Any] = Field(default_factory=dict)


Sink = Callable[[int], "memoryview | None"]
"""Offered a body's length, answers a buffer to read the body straight into (None: as bytes)."""


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a connector declares about itself.

    - `wire`: the wire format of its page bodies (a name registered in `connectors.wire`); the
      engine decodes every body with that format's one decode stage.
    - `feeds`: the feeds the source serves.
    - `into_buffer`: `fetch_body` honours `sink` (reads a body straight into shared memory for
      the decoding workers) and may then return the body's length instead of its bytes.
    - `pull`: False for a source that pushes to us (the national synchronisation push): the
      scheduler never starts pulls of it.
    """

    wire: str
    feeds: tuple[Feed, ...] = FEEDS
    into_buffer: bool = False
    pull: bool = True


@runtime_checkable
class Connector(Protocol):
    """Fetch page bodies of `feed` changed at or after `updated_since`, continuing from
    `cursor` (the previous page's next cursor, as the wire format's decode stage read it)."""

    capabilities: Capabilities

    async def fetch_body(
        self, feed: Feed, *, updated_since: datetime | None, cursor: str | None, limit: int,
        sink: Sink | None = None,
    ) -> bytes | int: ...  # fmt: skip

    async def fetch_page(
        self, feed: Feed, *, updated_since: datetime | None, cursor: str | None, limit: int
    ) -> Page:
        """The page decoded to national-field records (tools and tests; the engine decodes
        bodies itself, in worker processes)."""
        ...

    def source_clock(self) -> datetime | None:
        """The source's own time at its latest answer (the HTTP Date header of its
        responses), None when it reports none: lag is measured against it when the pages
        carry no time of their own."""
        ...

    async def aclose(self) -> None: ...


class PageConnectorAdapter:
    """A connector of the earlier seam (only `fetch_page`, national-field records) behind the
    body protocol: its pages are re-serialised as the national envelope."""

    capabilities = Capabilities(wire="national-json")

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def fetch_page(
        self, feed: Feed, *, updated_since: datetime | None, cursor: str | None, limit: int
    ) -> Page:
        page: Page = await self.inner.fetch_page(
            feed, updated_since=updated_since, cursor=cursor, limit=limit
        )
        return page

    async def fetch_body(
        self, feed: Feed, *, updated_since: datetime | None, cursor: str | None, limit: int,
        sink: Sink | None = None,
    ) -> bytes | int:  # fmt: skip
        page = await self.fetch_page(feed, updated_since=updated_since, cursor=cursor, limit=limit)
        server_time = (
            page.server_time.astimezone(timezone(timedelta(hours=7))).strftime("%Y%m%d%H%M%S")
            if page.server_time else None
        )  # fmt: skip
        return json.dumps(
            {"items": [*page.records, *page.invalid], "next_cursor": page.next_cursor,
             "server_time": server_time},
            ensure_ascii=False,
        ).encode()  # fmt: skip

    def source_clock(self) -> datetime | None:
        return None  # the earlier seam reports its time in its pages (`Page.server_time`)

    async def aclose(self) -> None:
        await self.inner.aclose()
