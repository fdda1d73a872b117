"""Response schemas of the scoring API (the OpenAPI contract)."""

from __future__ import annotations

from datetime import datetime

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
        "lost 0.8 of 20 points: 312 late dossiers, 60% of them in procedure 1.004 at Sở Xây dựng"
    ])  # fmt: skip


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


class OfficialDifference(BaseModel):
    unit_id: str
    item: str
    official: float
    source: str
    ours: float | None
    difference: float | None
