from __future__ import annotations

from datetime import date

import pytest

from services.scoring.domain.alerts import (
    AlertRule,
    AlertRuleSet,
    Observation,
    WatchWindow,
    alert_id,
    evaluate,
    load_alert_rules,
)
from services.scoring.domain.engine import score
from services.scoring.domain.explain import BreakdownRow, explain
from services.scoring.domain.par_index import InspectorEntry, load_par_framework, score_par
from services.scoring.domain.profile import Profile, load_profile


@pytest.fixture(scope="module")
def p766() -> Profile:
    return load_profile("766", 1)


def obs(
    p: Profile,
    on_time: int,
    of: int = 100,
    level: str = "commune",
    period: str = "202609",
    rank: int | None = None,
    previous_rank: int | None = None,
) -> Observation:
    card = score(p, {"on_time_or_within": on_time, "processed_or_open": of})
    return Observation("P21.C001", level, period, card, rank=rank, previous_rank=previous_rank)


TODAY = date(2026, 10, 15)
"""Inside the default watch window of 202609 (and 2026YTD09): the month just closed."""

TARGET = AlertRule(id="below_target", kind="below_target", indicators=("prog_on_time",))


def test_below_target_raises_once_then_clears(p766: Profile) -> None:
    # commune target for on-time is 0.9 in the base profile
    d = evaluate([TARGET], p766, obs(p766, 85), set(), today=TODAY)
    assert [x.action for x in d] == ["raise"]
    aid = d[0].alert_id
    assert aid == alert_id("P21.C001", "prog_on_time", "202609")
    assert d[0].threshold == 0.9 and d[0].value == pytest.approx(0.85)
    assert (
        evaluate([TARGET], p766, obs(p766, 80), {aid}, today=TODAY) == []
    )  # still open: no second raise
    cleared = evaluate(
        [TARGET], p766, obs(p766, 90), {aid}, today=TODAY
    )  # exactly the target → recovered
    assert [x.action for x in cleared] == ["clear"]
    assert evaluate([TARGET], p766, obs(p766, 95), set(), today=TODAY) == []


def test_below_target_level_specific_and_hysteresis(p766: Profile) -> None:
    assert evaluate(
        [TARGET], p766, obs(p766, 92, level="province"), set(), today=TODAY
    )  # 0.95 there
    rule = TARGET.model_copy(update={"clear_margin": 0.02})
    aid = alert_id("P21.C001", "prog_on_time", "202609")
    assert evaluate([rule], p766, obs(p766, 91), {aid}, today=TODAY) == []  # 0.91 < 0.92: hold
    assert evaluate([rule], p766, obs(p766, 92), {aid}, today=TODAY)[0].action == "clear"


def test_null_ratio_cannot_be_judged(p766: Profile) -> None:
    aid = alert_id("P21.C001", "prog_on_time", "202609")
    assert evaluate([TARGET], p766, obs(p766, 0, of=0), {aid}, today=TODAY) == []


def test_rank_drop(p766: Profile) -> None:
    rule = AlertRule(id="rank_drop_5", kind="rank_drop", indicators=("total",), places=5)
    assert (
        evaluate([rule], p766, obs(p766, 90, rank=9, previous_rank=4), set(), today=TODAY)[0].value
        == 5
    )
    assert evaluate([rule], p766, obs(p766, 90, rank=8, previous_rank=4), set(), today=TODAY) == []
    assert (
        evaluate([rule], p766, obs(p766, 90, rank=8), set(), today=TODAY) == []
    )  # no previous rank
    aid = alert_id("P21.C001", "total", "202609")
    assert evaluate([rule], p766, obs(p766, 90, rank=3, previous_rank=4), {aid}, today=TODAY)[
        0
    ].action == ("clear")


def test_points_lost_share(p766: Profile) -> None:
    rule = AlertRule(id="loss", kind="points_lost_share", indicators=("prog_on_time",), share=0.1)
    assert (
        evaluate([rule], p766, obs(p766, 90), set(), today=TODAY) == []
    )  # lost exactly 10%: not above
    d = evaluate([rule], p766, obs(p766, 89), set(), today=TODAY)
    assert d[0].action == "raise" and d[0].value == pytest.approx(0.11)


