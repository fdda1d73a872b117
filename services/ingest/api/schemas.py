"""Request and response bodies of the ingest API. Credentials go in, never come out."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from services.ingest.connectors.base import ApiKeyAuth, OAuth2ClientCredentials
from shared.bounds import Count32, Id64, Instant
from shared.events.payloads import DossierRecord
from shared.logging import register_secret

FeedName = Literal["dossiers", "procedures", "petitions"]
SourceId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$", examples=["hy-igate"])]
AuthIn = Annotated[ApiKeyAuth | OAuth2ClientCredentials, Field(discriminator="type")]


class AuthOut(BaseModel):
    """The source's auth without its secret."""

    type: str = Field(examples=["api_key"])
    header: str | None = Field(default=None, examples=["X-API-Key"])
    token_url: str | None = None
    client_id: str | None = None
    scope: str | None = None


class SourceSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, examples=["Hệ thống một cửa điện tử tỉnh Hưng Yên"])
    kind: str | None = Field(default=None, examples=["national-json"])
    base_url: str | None = Field(default=None, examples=["https://igate.hungyen.gov.vn"])
    auth: AuthIn | None = None
    agencies: dict[str, str] | None = Field(
        default=None,
        description="Agency code at the source (MaDonVi) → our unit id.",
        examples=[{"000.02.00.H33": "P21.SNV"}],
    )
    agencies_from_registry: str | None = Field(
        default=None,
        description="Fill `agencies` from the unit registry's external codes of this key.",
        examples=["demo-igate"],
    )
    feeds: list[FeedName] | None = None
    enabled: bool | None = None
    schedule_s: Count32 | None = Field(default=None, ge=10, description="Incremental run interval.")
    lookback_s: Count32 | None = Field(default=None, ge=0, description="Re-read window.")
    page_size: int | None = Field(default=None, ge=1, le=5000)
    rate_limit_per_s: float | None = Field(default=None, gt=0, le=1_000_000)
    concurrency: int | None = Field(default=None, ge=1, le=16)
    timeout_s: float | None = Field(default=None, gt=0, le=300)


class SourceCreate(SourceSettings):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "id": "hy-igate",
                    "name": "Hệ thống một cửa điện tử tỉnh Hưng Yên",
                    "base_url": "http://127.0.0.1:8009",
                    "auth": {"type": "api_key", "key": "demo-key"},
                    "agencies_from_registry": "demo-igate",
                    "schedule_s": 900,
                }
            ]
        },
    )

    id: SourceId
    name: str
    base_url: str
    auth: AuthIn


class SourceOut(BaseModel):
    id: str
    name: str
    kind: str
    base_url: str
    auth: AuthOut
    agencies: dict[str, str]
    feeds: list[str]
    enabled: bool
    schedule_s: int
    lookback_s: int
    page_size: int
    rate_limit_per_s: float
    concurrency: int
    timeout_s: float
    health: str = Field(examples=["ok"], description="ok | degraded (circuit breaker open)")
    consecutive_failures: int
    degraded_until: datetime | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime


class SyncRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"feed": "dossiers"},
                {
                    "feed": "dossiers",
                    "kind": "backfill",
                    "since": "2026-01-01T00:00:00+07:00",
                    "until": "2026-03-31T23:59:59+07:00",
                },
            ]
        },
    )

    feed: FeedName = "dossiers"
    kind: Literal["incremental", "backfill"] = "incremental"
    since: Instant | None = Field(default=None, description="Backfill start (required).")
    until: Instant | None = Field(default=None, description="Backfill end (optional).")


class SyncStarted(BaseModel):
    run_id: str = Field(examples=["5b0e5c8e-4a57-4b43-9a53-0f0b6f7b8f1e"])


class RunOut(BaseModel):
    id: str
    source_id: str
    feed: str
    kind: str
    trigger: str
    status: str = Field(examples=["succeeded"])
    since: datetime | None
    until: datetime | None
    started_at: datetime
    finished_at: datetime | None
    pages: int
    pulled: int
    stored: int
    unchanged: int
    quarantined: int
    errors: dict[str, int] = Field(examples=[{"http_5xx": 2, "rate_limited": 1}])
    error: str | None
    lag_s: float | None
    resumes: int


class QuarantineOut(BaseModel):
    id: int
    source_id: str
    feed: str
    code: str | None
    reasons: list[str] = Field(examples=[["unknown_agency:999.99.99.H99"]])
    raw: Any = Field(description="The payload exactly as received.")
    status: str = Field(examples=["open"], description="open | resolved | superseded")
    seen_count: int
    first_seen_at: datetime
    last_seen_at: datetime
    resolved_at: datetime | None


class ReprocessRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source_id: str
    feed: FeedName = "dossiers"
    ids: list[Id64] | None = Field(default=None, description="Only these entries (else all open).")


class ReprocessResult(BaseModel):
    run_id: str
    reprocessed: int
    resolved: int
    stored: int
    still_rejected: int


class StatusChangeOut(BaseModel):
    status: int = Field(examples=[4])
    previous_status: int | None = Field(examples=[2])
    source_updated_at: datetime
    recorded_at: datetime


class DossierOut(DossierRecord):
    """The dossier as published to scoring, plus its version and status history."""

    version: int
    history: list[StatusChangeOut]


def auth_out(auth: dict[str, Any]) -> AuthOut:
    return AuthOut(
        type=auth.get("type", "api_key"),
        header=auth.get("header"),
        token_url=auth.get("token_url"),
        client_id=auth.get("client_id"),
        scope=auth.get("scope"),
    )


def auth_to_store(auth: ApiKeyAuth | OAuth2ClientCredentials) -> dict[str, Any]:
    data = auth.model_dump()
    for key, value in list(data.items()):
        if isinstance(value, SecretStr):
            data[key] = value.get_secret_value()
            register_secret(data[key])  # from now on, never in a log line of this process
    return data
