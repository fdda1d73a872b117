"""Pure scoring engine: counters of one (unit, period) → a scorecard.

Counters are already aggregated (sums of leaf counters, see `facts.aggregate`); the engine never
averages scores of children. Results are rounded to 4 decimals at the indicator level and group
and total are sums of those rounded points, so the same counters always give the same numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from services.scoring.domain.profile import Profile
from services.scoring.domain.rules import points_for, ratio

DP = 4


def _r(x: float | None) -> float | None:
    return None if x is None else round(x + 0.0, DP)


@dataclass(slots=True)
class IndicatorResult:
    indicator: str
    code: str
    group: str
    rule: str
    """The profile rule that produced the figure, e.g. `766@1:prog_on_time`."""
    numerator: float
    denominator: float
    ratio: float | None
    points: float | None
    """None = null (empty denominator under a `null` rule), left out of the group sum."""
    max: float
    empty: bool
    terms: dict[str, float | None] = field(default_factory=dict)
    """Ratios of composite terms, by term id."""
    lost: float | None = field(init=False)
    """max − points (None when null): a field, so the stored document is the dataclass."""

    def __post_init__(self) -> None:
        self.lost = None if self.points is None else _r(self.max - self.points)


@dataclass(slots=True)
class GroupResult:
    group: str
    points: float | None
    max: float
    applicable_max: float
    """Sum of the maxima of indicators that are not null."""
    lost: float | None = field(init=False)
    """applicable max − points (None when null)."""

    def __post_init__(self) -> None:
        self.lost = None if self.points is None else _r(self.applicable_max - self.points)


@dataclass(frozen=True)
class Scorecard:
    profile: str
    total: float | None
    max_total: float
    applicable_max: float
    groups: dict[str, GroupResult]
    indicators: dict[str, IndicatorResult]
    counters: dict[str, float]

    @property
    def lost(self) -> float | None:
        return None if self.total is None else _r(self.applicable_max - self.total)

    def decision_group_points(self, profile: Profile) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for d in profile.decision_groups:
            pts = [
                g.points
                for g in self.groups.values()
                if profile.group(g.group).decision_group == d.id and g.points is not None
            ]
            out[d.id] = _r(sum(pts)) if pts else None
        return out


def score(profile: Profile, counters: Mapping[str, float]) -> Scorecard:
    c = {k: float(v) for k, v in counters.items()}
    indicators: dict[str, IndicatorResult] = {}
    for ind in profile.indicators:
        r, pts, empty = points_for(ind, c)
        terms: dict[str, float | None] = {}
        if ind.rule.kind == "composite":
            terms = {
                t.id: _r(ratio(c.get(t.numerator, 0.0), c.get(t.denominator, 0.0)))
                for t in ind.rule.terms
            }
        indicators[ind.id] = IndicatorResult(
            indicator=ind.id,
            code=ind.code,
            group=ind.group,
            rule=profile.rule_id(ind.id),
            numerator=c.get(ind.numerator, 0.0),
            denominator=c.get(ind.denominator, 0.0),
            ratio=_r(r),
            points=_r(pts),
            max=ind.max,
            empty=empty,
            terms=terms,
        )
    groups: dict[str, GroupResult] = {}
    for g in profile.groups:
        members = [i for i in indicators.values() if i.group == g.id]
        scored = [i for i in members if i.points is not None]
        groups[g.id] = GroupResult(
            group=g.id,
            points=_r(sum(i.points for i in scored if i.points is not None)) if scored else None,
            max=g.max,
            applicable_max=_r(sum(i.max for i in scored)) or 0.0,
        )
    scored_groups = [g for g in groups.values() if g.points is not None]
    total = (
        _r(sum(g.points for g in scored_groups if g.points is not None)) if scored_groups else None
    )
    return Scorecard(
        profile=profile.key,
        total=total,
        max_total=profile.max_total,
        applicable_max=_r(sum(g.applicable_max for g in groups.values())) or 0.0,
        groups=groups,
        indicators=indicators,
        counters=c,
    )
