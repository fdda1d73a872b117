"""What people are told, in words (pure): notification kinds, audiences, messages
(Vietnamese first, English beside), retry backoff and the webhook signature.

An audience is `unit:<unit id>` (every officer of the agency), `role:<role>` (e.g. the
inspectors of Sở Nội vụ, the leaders who read the digest) or `user:<subject>`. Every
notification has a `dedup_key` naming the fact it reports, so the same fact — a reminder
for one (item, threshold, deadline), one decision — is notified once however often the code
that notices it runs.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from typing import Any


class Kind(StrEnum):
    reminder = "reminder"
    overdue = "overdue"
    escalation = "escalation"
    extension_decided = "extension_decided"
    report_reopened = "report_reopened"
    report_accepted = "report_accepted"
    item_assigned = "item_assigned"
    report_submitted = "report_submitted"
    extension_requested = "extension_requested"
    digest = "digest"


class Channel(StrEnum):
    webpush = "webpush"
    email = "email"
    webhook = "webhook"


def unit_audience(unit_id: str) -> str:
    return f"unit:{unit_id}"


def role_audience(role: str) -> str:
    return f"role:{role}"


def user_audience(subject: str) -> str:
    return f"user:{subject}"


def audiences_of(*, subject: str, role: str, unit_id: str | None) -> list[str]:
    """Whose notifications a caller reads: their own, their role's and their agency's."""
    out = [user_audience(subject), role_audience(role)]
    if unit_id:
        out.append(unit_audience(unit_id))
    return out


@dataclass(frozen=True)
class NewNotification:
    audience: str
    kind: Kind
    title: str
    body: str
    dedup_key: str
    item_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ItemFacts:
    """What a message about an item says."""

    item_id: str
    title: str
    lead_unit_id: str
    deadline: date | None
    supporting_unit_ids: tuple[str, ...] = ()


def _short(title: str, n: int = 120) -> str:
    return title if len(title) <= n else title[: n - 1] + "…"


def _d(day: date | None) -> str:
    return day.strftime("%d/%m/%Y") if day else "—"


def reminder(item: ItemFacts, threshold: int, days_left: int | None = None) -> NewNotification:
    """The reminder of `threshold` (7, 3 or 1 days); the text says the days actually left."""
    days_before = threshold
    left = threshold if days_left is None else days_left
    when = "hạn là hôm nay" if left == 0 else f"còn {left} ngày"
    due = "due today" if left == 0 else f"due in {left} day(s)"
    return NewNotification(
        audience=unit_audience(item.lead_unit_id),
        kind=Kind.reminder,
        title=f"Sắp đến hạn ({when}) / {due}",
        body=f"Nhiệm vụ “{_short(item.title)}” đến hạn ngày {_d(item.deadline)}. "
        f"/ The item is due on {_d(item.deadline)}.",
        dedup_key=f"reminder:{item.item_id}:{days_before}:{item.deadline}",
        item_id=item.item_id,
        data={"days_before": days_before, "days_left": left, "deadline": str(item.deadline)},
    )


def overdue(item: ItemFacts, days_overdue: int) -> NewNotification:
    return NewNotification(
        audience=unit_audience(item.lead_unit_id),
        kind=Kind.overdue,
        title=f"Quá hạn {days_overdue} ngày / Overdue by {days_overdue} day(s)",
        body=f"Nhiệm vụ “{_short(item.title)}” đã quá hạn ngày {_d(item.deadline)}. "
        f"/ The item passed its deadline of {_d(item.deadline)}.",
        dedup_key=f"overdue:{item.item_id}:{item.deadline}",
        item_id=item.item_id,
        data={"days_overdue": days_overdue, "deadline": str(item.deadline)},
    )


def escalation(item: ItemFacts, days_overdue: int) -> list[NewNotification]:
    """The lead agency and the inspectors both hear of a long-overdue item."""
    out = []
    for audience in (unit_audience(item.lead_unit_id), role_audience("inspector")):
        out.append(
            NewNotification(
                audience=audience,
                kind=Kind.escalation,
                title=f"Chuyển cấp: quá hạn {days_overdue} ngày / Escalated: "
                f"{days_overdue} days overdue",
                body=f"Nhiệm vụ “{_short(item.title)}” ({item.lead_unit_id}) quá hạn từ ngày "
                f"{_d(item.deadline)}, đã nâng mức ưu tiên khẩn. / Raised to urgent.",
                dedup_key=f"escalation:{item.item_id}:{item.deadline}:{audience}",
                item_id=item.item_id,
                data={"days_overdue": days_overdue, "deadline": str(item.deadline)},
            )
        )
    return out


def extension_decided(
    item: ItemFacts, extension_id: str, *, approved: bool, new_deadline: date, reason: str | None
) -> NewNotification:
    verdict = (
        f"Đồng ý gia hạn đến {_d(new_deadline)} / Extension approved to {_d(new_deadline)}"
        if approved
        else "Không đồng ý gia hạn / Extension rejected"
    )
    return NewNotification(
        audience=unit_audience(item.lead_unit_id),
        kind=Kind.extension_decided,
        title=verdict,
        body=f"Nhiệm vụ “{_short(item.title)}”" + (f": {reason}" if reason else "."),
        dedup_key=f"extension_decided:{extension_id}",
        item_id=item.item_id,
        data={"extension_id": extension_id, "approved": approved, "deadline": str(new_deadline)},
    )


def report_reopened(item: ItemFacts, version: int, reason: str | None) -> NewNotification:
    return NewNotification(
        audience=unit_audience(item.lead_unit_id),
        kind=Kind.report_reopened,
        title="Báo cáo bị trả lại / Report returned",
        body=f"Nhiệm vụ “{_short(item.title)}”: {reason or 'cần bổ sung'}. "
        "/ The inspector returned the report.",
        dedup_key=f"report_reopened:{item.item_id}:{version}",
        item_id=item.item_id,
        data={"reason": reason},
    )


def report_accepted(item: ItemFacts, on_time: bool | None) -> NewNotification:
    return NewNotification(
        audience=unit_audience(item.lead_unit_id),
        kind=Kind.report_accepted,
        title="Kết quả khắc phục được công nhận / Report accepted",
        body=f"Nhiệm vụ “{_short(item.title)}” đã hoàn thành. / The item is accepted.",
        dedup_key=f"report_accepted:{item.item_id}",
        item_id=item.item_id,
        data={"on_time": on_time},
    )


def item_assigned(item: ItemFacts) -> list[NewNotification]:
    """The lead and each supporting agency hear of a new item."""
    out = []
    for unit, role in [(item.lead_unit_id, "lead")] + [
        (u, "supporting") for u in item.supporting_unit_ids
    ]:
        part = "chủ trì / lead" if role == "lead" else "phối hợp / supporting"
        out.append(
            NewNotification(
                audience=unit_audience(unit),
                kind=Kind.item_assigned,
                title=f"Nhiệm vụ mới ({part}) / New item",
                body=f"“{_short(item.title)}”, hạn {_d(item.deadline)}.",
                dedup_key=f"item_assigned:{item.item_id}:{unit}",
                item_id=item.item_id,
                data={"role": role, "deadline": str(item.deadline) if item.deadline else None},
            )
        )
    return out


def report_submitted(item: ItemFacts, version: int) -> NewNotification:
    """The inspectors hear that a report (with its evidence) waits for them."""
    return NewNotification(
        audience=role_audience("inspector"),
        kind=Kind.report_submitted,
        title="Báo cáo chờ xác nhận / Report awaiting review",
        body=f"{item.lead_unit_id} đã báo cáo hoàn thành “{_short(item.title)}”. "
        "/ The agency reported the item done.",
        dedup_key=f"report_submitted:{item.item_id}:{version}",
        item_id=item.item_id,
        data={"unit_id": item.lead_unit_id},
    )


def extension_requested(
    item: ItemFacts, extension_id: str, requested: date, reason: str
) -> NewNotification:
    return NewNotification(
        audience=role_audience("inspector"),
        kind=Kind.extension_requested,
        title=f"Đề nghị gia hạn đến {_d(requested)} / Extension requested",
        body=f"{item.lead_unit_id} đề nghị gia hạn “{_short(item.title)}” (hạn hiện tại "
        f"{_d(item.deadline)}): {reason}",
        dedup_key=f"extension_requested:{extension_id}",
        item_id=item.item_id,
        data={"extension_id": extension_id, "requested_deadline": str(requested)},
    )


# ----------------------------------------------------------------- delivery


def backoff(attempts: int, base_s: float, cap_s: float = 3600.0) -> timedelta:
    """Wait before the next attempt: base, 2×base, 4×base … capped."""
    return timedelta(seconds=min(cap_s, base_s * 2 ** max(0, attempts - 1)))


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=<hex>` of HMAC-SHA256(secret, "<timestamp>.<body>") — the receiver recomputes
    it to know the call is ours and fresh."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()
