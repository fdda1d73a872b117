"""The seam for one-stop systems: a connector lists pages of raw records of a feed.

A connector knows one vendor's API (paths, paging, auth, field envelope) and nothing about our
database; it returns the source's raw records untouched (normalisation happens in
`services.ingest.domain.normalise`). Errors are raised as `SourceError` with a `kind` the sync
engine uses for retries, the circuit breaker and metrics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, SecretStr

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


class OAuth2ClientCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["oauth2_client_credentials"] = "oauth2_client_credentials"
    token_url: str = Field(description="Absolute, or relative to the source's base URL.")
    client_id: str
    client_secret: SecretStr
    scope: str | None = None


AuthConfig = ApiKeyAuth | OAuth2ClientCredentials


class ConnectorConfig(BaseModel):
    """What a connector needs to talk to one source. Secrets are `SecretStr`: never printed."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(default="national-json", description="Registered connector kind.")
    base_url: str
    auth: AuthConfig = Field(discriminator="type")
    timeout_s: float = Field(default=30, gt=0)
    options: dict[str, Any] = Field(default_factory=dict)


@runtime_checkable
class Connector(Protocol):
    """List a page of raw records of `feed` changed at or after `updated_since`, continuing
    from `cursor` (the previous page's `next_cursor`)."""

    async def fetch_page(
        self, feed: Feed, *, updated_since: datetime | None, cursor: str | None, limit: int
    ) -> Page: ...

    async def aclose(self) -> None: ...
