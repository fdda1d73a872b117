"""Request and response bodies of the tasks API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from services.tasks.domain.workflow import Action
from shared.bounds import Day

Priority = Literal["low", "normal", "high", "urgent"]
StatusName = Literal["not_started", "in_progress", "reported", "accepted", "cancelled"]
TimelinessName = Literal[
    "done_on_time",
    "done_late",
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


class ItemOut(BaseModel):
    id: str
    conclusion_id: str | None
    finding_id: str | None
    origin: str
    alert_id: str | None
    indicator: str | None
    title: str
    lead_unit_id: str
    supporting_unit_ids: list[str]
    responsible_person: str | None
    criteria: list[str]
    priority: str
    deadline: date | None
    recurrence: str | None
    parent_item_id: str | None
    period_key: str | None
    status: StatusName
    timeliness: TimelinessName
    progress_percent: int
    completed_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime


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
    url: str | None = Field(default=None, examples=["https://files.example/bc.pdf"])
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
    title: str | None = Field(default=None, min_length=1)


class ProgressIn(BaseModel):
    note: str = Field(min_length=1, examples=["Đã rà soát 120/415 TTHC"])
    percent: int | None = Field(default=None, ge=0, le=100, examples=[30])
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


class ParseIn(BaseModel):
    text: str = Field(min_length=1, examples=["UBND tỉnh yêu cầu:\n\n1. Sở Nội vụ\n\n- …"])
    issued_on: Day | None = Field(default=None, examples=["2022-07-25"])


class DraftAssignee(BaseModel):
    name: str
    role: Literal["lead", "support"]
    unit_id: str | None
    group: str | None


class DraftItemOut(BaseModel):
    index: int
    assignees: list[DraftAssignee]
    action: str
    deadline: date | None
    recurrence: str | None
    criteria: list[str]
    span: tuple[int, int]
    section: str | None


class DraftFindingOut(BaseModel):
    text: str
    span: tuple[int, int]


class DraftOut(BaseModel):
    id: str
    issued_on: date | None
    reference_year: int | None
    is_directive: bool
    warnings: list[str]
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
    number: str | None = Field(default=None, examples=["123/UBND-NC"])
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
        description="done_on_time ÷ (done_on_time + done_late + overdue); null when none is due."
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
    agencies: list[AgencyReport]
