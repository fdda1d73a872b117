"""PAR INDEX (annual administrative-reform index): a criteria tree per year, loaded as data.

Field → criterion → component criterion (TCTP), each with a max. A leaf gets its points either
from a metric (a computed ratio: a 766 indicator, or a remediation share) through a rule, or from
an inspector's entry that must cite evidence. A node's points are the sum of its children's,
capped at its max; a node with no scored child is null.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.scoring.domain.profile import EPS, PROFILES_DIR, Rule
from services.scoring.domain.rules import shaped, stepwise

DP = 4


class ParNode(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str
    name: str
    max: float = Field(gt=0)
    children: tuple[ParNode, ...] = ()
    source: Literal["sum", "metric", "inspector"] = "sum"
    metric: str | None = None
    rule: Rule | None = None
    assessment: Literal["appraisal", "survey"] = "appraisal"

    @model_validator(mode="after")
    def _valid(self) -> ParNode:
        if self.children:
            if self.source != "sum":
                raise ValueError(f"{self.code}: a node with children is the sum of them")
            s = sum(c.max for c in self.children)
            if s > self.max + EPS:
                raise ValueError(f"{self.code}: children maxima {s} exceed {self.max}")
            for c in self.children:
                if not c.code.startswith(self.code + "."):
                    raise ValueError(f"{c.code} is not under {self.code}")
        elif self.source == "sum":
            raise ValueError(f"{self.code}: a leaf needs a source (metric or inspector)")
        if self.source == "metric" and (self.metric is None or self.rule is None):
            raise ValueError(f"{self.code}: a metric leaf needs a metric and a rule")
        if self.rule and self.rule.kind not in ("linear", "full_at_threshold", "stepwise"):
            raise ValueError(f"{self.code}: unsupported rule {self.rule.kind}")
        if self.rule:
            for st in self.rule.steps:
                if st.points > self.max + EPS:
                    raise ValueError(f"{self.code}: a step gives more than the max")
        return self

    def walk(self) -> Iterator[ParNode]:
        yield self
        for c in self.children:
            yield from c.walk()


class ParFramework(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    year: int
    decision: str
    max_total: float
    appraisal_max: float
    survey_max: float
    complete: bool
    fields: tuple[ParNode, ...]

    @model_validator(mode="after")
    def _valid(self) -> ParFramework:
        s = sum(f.max for f in self.fields)
        if abs(s - self.max_total) > EPS:
            raise ValueError(f"field maxima sum to {s}, not {self.max_total}")
        if abs(self.appraisal_max + self.survey_max - self.max_total) > EPS:
            raise ValueError("appraisal + survey maxima must equal the total")
        codes = [n.code for f in self.fields for n in f.walk()]
        if len(codes) != len(set(codes)):
            raise ValueError("duplicate criterion codes")
        if self.complete:
            for n in (n for f in self.fields for n in f.walk() if n.children):
                if abs(sum(c.max for c in n.children) - n.max) > EPS:
                    raise ValueError(f"{n.code}: a complete tree's children fill their parent")
        return self

    def node(self, code: str) -> ParNode:
        for f in self.fields:
            for n in f.walk():
                if n.code == code:
                    return n
        raise KeyError(code)

    def leaves(self) -> list[ParNode]:
        return [n for f in self.fields for n in f.walk() if not n.children]


def load_par_framework(year: int) -> ParFramework:
    path: Path = PROFILES_DIR / "par" / f"{year}.yaml"
    return ParFramework.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))


class InspectorEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str
    points: float = Field(ge=0)
    evidence: str = Field(min_length=3, description="Document, link or note backing the points.")
    entered_by: str


@dataclass(frozen=True)
class ParResult:
    code: str
    name: str
    max: float
    points: float | None
    source: str
    value: float | None = None
    """The metric's ratio, for metric leaves."""
    evidence: str | None = None
    children: list[ParResult] = field(default_factory=list)


def score_par(
    framework: ParFramework,
    metrics: Mapping[str, float | None],
    entries: Mapping[str, InspectorEntry],
) -> ParResult:
    """Score the tree. Inspector entries above a leaf's max, or for an unknown or non-inspector
    criterion, are rejected (ValueError) rather than silently capped."""
    leaf_codes = {n.code: n for n in framework.leaves()}
    for code, e in entries.items():
        n = leaf_codes.get(code)
        if n is None or n.source != "inspector":
            raise ValueError(f"{code}: not an inspector-scored component criterion")
        if e.points > n.max + EPS:
            raise ValueError(f"{code}: {e.points} exceeds the max {n.max}")

    def go(n: ParNode) -> ParResult:
        if n.children:
            kids = [go(c) for c in n.children]
            scored = [k.points for k in kids if k.points is not None]
            pts = round(min(n.max, sum(scored)), DP) if scored else None
            return ParResult(n.code, n.name, n.max, pts, "sum", children=kids)
        if n.source == "inspector":
            e = entries.get(n.code)
            if e is None:
                return ParResult(n.code, n.name, n.max, None, "inspector")
            return ParResult(n.code, n.name, n.max, e.points, "inspector", evidence=e.evidence)
        assert n.metric is not None and n.rule is not None
        r = metrics.get(n.metric)
        if r is None:
            return ParResult(n.code, n.name, n.max, None, "metric")
        if n.rule.kind == "stepwise":
            pts = stepwise(n.rule, r)
        else:
            pts = shaped(n.max, r, n.rule.kind, n.rule.threshold)
        return ParResult(n.code, n.name, n.max, round(min(n.max, pts), DP), "metric", value=r)

    fields = [go(f) for f in framework.fields]
    scored = [f.points for f in fields if f.points is not None]
    total = round(min(framework.max_total, sum(scored)), DP) if scored else None
    return ParResult(
        framework.id, framework.decision, framework.max_total, total, "sum", None, None, fields
    )


def framework_for(year: int) -> ParFramework:
    """The framework in force for `year`: the newest one published for that year or before."""
    years = sorted(int(p.stem) for p in (PROFILES_DIR / "par").glob("*.yaml") if p.stem.isdigit())
    usable = [y for y in years if y <= year]
    if not usable:
        raise FileNotFoundError(f"no PAR INDEX framework for {year} or before")
    return load_par_framework(usable[-1])
