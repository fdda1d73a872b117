"""Request and response bodies of the ingest API. Credentials go in, never come out."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from services.ingest.connectors import kinds
from services.ingest.connectors.base import (
    ApiKeyAuth,
    BasicAuth,
    OAuth2ClientCredentials,
    check_http_url,
)
from shared.bounds import Count32, Id64, Instant
from shared.events.payloads import DossierRecord
from shared.logging import register_secret

FeedName = Literal["dossiers", "procedures", "petitions"]
LagClock = Literal["server_time", "http_date", "local"]
SourceId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$", examples=["hy-igate"])]
AuthIn = Annotated[ApiKeyAuth | BasicAuth | OAuth2ClientCredentials, Field(discriminator="type")]
# Every registered connector kind, listed in the OpenAPI document.
ConnectorKind = Annotated[
    str,
    Field(
        json_schema_extra={"enum": kinds()},
        description="Registered connector kind: " + ", ".join(kinds()) + ".",
        examples=["vnpt-igate"],
    ),
]


class AuthOut(BaseModel):
    """The source's auth without its secret."""

    type: str = Field(examples=["api_key"])
    header: str | None = Field(default=None, examples=["X-API-Key"])
    username: str | None = None
    token_url: str | None = None
    client_id: str | None = None
    scope: str | None = None


class SourceSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, examples=["Hệ thống một cửa điện tử tỉnh Hưng Yên"])
    kind: ConnectorKind | None = None
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
    options: dict[str, Any] | None = Field(
        default=None,
        description="Connector options (vendor details: paths, parameter names, status "
        "vocabularies, OpenCPS's group_id); see the connector's documentation.",
        examples=[{"group_id": "35417"}],
    )
    feeds: list[FeedName] | None = None
    enabled: bool | None = None
    schedule_s: Count32 | None = Field(default=None, ge=10, description="Incremental run interval.")
    lookback_s: Count32 | None = Field(default=None, ge=0, description="Re-read window.")
    page_size: int | None = Field(default=None, ge=1, le=5000)
    rate_limit_per_s: float | None = Field(default=None, gt=0, le=1_000_000)
    concurrency: int | None = Field(default=None, ge=1, le=16)
    timeout_s: float | None = Field(default=None, gt=0, le=300)

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        return None if value is None else check_http_url(value)

    @field_validator("options")
    @classmethod
    def _options(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        """A vendor vocabulary maps onto national codes: TrangThaiHoSo 1–10, KenhThucHien
        1–3 (a map the connector cannot read would stop every pull of the source)."""
        for key, codes in (("status_map", range(1, 11)), ("channel_map", range(1, 4))):
            table = (value or {}).get(key)
            if table is None:
                continue
            if not isinstance(table, dict) or not all(
                type(v) is int and v in codes for v in table.values()
            ):
                raise ValueError(
                    f"{key} maps the source's codes to national codes "
                    f"{codes.start}–{codes.stop - 1}"
                )
        return value

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str | None) -> str | None:
        if value is not None and value not in kinds():
            raise ValueError(f"unknown connector kind; registered: {', '.join(kinds())}")
        return value


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
    kind: ConnectorKind
    base_url: str
    auth: AuthOut
    agencies: dict[str, str]
    options: dict[str, Any]
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
    source_time: datetime | None = Field(
        description="The source's own clock at its last completed dossier run (None: the "
        "source reports none; lag is then measured on our clock)."
    )
    newest_seen: datetime | None = Field(description="The newest NgayCapNhat seen then.")
    lag_s: float | None = Field(
        description="Freshness: how far the newest dossier we hold is behind the source's "
        "clock (or ours, when the source reports none), in seconds.",
        examples=[42.0],
    )
    lag_clock: LagClock | None = Field(
        default=None,
        description="The clock lag_s is measured against: server_time (the time the source's "
        "pages report), http_date (the HTTP Date header of its answers) or local (ours: the "
        "source reports no time).",
        examples=["http_date"],
    )
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
    lag_clock: LagClock | None = Field(
        default=None, description="What lag_s was measured against (see the source's).",
        examples=["http_date"],
    )  # fmt: skip
    resumes: int


