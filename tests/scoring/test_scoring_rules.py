"""The 766 formulas on hand-computed cases."""

from __future__ import annotations

import pytest

from services.scoring.domain.engine import score
from services.scoring.domain.profile import Profile, apply_variant, load_profile
from services.scoring.domain.rules import points_for


@pytest.fixture(scope="module")
def p766() -> Profile:
    return load_profile("766", 1)


def test_profile_structure(p766: Profile) -> None:
    assert p766.max_total == 100
    assert {g.id: g.max for g in p766.groups} == {
        "publicity": 18,
        "progress": 20,
        "online_service": 12,
        "online_payment": 10,
        "digitisation": 22,
        "satisfaction": 18,
    }
    assert {d.id: d.max for d in p766.decision_groups}["online"] == 22
    assert p766.rule_id("prog_on_time") == "766@1:prog_on_time"


def test_on_time_linear(p766: Profile) -> None:
    ind = p766.indicator("prog_on_time")
    r, pts, empty = points_for(ind, {"on_time_or_within": 76, "processed_or_open": 80})
    expected: tuple[object, object, bool] = (pytest.approx(0.95), pytest.approx(19.0), False)
    assert (r, pts, empty) == expected


def test_empty_denominator_rules(p766: Profile) -> None:
    card = score(p766, {})
    ind = card.indicators
    # publicity and digitisation: null, left out of the group sum
    for i in ("pub_published_on_time", "pub_synced", "dig_e_result", "dig_reused"):
        assert ind[i].points is None and ind[i].empty
    assert card.groups["publicity"].points is None
    assert card.groups["digitisation"].points is None
    # on time: 0
    assert ind["prog_on_time"].points == 0
    # the two PAKN indicators: full points
    assert ind["sat_pakn_on_time"].points == 6
    assert ind["sat_pakn_satisfied"].points == 6
    assert card.groups["satisfaction"].points == 12  # dossier satisfaction empty → 0
    assert card.total == 12
    assert card.applicable_max == 20 + 12 + 10 + 18


def test_null_indicator_left_out_of_group_sum(p766: Profile) -> None:
    card = score(p766, {"synced": 9, "received": 10})  # only 1.4 has data in publicity
    assert card.groups["publicity"].points == pytest.approx(5.4)
    assert card.groups["publicity"].applicable_max == 6
    assert card.groups["publicity"].lost == pytest.approx(0.6)


@pytest.mark.parametrize(
    ("online", "total", "expected"),
    [(80, 100, 2.0), (79, 100, 2 * 0.79 / 0.8), (100, 100, 2.0), (40, 100, 1.0)],
)
def test_offered_online_full_at_exactly_80(
    p766: Profile, online: int, total: int, expected: float
) -> None:
    _, pts, _ = points_for(
        p766.indicator("onl_offered"), {"proc_online": online, "proc_total": total}
    )
    assert pts == pytest.approx(expected)


@pytest.mark.parametrize(("n", "expected"), [(50, 6.0), (49, 5.88), (25, 3.0), (90, 6.0)])
def test_online_dossiers_full_at_exactly_50(p766: Profile, n: int, expected: float) -> None:
    _, pts, _ = points_for(p766.indicator("onl_dossiers"), {"received_online": n, "received": 100})
    assert pts == pytest.approx(expected)


@pytest.mark.parametrize(
    ("late", "complaints", "expected"),
    [(10, 0, 6.0), (11, 0, 6 * 0.89 / 0.9), (5, 5, 6.0), (5, 6, 6 * 0.89 / 0.9), (100, 0, 0.0)],
)
def test_dossier_satisfaction_full_at_90(
    p766: Profile, late: int, complaints: int, expected: float
) -> None:
    c = {"late_total": late, "processed_or_open": 100, "complaints": complaints, "received": 100}
    _, pts, _ = points_for(p766.indicator("sat_dossiers"), c)
    assert pts == pytest.approx(expected)


def _online_fit(a: float, b: float, c: float) -> float:
    return min(2, 2 * a / 0.8) + 4 * b + min(6, 6 * c / 0.5)


@pytest.mark.parametrize(
    ("a", "b", "c"), [(0.9, 0.5, 0.7), (0.4, 1.0, 0.25), (0.8, 0.0, 0.5), (1, 1, 1), (0, 0, 0)]
)
def test_online_service_group_matches_composite_fit(
    p766: Profile, a: float, b: float, c: float
) -> None:
    counters = {
        "proc_online": a * 100,
        "proc_total": 100,
        "proc_online_with_dossiers": b * a * 100,
        "received_online": c * 1000,
        "received": 1000,
    }
    card = score(p766, counters)
    assert card.groups["online_service"].points == pytest.approx(_online_fit(a, b, c), abs=1e-4)