def test_bundled_rules_load_and_levels(p766: Profile) -> None:
    rules = load_alert_rules().rules
    assert {r.kind for r in rules} == {"below_target", "rank_drop", "points_lost_share"}
    only_prov = AlertRule(
        id="x", kind="points_lost_share", indicators=("total",), levels=("province",)
    )
    assert evaluate([only_prov], p766, obs(p766, 0), set(), today=TODAY) == []


def test_explanation_ranks_what_cost_points(p766: Profile) -> None:
    card = score(
        p766,
        {"on_time_or_within": 688, "processed_or_open": 1000, "synced": 95, "received": 100},
    )
    rows = {
        "prog_on_time": [
            BreakdownRow("1.004", "P21.SXD", 187.2),
            BreakdownRow("1.001", "P21.C001", 124.8),
        ],
        "pub_synced": [BreakdownRow("1.001", "P21.C001", 5)],
    }
    ex = explain(p766, card, rows, unit_names={"P21.SXD": "Sở Xây dựng"},
                 procedure_names={"1.004": "Cấp giấy phép xây dựng"})  # fmt: skip
    losses = [e.lost for e in ex]
    assert losses == sorted(losses, reverse=True)
    assert ex[0].indicator == "pay_online" and ex[0].shortfall == 0  # empty → 0: lost 10
    assert ex[0].text == "Thanh toán trực tuyến: mất 10/10 điểm"
    assert ex[0].text_en == "Online payment: lost 10 of 10 points"
    top = next(e for e in ex if e.indicator == "prog_on_time")
    assert top.lost == pytest.approx(6.24) and top.shortfall == pytest.approx(312)
    assert top.contributors[0].share == pytest.approx(0.6)
    assert top.contributors[0].points == pytest.approx(6.24 * 0.6)
    # Vietnamese first, with the procedure's name (TenTTHC) and the agency's; English beside
    assert top.text == (
        "Hồ sơ giải quyết đúng hạn: mất 6,24/20 điểm: 312 hồ sơ trễ hạn, 60% trong số đó thuộc "
        "thủ tục «Cấp giấy phép xây dựng» (1.004) tại Sở Xây dựng"
    )
    assert top.text_en == (
        "Dossiers on time: lost 6.24 of 20 points: 312 late dossiers, 60% of them in procedure "
        "«Cấp giấy phép xây dựng» (1.004) at Sở Xây dựng"
    )
    assert ex[-1].indicator == "pub_synced" and ex[-1].lost == pytest.approx(0.3)


def test_par_tree_respects_maxima() -> None:
    f = load_par_framework(2019)
    assert sum(x.max for x in f.fields) == 100
    assert f.node("3.2.5").max == 1.0 and f.node("3.4.1").metric == "prog_on_time"
    entry = InspectorEntry(code="8.1", points=8.2, evidence="Báo cáo SIPAS 2019", entered_by="i1")
    r = score_par(f, {"prog_on_time": 0.97, "pub_public_complete": 1.0}, {"8.1": entry})
    fields = {x.code: x for x in r.children}
    assert fields["3"].points == pytest.approx(0.75 + 1.0)
    assert fields["8"].points == pytest.approx(8.2)
    assert fields["1"].points is None  # nothing scored under field 1
    assert r.points == pytest.approx(9.95)
    with pytest.raises(ValueError):
        score_par(f, {}, {"8.1": entry.model_copy(update={"points": 10.5})})
    with pytest.raises(ValueError):  # a metric-scored criterion cannot be typed in
        score_par(f, {}, {"3.4.1": entry.model_copy(update={"code": "3.4.1", "points": 1})})
    with pytest.raises(ValueError):
        InspectorEntry(code="8.1", points=1, evidence="", entered_by="i1")


def test_rules_watch_period_kinds(p766: Profile) -> None:
    card = score(p766, {"on_time_or_within": 50, "processed_or_open": 100})
    ytd = Observation("P21.C001", "commune", "2026YTD09", card)
    assert evaluate([TARGET], p766, ytd, set(), today=TODAY) == []  # YTD not watched by default
    watch_ytd = TARGET.model_copy(update={"period_kinds": ("ytd",)})
    assert [d.action for d in evaluate([watch_ytd], p766, ytd, set(), today=TODAY)] == ["raise"]


