"""HTTP helpers: ETags, cursors, Idempotency-Key replay, item serialisation."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import date, datetime
from typing import Any

from fastapi import Request, Response

from services.tasks.api.schemas import (
    ContributionOut,
    EvidenceOut,
    ItemDetail,
    ItemOut,
    NoteOut,
    UnitRef,
)
from services.tasks.domain import timeliness as tl
from services.tasks.domain import workflow as wf
from services.tasks.store import repo
from services.tasks.store.models import EvidenceFile, Item, ProgressNote
from shared.auth.principal import Principal
from shared.problems import (
    BadRequest,
    Forbidden,
    NotFound,
    PreconditionFailed,
)

TIMELINESS_EN = {
    "done_on_time": "done on time",
    "done_late": "done late",
    "done_late_extended": "done late (extended)",
    "in_progress_within_time": "in progress, within time",
    "due_soon": "due soon",
    "overdue": "overdue",
    "no_deadline": "no deadline",
    "cancelled": "cancelled",
}


def caller_role(item: Item, principal: Principal | None) -> wf.ItemRole | None:
    return wf.role_of(
        principal.unit_id if principal else None,
        lead=item.lead_unit_id,
        supporting=list(item.supporting_unit_ids or []),
        monitoring=list(item.monitoring_unit_ids or []),
    )


def role_on(principal: Principal, item: Item) -> wf.ItemRole | None:
    return caller_role(item, principal)


def ensure_can_read(principal: Principal, item: Item) -> None:
    """Province-wide roles read every item; an officer reads the items their agency leads,
    supports or monitors (404 for anyone else's, so their existence does not leak)."""
    if principal.sees_all_units:
        return
    if role_on(principal, item) is None:
        raise NotFound("item not found")


def ensure_can_change(principal: Principal, item: Item) -> None:
    """Only the lead agency's officers move an item (status, extensions); a supporting or
    monitoring unit may read it, so it is told why (403), others get 404."""
    if principal.sees_all_units:
        return
    ensure_can_read(principal, item)
    if not wf.may_move_status(role_on(principal, item)):
        raise Forbidden(
            "only the lead unit moves this item; a supporting unit reports its own "
            "contribution with POST …/progress"
        )


def ensure_can_report(principal: Principal, item: Item) -> wf.ItemRole | None:
    """The lead and supporting units' officers report progress; monitoring units read."""
    if principal.sees_all_units:
        return None
    ensure_can_read(principal, item)
    role = role_on(principal, item)
    if not wf.may_report_progress(role):
        raise Forbidden("a monitoring unit follows this item but does not report on it")
    return role


def item_fields(
    item: Item,
    now: datetime,
    ctx: repo.ItemContext | None = None,
    principal: Principal | None = None,
) -> dict[str, Any]:
    ctx = ctx or repo.ItemContext()
    number, title = ctx.conclusions.get(item.conclusion_id or "", (None, None))
    names = ctx.unit_names
    timeliness = repo.item_timeliness(item, now)
    role = caller_role(item, principal)
    units = [UnitRef(id=item.lead_unit_id, name=names.get(item.lead_unit_id), role="lead")]
    units += [
        UnitRef(id=u, name=names.get(u), role="supporting") for u in item.supporting_unit_ids or []
    ]
    units += [
        UnitRef(id=u, name=names.get(u), role="monitoring") for u in item.monitoring_unit_ids or []
    ]
    return {
        "id": item.id,
        "conclusion_id": item.conclusion_id,
        "conclusion_number": number,
        "conclusion_title": title,
        "finding_id": item.finding_id,
        "origin": item.origin,
        "alert_id": item.alert_id,
        "indicator": item.indicator,
        "title": item.title,
        "lead_unit_id": item.lead_unit_id,
        "lead_unit_name": names.get(item.lead_unit_id),
        "supporting_unit_ids": list(item.supporting_unit_ids or []),
        "monitoring_unit_ids": list(item.monitoring_unit_ids or []),
        "units": units,
        "caller_role": role.value if role else None,
        "responsible_person": item.responsible_person,
        "criteria": list(item.criteria or []),
        "priority": item.priority,
        "deadline": item.deadline,
        "original_deadline": repo.judged_deadline(item),
        "past_original_deadline": item.status != "cancelled"
        and tl.past_original_deadline(
            original_deadline=repo.judged_deadline(item), now=now, completed_at=item.completed_at
        ),
        "recurrence": item.recurrence,
        "parent_item_id": item.parent_item_id,
        "period_key": item.period_key,
        "status": item.status,
        "timeliness": timeliness,
        "timeliness_label": f"{tl.LABELS_VI[timeliness]} / {TIMELINESS_EN[timeliness]}",
        "progress_percent": item.progress_percent,
        "completed_at": item.completed_at,
        "version": item.version,
        "created_at": item.created_at,
        "updated_at": item.updated_at,
    }


def item_out(
    item: Item,
    now: datetime,
    ctx: repo.ItemContext | None = None,
    principal: Principal | None = None,
) -> ItemOut:
    return ItemOut(**item_fields(item, now, ctx, principal))


def evidence_out(item_id: str, f: EvidenceFile) -> EvidenceOut:
    return EvidenceOut(
        id=f.id,
        name=f.name,
        download_url=f"/api/v1/items/{item_id}/evidence/{f.id}",
        content_type=f.content_type,
        size=f.size,
        sha256=f.sha256,
        uploaded_by=f.uploaded_by,
        created_at=f.created_at,
    )


def note_out(note: ProgressNote, files: list[EvidenceFile]) -> NoteOut:
    links = [
        EvidenceOut(
            name=str(e.get("name") or ""),
            url=e.get("url"),
            content_type=e.get("content_type"),
            size=e.get("size"),
            sha256=e.get("sha256"),
        )
        for e in note.evidence or []
    ]
    return NoteOut(
        id=note.id,
        at=note.at,
        author=note.author,
        unit_id=note.unit_id,
        role=note.role,
        kind="report" if note.kind == "report" else "progress",
        note=note.note,
        percent=note.percent,
        evidence=[*links, *(evidence_out(note.item_id, f) for f in files)],
    )


def item_detail(
    item: Item,
    now: datetime,
    ctx: repo.ItemContext,
    principal: Principal | None,
    notes: list[tuple[ProgressNote, list[EvidenceFile]]],
) -> ItemDetail:
    contributions: dict[str, ContributionOut] = {}
    for note, _ in notes:
        if note.role != wf.ItemRole.supporting.value or note.unit_id is None:
            continue
        seen = contributions.get(note.unit_id)
        contributions[note.unit_id] = ContributionOut(
            unit_id=note.unit_id,
            unit_name=ctx.unit_names.get(note.unit_id),
            percent=note.percent if note.percent is not None else (seen.percent if seen else None),
            notes=(seen.notes if seen else 0) + 1,
            last_at=note.at,
        )
    return ItemDetail(
        **item_fields(item, now, ctx, principal),
        notes=[note_out(n, files) for n, files in notes],
        contributions=list(contributions.values()),
    )


def item_etag(item: Item) -> str:
    return f'"{item.id}.v{item.version}"'


def body_etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def if_none_match(request: Request, etag: str) -> bool:
    header = request.headers.get("if-none-match")
    if not header:
        return False
    tags = [t.strip() for t in header.split(",")]
    return "*" in tags or etag in tags or f"W/{etag}" in tags


def check_if_match(request: Request, item: Item) -> None:
    header = request.headers.get("if-match")
    if header is None:
        return
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    if "*" not in tags and item_etag(item) not in tags:
        raise PreconditionFailed(
            f"the item changed (now version {item.version}); reload it and retry"
        )


def json_with_etag(request: Request, payload: Any, status_code: int = 200) -> Response:
    body = json.dumps(payload, ensure_ascii=False, default=str, separators=(",", ":")).encode()
    etag = body_etag(body)
    if if_none_match(request, etag):
        return Response(status_code=304, headers={"ETag": etag})
    return Response(
        content=body,
        status_code=status_code,
        media_type="application/json",
        headers={"ETag": etag},
    )


def encode_cursor(item: Item) -> str:
    raw = f"{item.updated_at.isoformat()}|{item.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, item_id = raw.split("|", 1)
        return datetime.fromisoformat(at), item_id
    except Exception as exc:
        raise BadRequest("invalid cursor") from exc


def today_vn(now: datetime) -> date:
    return tl.local_date(now)