def _pay_fit(a: float, b: float, c: float) -> float:
    return min(10, 6 * a + min(2, 2.5 * b) + 2.5 * c)


@pytest.mark.parametrize(
    ("paid", "fee_paid", "fee_with", "expected"),
    [
        (50, 4, 8, _pay_fit(0.5, 0.4, 0.8)),  # 3 + 1 + 2 = 6
        (100, 10, 10, 10.0),  # 6 + 2 + 2.5 = 10.5 capped at 10
        (100, 8, 10, 10.0),  # B exactly 0.8 → 2; 6 + 2 + 2.5 capped
        (90, 9, 10, _pay_fit(0.9, 0.9, 1.0)),  # 5.4 + 2 + 2.5 = 9.9
        (0, 0, 0, 0.0),
    ],
)
def test_online_payment_composite_capped(
    p766: Profile, paid: int, fee_paid: int, fee_with: int, expected: float
) -> None:
    counters = {
        "paid_online": paid,
        "fee_dossiers": 100,
        "proc_fee_paid_online": fee_paid,
        "proc_fee_with_dossiers": fee_with,
        "proc_fee": 10,
    }
    card = score(p766, counters)
    res = card.indicators["pay_online"]
    assert res.points == pytest.approx(expected, abs=1e-4)
    assert res.points is not None and res.points <= 10
    assert res.terms == {"A": paid / 100, "B": fee_paid / 10, "C": fee_with / 10}


def test_payment_with_no_fee_data_is_empty_zero(p766: Profile) -> None:
    res = score(p766, {"received": 5}).indicators["pay_online"]
    assert res.empty and res.points == 0


def test_ratio_clamped_to_one(p766: Profile) -> None:
    r, pts, _ = points_for(p766.indicator("pub_synced"), {"synced": 12, "received": 10})
    assert r == 1 and pts == 6


def test_full_scorecard_hand_computed(p766: Profile) -> None:
    counters = {
        # publicity: 1.1 = 6·9/10, 1.2 = 4·1, 1.3 null, 1.4 = 6·0.5
        "proc_published": 10, "proc_published_on_time": 9,
        "proc_public_due": 4, "proc_public_on_time": 4,
        "synced": 50, "received": 100,
        # progress: 20·0.9
        "on_time_or_within": 90, "processed_or_open": 100, "late_total": 10,
        # online service: A = 1 → 2; B = 0.5 → 2; C = 0.3 → 3.6
        "proc_total": 20, "proc_online": 20, "proc_online_with_dossiers": 10,
        "received_online": 30,
        # digitisation: only 5.1 = 6·0.5
        "needs_result": 40, "e_result": 20,
    }  # fmt: skip
    card = score(p766, counters)
    g = {k: v.points for k, v in card.groups.items()}
    assert g["publicity"] == pytest.approx(5.4 + 4 + 3)
    assert g["progress"] == pytest.approx(18)
    assert g["online_service"] == pytest.approx(7.6)
    assert g["online_payment"] == 0
    # 5.1 = 3; 5.2 0/100 → 0; 5.3 0/100 → 0; 5.6 0/100 → 0; 5.4, 5.5, 5.7 null
    assert g["digitisation"] == pytest.approx(3)
    assert card.groups["digitisation"].applicable_max == 6 + 4 + 2 + 2
    assert g["satisfaction"] == pytest.approx(18)  # 6 + 6 + 6 (late 10% → R 0.9 → full)
    assert card.total == pytest.approx(12.4 + 18 + 7.6 + 0 + 3 + 18)
    dg = card.decision_group_points(p766)
    assert dg["online"] == pytest.approx(7.6)


def test_deterministic(p766: Profile) -> None:
    c = {"on_time_or_within": 1, "processed_or_open": 3, "synced": 2, "received": 3}
    assert score(p766, c) == score(p766, dict(reversed(list(c.items()))))


def test_province_variant_targets_and_overrides(p766: Profile) -> None:
    v = load_profile("766-P21", 1)
    assert v.extends is not None and v.extends.id == "766"
    assert v.target("commune", "prog_on_time") == 0.95
    # a variant replaces a level's targets wholesale: no silent mix of two plans
    assert v.target("province", "pub_synced") is None
    assert p766.target("province", "pub_synced") == 0.95
    variant = apply_variant(
        p766,
        {"id": "766-X", "indicators": {"onl_dossiers": {"rule": {"threshold": 0.6}}}},
    )
    _, pts, _ = points_for(
        variant.indicator("onl_dossiers"), {"received_online": 50, "received": 100}
    )
    assert pts == pytest.approx(5.0)
    with pytest.raises(ValueError):
        apply_variant(p766, {"indicators": {"nope": {"max": 1}}})
    with pytest.raises(ValueError):  # maxima must still add up
        apply_variant(p766, {"indicators": {"prog_on_time": {"max": 25}}})