class QuarantineOut(BaseModel):
    id: int
    source_id: str
    feed: str
    code: str | None
    reasons: list[str] = Field(examples=[["unknown_agency:999.99.99.H99"]])
    raw: Any = Field(
        description="The payload exactly as received, or for a vendor source (iGate, OpenCPS) "
        "its translation into national fields."
    )
    source_raw: Any | None = Field(
        default=None,
        description="A vendor source's record exactly as it sent it (None: the source sends "
        "national fields); re-processing translates it again with the source's options.",
    )
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


class FeeOut(BaseModel):
    """A fee or charge (DanhSachLePhi) as the source listed it."""

    code: str | None = Field(examples=["LP1.001234"])
    name: str | None = Field(examples=["Lệ phí"])
    amount: float | None = Field(examples=[8000])
    method: int | None = Field(description="HinhThucThu", examples=[2])
    method_name: str | None = Field(examples=["Thanh toán trực tuyến"])
    kind: int | None = Field(description="LoaiPhiLePhi", examples=[1])
    kind_name: str | None = Field(examples=["Lệ phí"])


class SupplementOut(BaseModel):
    """A request for more documents (DanhSachHoSoBoSung)."""

    requested_at: datetime | None
    received_at: datetime | None = Field(description="None: not handed in yet.")
    previous_due_at: datetime | None
    new_due_at: datetime | None


class StepOut(BaseModel):
    """A processing step (QuaTrinhXuLy; iGate's task history, OpenCPS's actions)."""

    at: datetime | None
    officer: str | None = Field(examples=["Nguyễn Văn An"])
    position: str | None = Field(examples=["Chuyên viên"])
    department: str | None = Field(examples=["Phòng Hành chính tư pháp"])
    action: str | None = Field(examples=["Chuyển xử lý"])
    status: int | None = Field(description="TrangThaiHoSo after the step", examples=[4])
    status_name: str | None = Field(examples=["Đang xử lý (processing)"])


class DossierOut(DossierRecord):
    """The dossier as published to scoring, plus its version, status history, names, fees,
    supplements and processing steps (those where the source sends them)."""

    version: int
    history: list[StatusChangeOut]
    status_name: str = Field(default="", examples=["Đang xử lý (processing)"])
    channel_name: str = Field(default="", examples=["Trực tuyến"])
    unit_name: str | None = Field(default=None, examples=["Sở Nội vụ"])
    procedure_name: str | None = Field(default=None, examples=["Cấp bản sao trích lục hộ tịch"])
    field_name: str | None = Field(default=None, examples=["Hộ tịch"])
    source_agency_name: str | None = Field(
        default=None, description="The agency as the source names it (TenDonVi).",
        examples=["Sở Tư pháp tỉnh Hưng Yên"],
    )  # fmt: skip
    overdue: bool = Field(
        default=False,
        description="Finished after its promised date (due_at), or unfinished and past it on "
        "the source's clock.",
    )
    fees: list[FeeOut] = Field(default_factory=list)
    supplements: list[SupplementOut] = Field(default_factory=list)
    steps: list[StepOut] = Field(default_factory=list, description="Oldest first.")


class DossierListItem(BaseModel):
    source_id: str
    code: str = Field(examples=["000.00.12.H33-260610-0001"])
    unit_id: str
    unit_name: str | None
    procedure_code: str
    procedure_name: str | None
    source_agency_name: str | None = Field(description="The agency as the source names it.")
    channel: int
    status: int
    status_name: str
    submitted_at: datetime | None
    received_at: datetime | None
    due_at: datetime | None
    finished_at: datetime | None
    overdue: bool
    source_updated_at: datetime
    supplement_count: int
    fee_total: float | None = Field(description="Sum of the listed fees (None: none listed).")
    last_step: StepOut | None = Field(
        description="The latest processing step; the dossier view has them all."
    )


