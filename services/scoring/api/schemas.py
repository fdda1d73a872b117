"""Response schemas of the scoring API (the OpenAPI contract)."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field


class IndicatorFigure(BaseModel):
    indicator: str = Field(examples=["prog_on_time"])
    code: str = Field(examples=["2.1"])
    group: str = Field(examples=["progress"])
    rule: str = Field(
        description="The profile rule that produced it.", examples=["766@1:prog_on_time"]
    )
    numerator: float
    denominator: float
    ratio: float | None = Field(description="null when the denominator is empty.")
    points: float | None = Field(description="null = not applicable, left out of the group sum.")
    max: float
    lost: float | None
    empty: bool
    terms: dict[str, float | None] = Field(default_factory=dict)
    external_code: str | None = Field(
        default=None, description="The national portal's metric code.", examples=["ON_TIME"]
    )
    informational: bool = Field(
        default=False, description="Shown, never scored: points null, in no sum."
    )
    value: float | None = Field(
        default=None, description="Informational counts and means (hồ sơ, ngày)."
    )


class GroupFigure(BaseModel):
    group: str
    points: float | None
    max: float
    applicable_max: float
    lost: float | None


class Contributor(BaseModel):
    procedure: str
    unit: str
    count: float
    share: float
    points: float


class Explanation(BaseModel):
    indicator: str
    rule: str
    lost: float
    max: float
    shortfall: float
    shortfall_label: str
    contributors: list[Contributor]
    by_unit: list[tuple[str, float]]
    by_procedure: list[tuple[str, float]]
    text: str = Field(examples=[
        "Tỷ lệ hồ sơ giải quyết đúng hạn, trong hạn: mất 0,8/20 điểm: 312 hồ sơ trễ hạn, 60% "
        "trong số đó thuộc thủ tục «Cấp giấy phép xây dựng» (1.004) tại Sở Xây dựng"
    ])  # fmt: skip
    text_en: str = Field(default="", examples=[
        "Dossiers on time or within time: lost 0.8 of 20 points: 312 late dossiers, 60% of them "
        "in procedure «Cấp giấy phép xây dựng» (1.004) at Sở Xây dựng"
    ])  # fmt: skip
    name: str = Field(default="", description="The indicator's Vietnamese name.")


class Freshness(BaseModel):
    last_event_at: datetime | None = Field(description="When the last event was applied.")
    recompute_pending: bool = Field(description="Newer facts are queued for recomputation.")
    stale_pairs: int = Field(description="Unit-months queued (counted up to 10,000).")
    oldest_stale_at: datetime | None


class Snapshot(BaseModel):
    unit_id: str
    period: str = Field(examples=["2026Q3"])
    profile: str = Field(examples=["766@1"])
    version: int
    computed_at: datetime
    total: float | None
    max_total: float
    applicable_max: float
    rank: int | None
    previous_rank: int | None
    decision_groups: dict[str, float | None]
    groups: dict[str, GroupFigure]
    indicators: dict[str, IndicatorFigure]
    counters: dict[str, float]
    explanation: list[Explanation]
    not_applicable: list[str] = Field(
        default_factory=list, description="Groups with nothing to score (null, not zero)."
    )
    not_applicable_indicators: list[str] = Field(default_factory=list)
    freshness: Freshness | None = None


class RankingRow(BaseModel):
    unit_id: str
    name: str
    level: str
    kind: str
    peer_group: str | None
    rank: int | None
    previous_rank: int | None
    rank_change: int | None = Field(description="Places gained since the previous period.")
    value: float | None = Field(
        description="What the ranking orders by: total, group or indicator."
    )
    total: float | None
    groups: dict[str, float | None]
    peers: int | None = Field(default=None, description="Units ranked in the peer group.")
    max_total: float = Field(default=100, description="The total is out of this (100).")
    applicable_max: float | None = Field(
        default=None, description="What the applicable indicators could give."
    )
    not_applicable: list[str] = Field(
        default_factory=list, description="Groups with nothing to score (null, not zero)."
    )
    computed_at: datetime | None = None
    data_as_of: datetime | None = Field(
        default=None, description="When the last event (facts) was applied."
    )
    recompute_pending: bool = Field(
        default=False, description="Figures are being recomputed: newer facts are queued."
    )


class SeriesPoint(BaseModel):
    period: str
    total: float | None
    groups: dict[str, float | None] | None
    version: int | None


class Alert(BaseModel):
    alert_id: str
    rule: str
    unit_id: str
    indicator: str
    period: str
    status: str
    message: str
    value: float | None
    threshold: float | None
    raised_at: datetime
    cleared_at: datetime | None
    title: str = Field(default="", description="Vietnamese: what, whose, which period.")
    title_en: str = ""
    message_en: str = Field(default="", description="The message in English.")
    period_kind: str = Field(default="month", description="One open alert per kind.")
    in_progress: bool = Field(
        default=False, description="The period was running: judged on the data so far."
    )
    judged_on: date | None = Field(default=None, description="Last day the data covered.")
    cleared_reason: str | None = Field(default=None, examples=["chỉ số đã đạt"])
    title_vi: str | None = Field(default=None, description="With Accept-Language: en.")
    message_vi: str | None = Field(default=None, description="With Accept-Language: en.")


class OfficialDifference(BaseModel):
    unit_id: str
    item: str
    official: float | None = Field(description="null: published without points.")
    source: str
    ours: float | None
    difference: float | None
    kind: str = Field(default="indicator", description="total, group or indicator.")
    external_code: str | None = Field(default=None, examples=["ON_TIME"])
    name: str | None = Field(default=None, description="The indicator's Vietnamese name.")
    official_max: float | None = None
    official_numerator: float | None = None
    official_denominator: float | None = None
    official_ratio: float | None = None
    our_numerator: float | None = None
    our_denominator: float | None = None
    our_ratio: float | None = None
    differs: str | None = Field(
        default=None,
        description="Which input explains the gap: numerator, denominator, both (a data gap), "
        "method (same inputs), none (agree), unknown (no published counts). For the total, "
        "where the portal published every group: portal_total (its total is not the sum of "
        "its own groups), groups (it is, and the groups differ) or none.",
    )
    official_groups_sum: float | None = Field(
        default=None,
        description="For the total: the sum of the portal's own group points, where it "
        "published every group.",
    )
    note: str = Field(default="", description="The same in Vietnamese words.")
