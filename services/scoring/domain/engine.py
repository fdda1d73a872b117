"""Pure scoring engine: counters of one (unit, period) → a scorecard.

Counters are already aggregated (sums of leaf counters, see `facts.aggregate`); the engine never
averages scores of children. Results are rounded to 4 decimals at the indicator level and group
and total are sums of those rounded points, so the same counters always give the same numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from services.scoring.domain.profile import Indicator, Profile
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


@dataclass(frozen=True, slots=True)
class _Plan:
    """What `score` reads of a profile, resolved once: per indicator its rule id and whether it
    is composite; per group the positions of its indicators."""

    indicators: tuple[tuple[Indicator, str, bool], ...]
    groups: tuple[tuple[str, float, tuple[int, ...]], ...]


_PLANS: dict[int, tuple[Profile, _Plan]] = {}


def _plan(profile: Profile) -> _Plan:
    # keyed by identity (a profile holds dicts, so it does not hash); the profile is kept with
    # its plan so that its id cannot be reused by another object
    hit = _PLANS.get(id(profile))
    if hit is not None and hit[0] is profile:
        return hit[1]
    inds = profile.indicators
    plan = _Plan(
        indicators=tuple(
            (ind, profile.rule_id(ind.id), ind.rule.kind == "composite") for ind in inds
        ),
        groups=tuple(
            (g.id, g.max, tuple(n for n, ind in enumerate(inds) if ind.group == g.id))
            for g in profile.groups
        ),
    )
    if len(_PLANS) > 64:
        _PLANS.clear()
    _PLANS[id(profile)] = (profile, plan)
    return plan


def score(profile: Profile, counters: Mapping[str, float]) -> Scorecard:
    plan = _plan(profile)
    c = {k: float(v) for k, v in counters.items()}
    get = c.get
    results: list[IndicatorResult] = []
    for ind, rule_id, composite in plan.indicators:
        r, pts, empty = points_for(ind, c)
        terms: dict[str, float | None] = {}
        if composite:
            terms = {
                t.id: _r(ratio(get(t.numerator, 0.0), get(t.denominator, 0.0)))
                for t in ind.rule.terms
            }
        results.append(
            IndicatorResult(
                indicator=ind.id,
                code=ind.code,
                group=ind.group,
                rule=rule_id,
                numerator=get(ind.numerator, 0.0),
                denominator=get(ind.denominator, 0.0),
                ratio=_r(r),
                points=_r(pts),
                max=ind.max,
                empty=empty,
                terms=terms,
            )
        )
    groups: dict[str, GroupResult] = {}
    for group_id, group_max, members in plan.groups:
        scored = [results[n] for n in members if results[n].points is not None]
        groups[group_id] = GroupResult(
            group=group_id,
            points=_r(sum(i.points for i in scored if i.points is not None)) if scored else None,
            max=group_max,
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
        indicators={i.indicator: i for i in results},
        counters=c,
    )
