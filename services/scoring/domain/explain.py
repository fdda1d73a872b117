"""Explanations: which indicators cost points, and what inside them cost the most.

Input per indicator is a list of breakdown rows `(procedure, unit, count)` of its *shortfall*
(late dossiers, dossiers not synced, …) — the store supplies them from the (unit, procedure,
month) leaf table; `facts.shortfall_rows` is the reference implementation. Lost points are
attributed to rows pro rata of their share of the shortfall.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from services.scoring.domain.engine import Scorecard
from services.scoring.domain.profile import Profile


@dataclass(frozen=True)
class BreakdownRow:
    procedure: str
    unit: str
    count: float


@dataclass(frozen=True)
class Contributor:
    procedure: str
    unit: str
    count: float
    share: float
    points: float


@dataclass(frozen=True)
class IndicatorExplanation:
    indicator: str
    rule: str
    lost: float
    max: float
    shortfall: float
    shortfall_label: str
    contributors: list[Contributor] = field(default_factory=list)
    by_unit: list[tuple[str, float]] = field(default_factory=list)
    by_procedure: list[tuple[str, float]] = field(default_factory=list)
    text: str = ""
    """Vietnamese, with the indicator's, procedure's (TenTTHC) and agency's names."""
    text_en: str = ""
    """The same in English."""
    name: str = ""
    """The indicator's Vietnamese name."""


def _fmt(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".") if x != int(x) else str(int(x))


def _fmt_vi(x: float) -> str:
    """A number as Vietnamese writes it (decimal comma)."""
    return _fmt(x).replace(".", ",")


def _procedure(code: str, names: Mapping[str, str]) -> tuple[str, str]:
    """How a procedure is named in Vietnamese and English: its name (TenTTHC) with its code."""
    if not code:
        return "không gắn thủ tục", "no procedure"
    name = names.get(code)
    if name:
        return f"thủ tục «{name}» ({code})", f"procedure «{name}» ({code})"
    return f"thủ tục {code}", f"procedure {code}"


def explain(
    profile: Profile,
    card: Scorecard,
    breakdowns: Mapping[str, Iterable[BreakdownRow]],
    *,
    unit_names: Mapping[str, str] | None = None,
    procedure_names: Mapping[str, str] | None = None,
    top: int = 5,
) -> list[IndicatorExplanation]:
    """Indicators that lost points, ranked by points lost (ties by indicator code)."""
    unit_names = unit_names or {}
    procedure_names = procedure_names or {}
    out: list[IndicatorExplanation] = []
    for res in card.indicators.values():
        lost = res.lost
        if lost is None or lost <= 0:
            continue
        ind = profile.indicator(res.indicator)
        rows = [r for r in breakdowns.get(res.indicator, ()) if r.count > 0]
        shortfall = sum(r.count for r in rows)
        contributors = [
            Contributor(
                r.procedure, r.unit, r.count, r.count / shortfall, lost * r.count / shortfall
            )
            for r in sorted(rows, key=lambda r: (-r.count, r.procedure, r.unit))
        ]
        per_unit: dict[str, float] = defaultdict(float)
        per_proc: dict[str, float] = defaultdict(float)
        for r in rows:
            per_unit[r.unit] += r.count
            per_proc[r.procedure] += r.count
        by_unit = sorted(per_unit.items(), key=lambda kv: (-kv[1], kv[0]))
        by_proc = sorted(per_proc.items(), key=lambda kv: (-kv[1], kv[0]))
        text = f"{ind.name}: mất {_fmt_vi(lost)}/{_fmt_vi(res.max)} điểm"
        text_en = f"{ind.name_en}: lost {_fmt(lost)} of {_fmt(res.max)} points"
        if shortfall > 0:
            head = contributors[0]
            proc = _procedure(head.procedure, procedure_names)
            unit = unit_names.get(head.unit, head.unit)
            pct = round(head.share * 100)
            text += (
                f": {_fmt_vi(shortfall)} {ind.shortfall_label_vi or ind.shortfall_label}, "
                f"{pct}% trong số đó thuộc {proc[0]} tại {unit}"
            )
            text_en += (
                f": {_fmt(shortfall)} {ind.shortfall_label}, {pct}% of them in {proc[1]} at {unit}"
            )
        out.append(
            IndicatorExplanation(
                indicator=res.indicator,
                rule=res.rule,
                lost=lost,
                max=res.max,
                shortfall=shortfall,
                shortfall_label=ind.shortfall_label,
                contributors=contributors[:top],
                by_unit=by_unit[:top],
                by_procedure=by_proc[:top],
                text=text,
                text_en=text_en,
                name=ind.name,
            )
        )
    code = {i.id: i.code for i in profile.indicators}
    out.sort(key=lambda e: (-e.lost, code[e.indicator]))
    return out


def causes(
    profile: Profile,
    indicator: str,
    rows: Iterable[BreakdownRow],
    *,
    unit_names: Mapping[str, str] | None = None,
    procedure_names: Mapping[str, str] | None = None,
    top: int = 3,
) -> tuple[str, str]:
    """The procedures behind an indicator's shortfall, as a sentence to end an alert's message
    with (Vietnamese, English): the `top` (procedure, unit) rows of the breakdown, each named as
    the explanation names them (TenTTHC with its code, the agency's name), with its count and
    share. ("", "") when there is no breakdown."""
    unit_names = unit_names or {}
    procedure_names = procedure_names or {}
    kept = sorted((r for r in rows if r.count > 0), key=lambda r: (-r.count, r.procedure, r.unit))
    shortfall = sum(r.count for r in kept)
    if shortfall <= 0:
        return "", ""
    ind = profile.indicator(indicator)
    label_vi, label_en = ind.shortfall_label_vi or ind.shortfall_label, ind.shortfall_label
    vi, en = [], []
    for r in kept[:top]:
        proc_vi, proc_en = _procedure(r.procedure, procedure_names)
        unit = unit_names.get(r.unit, r.unit)
        pct = round(r.count / shortfall * 100)
        vi.append(f"{proc_vi} tại {unit} ({_fmt_vi(r.count)} {label_vi}, {pct}%)")
        en.append(f"{proc_en} at {unit} ({_fmt(r.count)} {label_en}, {pct}%)")
    more_vi = more_en = ""
    if len(kept) > top:
        rest = len(kept) - top
        more_vi, more_en = f"; và {rest} thủ tục khác", f"; and {rest} more"
    return (
        f"Nguyên nhân chính: {'; '.join(vi)}{more_vi}.",
        f"Main causes: {'; '.join(en)}{more_en}.",
    )
