"""Remediation items: list, read, workflow transitions, progress, extensions, "my items"."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import select

from services.tasks.api.common import (
    caller_role,
    check_if_match,
    decode_cursor,
    encode_cursor,
    ensure_can_change,
    ensure_can_read,
    ensure_can_report,
    if_none_match,
    item_detail,
    item_etag,
    item_out,
    json_with_etag,
    note_out,
    today_vn,
)
from services.tasks.api.evidence import (
    TasksConfig,
    UploadGuard,
    read_submission,
    request_body,
    store_uploads,
)
from services.tasks.api.idempotency import idempotent
from services.tasks.api.schemas import (
    ExtensionDecisionIn,
    ExtensionIn,
    ExtensionOut,
    HistoryOut,
    ItemDetail,
    ItemPage,
    ItemPatch,
    ProgressIn,
    ReportIn,
    StatusName,
    TimelinessName,
    TransitionIn,
)
from services.tasks.domain.workflow import Action
from services.tasks.store import repo
from services.tasks.store.models import ExtensionRequest, Item, ItemHistory
from shared.app import RuntimeDep, SessionDep
from shared.auth.principal import Principal, Role
from shared.auth.security import current_principal, require_roles
from shared.bounds import Day, Instant
from shared.problems import Forbidden, UnprocessableContent, problem_responses

router = APIRouter(prefix="/api/v1", tags=["items"])

Reader = Annotated[Principal, Depends(current_principal)]
Worker = Annotated[Principal, Depends(require_roles(Role.admin, Role.inspector, Role.officer))]
Inspector = Annotated[Principal, Depends(require_roles(Role.admin, Role.inspector))]

OFFICER_ACTIONS = {Action.start, Action.report}


async def load(
    session: SessionDep, principal: Principal, item_id: str, *, for_update: bool = False
) -> Item:
    item = await repo.get_item(session, item_id, for_update=for_update)
    ensure_can_read(principal, item)
    return item


def _now() -> datetime:
    return repo.utcnow()


@router.get(
    "/items",
    summary="List remediation items (filterable; cursor pagination)",
    response_model=ItemPage,
    responses=problem_responses(400, 401),
)
async def list_items(
    request: Request,
    session: SessionDep,
    principal: Reader,
    unit_id: str | None = Query(None, description="Lead or supporting unit."),
    status: StatusName | None = None,
    timeliness: TimelinessName | None = None,
    conclusion_id: str | None = None,
    criterion: str | None = Query(None, examples=["3.2.5"]),
    deadline_from: Day | None = None,
    deadline_to: Day | None = None,
    updated_since: Instant | None = None,
    cursor: str | None = None,
    limit: int = Query(50, ge=1, le=500),
) -> Response:
    now = _now()
    f = repo.ItemFilter(
        unit_id=unit_id,
        status=status,
        timeliness=timeliness,
        conclusion_id=conclusion_id,
        criterion=criterion,
        deadline_from=deadline_from,
        deadline_to=deadline_to,
        updated_since=updated_since,
    )
    rows = await repo.list_items(
        session,
        f,
        today=today_vn(now),
        scope_unit=principal.unit_scope() if not principal.sees_all_units else None,
        after=decode_cursor(cursor),
        limit=limit + 1,
    )
    if not principal.sees_all_units and principal.unit_id is None:
        rows = []
    return await _page(request, session, principal, rows, limit, now)


async def _page(
    request: Request,
    session: SessionDep,
    principal: Principal,
    rows: list[Item],
    limit: int,
    now: datetime,
) -> Response:
    """One page of a keyset-paginated list (`rows` holds one extra row when more follow)."""
    page = rows[:limit]
    ctx = await repo.item_context(session, page)
    body = ItemPage(
        items=[item_out(i, now, ctx, principal) for i in page],
        next_cursor=encode_cursor(page[-1]) if len(rows) > limit else None,
    )
    return json_with_etag(request, body.model_dump(mode="json"))


@router.get(
    "/me/items",
    summary="Items of the caller's agency (cursor pagination, updated_since, ETag)",
    response_model=ItemPage,
    responses={304: {"description": "Not modified (If-None-Match)"}, **problem_responses(401, 403)},
)
async def my_items(
    request: Request,
    session: SessionDep,
    principal: Reader,
    updated_since: Instant | None = None,
    status: StatusName | None = None,
    cursor: str | None = None,
    limit: int = Query(50, ge=1, le=500),
) -> Response:
    if principal.unit_id is None:
        raise Forbidden("'my items' needs a token bound to an agency")
    now = _now()
    rows = await repo.list_items(
        session,
        repo.ItemFilter(updated_since=updated_since, status=status),
        today=today_vn(now),
        scope_unit=principal.unit_id,
        after=decode_cursor(cursor),
        limit=limit + 1,
    )
    return await _page(request, session, principal, rows, limit, now)


@router.get(
    "/items/{item_id}",
    summary="One item with its notes, evidence and units (ETag; If-None-Match → 304)",
    response_model=ItemDetail,
    responses={304: {"description": "Not modified"}, **problem_responses(401, 404)},
)
async def get_item(
    item_id: str, request: Request, session: SessionDep, principal: Reader
) -> Response:
    item = await load(session, principal, item_id)
    etag = item_etag(item)
    if if_none_match(request, etag):
        return Response(status_code=304, headers={"ETag": etag})
    return await _item_response(session, principal, item)


@router.get(
    "/items/{item_id}/history",
    summary="Full change history of an item",
    response_model=list[HistoryOut],
    responses=problem_responses(401, 404),
)
async def item_history(item_id: str, session: SessionDep, principal: Reader) -> list[HistoryOut]:
    await load(session, principal, item_id)
    rows = (
        (
            await session.execute(
                select(ItemHistory).where(ItemHistory.item_id == item_id).order_by(ItemHistory.id)
            )
        )
        .scalars()
        .all()
    )
    notes = {n.id: note_out(n, files) for n, files in await repo.item_notes(session, item_id)}
    return [
        HistoryOut(
            at=r.at,
            actor=r.actor,
            action=r.action,
            from_status=r.from_status,
            to_status=r.to_status,
            reason=r.reason,
            details=r.details,
            note=notes.get(int(r.details["note_id"]))
            if r.details and r.details.get("note_id") is not None
            else None,
        )
        for r in rows
    ]


async def _item_response(
    session: SessionDep, principal: Principal, item: Item, status_code: int = 200
) -> Response:
    """The item's detail (notes and evidence included) with its ETag."""
    await session.flush()
    ctx = await repo.item_context(session, [item])
    notes = await repo.item_notes(session, item.id)
    return Response(
        item_detail(item, _now(), ctx, principal, notes).model_dump_json(),
        status_code=status_code,
        media_type="application/json",
        headers={"ETag": item_etag(item)},
    )


