"""Methodology profiles as typed data: groups, indicators, scoring and empty-denominator rules.

Profiles live as YAML under `profiles/`; a province variant `extends` a base profile and overrides
indicator fields or per-level targets. Nothing about the methodology is a code constant.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.scoring.domain.facts import COUNTERS

PROFILES_DIR = Path(__file__).parent / "profiles"
EPS = 1e-9

RuleKind = Literal["linear", "full_at_threshold", "stepwise", "composite"]
TermKind = Literal["linear", "full_at_threshold"]
EmptyRule = Literal["null", "zero", "full"]
"""What an empty denominator gives: null (left out of the group sum), 0, or full points
(`full_when_empty`)."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _check_counter(name: str) -> str:
    if name not in COUNTERS:
        raise ValueError(f"unknown fact counter {name!r}")
    return name


class Step(_Model):
    at_least: float = Field(ge=0)
    points: float = Field(ge=0)


class Term(_Model):
    """One term of a composite rule: its own ratio, max and shape."""

    id: str
    name_en: str | None = None
    numerator: str
    denominator: str
    max: float = Field(gt=0)
    kind: TermKind = "linear"
    threshold: float | None = Field(default=None, gt=0, le=1)

    @model_validator(mode="after")
    def _valid(self) -> Term:
        _check_counter(self.numerator)
        _check_counter(self.denominator)
        if self.kind == "full_at_threshold" and self.threshold is None:
            raise ValueError(f"term {self.id}: full_at_threshold needs a threshold")
        return self


class Rule(_Model):
    kind: RuleKind
    threshold: float | None = Field(default=None, gt=0, le=1)
    steps: tuple[Step, ...] = ()
    terms: tuple[Term, ...] = ()

    @model_validator(mode="after")
    def _valid(self) -> Rule:
        if self.kind == "full_at_threshold" and self.threshold is None:
            raise ValueError("full_at_threshold needs a threshold")
        if self.kind == "stepwise":
            if not self.steps:
                raise ValueError("stepwise needs steps")
            ats = [s.at_least for s in self.steps]
            if ats != sorted(ats) or len(set(ats)) != len(ats):
                raise ValueError("stepwise steps must have strictly increasing at_least")
        if self.kind == "composite" and not self.terms:
            raise ValueError("composite needs terms")
        return self


class RateTerm(_Model):
    numerator: str
    denominator: str

    @model_validator(mode="after")
    def _valid(self) -> RateTerm:
        _check_counter(self.numerator)
        _check_counter(self.denominator)
        return self


Display = Literal["ratio", "count", "mean"]
"""What an informational indicator shows: a share (numerator ÷ denominator), a count (the
numerator), or a mean (numerator ÷ denominator × `scale`, e.g. hours → days)."""


class Indicator(_Model):
    id: str
    code: str
    external_code: str | None = Field(
        default=None, description="The national portal's metric code, e.g. ON_TIME."
    )
    group: str
    name: str
    name_en: str
    max: float = Field(ge=0)
    informational: bool = Field(
        default=False,
        description="Computed and shown, never scored nor summed (max 0 on the portal).",
    )
    display: Display = "ratio"
    scale: float = Field(default=1.0, gt=0)
    unit_label: str | None = Field(default=None, description="e.g. %, ngày, hồ sơ.")
    numerator: str
    denominator: str
    ratio: Literal["simple", "one_minus_rates"] = "simple"
    rates: tuple[RateTerm, ...] = ()
    rule: Rule
    empty: EmptyRule
    shortfall_label: str
    shortfall_label_vi: str | None = Field(
        default=None, description="The shortfall in Vietnamese, shown first in explanations."
    )
    shortfall_counter: str | None = Field(
        default=None,
        description="Counter whose breakdown explains lost points; default denominator−numerator.",
    )

    @model_validator(mode="after")
    def _valid(self) -> Indicator:
        _check_counter(self.numerator)
        _check_counter(self.denominator)
        if self.informational != (self.max == 0):
            raise ValueError(f"{self.id}: an indicator has max 0 exactly when informational")
        if self.display != "ratio" and not self.informational:
            raise ValueError(f"{self.id}: only informational indicators show counts or means")
        if self.shortfall_counter:
            _check_counter(self.shortfall_counter)
        if self.ratio == "one_minus_rates" and not self.rates:
            raise ValueError(f"{self.id}: one_minus_rates needs rates")
        for s in self.rule.steps:
            if s.points > self.max + EPS:
                raise ValueError(f"{self.id}: a step gives more than the max")
        if self.rule.kind == "composite" and sum(t.max for t in self.rule.terms) < self.max - EPS:
            raise ValueError(f"{self.id}: composite terms cannot reach the max")
        return self


