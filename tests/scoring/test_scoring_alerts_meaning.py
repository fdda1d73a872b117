"""Alerts only where something is really wrong (issue 11): no alert for a period not started or
without data, none on a handful of dossiers, a running period judged on the data so far and
saying so, one alert per (unit, indicator, period kind) that clears when the indicator recovers,
words in Vietnamese with the agency's and indicator's names."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.domain.alerts import (
    AlertRule,
    Observation,
    OpenAlert,
    apply_to_open,
    evaluate,
    load_alert_rules,
)
from services.scoring.domain.engine import score
from services.scoring.domain.periods import Period
from services.scoring.domain.profile import Profile, load_profile
from services.scoring.recompute import Scoring, recompute
from services.scoring.store.facts_store import upsert_facts
from services.scoring.store.models import outbox_table
from shared.events.outbox import Outbox
from shared.events.payloads import ProcedureRecord
from tests.scoring import test_scoring_store as store
from tests.scoring.test_scoring_store import AS_OF, dossier, tree, vn

db = store.db
RULES = load_alert_rules().rules
UNIT, NAME = "P21.C001", "Xã Tân Hưng"


@pytest.fixture(scope="module")
def v2() -> Profile:
    return load_profile("766", 2)


def obs(p: Profile, on_time: float, of: float, period: str = "202609") -> Observation:
    ind = p.indicator("prog_on_time")  # the on-time share, by the profile's own counters
    counters = {ind.numerator: on_time, ind.denominator: of, "received": of}
    return Observation(UNIT, "commune", period, score(p, counters), unit_name=NAME)


def test_the_bundled_rules_have_a_minimum_volume() -> None:
    assert load_alert_rules().version == 2
    assert all(r.min_volume >= 10 for r in RULES)


def test_no_alert_for_a_period_without_dossiers(v2: Profile) -> None:
    """An empty month gives 0 of 20 on-time points (the portal's empty rule), and a null total
    elsewhere; none of it is a breach."""
    empty = Observation(UNIT, "commune", "202609", score(v2, {}), unit_name=NAME)
    assert empty.card.indicators["prog_on_time"].points == 0
    assert evaluate(RULES, v2, empty, {}, today=date(2026, 9, 20)) == []
    assert evaluate(RULES, v2, empty, {}, today=date(2026, 10, 5)) == []


def test_no_alert_for_a_period_not_started(v2: Profile) -> None:
    assert evaluate(RULES, v2, obs(v2, 0, 500, "202612"), {}, today=date(2026, 11, 20)) == []


def test_minimum_volume(v2: Profile) -> None:
    """2 late dossiers of 2 are not an alert; 15 late of 30 are."""
    today = date(2026, 10, 5)
    assert evaluate(RULES, v2, obs(v2, 0, 2), {}, today=today) == []
    found = evaluate(RULES, v2, obs(v2, 15, 30), {}, today=today)
    assert {d.indicator for d in found if d.action == "raise"} >= {"prog_on_time"}


def test_words_are_vietnamese_with_names_and_english_beside(v2: Profile) -> None:
    found = evaluate(RULES, v2, obs(v2, 15, 30), {}, today=date(2026, 10, 5))
    on_time = next(d for d in found if d.indicator == "prog_on_time")
    assert on_time.title == (
        "Tỷ lệ hồ sơ giải quyết đúng hạn, trong hạn cần khắc phục — Xã Tân Hưng (tháng 9/2026)"
    )
    assert on_time.message == (
        "Xã Tân Hưng, tháng 9/2026 — Tỷ lệ hồ sơ giải quyết đúng hạn, trong hạn: 50,0%, "
        "dưới chỉ tiêu 90,0% (cấp xã)"
    )
    assert on_time.message_en.startswith("Xã Tân Hưng, September 2026 — Dossiers on time")
    total = [d for d in found if d.indicator == "total"]
    for d in found:
        for words in (d.title, d.message):
            assert "prog_on_time" not in words and "chỉ số total" not in words
            assert UNIT not in words
    assert all("Tổng điểm" in d.message for d in total)


def test_a_running_period_is_judged_so_far_and_says_so(v2: Profile) -> None:
    (d,) = [
        x
        for x in evaluate(RULES, v2, obs(v2, 15, 30, "202610"), {}, today=date(2026, 10, 16))
        if x.indicator == "prog_on_time"
    ]
    assert d.in_progress and d.judged_on == date(2026, 10, 15)
    assert d.message.endswith("(kỳ đang diễn ra, số liệu đến ngày 15/10/2026)")
    closed = evaluate(RULES, v2, obs(v2, 15, 30, "202609"), {}, today=date(2026, 10, 16))
    sep = next(x for x in closed if x.indicator == "prog_on_time")
    assert not sep.in_progress and sep.judged_on == date(2026, 9, 30)
    assert "đang diễn ra" not in sep.message


def test_one_alert_per_unit_indicator_and_period_kind(v2: Profile) -> None:
    """September raises; October still breaching continues the same alert; a late recompute of
    September cannot override October; October recovering clears it; a new breach later is a
    new alert."""
    rule = [AlertRule(id="below_target", kind="below_target", indicators=("prog_on_time",))]
    today = date(2026, 10, 20)
    opened: dict[tuple[str, str, str], OpenAlert] = {}

    def step(on_time: float, period: str) -> list[Any]:
        found = evaluate(rule, v2, obs(v2, on_time, 100, period), opened, today=today)
        apply_to_open(opened, found)
        return [(d.action, d.alert_id, d.period) for d in found]

    (raised,) = step(50, "202609")
    assert raised[0] == "raise"
    assert step(60, "202610") == [("update", raised[1], "202610")]
    assert step(40, "202609") == []  # older than the period standing for the alert
    assert step(99, "202609") == []  # and cannot clear it either
    assert step(60, "202610") == []  # same period, still breaching: nothing new
    assert step(95, "202610") == [("clear", raised[1], "202610")]
    assert opened == {}
    (again,) = step(50, "202610")
    assert again[0] == "raise" and again[1] != raised[1]


async def test_clear_on_recovery_emits_the_reason(db: AsyncSession) -> None:
    """Through the real store: a breach raises one alert (outbox event with the Vietnamese
    title); the source corrects the dossiers; the next recompute clears it, the row says why,
    and the alert.cleared event carries the reason tasks closes the item with."""
    _, c1, _ = await tree(db)
    await db.execute(text("UPDATE scoring.units SET name = 'Xã Một' WHERE id = :u"), {"u": c1})
    late = [dossier(c1, i, finished_at=vn(2026, 9, 15)) for i in range(30)]
    await upsert_facts(db, late, now=AS_OF)
    ctx = Scoring(
        outbox=Outbox(outbox_table, "/cchc-monitor/scoring"),
        alert_rules=(
            AlertRule(
                id="below_target", kind="below_target", indicators=("prog_on_time",), min_volume=20
            ),
        ),
    )
    sep = [Period.parse("202609")]
    s1 = await recompute(db, ctx, [c1], sep, AS_OF, today=date(2026, 10, 5))
    assert s1.raised == 1
    fixed = [
        d.model_copy(update={"finished_at": vn(2026, 9, 9), "source_updated_at": vn(2026, 9, 25)})
        for d in late
    ]
    await upsert_facts(db, fixed, now=AS_OF)
    s2 = await recompute(db, ctx, [c1], sep, AS_OF, today=date(2026, 10, 6))
    assert s2.cleared == 1
    row = (await db.execute(text(
        "SELECT status, cleared_reason, title, period_kind FROM scoring.alerts WHERE unit_id = :u"
    ), {"u": c1})).one()  # fmt: skip
    assert tuple(row) == ("cleared", "chỉ số đã đạt",
                          "Tỷ lệ hồ sơ giải quyết đúng hạn, trong hạn cần khắc phục — Xã Một "
                          "(tháng 9/2026)", "month")  # fmt: skip
    events = (await db.execute(text(
        "SELECT type, payload::jsonb FROM scoring.outbox WHERE key = :u AND type LIKE '%alert%' "
        "ORDER BY id"), {"u": c1})).all()  # fmt: skip
    assert [t for t, _ in events] == [
        "vn.cchc.scoring.alert.raised.v1", "vn.cchc.scoring.alert.cleared.v1",
    ]  # fmt: skip
    assert events[0][1]["title"].startswith("Tỷ lệ hồ sơ giải quyết đúng hạn")
    assert events[1][1]["reason"] == "chỉ số đã đạt"
    assert events[1][1]["alert_id"] == events[0][1]["alert_id"]


async def test_two_dossiers_raise_nothing_in_the_store(db: AsyncSession) -> None:
    p, c1, _ = await tree(db)
    await upsert_facts(db, [dossier(c1, i, finished_at=vn(2026, 9, 15)) for i in range(2)],
                       now=AS_OF)  # fmt: skip
    ctx = Scoring(outbox=Outbox(outbox_table, "/cchc-monitor/scoring"))
    s = await recompute(db, ctx, [p, c1], [Period.parse("202609")], AS_OF,
                        today=date(2026, 10, 5))  # fmt: skip
    assert s.raised == 0


async def test_the_message_names_the_procedures_behind_the_lost_points(db: AsyncSession) -> None:
    """A raised alert's message ends with the procedures (TenTTHC, with their code) and agency
    whose dossiers were late, largest share first — in Vietnamese, and in English beside —
    from the same breakdown as the scorecard's explanation."""
    _, c1, _ = await tree(db)
    await db.execute(text("UPDATE scoring.units SET name = 'Xã Một' WHERE id = :u"), {"u": c1})
    await upsert_facts(db, [
        ProcedureRecord(source_id="test", code=code, name=name, unit_id=c1, online_level="full",
                        source_updated_at=vn(2026, 8, 1))
        for code, name in (("1.001", "Đăng ký khai sinh"), ("1.002", "Cấp giấy phép xây dựng"))
    ], now=AS_OF)  # fmt: skip
    late = [dossier(c1, i, finished_at=vn(2026, 9, 15)) for i in range(18)]
    late += [dossier(c1, 100 + i, procedure_code="1.002", finished_at=vn(2026, 9, 15))
             for i in range(6)]  # fmt: skip
    on_time = [dossier(c1, 200 + i, procedure_code="1.002") for i in range(6)]
    await upsert_facts(db, late + on_time, now=AS_OF)
    ctx = Scoring(
        outbox=Outbox(outbox_table, "/cchc-monitor/scoring"),
        alert_rules=(
            AlertRule(
                id="below_target", kind="below_target", indicators=("prog_on_time",), min_volume=20
            ),
        ),
    )
    s = await recompute(db, ctx, [c1], [Period.parse("202609")], AS_OF, today=date(2026, 10, 5))
    assert s.raised == 1
    message, message_en = (await db.execute(text(
        "SELECT message, message_en FROM scoring.alerts WHERE unit_id = :u"), {"u": c1})).one()  # fmt: skip
    _, causes_vi = message.split("Nguyên nhân chính: ")
    assert causes_vi.startswith("thủ tục «Đăng ký khai sinh» (1.001) tại Xã Một (18 ")
    assert "75%" in causes_vi.split(";")[0]
    assert "thủ tục «Cấp giấy phép xây dựng» (1.002) tại Xã Một (6 " in causes_vi
    assert "Main causes: procedure «Đăng ký khai sinh» (1.001) at Xã Một (18 " in message_en
    (payload,) = (await db.execute(text(
        "SELECT payload::jsonb FROM scoring.outbox WHERE key = :u AND type LIKE '%alert.raised%'"
    ), {"u": c1})).scalars().all()  # fmt: skip
    assert payload["message"] == message
