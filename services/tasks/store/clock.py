"""The tasks service's clock, in a module of its own so every store module can read it (repo
imports the notification store, which needs the clock too)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime


def _wall_clock() -> datetime:
    return datetime.now(UTC)


_clock: Callable[[], datetime] = _wall_clock


def utcnow() -> datetime:
    """The service's clock: business dates (today, timeliness, reminders) come from here."""
    return _clock()


def set_clock(clock: Callable[[], datetime] | None) -> None:
    """Run the service on another clock (tests take a fixed calendar); None = the wall clock."""
    global _clock
    _clock = clock or _wall_clock