class DossierPage(BaseModel):
    items: list[DossierListItem]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; None: done.")


def auth_out(auth: dict[str, Any]) -> AuthOut:
    return AuthOut(
        type=auth.get("type", "api_key"),
        header=auth.get("header"),
        username=auth.get("username"),
        token_url=auth.get("token_url"),
        client_id=auth.get("client_id"),
        scope=auth.get("scope"),
    )


def auth_to_store(auth: ApiKeyAuth | BasicAuth | OAuth2ClientCredentials) -> dict[str, Any]:
    data = auth.model_dump()
    for key, value in list(data.items()):
        if isinstance(value, SecretStr):
            data[key] = value.get_secret_value()
            register_secret(data[key])  # from now on, never in a log line of this process
    return data


class PushBatch(BaseModel):
    """A batch as one-stop systems send it to the national portal."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "session": "c0ffee-2026-06-10-001",
                    "madonvi": "000.00.12.H33",
                    "service": "DongBoHoSoMC",
                    "isUpdating": False,
                    "data": [
                        {
                            "MaHoSo": "000.00.12.H33-260610-0001", "MaTTHC": "1.001234",
                            "MaDonVi": "000.00.12.H33", "KenhThucHien": 2,
                            "NgayNopHoSo": "20260610080000", "NgayTiepNhan": "20260610083000",
                            "NgayHenTra": "20260617170000", "TrangThaiHoSo": 4,
                            "DanhSachLePhi": [], "DanhSachHoSoBoSung": [],
                            "QuaTrinhXuLy": [{"ThoiDiemXuLy": "20260610083000",
                                              "NoiDungXuLy": "Tiếp nhận hồ sơ"}],
                        }
                    ],
                }
            ]
        },
    )  # fmt: skip

    session: str | None = Field(default=None, max_length=200)
    madonvi: str | None = None
    service: str | None = None
    isUpdating: bool | str | int | None = None
    data: list[Any] = Field(max_length=5000, description="Dossiers (at most 5,000 a batch).")


class PushRejected(BaseModel):
    MaHoSo: str | None
    reasons: list[str]


class PushAck(BaseModel):
    """Sent once the batch is committed (its records, events, quarantine entries and this
    acknowledgement in one transaction): a repeat stores nothing again. The same batch (same
    `session`, same content) sent again, e.g. by a sync retrying after a lost answer, is
    answered with this same acknowledgement, `replayed`, and opens no run. A batch refused as
    a whole is answered with a problem+json (401/403/404/422) instead: nothing of it is kept.
    `error_code` 0 and `message` follow the convention of the national portal's sync answers
    (our reading of public integration code: a client that checks `error_code == 0` keeps
    working)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "error_code": 0,
                    "message": "Đã nhận 2 hồ sơ: lưu 1, không thay đổi 0, cách ly 1.",
                    "session": "c0ffee-2026-06-10-001",
                    "run_id": "5b0e5c8e-4a57-4b43-9a53-0f0b6f7b8f1e",
                    "received": 2, "stored": 1, "unchanged": 0, "quarantined": 1,
                    "rejected": [{"MaHoSo": "000.00.12.H33-260610-0002",
                                  "reasons": ["unknown_agency:999.99.99.H99"]}],
                    "replayed": False,
                }
            ]
        }
    )  # fmt: skip

    error_code: Literal[0] = Field(default=0, description="0: the batch is committed.")
    message: str = Field(description="The counts in Vietnamese.")
    session: str | None
    run_id: str = Field(
        description="The run that stored the batch (the first one's, when replayed)."
    )
    received: int
    stored: int = Field(description="Records stored as new or newer versions.")
    unchanged: int = Field(description="Repeats and older versions (nothing stored).")
    quarantined: int = Field(description="Records kept in quarantine, with their reasons.")
    rejected: list[PushRejected] = Field(description="The first 100 rejected, with reasons.")
    replayed: bool = Field(
        default=False,
        description="True: this batch was committed before; this is its acknowledgement "
        "then, and nothing was stored now.",
    )
