"""Remediation item state machine and extension requests (pure).

States: ``not_started → in_progress → reported → accepted``; ``reported → in_progress``
(returned, reason required); ``→ cancelled`` from any open state (reason required);
``not_started → reported`` is allowed (work done without an interim update).
``accepted`` and ``cancelled`` are final.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum


class Status(StrEnum):
    not_started = "not_started"
    in_progress = "in_progress"
    reported = "reported"
    accepted = "accepted"
    cancelled = "cancelled"


class Action(StrEnum):
    start = "start"
    report = "report"
    accept = "accept"
    reopen = "reopen"  # reported → in_progress, reason required
    cancel = "cancel"


OPEN_STATES = frozenset({Status.not_started, Status.in_progress, Status.reported})
FINAL_STATES = frozenset({Status.accepted, Status.cancelled})

_TRANSITIONS: dict[tuple[Status, Action], Status] = {
    (Status.not_started, Action.start): Status.in_progress,
    (Status.not_started, Action.report): Status.reported,
    (Status.in_progress, Action.report): Status.reported,
    (Status.reported, Action.accept): Status.accepted,
    (Status.reported, Action.reopen): Status.in_progress,
    (Status.not_started, Action.cancel): Status.cancelled,
    (Status.in_progress, Action.cancel): Status.cancelled,
    (Status.reported, Action.cancel): Status.cancelled,
}
_NEEDS_REASON = frozenset({Action.reopen, Action.cancel})


class WorkflowError(Exception):
    """Base class of the typed workflow errors."""


class InvalidTransition(WorkflowError):
    def __init__(self, status: Status, action: Action) -> None:
        super().__init__(f"cannot {action.value} an item that is {status.value}")
        self.status = status
        self.action = action


class ReasonRequired(WorkflowError):
    def __init__(self, action: Action) -> None:
        super().__init__(f"{action.value} needs a reason")
        self.action = action


def allowed_actions(status: Status) -> list[Action]:
    return [a for (s, a) in _TRANSITIONS if s == status]


def transition(status: Status, action: Action, *, reason: str | None = None) -> Status:
    target = _TRANSITIONS.get((Status(status), Action(action)))
    if target is None:
        raise InvalidTransition(Status(status), Action(action))
    if action in _NEEDS_REASON and not (reason and reason.strip()):
        raise ReasonRequired(Action(action))
    return target


# ---------------------------------------------------------------- extensions


class ExtensionStatus(StrEnum):
    pending = "pending"
    approved = "approved"
    rejected = "rejected"


class ExtensionError(WorkflowError):
    pass


@dataclass(frozen=True)
class Extension:
    requested_deadline: date
    reason: str
    status: ExtensionStatus = ExtensionStatus.pending


def request_extension(
    *, status: Status, current_deadline: date | None, requested: date, reason: str, pending: bool
) -> Extension:
    if status not in OPEN_STATES:
        raise ExtensionError(f"cannot extend an item that is {Status(status).value}")
    if current_deadline is None:
        raise ExtensionError("the item has no deadline to extend")
    if requested <= current_deadline:
        raise ExtensionError("the requested deadline must be later than the current one")
    if not reason.strip():
        raise ExtensionError("an extension request needs a reason")
    if pending:
        raise ExtensionError("an extension request is already pending")
    return Extension(requested, reason)


def decide_extension(ext: Extension, *, approve: bool, reason: str | None = None) -> Extension:
    if ext.status is not ExtensionStatus.pending:
        raise ExtensionError(f"the request is already {ext.status.value}")
    if not approve and not (reason and reason.strip()):
        raise ExtensionError("a rejection needs a reason")
    return Extension(
        ext.requested_deadline,
        ext.reason,
        ExtensionStatus.approved if approve else ExtensionStatus.rejected,
    )


# ---------------------------------------------------------------- roles on an item


class ItemRole(StrEnum):
    """A unit's part in an item: the lead moves it through the workflow; a supporting unit
    (đơn vị phối hợp) reports its own contribution; a monitoring unit (đơn vị theo dõi) reads."""

    lead = "lead"
    supporting = "supporting"
    monitoring = "monitoring"


def role_of(
    unit_id: str | None, *, lead: str, supporting: list[str], monitoring: list[str]
) -> ItemRole | None:
    if unit_id is None:
        return None
    if unit_id == lead:
        return ItemRole.lead
    if unit_id in supporting:
        return ItemRole.supporting
    if unit_id in monitoring:
        return ItemRole.monitoring
    return None


def may_report_progress(role: ItemRole | None) -> bool:
    return role in (ItemRole.lead, ItemRole.supporting)


def may_move_status(role: ItemRole | None) -> bool:
    return role is ItemRole.lead
