"""Pure scoring rules: ratio → points, as the profile's data says. No I/O, deterministic."""

from __future__ import annotations

from collections.abc import Mapping

from services.scoring.domain.profile import EPS, Indicator, Rule, Term

Counters = Mapping[str, float]


def ratio(numerator: float, denominator: float) -> float | None:
    """numerator ÷ denominator clamped to [0, 1]; None when the denominator is empty."""
    if denominator <= 0:
        return None
    return min(1.0, max(0.0, numerator / denominator))


def shaped(max_points: float, r: float, kind: str, threshold: float | None) -> float:
    """linear: max·R; full_at_threshold: max·min(1, R/threshold)."""
    if kind == "full_at_threshold":
        assert threshold is not None
        return max_points * min(1.0, r / threshold)
    return max_points * r


def stepwise(rule: Rule, r: float) -> float:
    """Points of the highest step whose `at_least` R reaches (tolerant of float noise)."""
    points = 0.0
    for s in rule.steps:
        if r + EPS >= s.at_least:
            points = s.points
    return points


def indicator_ratio(ind: Indicator, c: Counters) -> float | None:
    """The indicator's R, or None when its (primary) denominator is empty.

    `one_minus_rates`: R = 1 − Σ numᵢ/denᵢ (a rate with an empty denominator adds 0), clamped.
    """
    num, den = c.get(ind.numerator, 0.0), c.get(ind.denominator, 0.0)
    if ind.ratio == "simple":
        return ratio(num, den)
    if c.get(ind.rates[0].denominator, 0.0) <= 0:
        return None
    total = 0.0
    for rt in ind.rates:
        rr = ratio(c.get(rt.numerator, 0.0), c.get(rt.denominator, 0.0))
        total += rr or 0.0
    return max(0.0, 1.0 - total)


def term_points(t: Term, c: Counters) -> tuple[float | None, float]:
    r = ratio(c.get(t.numerator, 0.0), c.get(t.denominator, 0.0))
    return r, (0.0 if r is None else shaped(t.max, r, t.kind, t.threshold))


def points_for(ind: Indicator, c: Counters) -> tuple[float | None, float | None, bool]:
    """(ratio, points, empty) of one indicator.

    Empty denominator → the indicator's `empty` rule: None (null, left out of the group sum),
    0, or full points. A composite is empty only when every term's denominator is empty; a term
    with an empty denominator otherwise scores 0. Points never exceed the indicator's max.
    """
    rule = ind.rule
    if rule.kind == "composite":
        results = [term_points(t, c) for t in rule.terms]
        if all(r is None for r, _ in results):
            return None, _empty_points(ind), True
        pts = min(ind.max, sum(p for _, p in results))
        return indicator_ratio(ind, c), pts, False
    r = indicator_ratio(ind, c)
    if r is None:
        return None, _empty_points(ind), True
    if rule.kind == "stepwise":
        pts = stepwise(rule, r)
    else:
        pts = shaped(ind.max, r, rule.kind, rule.threshold)
    return r, min(ind.max, pts), False


def _empty_points(ind: Indicator) -> float | None:
    if ind.empty == "null":
        return None
    return 0.0 if ind.empty == "zero" else ind.max
