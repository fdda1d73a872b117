"""Alert rules as data, and their pure evaluation into raise / clear decisions.

An alert is keyed by (rule, unit, indicator, period) and its id is a UUIDv5 of that key, so
re-evaluating the same snapshot never raises twice: the caller passes the ids of alerts that are
open now, and gets `raise` only for a breach that is not open, `clear` only for an open alert
whose condition recovered. When a value cannot be judged (null ratio, no rank) nothing changes.

Alerts are for what is happening now: a rule raises only for a period inside its watch window on
`today` (a Vietnam date the caller passes in; this module never reads the clock). By default a
period is watched from its start until one month after its end — the running month / quarter /
year and the month / quarter just closed. An alert that is open when its period leaves the window
stays open; it is still cleared when every rule has recovered.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Set
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.scoring.domain.engine import Scorecard
from services.scoring.domain.periods import Period, PeriodKind
from services.scoring.domain.profile import PROFILES_DIR, Profile

ALERT_NAMESPACE = uuid.UUID("6f1c7a52-2d0e-4b8e-9a53-0c6f3e1d7b21")
TOTAL = "total"


def _add_months(d: date, months: int) -> date:
    """The first of a month, `months` later (`d` is the first day of a month)."""
    n = d.year * 12 + d.month - 1 + months
    return date(n // 12, n % 12 + 1, 1)


class WatchWindow(BaseModel):
    """Which periods a rule raises alerts for on a given day."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    months_after_period_end: int | None = Field(default=1, ge=0)
    """A period is watched from its first day until this many calendar months after its end
    (exclusive): with 1, September is watched 1 Sep – 31 Oct and Q3 1 Jul – 31 Oct. None = every
    period that has started (no limit)."""

    def watches(self, period: Period, today: date) -> bool:
        if today < period.start_date:
            return False
        if self.months_after_period_end is None:
            return True
        return today < _add_months(period.end_date, self.months_after_period_end)


DEFAULT_WATCH = WatchWindow()


class AlertRule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    kind: Literal["below_target", "rank_drop", "points_lost_share"]
    indicators: tuple[str, ...] = ("*",)
    """Indicator ids, `*` for every indicator with a target, or `total`."""
    levels: tuple[str, ...] | None = None
    """Only units of these levels; None = all."""
    target: float | None = Field(default=None, ge=0, le=1)
    """below_target: fallback when the profile has no target for the level."""
    clear_margin: float = Field(default=0.0, ge=0)
    places: int = Field(default=1, ge=1)
    share: float = Field(default=0.1, gt=0, le=1)
    period_kinds: tuple[PeriodKind, ...] = ("month", "quarter", "year")
    """Kinds of period the rule watches (year-to-date figures repeat the months by default)."""
    watch: WatchWindow | None = None
    """When the rule raises for a period (relative to today); None = the rule set's window."""

    @property
    def window(self) -> WatchWindow:
        return self.watch or DEFAULT_WATCH


