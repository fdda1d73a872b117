"""Typed payloads of every event on the bus, one model per versioned CloudEvents type.

A breaking change gets a new `type` (`….v2`) published beside the old one until consumers
move; additive changes keep the version. Consumers ignore fields they do not know
(`extra="ignore"`), so producers may add optional fields freely.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field


class Payload(BaseModel):
    """Base of every event payload; `event_type` is the CloudEvents `type` it travels as."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    event_type: ClassVar[str]
    topic: ClassVar[str]


# ---------------------------------------------------------------------------------------------
# ingest.dossiers — facts pulled from one-stop systems, normalised to the national field set.

Channel = Literal[1, 2, 3]
"""KenhThucHien: 1 in person, 2 online, 3 public postal service."""

DossierStatus = Annotated[int, Field(ge=1, le=10)]
"""TrangThaiHoSo 1..10 (see domain brief §2)."""


class DossierRecord(BaseModel):
    """One dossier (hồ sơ) as scoring needs it, in Vietnam-time aware datetimes."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    source_id: str = Field(description="Our id of the one-stop system it came from.")
    code: str = Field(description="MaHoSo, e.g. H15.50.05.13-261008-0975.")
    unit_id: str = Field(description="Our unit id (mapped from the source's agency code).")
    procedure_code: str = Field(description="MaTTHC.")
    field_code: str | None = Field(default=None, description="MaLinhVuc.")
    channel: Channel
    status: DossierStatus
    submitted_at: datetime | None = None
    received_at: datetime | None = None
    due_at: datetime | None = Field(default=None, description="NgayHenTra, as last promised.")
    finished_at: datetime | None = Field(default=None, description="NgayKetThucXuLy.")
    returned_at: datetime | None = None
    rejected_at: datetime | None = None
    supplement_count: int = Field(default=0, ge=0, description="Supplement requests.")
    supplement_days: float = Field(
        default=0, ge=0, description="Days spent waiting for supplements (excluded from time)."
    )
    apology_count: int = Field(default=0, ge=0, description="Apology letters (phiếu xin lỗi).")
    has_fee: bool = Field(default=False, description="Has a financial obligation.")
    paid_online: Literal[0, 1, 2] = Field(
        default=0, description="DuocThanhToanTrucTuyen: 0 no, 1 on DVCQG, 2 on local gateway."
    )
    digitised: bool = Field(default=False, description="HoSoCoThanhPhanSoHoa.")
    reused_data: bool = Field(default=False, description="Some component DuocTaiSuDung.")
    has_e_result: bool = Field(default=False, description="Result issued electronically.")
    synced_national: bool = Field(default=False, description="Synced to DVCQG.")
    vneid_verified: bool = Field(default=False, description="TaiKhoanDuocXacThucVoiVNeID.")
    # added for the portal's 2026 metrics (additive, defaults keep older producers valid)
    pds_synced: bool = Field(
        default=False,
        description="Digitised data synced to the applicant's DVCQG personal data store.",
    )
    citizen_data_used: bool = Field(
        default=False, description="Filled from the national population database."
    )
    source_updated_at: datetime = Field(description="Version at the source; newer wins.")


class DossiersChanged(Payload):
    """Dossiers of one unit that were created or changed in one committed ingest page."""

    event_type: ClassVar[str] = "vn.cchc.ingest.dossiers.changed.v1"
    topic: ClassVar[str] = "ingest.dossiers"
    unit_id: str
    run_id: str | None = None
    dossiers: list[DossierRecord]


OnlineLevel = Literal["none", "partial", "full"]


class ProcedureRecord(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    source_id: str
    code: str = Field(description="MaTTHC.")
    name: str
    field_code: str | None = None
    unit_id: str = Field(description="Unit that resolves it.")
    online_level: OnlineLevel
    has_fee: bool = False
    result_type: str | None = None
    published_on: date | None = None
    publish_due_on: date | None = None
    public_on: date | None = None
    public_due_on: date | None = None
    content_complete: bool = True
    # added for the portal's 2026 metrics (additive, defaults keep older producers valid)
    full_online_eligible: bool = Field(
        default=False, description="Eligible to be offered as a full-process online service."
    )
    citizen_data_connected: bool = Field(
        default=False, description="Connected to the national population database."
    )
    certification: bool = Field(
        default=False, description="A certification procedure (chứng thực bản sao từ bản chính)."
    )
    e_certified_copy: bool = Field(
        default=False, description="Offers electronic certified copies (bản sao điện tử)."
    )
    source_updated_at: datetime


class ProceduresChanged(Payload):
    event_type: ClassVar[str] = "vn.cchc.ingest.procedures.changed.v1"
    topic: ClassVar[str] = "ingest.dossiers"
    unit_id: str
    run_id: str | None = None
    procedures: list[ProcedureRecord]


class PetitionRecord(BaseModel):
    """A citizen petition (PAKN)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    source_id: str
    code: str
    unit_id: str
    received_at: datetime
    due_at: datetime | None = None
    handled_at: datetime | None = None
    satisfied: bool | None = Field(default=None, description="Citizen's rating, if given.")
    category: Literal["tthc", "staff", "other"] | None = Field(
        default=None,
        description="What the petition is about: procedures (TTHC), staff conduct, other.",
    )
    source_updated_at: datetime