class Group(_Model):
    id: str
    external_code: str | None = Field(default=None, description="The portal's group code.")
    decision_group: str
    name: str
    name_en: str
    max: float = Field(gt=0)
    fit: str | None = None
    cap: bool = Field(
        default=False,
        description="The group's points are capped at its max; its indicators' maxima may "
        "sum to more (the portal's online-payment fit 6·A + min(2, 2.5·B) + 2.5·C ≤ 10).",
    )


class DecisionGroup(_Model):
    id: str
    name: str
    max: float


class ProfileRef(_Model):
    id: str
    version: int


class Profile(_Model):
    id: str
    version: int = Field(ge=1)
    name: str
    source: str | None = None
    fact_rule: str
    max_total: float
    points_dp: int = Field(
        default=4, ge=0, le=6, description="Decimals indicator points are rounded to."
    )
    rounding: Literal["even", "half_up"] = Field(
        default="even",
        description="How points are rounded: Python's round (ties to even, on the binary "
        "value) or half up on the decimal value, as the portal shows them.",
    )
    decision_groups: tuple[DecisionGroup, ...]
    groups: tuple[Group, ...]
    indicators: tuple[Indicator, ...]
    targets: dict[str, dict[str, float]] = Field(default_factory=dict)
    peer_classes: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="Who is ranked with whom: {level: {unit kind or '*': peer class}}. Units of "
        "one class and province are peers; a level not listed ranks by level and kind.",
    )
    aliases: dict[str, str] = Field(
        default_factory=dict,
        description="Indicator ids of earlier versions → the indicator of this one that stands "
        "for each (what other frameworks, e.g. PAR INDEX leaves, may still name).",
    )
    extends: ProfileRef | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Profile:
        ids = [i.id for i in self.indicators]
        if len(set(ids)) != len(ids):
            raise ValueError("duplicate indicator ids")
        groups = {g.id: g for g in self.groups}
        dgroups = {d.id: d for d in self.decision_groups}
        for i in self.indicators:
            if i.group not in groups:
                raise ValueError(f"{i.id}: unknown group {i.group}")
        for g in self.groups:
            if g.decision_group not in dgroups:
                raise ValueError(f"group {g.id}: unknown decision group {g.decision_group}")
            s = sum(i.max for i in self.indicators if i.group == g.id)
            if (s < g.max - EPS) if g.cap else (abs(s - g.max) > EPS):
                raise ValueError(f"group {g.id}: indicator maxima sum to {s}, not {g.max}")
        for d in self.decision_groups:
            s = sum(g.max for g in self.groups if g.decision_group == d.id)
            if abs(s - d.max) > EPS:
                raise ValueError(f"decision group {d.id}: groups sum to {s}, not {d.max}")
        if abs(sum(g.max for g in self.groups) - self.max_total) > EPS:
            raise ValueError("group maxima do not sum to max_total")
        for old, new in self.aliases.items():
            if new not in ids or old in ids:
                raise ValueError(f"alias {old} → {new}: must name an indicator, not be one")
        for level, targets in self.targets.items():
            for ind, t in targets.items():
                if ind not in ids:
                    raise ValueError(f"target for unknown indicator {ind} at level {level}")
                if self.indicator(ind).informational:
                    raise ValueError(f"target for informational indicator {ind}")
                if not 0 <= t <= 1:
                    raise ValueError(f"target {ind}@{level} must be a ratio in [0, 1]")
        return self

    @property
    def key(self) -> str:
        return f"{self.id}@{self.version}"

    def indicator(self, indicator_id: str) -> Indicator:
        for i in self.indicators:
            if i.id == indicator_id:
                return i
        raise KeyError(indicator_id)

    def by_external_code(self, code: str) -> Indicator | None:
        """The indicator the portal publishes as metric `code`, if any."""
        for i in self.indicators:
            if i.external_code == code:
                return i
        return None

    def group(self, group_id: str) -> Group:
        for g in self.groups:
            if g.id == group_id:
                return g
        raise KeyError(group_id)

    def rule_id(self, indicator_id: str) -> str:
        """The id every figure of this indicator cites, e.g. `766@1:prog_on_time`."""
        return f"{self.key}:{indicator_id}"

    def peer_class_rows(self) -> list[dict[str, str]]:
        """`peer_classes` as (level, kind, class) rows for the ranking statement."""
        return [
            {"level": level, "kind": kind, "class": cls}
            for level, kinds in sorted(self.peer_classes.items())
            for kind, cls in sorted(kinds.items())
        ]

    def target(self, level: str, indicator_id: str) -> float | None:
        return self.targets.get(level, {}).get(indicator_id)


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = (
            _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
        )
    return out


