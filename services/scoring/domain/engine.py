"""Pure scoring engine: counters of one (unit, period) → a scorecard.

Counters are already aggregated (sums of leaf counters, see `facts.aggregate`); the engine never
averages scores of children. Results are rounded to 4 decimals at the indicator level and group
and total are sums of those rounded points, so the same counters always give the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from services.scoring.domain.profile import Indicator, Profile
from services.scoring.domain.rules import points_for, ratio

DP = 4


def _r(x: float | None) -> float | None:
    return None if x is None else round(x + 0.0, DP)


def rounder(profile: Profile) -> Callable[[float | None], float | None]:
    """The profile's rounding of points: Python's `round` to `points_dp` (v1: 4 decimals), or
    half up on the decimal value as the portal shows its points (0.125 → 0.13); the 1e-9 absorbs
    binary noise such as 6·0.9275 = 5.564999…"""
    dp = profile.points_dp
    if profile.rounding == "even":
        return lambda x: None if x is None else round(x + 0.0, dp)
    f = 10.0**dp

    def half_up(x: float | None) -> float | None:
        if x is None:
            return None
        return math.copysign(math.floor(abs(x) * f + 0.5 + 1e-9) / f, x) + 0.0

    return half_up


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
    external_code: str | None = None
    """The portal's metric code (profiles from 766@2)."""
    informational: bool = False
    """Shown, never scored: points stay None and count in no sum."""
    value: float | None = None
    """Informational counts and means (received, average days); None otherwise."""
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
    groups: tuple[tuple[str, float, tuple[int, ...], bool], ...]
    round: Callable[[float | None], float | None]


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
            (g.id, g.max, tuple(n for n, ind in enumerate(inds) if ind.group == g.id), g.cap)
            for g in profile.groups
        ),
        round=rounder(profile),
    )
    if len(_PLANS) > 64:
        _PLANS.clear()
    _PLANS[id(profile)] = (profile, plan)
    return plan


def _informational(ind: Indicator, c: Mapping[str, float]) -> tuple[float | None, float | None]:
    """(ratio, value) of an informational indicator."""
    num, den = c.get(ind.numerator, 0.0), c.get(ind.denominator, 0.0)
    if ind.display == "count":
        return None, num
    if ind.display == "mean":
        return None, (num / den * ind.scale if den > 0 else None)
    return ratio(num, den), None


def score(profile: Profile, counters: Mapping[str, float]) -> Scorecard:
    plan = _plan(profile)
    rnd = plan.round
    c = {k: float(v) for k, v in counters.items()}
    get = c.get
    results: list[IndicatorResult] = []
    for ind, rule_id, composite in plan.indicators:
        value: float | None = None
        if ind.informational:
            r, value = _informational(ind, c)
            pts: float | None = None
            empty = get(ind.denominator, 0.0) <= 0 and ind.display != "count"
        else:
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
                points=rnd(pts),
                max=ind.max,
                empty=empty,
                terms=terms,
                external_code=ind.external_code,
                informational=ind.informational,
                value=_r(value),
            )
        )
    groups: dict[str, GroupResult] = {}
    for group_id, group_max, members, cap in plan.groups:
        scored = [
            results[n]
            for n in members
            if results[n].points is not None and not results[n].informational
        ]
        points = rnd(sum(i.points for i in scored if i.points is not None)) if scored else None
        applicable = _r(sum(i.max for i in scored)) or 0.0
        if cap:
            points = None if points is None else min(group_max, points)
            applicable = min(group_max, applicable)
        groups[group_id] = GroupResult(
            group=group_id, points=points, max=group_max, applicable_max=applicable
        )
    scored_groups = [g for g in groups.values() if g.points is not None]
    total = (
        rnd(sum(g.points for g in scored_groups if g.points is not None)) if scored_groups else None
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


def card_from_doc(profile: Profile, doc: Mapping[str, Any]) -> Scorecard:
    """The scorecard a snapshot document of `profile` stores (`store.snapshots.encode_doc`):
    each indicator's figures from the document, what the profile version fixes (code, group,
    rule, max, external code, informational) from the profile. Indicators the profile no longer
    has are left out (a profile version does not change, so none are)."""
    plan = _plan(profile)
    stored = doc["indicators"]
    inds: dict[str, IndicatorResult] = {}
    for ind, rule_id, _ in plan.indicators:
        got = stored.get(ind.id)
        if got is None:
            continue
        inds[ind.id] = IndicatorResult(
            indicator=ind.id, code=ind.code, group=ind.group, rule=rule_id,
            numerator=got["numerator"], denominator=got["denominator"], ratio=got["ratio"],
            points=got["points"], max=ind.max, empty=got["empty"], terms=got.get("terms", {}),
            external_code=ind.external_code, informational=ind.informational,
            value=got.get("value"),
        )  # fmt: skip
    groups = {
        k: GroupResult(group=g["group"], points=g["points"], max=g["max"],
                       applicable_max=g["applicable_max"])
        for k, g in doc["groups"].items()
    }  # fmt: skip
    return Scorecard(profile.key, doc["total"], doc["max_total"], doc["applicable_max"], groups,
                     inds, doc["counters"])  # fmt: skip


def indicator_constants(profile: Profile) -> dict[str, dict[str, Any]]:
    """What `profile` fixes of each indicator's result (`IndicatorResult`'s code, group, rule,
    max, external code, informational): the part a snapshot does not store."""
    return {
        ind.id: {"code": ind.code, "group": ind.group, "rule": rule_id, "max": ind.max,
                 "external_code": ind.external_code, "informational": ind.informational}
        for ind, rule_id, _ in _plan(profile).indicators
    }  # fmt: skip
