"""Conclusions: create with findings/items, parse a document into drafts, confirm drafts."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy import select

from services.tasks.api.common import item_out, remember, replay
from services.tasks.api.schemas import (
    ConclusionIn,
    ConclusionOut,
    ConfirmIn,
    DraftAssignee,
    DraftChoice,
    DraftFindingOut,
    DraftItemOut,
    DraftOut,
    ParseIn,
)
from services.tasks.domain.documents import UnsupportedDocument, extract_text
from services.tasks.domain.parser import parse_conclusion
from services.tasks.store import repo
from services.tasks.store.models import Conclusion, Draft, Item
from shared.app import RuntimeDep, SessionDep
from shared.auth.principal import Principal, Role
from shared.auth.security import current_principal, require_roles
from shared.problems import (
    BadRequest,
    Conflict,
    NotFound,
    Problem,
    UnprocessableContent,
    problem_responses,
)

router = APIRouter(prefix="/api/v1", tags=["conclusions"])

Inspector = Annotated[Principal, Depends(require_roles(Role.admin, Role.inspector))]
Reader = Annotated[Principal, Depends(current_principal)]
IdemKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Retry-safe create: the same key and body replays the first response.",
    ),
]
MAX_UPLOAD = 10 * 1024 * 1024


class PayloadTooLarge(Problem):
    status, slug = 413, "payload-too-large"


@router.post(
    "/conclusions",
    summary="Create a conclusion with its findings and remediation items",
    status_code=201,
    response_model=ConclusionOut,
    responses=problem_responses(401, 403, 409, 422),
)
async def create_conclusion(
    body: ConclusionIn,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: Inspector,
    idempotency_key: IdemKey = None,
) -> JSONResponse:
    raw = body.model_dump(mode="json")
    replayed = await replay(session, principal, "create_conclusion", idempotency_key, raw)
    if replayed is not None:
        return replayed
    findings = [
        (
            f.unit_id,
            f.text,
            f.criteria,
            [
                repo.NewItem(
                    title=i.title,
                    lead_unit_id=i.lead_unit_id,
                    supporting_unit_ids=i.supporting_unit_ids,
                    deadline=i.deadline,
                    recurrence=i.recurrence,
                    criteria=i.criteria or f.criteria,
                    indicator=i.indicator,
                    priority=i.priority,
                    responsible_person=i.responsible_person,
                )
                for i in f.items
            ],
        )
        for f in body.findings
    ]
    conclusion, items = await repo.create_conclusion(
        session,
        runtime.outbox,
        actor=principal.subject,
        number=body.number,
        title=body.title,
        issued_on=body.issued_on,
        issuer=body.issuer,
        source_text=None,
        findings=findings,
    )
    now = repo.utcnow()
    out = ConclusionOut(
        id=conclusion.id,
        number=conclusion.number,
        title=conclusion.title,
        issued_on=conclusion.issued_on,
        items=[item_out(i, now) for i in items],
    ).model_dump(mode="json")
    await remember(session, principal, "create_conclusion", idempotency_key, raw, 201, out)
    return JSONResponse(out, status_code=201)


@router.get(
    "/conclusions/{conclusion_id}",
    summary="A conclusion and its items",
    response_model=ConclusionOut,
    responses=problem_responses(401, 404),
)
async def get_conclusion(
    conclusion_id: str, session: SessionDep, principal: Reader
) -> ConclusionOut:
    conclusion = await session.get(Conclusion, conclusion_id)
    if conclusion is None:
        raise NotFound("conclusion not found")
    stmt = select(Item).where(Item.conclusion_id == conclusion_id).order_by(Item.created_at)
    if not principal.sees_all_units:
        stmt = stmt.where(repo.visible_to_unit(principal.unit_id or ""))
    items = (await session.execute(stmt)).scalars().all()
    if not principal.sees_all_units and not items:
        raise NotFound("conclusion not found")
    now = repo.utcnow()
    return ConclusionOut(
        id=conclusion.id,
        number=conclusion.number,
        title=conclusion.title,
        issued_on=conclusion.issued_on,
        items=[item_out(i, now) for i in items],
    )


_PARSE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": ParseIn.model_json_schema()},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "issued_on": {"type": "string", "format": "date"},
                    },
                    "required": ["file"],
                }
            },
        },
    }
}


@router.post(
    "/conclusions/parse",
    summary="Parse a dispatch (text, .docx or text-layer .pdf) into draft items",
    status_code=201,
    response_model=DraftOut,
    responses=problem_responses(400, 401, 403, 413, 422),
    openapi_extra=_PARSE_BODY,
)
async def parse_document(request: Request, session: SessionDep, principal: Inspector) -> DraftOut:
    content_type = request.headers.get("content-type", "")
    issued_on: date | None
    if content_type.startswith("multipart/form-data"):
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise BadRequest("multipart body needs a 'file' part")
        data = await upload.read()
        if len(data) > MAX_UPLOAD:
            raise PayloadTooLarge("file too large (10 MB max)")
        try:
            text = extract_text(data, upload.filename)
        except UnsupportedDocument as exc:
            raise UnprocessableContent(str(exc)) from exc
        raw_date = form.get("issued_on")
        try:
            issued_on = (
                date.fromisoformat(raw_date) if isinstance(raw_date, str) and raw_date else None
            )
        except ValueError as exc:
            raise BadRequest("issued_on must be YYYY-MM-DD") from exc
    else:
        try:
            body = ParseIn.model_validate_json(await request.body())
        except ValidationError as exc:
            raise UnprocessableContent(
                "body must be JSON {text, issued_on?} or multipart with a file",
                extra={
                    "errors": exc.errors(
                        include_url=False, include_context=False, include_input=False
                    )
                },
            ) from exc
        text, issued_on = body.text, body.issued_on
    units = await repo.unit_directory(session)
    result = parse_conclusion(text, issued_on=issued_on, units=units)
    items = [
        DraftItemOut(
            index=n,
            assignees=[
                DraftAssignee(name=a.name, role=a.role, unit_id=a.unit_id, group=a.group)
                for a in it.assignees
            ],
            action=it.action,
            deadline=it.deadline,
            recurrence=it.recurrence,
            criteria=it.criteria,
            span=it.span,
            section=it.section,
        )
        for n, it in enumerate(result.items)
    ]
    draft = Draft(
        id=repo.new_id("drf"),
        created_by=principal.subject,
        issued_on=result.issued_on,
        source_text=text,
        items=[i.model_dump(mode="json") for i in items],
        status="pending",
    )
    session.add(draft)
    await session.flush()
    return DraftOut(
        id=draft.id,
        issued_on=result.issued_on,
        reference_year=result.reference_year,
        is_directive=result.is_directive,
        warnings=result.warnings,
        items=items,
        findings=[DraftFindingOut(text=x.text, span=x.span) for x in result.findings],
    )


@router.post(
    "/drafts/{draft_id}/confirm",
    summary="Confirm parsed drafts into a conclusion and remediation items",
    status_code=201,
    response_model=ConclusionOut,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def confirm_draft(
    draft_id: str,
    body: ConfirmIn,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: Inspector,
    idempotency_key: IdemKey = None,
) -> JSONResponse:
    raw = {"draft_id": draft_id, **body.model_dump(mode="json")}
    replayed = await replay(session, principal, "confirm_draft", idempotency_key, raw)
    if replayed is not None:
        return replayed
    draft = (
        await session.execute(select(Draft).where(Draft.id == draft_id).with_for_update())
    ).scalar_one_or_none()
    if draft is None:
        raise NotFound("draft not found")
    if draft.status != "pending":
        raise Conflict(f"draft already {draft.status} (conclusion {draft.conclusion_id})")
    issued_on = body.issued_on or draft.issued_on
    units = await repo.unit_directory(session)
    proposals = draft.items
    choices = body.choices
    if choices is None:
        choices = [DraftChoice(index=p["index"]) for p in proposals]
    new_items: list[repo.NewItem] = []
    problems: list[str] = []

    def expand(assignees: list[dict[str, Any]], role: str) -> list[str]:
        ids: list[str] = []
        for a in assignees:
            if a["role"] != role:
                continue
            if a.get("unit_id"):
                ids.append(a["unit_id"])
            elif a.get("group"):
                ids.extend(units.expand_group(a["group"], on=issued_on))
        return list(dict.fromkeys(ids))

    for choice in choices:
        if not 0 <= choice.index < len(proposals):
            raise UnprocessableContent(f"draft has no item {choice.index}")
        p = proposals[choice.index]
        leads = choice.lead_unit_ids or expand(p["assignees"], "lead")
        supports = (
            choice.supporting_unit_ids
            if choice.supporting_unit_ids is not None
            else expand(p["assignees"], "support")
        )
        if not leads:
            problems.append(f"item {choice.index}: no lead unit resolved; pass lead_unit_ids")
            continue
        deadline = choice.deadline or (date.fromisoformat(p["deadline"]) if p["deadline"] else None)
        for lead in leads:
            new_items.append(
                repo.NewItem(
                    title=choice.title or p["action"],
                    lead_unit_id=lead,
                    supporting_unit_ids=[s for s in supports if s != lead],
                    deadline=deadline,
                    recurrence=choice.recurrence or p["recurrence"],
                    criteria=choice.criteria if choice.criteria is not None else p["criteria"],
                )
            )
    if problems:
        raise UnprocessableContent("; ".join(problems))
    conclusion, items = await repo.create_conclusion(
        session,
        runtime.outbox,
        actor=principal.subject,
        number=body.number,
        title=body.title,
        issued_on=issued_on,
        issuer=None,
        source_text=draft.source_text,
        findings=[(None, body.title, [], new_items)],
    )
    draft.status = "confirmed"
    draft.conclusion_id = conclusion.id
    now = repo.utcnow()
    out = ConclusionOut(
        id=conclusion.id,
        number=conclusion.number,
        title=conclusion.title,
        issued_on=conclusion.issued_on,
        items=[item_out(i, now) for i in items],
    ).model_dump(mode="json")
    await remember(session, principal, "confirm_draft", idempotency_key, raw, 201, out)
    return JSONResponse(out, status_code=201)
