"""Timeliness of remediation items, computed on Vietnam calendar days (Asia/Ho_Chi_Minh).

A deadline is a *date*: the item is on time through 23:59:59.999… local time of that day and
overdue from 00:00 local the next day. Instants are converted to local time first, so
2022-08-04T16:59:59Z (23:59:59 in Hà Nội) is still on time and 17:00:00Z is late.
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


def classify(
    *,
    deadline: date | None,
    now: datetime,
    completed_at: datetime | None = None,
    due_soon_days: int = DUE_SOON_DAYS,
) -> Timeliness:
    """Classify one item.

    ``completed_at`` is when the work was reported done (and later accepted); None while open.
    """
    if deadline is None:
        return Timeliness.no_deadline
    if completed_at is not None:
        return Timeliness.done_late if is_late(completed_at, deadline) else Timeliness.done_on_time
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