def test_one_alert_per_unit_indicator_period_across_rules(p766: Profile) -> None:
    loss = AlertRule(id="loss", kind="points_lost_share", indicators=("prog_on_time",), share=0.05)
    rules = [TARGET, loss]  # commune target 0.9; loss above 5 % of 20 points
    d = evaluate(rules, p766, obs(p766, 80), set(), today=TODAY)
    assert [(x.action, x.rule) for x in d] == [("raise", "below_target")]
    aid = d[0].alert_id
    assert (
        evaluate(rules, p766, obs(p766, 92), {aid}, today=TODAY) == []
    )  # target met, loss 8 % still > 5 %
    cleared = evaluate(rules, p766, obs(p766, 96), {aid}, today=TODAY)
    assert [x.action for x in cleared] == ["clear"]
    only_loss = evaluate(rules, p766, obs(p766, 93), set(), today=TODAY)
    assert [(x.action, x.rule) for x in only_loss] == [("raise", "loss")]


def test_breach_in_a_period_long_past_raises_nothing(p766: Profile) -> None:
    for period in ("202601", "2026Q1", "202608", "2026Q2", "2025"):
        assert evaluate([TARGET], p766, obs(p766, 50, period=period), set(), today=TODAY) == [], (
            period
        )


def test_same_breach_in_the_current_period_raises_once(p766: Profile) -> None:
    for period in ("202610", "2026Q4", "2026"):
        d = evaluate([TARGET], p766, obs(p766, 50, period=period), set(), today=TODAY)
        assert [(x.action, x.period) for x in d] == [("raise", period)]
        assert evaluate([TARGET], p766, obs(p766, 40, period=period), {d[0].alert_id},
                        today=TODAY) == []  # fmt: skip


def test_just_closed_month_and_quarter_still_watched(p766: Profile) -> None:
    last_day = date(2026, 10, 31)
    for period in ("202609", "2026Q3"):
        d = evaluate([TARGET], p766, obs(p766, 50, period=period), set(), today=last_day)
        assert [x.action for x in d] == ["raise"], period
    d = evaluate([TARGET], p766, obs(p766, 50, period="2025"), set(), today=date(2026, 1, 31))
    assert [x.action for x in d] == ["raise"]  # last year, in January


def test_watch_window_boundary_day(p766: Profile) -> None:
    sep = obs(p766, 50, period="202609")
    assert evaluate([TARGET], p766, sep, set(), today=date(2026, 10, 31))
    assert evaluate([TARGET], p766, sep, set(), today=date(2026, 11, 1)) == []
    assert evaluate([TARGET], p766, sep, set(), today=date(2026, 9, 1))  # first day of the month
    early = obs(p766, 50, period="202610")
    assert evaluate([TARGET], p766, early, set(), today=date(2026, 9, 30)) == []  # not started
    y2025 = obs(p766, 50, period="2025")
    assert evaluate([TARGET], p766, y2025, set(), today=date(2026, 2, 1)) == []


def test_open_alert_leaving_the_window_is_kept_until_recovery(p766: Profile) -> None:
    aid = alert_id("P21.C001", "prog_on_time", "202601")
    later = date(2026, 10, 15)
    assert evaluate([TARGET], p766, obs(p766, 50, period="202601"), {aid}, today=later) == []
    cleared = evaluate([TARGET], p766, obs(p766, 95, period="202601"), {aid}, today=later)
    assert [x.action for x in cleared] == ["clear"]


def test_watch_window_as_data(p766: Profile) -> None:
    bundled = load_alert_rules()
    assert bundled.watch == WatchWindow(months_after_period_end=1)
    assert all(r.watch == bundled.watch for r in bundled.rules)
    rs = AlertRuleSet.model_validate({
        "id": "a", "version": 1, "watch": {"months_after_period_end": 3},
        "rules": [
            {"id": "t", "kind": "below_target", "indicators": ["prog_on_time"]},
            {"id": "u", "kind": "below_target", "indicators": ["prog_on_time"],
             "watch": {"months_after_period_end": None}},
        ],
    })  # fmt: skip
    inherited, unlimited = rs.rules
    assert inherited.window.months_after_period_end == 3
    jun = obs(p766, 50, period="202606")
    assert evaluate([inherited], p766, jun, set(), today=date(2026, 9, 30))
    assert evaluate([inherited], p766, jun, set(), today=date(2026, 10, 1)) == []
    assert evaluate([unlimited], p766, jun, set(), today=date(2030, 1, 1))
    # a rule built in code without a window gets the default one
    assert TARGET.window == WatchWindow(months_after_period_end=1)
