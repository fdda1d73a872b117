"""Timeliness of remediation items, computed on Vietnam calendar days (Asia/Ho_Chi_Minh).

A deadline is a *date*: the item is on time through 23:59:59.999… local time of that day and
overdue from 00:00 local the next day. Instants are converted to local time first, so
2022-08-04T16:59:59Z (23:59:59 in Hà Nội) is still on time and 17:00:00Z is late.

An item has two deadlines: the current one (`deadline`, what the agency works towards) and the
one on-time is judged by (`original_deadline`). A deadline moved *before* it passed moves
both (an extension asked for in time is a new plan); one moved *after* it passed moves only
the current deadline, so lateness is never erased: work finished after the original deadline
but within the extended one is "done late (extended)" (Hoàn thành muộn (đã gia hạn)).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

VN_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
DUE_SOON_DAYS = 7
REMINDER_THRESHOLDS: tuple[int, ...] = (7, 3, 1)


class Timeliness(StrEnum):
    done_on_time = "done_on_time"
    done_late = "done_late"
    done_late_extended = "done_late_extended"
    in_progress_within_time = "in_progress_within_time"
    due_soon = "due_soon"
    overdue = "overdue"
    no_deadline = "no_deadline"


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("timeliness needs timezone-aware datetimes")
    return at


def local_date(at: datetime) -> date:
    """The Vietnam calendar date of an instant."""
    return _aware(at).astimezone(VN_TZ).date()


def deadline_end(deadline: date) -> datetime:
    """First instant AFTER the deadline day (00:00 local of the next day), tz-aware."""
    return datetime.combine(deadline + timedelta(days=1), time(0, 0), tzinfo=VN_TZ)


def is_late(at: datetime, deadline: date) -> bool:
    return _aware(at) >= deadline_end(deadline)


def days_left(now: datetime, deadline: date) -> int:
    """Whole Vietnam calendar days from today to the deadline (0 = due today, <0 = overdue)."""
    return (deadline - local_date(now)).days


LABELS_VI: dict[str, str] = {
    "done_on_time": "Hoàn thành đúng hạn",
    "done_late": "Hoàn thành quá hạn",
    "done_late_extended": "Hoàn thành muộn (đã gia hạn)",
    "in_progress_within_time": "Đang thực hiện trong hạn",
    "due_soon": "Sắp đến hạn",
    "overdue": "Quá hạn",
    "no_deadline": "Không có thời hạn",
    "cancelled": "Đã hủy",
}
ON_TIME_EXTENDED = frozenset({"done_on_time", "done_late_extended"})


def classify(
    *,
    deadline: date | None,
    now: datetime,
    completed_at: datetime | None = None,
    original_deadline: date | None = None,
    due_soon_days: int = DUE_SOON_DAYS,
) -> Timeliness:
    """Classify one item.

    ``completed_at`` is when the work was reported done (and later accepted); None while open.
    ``original_deadline`` is the deadline on-time is judged by (None: the current one).
    """
    if deadline is None:
        return Timeliness.no_deadline
    if completed_at is not None:
        if is_late(completed_at, deadline):
            return Timeliness.done_late
        if original_deadline is not None and is_late(completed_at, original_deadline):
            return Timeliness.done_late_extended
        return Timeliness.done_on_time
    if is_late(now, deadline):
        return Timeliness.overdue
    if days_left(now, deadline) <= due_soon_days:
        return Timeliness.due_soon
    return Timeliness.in_progress_within_time


def reminder_threshold(
    now: datetime, deadline: date, thresholds: tuple[int, ...] = REMINDER_THRESHOLDS
) -> int | None:
    """The smallest reminder threshold (days) already reached for an open item, if any.

    With thresholds 7/3/1: 7..4 days left → 7, 3..2 → 3, 1..0 → 1; overdue → None (the
    overdue path handles it). A scheduler sends each (item, threshold) at most once.
    """
    left = days_left(now, deadline)
    if left < 0:
        return None
    reached = [t for t in thresholds if left <= t]
    return min(reached) if reached else None


def days_overdue(now: datetime, deadline: date) -> int:
    """Whole days past the deadline (0 when not overdue)."""
    return max(0, -days_left(now, deadline)) if is_late(now, deadline) else 0


def on_time_deadline_after_change(
    *, on_time: date | None, new_deadline: date | None, at: datetime
) -> date | None:
    """The deadline on-time is judged by after the deadline changes to `new_deadline` at `at`.

    Before the judged deadline has passed the change is a new plan (it moves both); after, it
    is a late extension (the judged deadline stays, so the lateness stays).
    """
    if on_time is None or not is_late(at, on_time):
        return new_deadline
    return on_time


def past_original_deadline(
    *, original_deadline: date | None, now: datetime, completed_at: datetime | None
) -> bool:
    """True when the work was (or still is) late against the deadline it is judged by."""
    if original_deadline is None:
        return False
    return is_late(completed_at or now, original_deadline)
