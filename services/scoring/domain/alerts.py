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

Alerts only where something is really wrong:
* **Volume.** A rule judges an indicator only when its denominator reaches the rule's
  `min_volume` (and `total` / rank rules only when the unit has `min_volume` dossiers in the
  period): no alert on 2 dossiers, none for a period without data. An empty indicator (null, or
  the 0 an empty denominator gives) is never judged.
* **One alert per (unit, indicator, period kind) at a time.** The open alert of a kind follows
  the newest period of that kind that can be judged: the running month continues September's
  alert if it still breaches, and clears it once it recovers; an older period never overrides a
  newer one. A new alert after a clear is a new alert (its id names the period that raised it).
* **In progress.** A period not over on `today` is judged on what has happened so far, and the
  message says so ("kỳ đang diễn ra, số liệu đến ngày …").
* **Words.** Titles and messages are Vietnamese, with the agency's and the indicator's names
  (never an indicator id); English beside (`title_en`, `message_en`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Literal

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
    min_volume: float = Field(default=10, ge=0)
    """The least denominator (dossiers, procedures, petitions) an indicator is judged on; for
    `total` and rank rules, the least `volume_counter` of the unit in the period."""
    volume_counter: str = "processed_or_open"
    """What a unit's volume is for `total` and rank rules."""

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
    """A rule set; by default the newest `alerts/rules_v*.yaml`."""
    if path is None:
        path = max(
            (PROFILES_DIR / "alerts").glob("rules_v*.yaml"),
            key=lambda p: int(p.stem.removeprefix("rules_v")),
        )
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    return AlertRuleSet.model_validate(raw)


def alert_id(unit_id: str, indicator: str, period: str) -> str:
    """The id of the alert raised for (unit, indicator) by `period`, whichever rules breach it
    (one open per period kind: a later period of the kind continues it)."""
    return str(uuid.uuid5(ALERT_NAMESPACE, f"{unit_id}|{indicator}|{period}"))


@dataclass(frozen=True)
class OpenAlert:
    """An open alert: its id and the period it currently stands for."""

    alert_id: str
    period: str


OpenKey = tuple[str, str, str]
"""(unit, indicator, period kind)"""


LEVEL_VI = {"province": "cấp tỉnh", "department": "cấp sở, ban, ngành", "commune": "cấp xã"}
LEVEL_EN = {"province": "province level", "department": "department level",
            "commune": "commune level"}  # fmt: skip
_ROMAN = ("I", "II", "III", "IV")


def period_label(period: Period) -> tuple[str, str]:
    """A period in words, Vietnamese and English: tháng 9/2026, quý III/2026, năm 2026."""
    y = period.year
    if period.kind == "month":
        return f"tháng {period.first_month}/{y}", f"{period.start_date:%B} {y}"
    if period.kind == "quarter":
        q = (period.first_month - 1) // 3
        return f"quý {_ROMAN[q]}/{y}", f"Q{q + 1} {y}"
    if period.kind == "ytd":
        return (f"từ đầu năm đến hết tháng {period.last_month}/{y}",
                f"{y} to the end of month {period.last_month}")  # fmt: skip
    return f"năm {y}", f"year {y}"


@dataclass(frozen=True)
class Observation:
    """What alert rules look at for one (unit, period)."""

    unit_id: str
    level: str
    period: str
    card: Scorecard
    rank: int | None = None
    previous_rank: int | None = None
    unit_name: str = ""


@dataclass(frozen=True)
class AlertDecision:
    action: Literal["raise", "clear", "update"]
    """raise a new alert; clear the open one; update: the open alert continues in this (newer)
    period (its figures and words change, no event)."""
    alert_id: str
    rule: str
    unit_id: str
    indicator: str
    period: str
    value: float | None
    threshold: float | None
    message: str
    title: str = ""
    title_en: str = ""
    message_en: str = ""
    period_kind: str = "month"
    in_progress: bool = False
    judged_on: date | None = None
    """The last day whose data the judgement covers (today − 1 in a running period)."""


# (breached, recovered, value, threshold, message vi, message en); breached=recovered=False →
# cannot judge / hold
_Check = tuple[bool, bool, float | None, float | None, str, str]
_NO = (False, False)


def _pct(x: float) -> str:
    return f"{x * 100:.1f}%"


def _pct_vi(x: float) -> str:
    return f"{x * 100:.1f}".replace(".", ",") + "%"


def _num_vi(x: float) -> str:
    return f"{x:g}".replace(".", ",")


def _volume_ok(rule: AlertRule, obs: Observation, ind: str) -> bool:
    if ind == TOTAL:
        return obs.card.counters.get(rule.volume_counter, 0.0) >= max(rule.min_volume, 1)
    res = obs.card.indicators[ind]
    return not res.empty and res.denominator >= max(rule.min_volume, 1)


def _check_target(rule: AlertRule, profile: Profile, obs: Observation, ind: str) -> _Check | None:
    target = profile.target(obs.level, ind)
    if target is None:
        target = rule.target
    if target is None:
        return None
    res = obs.card.indicators[ind]
    if res.ratio is None or not _volume_ok(rule, obs, ind):
        return (*_NO, None, target, "", "")
    i = profile.indicator(ind)
    vi = (f"{i.name}: {_pct_vi(res.ratio)}, dưới chỉ tiêu {_pct_vi(target)} "
          f"({LEVEL_VI.get(obs.level, obs.level)})")  # fmt: skip
    en = (f"{i.name_en}: {_pct(res.ratio)}, below the target of {_pct(target)} "
          f"({LEVEL_EN.get(obs.level, obs.level)})")  # fmt: skip
    return (res.ratio < target, res.ratio >= target + rule.clear_margin, res.ratio, target, vi, en)


def _check_loss(rule: AlertRule, profile: Profile, obs: Observation, ind: str) -> _Check:
    if ind == TOTAL:
        lost, mx = obs.card.lost, obs.card.applicable_max
        name, name_en = "Tổng điểm", "Total score"
    else:
        res = obs.card.indicators[ind]
        i = profile.indicator(ind)
        lost, mx, name, name_en = res.lost, res.max, i.name, i.name_en
    if lost is None or mx <= 0 or not _volume_ok(rule, obs, ind):
        return (*_NO, None, rule.share, "", "")
    share = lost / mx
    vi = (f"{name}: mất {_num_vi(lost)}/{_num_vi(mx)} điểm ({_pct_vi(share)}, "
          f"ngưỡng {_pct_vi(rule.share)})")  # fmt: skip
    en = f"{name_en}: lost {lost:g} of {mx:g} points ({_pct(share)}, threshold {_pct(rule.share)})"
    return (share > rule.share, share <= rule.share, share, rule.share, vi, en)


def _check_rank(rule: AlertRule, obs: Observation) -> _Check:
    if obs.rank is None or obs.previous_rank is None or not _volume_ok(rule, obs, TOTAL):
        return (*_NO, None, float(rule.places), "", "")
    drop = obs.rank - obs.previous_rank
    vi = f"Xếp hạng tụt {drop} bậc (từ hạng {obs.previous_rank} xuống hạng {obs.rank})"
    en = f"Fell {drop} places in the ranking (from {obs.previous_rank} to {obs.rank})"
    return (drop >= rule.places, drop < rule.places, float(drop), float(rule.places), vi, en)


def _words(
    profile: Profile, obs: Observation, period: Period, ind: str, vi: str, en: str, today: date
) -> dict[str, Any]:
    """Title and message of a decision, Vietnamese and English, saying whose, which period and
    whether the period is still running."""
    pvi, pen = period_label(period)
    who = obs.unit_name or obs.unit_id
    if ind == TOTAL:
        what_vi, what_en = "Tổng điểm Bộ chỉ số 766", "766 index total"
    else:
        what_vi, what_en = profile.indicator(ind).name, profile.indicator(ind).name_en
    in_progress = today < period.end_date
    judged_on = min(today, period.end_date) - timedelta(days=1)
    msg_vi, msg_en = f"{who}, {pvi} — {vi}", f"{who}, {pen} — {en}"
    if in_progress:
        msg_vi += f" (kỳ đang diễn ra, số liệu đến ngày {judged_on:%d/%m/%Y})"
        msg_en += f" (period in progress, data up to {judged_on:%d/%m/%Y})"
    return {
        "title": f"{what_vi} cần khắc phục — {who} ({pvi})",
        "title_en": f"{what_en} needs remediation — {who} ({pen})",
        "message": msg_vi,
        "message_en": msg_en,
        "period_kind": period.kind,
        "in_progress": in_progress,
        "judged_on": judged_on,
    }


def evaluate(
    rules: Iterable[AlertRule],
    profile: Profile,
    obs: Observation,
    open_alerts: Mapping[OpenKey, OpenAlert] | Set[str],
    *,
    today: date,
) -> list[AlertDecision]:
    """Raise / clear decisions for one observation, given the alerts currently open and
    today's Vietnam date.

    Checks of every rule are grouped by indicator (`total` for the whole score): the alert of
    (unit, indicator, period kind) is raised when any rule whose watch window holds the period
    on `today` breaches and none is open (the first such rule, in rule order, names it),
    continued (`update`) when one is open for an older period of the kind, and cleared when one
    is open and every rule that can judge has recovered — in or out of the window, so an alert
    is never cleared just because its period is no longer current. `open_alerts` maps (unit,
    indicator, kind) to the open alert; a set of ids is read as alerts of `obs.period` itself.
    """
    period = Period.parse(obs.period)
    applicable = [
        (rule, rule.window.watches(period, today))
        for rule in rules
        if (rule.levels is None or obs.level in rule.levels) and period.kind in rule.period_kinds
    ]
    if not any(watched for _, watched in applicable) and not _may_be_open(
        [r for r, _ in applicable], profile, obs, period, open_alerts
    ):
        # nothing can be raised outside every window and nothing is open to clear or continue:
        # a rebuild of a past year judges ~15,000 unit-periods, so skip the checks' words
        return []
    checks: dict[str, list[tuple[AlertRule, _Check, bool]]] = {}
    for rule, watched in applicable:
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
    if isinstance(open_alerts, Mapping):
        opened: Mapping[OpenKey, OpenAlert] = open_alerts
    else:  # a set of open ids: alerts of the observed period itself
        opened = {
            (obs.unit_id, ind, period.kind): OpenAlert(aid, obs.period)
            for ind in checks
            if (aid := alert_id(obs.unit_id, ind, obs.period)) in open_alerts
        }
    out: list[AlertDecision] = []
    for ind, found in checks.items():
        current = opened.get((obs.unit_id, ind, period.kind))
        if current is not None and Period.parse(current.period) > period:
            continue  # a newer period of this kind stands for the alert
        breaching = [(r, c) for r, c, watched in found if c[0] and watched]
        judged = [(r, c) for r, c, _ in found if c[0] or c[1]]
        if breaching:
            if current is not None and current.period == obs.period:
                continue  # open for this very period: raised once
            rule, (_, _, value, threshold, vi, en) = breaching[0]
            words = _words(profile, obs, period, ind, vi, en, today)
            action: Literal["raise", "update"] = "raise" if current is None else "update"
            aid = alert_id(obs.unit_id, ind, obs.period) if current is None else current.alert_id
            out.append(AlertDecision(action, aid, rule.id, obs.unit_id, ind, obs.period,
                                     value, threshold, **words))  # fmt: skip
        elif current is not None and judged and all(c[1] for _, c in judged):
            rule, (_, _, value, threshold, vi, en) = judged[0]
            words = _words(profile, obs, period, ind, vi, en, today)
            out.append(AlertDecision("clear", current.alert_id, rule.id, obs.unit_id, ind,
                                     obs.period, value, threshold, **words))  # fmt: skip
    return out


def may_decide(rules: Iterable[AlertRule], level: str, periods: Iterable[Period], today: date
               ) -> bool:  # fmt: skip
    """Whether a rule applicable to a unit of `level` watches one of `periods` on `today`. When
    none does and the unit has no open alert, `evaluate` decides nothing for any of those
    periods (nothing is raised outside a window, nothing is open to continue or clear), so its
    scorecards are not needed for alerts."""
    ps = list(periods)
    return any(
        (r.levels is None or level in r.levels) and p.kind in r.period_kinds
        and r.window.watches(p, today)
        for r in rules
        for p in ps
    )  # fmt: skip


def _may_be_open(
    rules: Sequence[AlertRule],
    profile: Profile,
    obs: Observation,
    period: Period,
    open_alerts: Mapping[OpenKey, OpenAlert] | Set[str],
) -> bool:
    """Whether an alert of the observed unit and period kind may be open (one to continue or
    clear), by the keys a decision could use: the rules' indicators (all of the profile's for
    `*`) and the total."""
    if not isinstance(open_alerts, Mapping):
        return bool(open_alerts)
    if not open_alerts:
        return False
    keys = {TOTAL, *(i.id for i in profile.indicators)}
    keys.update(ind for r in rules for ind in r.indicators if ind != "*")
    return any((obs.unit_id, ind, period.kind) in open_alerts for ind in keys)


def apply_to_open(
    open_alerts: dict[OpenKey, OpenAlert], decisions: Iterable[AlertDecision]
) -> None:
    """Keep the open-alert map current while later periods of the same batch are judged."""
    for d in decisions:
        key = (d.unit_id, d.indicator, d.period_kind)
        if d.action == "clear":
            open_alerts.pop(key, None)
        else:
            open_alerts[key] = OpenAlert(d.alert_id, d.period)