def apply_variant(base: Profile, variant: dict[str, Any]) -> Profile:
    """A province's variant: `indicators: {id: {field: value}}` overrides fields of base
    indicators, `targets: {level: {indicator: ratio}}` replaces the base targets of those levels."""
    data = base.model_dump(mode="python")
    over_ind: dict[str, dict[str, Any]] = variant.get("indicators") or {}
    unknown = set(over_ind) - {i["id"] for i in data["indicators"]}
    if unknown:
        raise ValueError(f"variant overrides unknown indicators: {sorted(unknown)}")
    data["indicators"] = [
        _deep_merge(i, over_ind[i["id"]]) if i["id"] in over_ind else i for i in data["indicators"]
    ]
    data["targets"] = {**data["targets"], **(variant.get("targets") or {})}
    for k in ("id", "version", "name", "source"):
        if k in variant:
            data[k] = variant[k]
    data["extends"] = {"id": base.id, "version": base.version}
    return Profile.model_validate(data)


def parse_profile(raw: dict[str, Any], resolve: Any = None) -> Profile:
    """Parse a profile document; one with `extends` is applied over the base it names
    (`resolve(id, version) -> Profile`, default: the bundled profiles)."""
    ext = raw.get("extends")
    if ext:
        base = (resolve or load_profile)(str(ext["id"]), int(ext["version"]))
        return apply_variant(base, {k: v for k, v in raw.items() if k != "extends"})
    return Profile.model_validate(raw)


def _read(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a mapping")
    return data


@cache
def bundled_profiles() -> dict[tuple[str, int], Profile]:
    """Every profile under `profiles/` (files named `*_v*.yaml`), keyed by (id, version)."""
    raws = [_read(p) for p in sorted(PROFILES_DIR.glob("*_v*.yaml"))]
    out: dict[tuple[str, int], Profile] = {}
    for raw in sorted(raws, key=lambda r: r.get("extends") is not None):
        prof = parse_profile(raw, resolve=lambda i, v: out[(i, v)])
        key = (prof.id, prof.version)
        if key in out:
            raise ValueError(f"profile {prof.key} defined twice")
        out[key] = prof
    return out


def load_profile(profile_id: str = "766", version: int | None = None) -> Profile:
    profs = bundled_profiles()
    if version is None:
        versions = [v for (i, v) in profs if i == profile_id]
        if not versions:
            raise KeyError(profile_id)
        version = max(versions)
    return profs[(profile_id, version)]