class AlertRuleSet(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    version: int
    watch: WatchWindow = DEFAULT_WATCH
    """The window of every rule that does not set its own."""
    rules: tuple[AlertRule, ...]

    @model_validator(mode="after")
    def _rules_inherit_watch(self) -> AlertRuleSet:
        rules = tuple(
            r if r.watch is not None else r.model_copy(update={"watch": self.watch})
            for r in self.rules
        )
        object.__setattr__(self, "rules", rules)
        return self


def load_alert_rules(path: Path | None = None) -> AlertRuleSet:
    raw = yaml.safe_load(
        (path or PROFILES_DIR / "alerts" / "rules_v1.yaml").read_text(encoding="utf-8")
    )
    return AlertRuleSet.model_validate(raw)


def alert_id(unit_id: str, indicator: str, period: str) -> str:
    """One alert per (unit, indicator, period), whichever rules breach it."""
    return str(uuid.uuid5(ALERT_NAMESPACE, f"{unit_id}|{indicator}|{period}"))


@dataclass(frozen=True)
class Observation:
    """What alert rules look at for one (unit, period)."""

    unit_id: str
    level: str
    period: str
    card: Scorecard
    rank: int | None = None
    previous_rank: int | None = None


@dataclass(frozen=True)
class AlertDecision:
    action: Literal["raise", "clear"]
    alert_id: str
    rule: str
    unit_id: str
    indicator: str
    period: str
    value: float | None
    threshold: float | None
    message: str


# (breached, recovered, value, threshold, message); breached=recovered=False → cannot judge / hold
_Check = tuple[bool, bool, float | None, float | None, str]


def _pct(x: float) -> str:
    return f"{x * 100:.1f}%"


def _check_target(rule: AlertRule, profile: Profile, obs: Observation, ind: str) -> _Check | None:
    target = profile.target(obs.level, ind)
    if target is None:
        target = rule.target
    if target is None:
        return None
    res = obs.card.indicators[ind]
    if res.ratio is None:
        return (False, False, None, target, "")
    name = profile.indicator(ind).name
    msg = f"{name}: {_pct(res.ratio)} < chỉ tiêu {_pct(target)} ({obs.level})"
    return (res.ratio < target, res.ratio >= target + rule.clear_margin, res.ratio, target, msg)


def _check_loss(rule: AlertRule, profile: Profile, obs: Observation, ind: str) -> _Check:
    if ind == TOTAL:
        lost, mx, name = obs.card.lost, obs.card.applicable_max, "Tổng điểm"
    else:
        res = obs.card.indicators[ind]
        lost, mx, name = res.lost, res.max, profile.indicator(ind).name
    if lost is None or mx <= 0:
        return (False, False, None, rule.share, "")
    share = lost / mx
    msg = f"{name}: mất {lost:g}/{mx:g} điểm ({_pct(share)} > {_pct(rule.share)})"
    return (share > rule.share, share <= rule.share, share, rule.share, msg)


def _check_rank(rule: AlertRule, obs: Observation) -> _Check:
    if obs.rank is None or obs.previous_rank is None:
        return (False, False, None, float(rule.places), "")
    drop = obs.rank - obs.previous_rank
    msg = f"Tụt {drop} bậc xếp hạng (từ {obs.previous_rank} xuống {obs.rank})"
    return (drop >= rule.places, drop < rule.places, float(drop), float(rule.places), msg)


def evaluate(
    rules: Iterable[AlertRule],
    profile: Profile,
    obs: Observation,
    open_alert_ids: Set[str],
    *,
    today: date,
) -> list[AlertDecision]:
    """Raise / clear decisions for one observation, given the alerts currently open and
    today's Vietnam date.

    Checks of every rule are grouped by indicator (`total` for the whole score): the alert of
    (unit, indicator, period) is raised when any rule whose watch window holds the period on
    `today` breaches and it is not open (the first such rule, in rule order, names it), and
    cleared when it is open and every rule that can judge has recovered — in or out of the
    window, so an alert is never cleared just because its period is no longer current.
    """
    period = Period.parse(obs.period)
    checks: dict[str, list[tuple[AlertRule, _Check, bool]]] = {}
    for rule in rules:
        if rule.levels is not None and obs.level not in rule.levels:
            continue
        if period.kind not in rule.period_kinds:
            continue
        watched = rule.window.watches(period, today)
        if "*" in rule.indicators:
            targets = [i.id for i in profile.indicators]
        else:
            targets = list(rule.indicators)
        for ind in targets:
            check: _Check | None
            if rule.kind == "below_target":
                check = None if ind == TOTAL else _check_target(rule, profile, obs, ind)
            elif rule.kind == "points_lost_share":
                check = _check_loss(rule, profile, obs, ind)
            else:
                check = _check_rank(rule, obs)
            if check is not None:
                checks.setdefault(ind, []).append((rule, check, watched))
    out: list[AlertDecision] = []
    for ind, found in checks.items():
        aid = alert_id(obs.unit_id, ind, obs.period)
        is_open = aid in open_alert_ids
        breaching = [(r, c) for r, c, watched in found if c[0] and watched]
        judged = [(r, c) for r, c, _ in found if c[0] or c[1]]
        if breaching and not is_open:
            rule, (_, _, value, threshold, msg) = breaching[0]
            out.append(AlertDecision("raise", aid, rule.id, obs.unit_id, ind, obs.period,
                                     value, threshold, msg))  # fmt: skip
        elif is_open and judged and all(c[1] for _, c in judged):
            rule, (_, _, value, threshold, msg) = judged[0]
            out.append(AlertDecision("clear", aid, rule.id, obs.unit_id, ind, obs.period,
                                     value, threshold, msg))  # fmt: skip
    return out