@router.post(
    "/items/{item_id}/transitions",
    summary="Move an item through its workflow (If-Match → 412 when stale)",
    response_model=ItemDetail,
    responses=problem_responses(401, 403, 404, 412, 422),
)
@idempotent("transition_item")
async def transition_item(
    item_id: str,
    body: TransitionIn,
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: Worker,
) -> Response:
    item = await load(session, principal, item_id, for_update=True)
    ensure_can_change(principal, item)
    if principal.role is Role.officer and body.action not in OFFICER_ACTIONS:
        raise Forbidden(f"an officer may not {body.action.value} an item")
    check_if_match(request, item)
    await repo.transition(
        session, runtime.outbox, item, body.action, actor=principal.subject, reason=body.reason
    )
    return await _item_response(session, principal, item)


@router.patch(
    "/items/{item_id}",
    summary="Edit an item (inspector); deadline changes are recorded with their reason",
    response_model=ItemDetail,
    responses=problem_responses(401, 403, 404, 412, 422),
)
@idempotent("update_item")
async def update_item(
    item_id: str,
    body: ItemPatch,
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: Inspector,
) -> Response:
    item = await load(session, principal, item_id, for_update=True)
    check_if_match(request, item)
    if item.status in ("accepted", "cancelled"):
        raise UnprocessableContent(f"the item is {item.status}")
    changed: dict[str, object] = {}
    if body.title is not None:
        changed["title"] = item.title = body.title
    if body.responsible_person is not None:
        changed["responsible_person"] = item.responsible_person = body.responsible_person
    if body.priority is not None:
        changed["priority"] = item.priority = body.priority
    if body.supporting_unit_ids is not None:
        await repo.ensure_units_exist(session, body.supporting_unit_ids)
        item.supporting_unit_ids = [u for u in body.supporting_unit_ids if u != item.lead_unit_id]
        changed["supporting_unit_ids"] = item.supporting_unit_ids
    if body.monitoring_unit_ids is not None:
        await repo.ensure_units_exist(session, body.monitoring_unit_ids)
        item.monitoring_unit_ids = [u for u in body.monitoring_unit_ids if u != item.lead_unit_id]
        changed["monitoring_unit_ids"] = item.monitoring_unit_ids
    if changed:
        item.version += 1
        item.updated_at = repo.utcnow()
        session.add(repo.history(item, principal.subject, "edited", details=changed))
        await session.flush()
    new_deadline = None if body.clear_deadline else body.deadline
    if body.clear_deadline or (body.deadline is not None and body.deadline != item.deadline):
        if not (body.reason and body.reason.strip()):
            raise UnprocessableContent("a deadline change needs a reason")
        await repo.change_deadline(
            session,
            runtime.outbox,
            item,
            new_deadline,
            actor=principal.subject,
            reason=body.reason,
        )
    return await _item_response(session, principal, item)