class PetitionsChanged(Payload):
    event_type: ClassVar[str] = "vn.cchc.ingest.petitions.changed.v1"
    topic: ClassVar[str] = "ingest.dossiers"
    unit_id: str
    run_id: str | None = None
    petitions: list[PetitionRecord]


class IngestRunCompleted(Payload):
    event_type: ClassVar[str] = "vn.cchc.ingest.run.completed.v1"
    topic: ClassVar[str] = "ingest.dossiers"
    run_id: str
    source_id: str
    feed: Literal["dossiers", "procedures", "petitions"]
    outcome: Literal["succeeded", "partial", "failed"]
    pulled: int
    stored: int
    unchanged: int
    quarantined: int
    error: str | None = None


class OfficialMetric(BaseModel):
    """One metric as the national portal publishes it (ratio in percent)."""

    code: str = Field(description="The portal's metric code, e.g. ON_TIME.")
    numerator: float | None = None
    denominator: float | None = None
    ratio: float | None = None
    score: float | None = None
    max: float | None = None
    value: float | None = Field(default=None, description="Counts and durations (AVG_DAYS).")


class OfficialGroup(BaseModel):
    code: str = Field(description="The portal's group code, e.g. TDGQ.")
    score: float | None = None
    max: float | None = None


class OfficialUnitScores(BaseModel):
    unit_id: str = Field(description="Our unit id (mapped from the portal's unit code).")
    external_code: str = Field(description="The portal's unit code.")
    name: str = ""
    total: float | None = None
    total_max: float | None = None
    groups: list[OfficialGroup] = Field(default_factory=list)
    metrics: list[OfficialMetric] = Field(default_factory=list)


class OfficialScoresPublished(Payload):
    """The 766 index the national portal published for a province's units and one period,
    read by ingest's portal connector; scoring stores it beside its own scores."""

    event_type: ClassVar[str] = "vn.cchc.ingest.official_scores.published.v1"
    topic: ClassVar[str] = "ingest.dossiers"
    source_id: str
    source: str = Field(description="Where and when, e.g. 'Cổng DVCQG 2026-10-08'.")
    period: str = Field(description="Period id: 2026, 2026Q3, 202609.")
    fetched_at: datetime
    units: list[OfficialUnitScores]


# ---------------------------------------------------------------------------------------------
# scoring.snapshots


class SnapshotUpdated(Payload):
    """A unit's indicator snapshot for a period got a new version."""

    event_type: ClassVar[str] = "vn.cchc.scoring.snapshot.updated.v1"
    topic: ClassVar[str] = "scoring.snapshots"
    unit_id: str
    period: str = Field(description="Period id: 2026, 2026Q3, 202609, 2026YTD09.")
    profile: str
    version: int
    total: float | None
    max_total: float
    rank: int | None = None


