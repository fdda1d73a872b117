"""Pure domain: timeliness boundaries (Vietnam time), workflow, extensions, recurrence, units."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from services.tasks.domain import recurrence, timeliness, workflow
from services.tasks.domain.timeliness import VN_TZ, Timeliness, classify, reminder_threshold
from services.tasks.domain.units import UnitDirectory
from services.tasks.domain.workflow import Action, Status
from tests.tasks._samples import units

DL = date(2022, 8, 4)


def vn(y: int, m: int, d: int, hh: int = 0, mm: int = 0, ss: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, ss, tzinfo=VN_TZ)


# ----------------------------------------------------------------- timeliness


def test_deadline_day_is_on_time_until_local_midnight() -> None:
    assert classify(deadline=DL, now=vn(2022, 8, 5), completed_at=vn(2022, 8, 4, 23, 59, 59)) == (
        Timeliness.done_on_time
    )
    assert classify(deadline=DL, now=vn(2022, 8, 5), completed_at=vn(2022, 8, 5, 0, 0, 0)) == (
        Timeliness.done_late
    )
    assert classify(deadline=DL, now=vn(2022, 8, 4, 23, 59, 59)) == Timeliness.due_soon
    assert classify(deadline=DL, now=vn(2022, 8, 5, 0, 0, 0)) == Timeliness.overdue


def test_utc_instants_are_judged_in_vietnam_time() -> None:
    # 16:59:59Z = 23:59:59 in Hà Nội (UTC+7): still the deadline day
    assert classify(deadline=DL, now=datetime(2022, 8, 4, 16, 59, 59, tzinfo=UTC)) != (
        Timeliness.overdue
    )
    assert classify(deadline=DL, now=datetime(2022, 8, 4, 17, 0, 0, tzinfo=UTC)) == (
        Timeliness.overdue
    )
    # a UTC date that is still 4 Aug while Vietnam is already 5 Aug → late
    done = datetime(2022, 8, 4, 18, 0, tzinfo=UTC)
    assert classify(deadline=DL, now=done, completed_at=done) == Timeliness.done_late
    # other offsets work the same way
    ny = timezone(timedelta(hours=-4))
    assert classify(deadline=DL, now=datetime(2022, 8, 4, 12, 59, tzinfo=ny)) == Timeliness.due_soon
    assert classify(deadline=DL, now=datetime(2022, 8, 4, 13, 0, tzinfo=ny)) == Timeliness.overdue


def test_naive_datetimes_are_rejected() -> None:
    with pytest.raises(ValueError):
        classify(deadline=DL, now=datetime(2022, 8, 1))


def test_due_soon_window_and_no_deadline() -> None:
    assert classify(deadline=DL, now=vn(2022, 7, 28)) == Timeliness.due_soon  # 7 days left
    assert classify(deadline=DL, now=vn(2022, 7, 27, 23, 59)) == Timeliness.in_progress_within_time
    assert classify(deadline=None, now=vn(2022, 7, 1)) == Timeliness.no_deadline
    assert classify(deadline=None, now=vn(2022, 7, 1), completed_at=vn(2022, 7, 1)) == (
        Timeliness.no_deadline
    )


def test_reminder_thresholds_7_3_1() -> None:
    assert reminder_threshold(vn(2022, 7, 27, 12), DL) is None  # 8 days left
    assert reminder_threshold(vn(2022, 7, 28), DL) == 7
    assert reminder_threshold(vn(2022, 7, 31, 23, 59), DL) == 7  # 4 days left
    assert reminder_threshold(vn(2022, 8, 1), DL) == 3
    assert reminder_threshold(vn(2022, 8, 3), DL) == 1
    assert reminder_threshold(vn(2022, 8, 4, 23, 59), DL) == 1
    assert reminder_threshold(vn(2022, 8, 5), DL) is None
    assert timeliness.days_overdue(vn(2022, 8, 14, 8), DL) == 10
    assert timeliness.days_overdue(vn(2022, 8, 4, 8), DL) == 0


# ----------------------------------------------------------------- workflow


def test_happy_path_and_return_for_rework() -> None:
    s = workflow.transition(Status.not_started, Action.start)
    assert s is Status.in_progress
    s = workflow.transition(s, Action.report)
    assert s is Status.reported
    s = workflow.transition(s, Action.reopen, reason="thiếu minh chứng")
    assert s is Status.in_progress
    s = workflow.transition(workflow.transition(s, Action.report), Action.accept)
    assert s is Status.accepted


@pytest.mark.parametrize(
    ("status", "action"),
    [
        (Status.not_started, Action.accept),
        (Status.in_progress, Action.accept),
        (Status.in_progress, Action.reopen),
        (Status.accepted, Action.cancel),
        (Status.cancelled, Action.start),
        (Status.accepted, Action.reopen),
    ],
)
def test_invalid_transitions_raise_typed_error(status: Status, action: Action) -> None:
    with pytest.raises(workflow.InvalidTransition) as exc:
        workflow.transition(status, action, reason="x")
    assert exc.value.status is status and exc.value.action is action


def test_reasons_required_for_reopen_and_cancel() -> None:
    with pytest.raises(workflow.ReasonRequired):
        workflow.transition(Status.reported, Action.reopen)
    for s in (Status.not_started, Status.in_progress, Status.reported):
        with pytest.raises(workflow.ReasonRequired):
            workflow.transition(s, Action.cancel, reason="  ")
        assert workflow.transition(s, Action.cancel, reason="trùng nhiệm vụ") is Status.cancelled


def test_extensions() -> None:
    ext = workflow.request_extension(
        status=Status.in_progress,
        current_deadline=DL,
        requested=date(2022, 8, 20),
        reason="chờ số liệu",
        pending=False,
    )
    assert ext.status is workflow.ExtensionStatus.pending
    approved = workflow.decide_extension(ext, approve=True)
    assert approved.status is workflow.ExtensionStatus.approved
    with pytest.raises(workflow.ExtensionError):
        workflow.decide_extension(approved, approve=False, reason="x")
    with pytest.raises(workflow.ExtensionError):
        workflow.decide_extension(ext, approve=False)  # rejection needs a reason
    bad = [
        dict(status=Status.accepted, current_deadline=DL, requested=date(2022, 9, 1)),
        dict(status=Status.in_progress, current_deadline=None, requested=date(2022, 9, 1)),
        dict(status=Status.in_progress, current_deadline=DL, requested=DL),
    ]
    for kw in bad:
        with pytest.raises(workflow.ExtensionError):
            workflow.request_extension(reason="r", pending=False, **kw)  # type: ignore[arg-type]
    with pytest.raises(workflow.ExtensionError):
        workflow.request_extension(
            status=Status.in_progress,
            current_deadline=DL,
            requested=date(2022, 9, 1),
            reason="r",
            pending=True,
        )


# ----------------------------------------------------------------- recurrence


def test_monthly_days_one_instance_per_month() -> None:
    inst = recurrence.expand("monthly:days=1-5", date(2024, 1, 1), date(2024, 4, 30))
    assert [i.key for i in inst] == ["2024-01", "2024-02", "2024-03", "2024-04"]
    assert [i.due_on for i in inst] == [date(2024, m, 5) for m in (1, 2, 3, 4)]
    monthly = recurrence.expand("monthly", date(2024, 2, 1), date(2024, 2, 29))
    assert [i.due_on for i in monthly] == [date(2024, 2, 29)]


def test_quarterly_and_reporting_calendar() -> None:
    q = recurrence.expand("quarterly", date(2023, 1, 1), date(2023, 12, 31))
    assert [i.due_on for i in q] == [
        date(2023, 3, 31),
        date(2023, 6, 30),
        date(2023, 9, 30),
        date(2023, 12, 31),
    ]
    r = recurrence.expand("reports:Q1,H1,M9,year", date(2023, 1, 1), date(2023, 12, 31))
    assert [(i.key, i.due_on) for i in r] == [
        ("2023-report-Q1", date(2023, 3, 15)),
        ("2023-report-H1", date(2023, 6, 15)),
        ("2023-report-M9", date(2023, 9, 15)),
        ("2023-report-year", date(2023, 12, 10)),
    ]
    # the window bounds are inclusive on due dates
    assert [
        i.key for i in recurrence.expand("reports:Q1,year", date(2023, 3, 16), date(2023, 12, 10))
    ] == ["2023-report-year"]
    with pytest.raises(recurrence.InvalidRecurrence):
        recurrence.expand("fortnightly", date(2023, 1, 1), date(2023, 2, 1))


# ----------------------------------------------------------------- unit directory


def test_unit_matching_is_accent_case_and_date_aware() -> None:
    d = units()
    assert d.resolve("Văn phòng UBND tỉnh").id == "P21.VP"  # type: ignore[union-attr]
    assert d.resolve("VĂN PHÒNG ỦY BAN NHÂN DÂN TỈNH").id == "P21.VP"  # type: ignore[union-attr]
    assert d.resolve("so noi vu").id == "P21.SNV"  # type: ignore[union-attr]
    assert d.resolve("Sở Văn hóa, Thể thao và Du lịch").id == "P21.SVHTTDL"  # type: ignore[union-attr]
    assert d.resolve("Sở Văn hoá - Thể thao và Du lịch").id == "P21.SVHTTDL"  # type: ignore[union-attr]
    stttt = d.resolve("Thông tin và Truyền thông", on=date(2022, 7, 25), prefixes=("", "Sở "))
    assert stttt is not None and stttt.id == "P21.STTTT"
    # merged into Khoa học và Công nghệ on 1 March 2025
    assert d.resolve("Sở Thông tin và Truyền thông", on=date(2025, 3, 1)) is None
    assert d.resolve("Sở Thông tin và Truyền thông", on=date(2025, 2, 28)) is not None
    assert d.resolve("UBND huyện Văn Giang", year=2023).id == "HYC.D02"  # type: ignore[union-attr]
    assert d.resolve("Uỷ ban nhân dân huyện Văn Giang", year=2023).id == "HYC.D02"  # type: ignore[union-attr]
    assert d.resolve("Văn Giang", on=date(2024, 1, 1)).id == "HYC.D02"  # type: ignore[union-attr]
    assert d.resolve("Văn Giang", on=date(2026, 1, 1)) is None
    assert d.resolve("Cục thuế") is None


def test_nfd_names_match() -> None:
    import unicodedata

    d = units()
    assert d.resolve(unicodedata.normalize("NFD", "Sở Nội vụ")).id == "P21.SNV"  # type: ignore[union-attr]


def test_groups_expand_through_the_directory() -> None:
    d = units()
    districts_2023 = d.expand_group("districts", on=date(2023, 1, 1), parent_id="HYC")
    assert "HYC.D02" in districts_2023 and len(districts_2023) == 10
    assert d.expand_group("districts", on=date(2026, 1, 1)) == []
    depts = d.expand_group("departments", on=date(2022, 7, 25))
    assert "P21.STTTT" in depts and "P21.SNNMT" not in depts


def test_directory_from_plain_dicts() -> None:
    d = UnitDirectory(
        [
            {
                "id": "X.1",
                "name": "Sở Thử nghiệm",
                "level": "department",
                "kind": "sở",
                "parent_id": None,
                "valid_from": "2020-01-01",
                "valid_to": None,
                "aliases": ["STN"],
                "external_codes": {},
            }
        ]
    )
    assert d.resolve("stn").id == "X.1"  # type: ignore[union-attr]
    assert d.resolve("Sở Thử nghiệm", on=date(2019, 12, 31)) is None


def test_yearly_by_day() -> None:
    inst = recurrence.expand("yearly:by=12-15", date(2023, 1, 1), date(2024, 12, 31))
    assert [(i.key, i.due_on) for i in inst] == [
        ("2023", date(2023, 12, 15)),
        ("2024", date(2024, 12, 15)),
    ]
    with pytest.raises(recurrence.InvalidRecurrence):
        recurrence.expand("yearly:by=02-30", date(2023, 1, 1), date(2023, 12, 31))


def test_directory_accepts_the_whole_registry_document() -> None:
    import json

    from services.tasks.domain.units import DEFAULT_UNITS_PATH, load_units

    doc = json.loads(DEFAULT_UNITS_PATH.read_text(encoding="utf-8"))
    a, b = UnitDirectory(doc), load_units()
    assert set(a.units) == set(b.units) and len(a.units) == len(doc["units"])