@router.post(
    "/items/{item_id}/progress",
    summary="Add a progress note with evidence: links (JSON) or files (multipart); a "
    "supporting unit reports its own contribution",
    response_model=ItemDetail,
    status_code=201,
    responses=problem_responses(401, 403, 404, 412, 413, 415, 422),
    openapi_extra=request_body(ProgressIn, required=["note"]),
    dependencies=[UploadGuard],
)
@idempotent("add_progress")
async def add_progress(
    item_id: str,
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: Worker,
    settings: TasksConfig,
) -> Response:
    submission = await read_submission(request, ProgressIn, settings)
    body = submission.fields
    assert isinstance(body, ProgressIn)
    item = await load(session, principal, item_id, for_update=True)
    role = ensure_can_report(principal, item)
    check_if_match(request, item)
    files = await store_uploads(session, runtime, settings, item, principal, submission.uploads)
    await repo.add_progress(
        session,
        runtime.outbox,
        item,
        actor=principal.subject,
        note=body.note,
        percent=body.percent,
        evidence=[e.model_dump() for e in body.evidence],
        unit_id=principal.unit_id,
        role=role.value if role else principal.role.value,
        files=files,
    )
    return await _item_response(session, principal, item, status_code=201)


@router.post(
    "/items/{item_id}/report",
    summary="Submit the remediation report (báo cáo kết quả khắc phục) with its evidence "
    "and move the item to reported (lead unit)",
    response_model=ItemDetail,
    responses=problem_responses(401, 403, 404, 412, 413, 415, 422),
    openapi_extra=request_body(ReportIn, required=[]),
    dependencies=[UploadGuard],
)
@idempotent("submit_report")
async def submit_report(
    item_id: str,
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: Worker,
    settings: TasksConfig,
) -> Response:
    submission = await read_submission(request, ReportIn, settings)
    body = submission.fields
    assert isinstance(body, ReportIn)
    item = await load(session, principal, item_id, for_update=True)
    ensure_can_change(principal, item)
    check_if_match(request, item)
    if item.status not in ("not_started", "in_progress"):
        raise UnprocessableContent(f"cannot report an item that is {item.status}")
    files = await store_uploads(session, runtime, settings, item, principal, submission.uploads)
    role = caller_role(item, principal)
    note = await repo.add_progress(
        session,
        runtime.outbox,
        item,
        actor=principal.subject,
        note=body.note or "Báo cáo kết quả khắc phục",
        percent=100,
        evidence=[e.model_dump() for e in body.evidence],
        unit_id=principal.unit_id,
        role=role.value if role else principal.role.value,
        kind="report",
        files=files,
    )
    await repo.transition(
        session,
        runtime.outbox,
        item,
        Action.report,
        actor=principal.subject,
        reason=body.note,
        details={"note_id": note.id, "evidence": len(files) + len(body.evidence)},
    )
    return await _item_response(session, principal, item)


def _ext_out(e: ExtensionRequest) -> ExtensionOut:
    return ExtensionOut(
        id=e.id,
        item_id=e.item_id,
        requested_deadline=e.requested_deadline,
        reason=e.reason,
        status=e.status,
        requested_by=e.requested_by,
        decided_by=e.decided_by,
        decision_reason=e.decision_reason,
    )


@router.post(
    "/items/{item_id}/extensions",
    summary="Request a later deadline",
    response_model=ExtensionOut,
    status_code=201,
    responses=problem_responses(401, 403, 404, 409, 422),
)
@idempotent("request_extension")
async def request_extension(
    item_id: str,
    body: ExtensionIn,
    request: Request,
    session: SessionDep,
    principal: Worker,
) -> Response:
    item = await load(session, principal, item_id, for_update=True)
    ensure_can_change(principal, item)
    ext = await repo.request_extension(
        session,
        item,
        actor=principal.subject,
        requested=body.requested_deadline,
        reason=body.reason,
    )
    return JSONResponse(_ext_out(ext).model_dump(mode="json"), status_code=201)


@router.get(
    "/items/{item_id}/extensions",
    summary="Extension requests of an item",
    response_model=list[ExtensionOut],
    responses=problem_responses(401, 404),
)
async def list_extensions(
    item_id: str, session: SessionDep, principal: Reader
) -> list[ExtensionOut]:
    await load(session, principal, item_id)
    rows = (
        (
            await session.execute(
                select(ExtensionRequest)
                .where(ExtensionRequest.item_id == item_id)
                .order_by(ExtensionRequest.requested_at)
            )
        )
        .scalars()
        .all()
    )
    return [_ext_out(e) for e in rows]


@router.post(
    "/items/{item_id}/extensions/{extension_id}/decision",
    summary="Approve (moves the deadline) or reject an extension request",
    response_model=ExtensionOut,
    responses=problem_responses(401, 403, 404, 422),
)
@idempotent("decide_extension")
async def decide_extension(
    item_id: str,
    extension_id: str,
    body: ExtensionDecisionIn,
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: Inspector,
) -> Response:
    item = await load(session, principal, item_id, for_update=True)
    ext = await repo.decide_extension(
        session,
        runtime.outbox,
        item,
        extension_id,
        actor=principal.subject,
        approve=body.approve,
        reason=body.reason,
    )
    return JSONResponse(_ext_out(ext).model_dump(mode="json"))