class AlertRaised(Payload):
    """An alert rule was breached for a (unit, indicator, period); raised once until cleared."""

    event_type: ClassVar[str] = "vn.cchc.scoring.alert.raised.v1"
    topic: ClassVar[str] = "scoring.snapshots"
    alert_id: str
    rule: str
    unit_id: str
    indicator: str
    period: str
    message: str = Field(
        description="Vietnamese, naming the agency, indicator and period, and for an indicator "
        "the procedures (TenTTHC) and agencies behind its shortfall."
    )
    value: float | None = None
    threshold: float | None = None
    # added with scoring's alert words (additive, defaults keep older producers valid)
    title: str = Field(default="", description="Vietnamese title, e.g. for the item it raises.")
    title_en: str = ""
    message_en: str = ""
    period_kind: Literal["month", "quarter", "year", "ytd"] = "month"
    in_progress: bool = Field(
        default=False, description="The period was still running: judged on the data so far."
    )
    judged_on: date | None = Field(default=None, description="Last day the data covers.")


class AlertCleared(Payload):
    event_type: ClassVar[str] = "vn.cchc.scoring.alert.cleared.v1"
    topic: ClassVar[str] = "scoring.snapshots"
    alert_id: str
    rule: str
    unit_id: str
    indicator: str
    period: str
    value: float | None = None
    # added with scoring's alert words (additive, defaults keep older producers valid)
    reason: str = Field(
        default="chỉ số đã đạt",
        description="Why it cleared; the remediation item it raised is closed with it.",
    )
    message: str = ""
    message_en: str = ""


# ---------------------------------------------------------------------------------------------
# tasks.remediation

ItemStatus = Literal["not_started", "in_progress", "reported", "accepted", "cancelled"]


class RemediationItemEvent(Payload):
    """Common shape of every remediation-item event: the item as it stands after the change."""

    topic: ClassVar[str] = "tasks.remediation"
    item_id: str
    unit_id: str
    conclusion_id: str | None = None
    origin: Literal["conclusion", "alert", "recurrence", "manual"] = "conclusion"
    alert_id: str | None = None
    indicator: str | None = None
    criteria: list[str] = Field(default_factory=list)
    status: ItemStatus
    deadline: date | None = None
    completed_on: date | None = None


class RemediationCreated(RemediationItemEvent):
    event_type: ClassVar[str] = "vn.cchc.tasks.item.created.v1"


class RemediationStatusChanged(RemediationItemEvent):
    event_type: ClassVar[str] = "vn.cchc.tasks.item.status_changed.v1"
    previous_status: ItemStatus
    reason: str | None = None


class RemediationDeadlineChanged(RemediationItemEvent):
    event_type: ClassVar[str] = "vn.cchc.tasks.item.deadline_changed.v1"
    previous_deadline: date | None = None
    reason: str | None = None


class RemediationReminderDue(RemediationItemEvent):
    event_type: ClassVar[str] = "vn.cchc.tasks.item.reminder_due.v1"
    days_before: Literal[7, 3, 1]


class RemediationOverdue(RemediationItemEvent):
    event_type: ClassVar[str] = "vn.cchc.tasks.item.overdue.v1"
    days_overdue: int
    escalated: bool = False


class RemediationAccepted(RemediationItemEvent):
    event_type: ClassVar[str] = "vn.cchc.tasks.item.accepted.v1"
    on_time: bool | None = None


ALL_PAYLOADS: tuple[type[Payload], ...] = (
    DossiersChanged,
    ProceduresChanged,
    PetitionsChanged,
    IngestRunCompleted,
    OfficialScoresPublished,
    SnapshotUpdated,
    AlertRaised,
    AlertCleared,
    RemediationCreated,
    RemediationStatusChanged,
    RemediationDeadlineChanged,
    RemediationReminderDue,
    RemediationOverdue,
    RemediationAccepted,
)
PAYLOADS_BY_TYPE: dict[str, type[Payload]] = {p.event_type: p for p in ALL_PAYLOADS}

TOPICS: tuple[str, ...] = ("ingest.dossiers", "scoring.snapshots", "tasks.remediation")


def dlq_topic(topic: str) -> str:
    return f"{topic}.dlq"


def payload_json_schema(model: type[Payload]) -> dict[str, Any]:
    return model.model_json_schema(mode="serialization")
