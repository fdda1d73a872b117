"""Request and response bodies of the tasks API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from services.tasks.domain.workflow import Action
from shared.bounds import Day

Priority = Literal["low", "normal", "high", "urgent"]
ItemRoleName = Literal["lead", "supporting", "monitoring"]
StatusName = Literal["not_started", "in_progress", "reported", "accepted", "cancelled"]
TimelinessName = Literal[
    "done_on_time",
    "done_late",
    "done_late_extended",
    "in_progress_within_time",
    "due_soon",
    "overdue",
    "no_deadline",
    "cancelled",
]


class ItemIn(BaseModel):
    title: str = Field(min_length=1, examples=["Rà soát, đăng ký DVC trực tuyến toàn trình"])
    lead_unit_id: str = Field(examples=["P21.SNV"])
    supporting_unit_ids: list[str] = Field(default_factory=list, examples=[["P21.VP"]])
    deadline: Day | None = Field(default=None, examples=["2022-09-01"])
    recurrence: str | None = Field(
        default=None,
        description="monthly, monthly:days=1-5, monthly:by=25, weekly, quarterly, half_yearly, "
        "yearly, reports:Q1,H1,M9,year",
        examples=["quarterly"],
    )
    criteria: list[str] = Field(default_factory=list, examples=[["3.2.5"]])
    indicator: str | None = None
    priority: Priority = "normal"
    responsible_person: str | None = Field(default=None, examples=["Nguyễn Văn A"])


class FindingIn(BaseModel):
    unit_id: str | None = Field(default=None, examples=["P21.SNV"])
    text: str = Field(min_length=1, examples=["Chưa công khai đầy đủ TTHC tại Bộ phận Một cửa"])
    criteria: list[str] = Field(default_factory=list)
    items: list[ItemIn] = Field(default_factory=list)


class ConclusionIn(BaseModel):
    number: str | None = Field(default=None, examples=["05/TB-ĐKT"])
    title: str = Field(min_length=1, examples=["Thông báo kết luận kiểm tra CCHC tại Sở Nội vụ"])
    issued_on: Day | None = Field(default=None, examples=["2023-09-18"])
    issuer: str | None = Field(default=None, examples=["Đoàn kiểm tra CCHC tỉnh"])
    findings: list[FindingIn] = Field(min_length=1)


class UnitRef(BaseModel):
    id: str = Field(examples=["P21.VP"])
    name: str | None = Field(examples=["Văn phòng UBND tỉnh"])
    role: ItemRoleName


class ItemOut(BaseModel):
    id: str
    conclusion_id: str | None
    conclusion_number: str | None = Field(default=None, examples=["05/TB-ĐKT"])
    conclusion_title: str | None = Field(
        default=None, examples=["Thông báo kết luận kiểm tra CCHC tại Sở Nội vụ"]
    )
    finding_id: str | None
    origin: str
    alert_id: str | None
    indicator: str | None
    title: str
    lead_unit_id: str
    lead_unit_name: str | None = Field(default=None, examples=["Sở Nội vụ"])
    supporting_unit_ids: list[str]
    monitoring_unit_ids: list[str] = Field(default_factory=list)
    units: list[UnitRef] = Field(
        default_factory=list, description="Lead, supporting and monitoring units with names."
    )
    caller_role: ItemRoleName | None = Field(
        default=None,
        description="The caller's agency's role on the item: lead (moves it), supporting "
        "(reports its own contribution), monitoring (reads); null for province-wide roles.",
    )
    responsible_person: str | None
    criteria: list[str]
    priority: str
    deadline: date | None = Field(description="The current deadline (after extensions).")
    original_deadline: date | None = Field(
        default=None,
        description="The deadline on-time is judged by: moved only by changes made before "
        "it passed, so a late extension does not erase lateness.",
    )
    past_original_deadline: bool = Field(
        default=False, description="Finished (or still open) after the original deadline."
    )
    recurrence: str | None
    parent_item_id: str | None
    period_key: str | None
    status: StatusName
    timeliness: TimelinessName
    timeliness_label: str = Field(
        default="", examples=["Hoàn thành muộn (đã gia hạn) / done late (extended)"]
    )
    progress_percent: int
    completed_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime


class EvidenceOut(BaseModel):
    id: str | None = Field(default=None, description="Set for an uploaded file.")
    name: str = Field(examples=["bao-cao-khac-phuc.pdf"])
    url: str | None = Field(default=None, description="A link given as evidence.")
    download_url: str | None = Field(default=None, examples=["/api/v1/items/itm_1/evidence/evd_1"])
    content_type: str | None = Field(default=None, examples=["application/pdf"])
    size: int | None = None
    sha256: str | None = None
    uploaded_by: str | None = None
    created_at: datetime | None = None


class NoteOut(BaseModel):
    id: int
    at: datetime
    author: str
    unit_id: str | None
    role: str | None = Field(description="lead | supporting | inspector | system")
    kind: Literal["progress", "report"] = "progress"
    note: str
    percent: int | None
    evidence: list[EvidenceOut]


class ContributionOut(BaseModel):
    unit_id: str
    unit_name: str | None
    percent: int | None = Field(description="The unit's latest reported percent of its part.")
    notes: int
    last_at: datetime


class ItemDetail(ItemOut):
    """One item with what the inspector needs to judge it: every note and its evidence."""

    notes: list[NoteOut] = Field(default_factory=list)
    contributions: list[ContributionOut] = Field(
        default_factory=list, description="Supporting units' own reports, one line per unit."
    )


class ConclusionOut(BaseModel):
    id: str
    number: str | None
    title: str
    issued_on: date | None
    items: list[ItemOut]


class ItemPage(BaseModel):
    items: list[ItemOut]
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` to get the next page; null at the end."
    )


class TransitionIn(BaseModel):
    action: Action = Field(examples=["report"])
    reason: str | None = Field(default=None, examples=["Đã hoàn thành, gửi kèm báo cáo"])

    model_config = {
        "json_schema_extra": {
            "examples": [
                {"action": "start"},
                {"action": "reopen", "reason": "Thiếu minh chứng"},
            ]
        }
    }


class Evidence(BaseModel):
    name: str = Field(examples=["bao-cao-khac-phuc.pdf"])
    url: str | None = Field(
        default=None,
        pattern=r"^https?://",
        max_length=2000,
        examples=["https://files.example/bc.pdf"],
        description="A link to evidence kept elsewhere (http or https only).",
    )
    sha256: str | None = None
    size: int | None = None
    content_type: str | None = Field(default=None, examples=["application/pdf"])


class ItemPatch(BaseModel):
    """Inspector edits; a deadline change needs a reason and is kept in the deadline history."""

    deadline: Day | None = Field(default=None, examples=["2022-10-15"])
    clear_deadline: bool = Field(default=False, description="Remove the deadline.")
    reason: str | None = Field(default=None, examples=["Điều chỉnh theo chỉ đạo của UBND tỉnh"])
    responsible_person: str | None = None
    priority: Priority | None = None
    supporting_unit_ids: list[str] | None = None
    monitoring_unit_ids: list[str] | None = None
    title: str | None = Field(default=None, min_length=1)


class ProgressIn(BaseModel):
    note: str = Field(min_length=1, examples=["Đã rà soát 120/415 TTHC"])
    percent: int | None = Field(default=None, ge=0, le=100, examples=[30])
    evidence: list[Evidence] = Field(default_factory=list)


class ReportIn(BaseModel):
    note: str | None = Field(
        default=None, examples=["Đã hoàn thành việc niêm yết công khai 415/415 TTHC"]
    )
    evidence: list[Evidence] = Field(default_factory=list)


class ExtensionIn(BaseModel):
    requested_deadline: Day = Field(examples=["2022-09-30"])
    reason: str = Field(min_length=1, examples=["Chờ hướng dẫn của Bộ Nội vụ"])


class ExtensionDecisionIn(BaseModel):
    approve: bool
    reason: str | None = Field(default=None, examples=["Đồng ý gia hạn"])


class ExtensionOut(BaseModel):
    id: str
    item_id: str
    requested_deadline: date
    reason: str
    status: Literal["pending", "approved", "rejected"]
    requested_by: str
    decided_by: str | None = None
    decision_reason: str | None = None


class HistoryOut(BaseModel):
    at: datetime
    actor: str
    action: str
    from_status: str | None
    to_status: str | None
    reason: str | None
    details: dict[str, Any]
    note: NoteOut | None = Field(
        default=None, description="The progress note (with evidence) this entry recorded."
    )


class ParseIn(BaseModel):
    text: str = Field(min_length=1, examples=["UBND tỉnh yêu cầu:\n\n1. Sở Nội vụ\n\n- …"])
    issued_on: Day | None = Field(default=None, examples=["2022-07-25"])
    as_of: Day | None = Field(
        default=None,
        description="The confirmation date the preview is for (default: today, Vietnam time): "
        "abolished units map to their successors and groups expand to the units valid then.",
    )
    province_id: str | None = Field(
        default=None, description="The issuing body's province, when the header does not say."
    )


class DraftAssignee(BaseModel):
    name: str = Field(description="As written in the document.")
    role: Literal["lead", "support"]
    unit_id: str | None
    group: str | None
    canonical: str | None = Field(
        default=None,
        description="The standard name (gazetteer) of an agency the registry does not hold.",
    )


class DraftTarget(BaseModel):
    unit_id: str
    name: str
    role: Literal["lead", "support"]
    via: Literal["direct", "successor", "group"] = Field(
        description="direct: the unit named; successor: it was abolished and this unit took "
        "over (original_unit_id); group: one unit of an expanded group (group)."
    )
    written: str = Field(description="The addressee as written in the document.")
    original_unit_id: str | None = None
    group: str | None = None


class DraftWarning(BaseModel):
    code: str = Field(
        description="no_directive | no_number | no_date | unresolved | successor | province_unknown | "
        "no_successor | group_expanded | group_empty | no_lead | province_successor | "
        "duplicate_number"
    )
    message: str
    item_index: int | None = None


class DraftItemOut(BaseModel):
    index: int
    assignees: list[DraftAssignee]
    action: str
    deadline: date | None
    recurrence: str | None
    criteria: list[str]
    span: tuple[int, int]
    section: str | None
    targets: list[DraftTarget] = Field(
        default_factory=list,
        description="Exactly the units confirming creates this item for (leads: one item each).",
    )
    creates: int = Field(default=0, description="How many items confirming creates.")
    planned_recurrence: str | None = Field(
        default=None, description="The recurrence with its bounds (|from=…|until=…) as created."
    )


class DraftFindingOut(BaseModel):
    text: str
    span: tuple[int, int]


class DraftOut(BaseModel):
    id: str
    number: str | None = None
    issuer: str | None = None
    province_id: str | None = Field(
        default=None, description="The issuing body's province on the confirmation date."
    )
    as_of: date | None = None
    issued_on: date | None
    reference_year: int | None
    is_directive: bool
    warnings: list[DraftWarning]
    total_items: int = Field(default=0, description="Items confirming all creates.")
    items: list[DraftItemOut]
    findings: list[DraftFindingOut] = Field(
        default_factory=list, description='Shortcomings listed under "Tồn tại, hạn chế".'
    )


class DraftChoice(BaseModel):
    index: int = Field(description="Index of the draft item.")
    title: str | None = None
    lead_unit_ids: list[str] | None = Field(
        default=None, description="Override the leads (one item is created per lead)."
    )
    supporting_unit_ids: list[str] | None = None
    deadline: date | None = None
    recurrence: str | None = None
    criteria: list[str] | None = None


class ConfirmIn(BaseModel):
    number: str | None = Field(
        default=None, examples=["123/UBND-NC"], description="Default: the number read."
    )
    revision: bool = Field(
        default=False,
        description="Confirm although this issuer's number was confirmed before (a revision).",
    )
    title: str = Field(min_length=1, examples=["Kết luận của Phó Chủ tịch UBND tỉnh"])
    issued_on: date | None = None
    choices: list[DraftChoice] | None = Field(
        default=None, description="Items to confirm (with edits); null = all as proposed."
    )


class AgencyReport(BaseModel):
    unit_id: str
    unit_name: str | None
    total: int
    by_status: dict[str, int]
    by_timeliness: dict[str, int]
    on_time_rate: float | None = Field(
        description="Against the original deadlines: done_on_time ÷ (done_on_time + "
        "done_late_extended + done_late + overdue); null when none is due."
    )
    on_time_rate_extended: float | None = Field(
        default=None,
        description="Against the current (extended) deadlines: (done_on_time + "
        "done_late_extended) ÷ the same; null when none is due.",
    )
    overdue: list[dict[str, Any]]


class ConclusionReport(BaseModel):
    conclusion_id: str
    total: int
    by_status: dict[str, int]
    by_timeliness: dict[str, int]
    percent_done: float
    agencies: list[AgencyReport]


class ProvinceReport(BaseModel):
    as_of: date
    total: int
    by_status: dict[str, int]
    by_timeliness: dict[str, int]
    on_time_rate: float | None
    on_time_rate_extended: float | None = None
    agencies: list[AgencyReport]
