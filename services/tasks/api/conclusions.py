"""Conclusions: create with findings/items, parse a document into drafts, confirm drafts."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy import select

from services.tasks.api.common import item_out
from services.tasks.api.idempotency import idempotent
from services.tasks.api.schemas import (
    ConclusionIn,
    ConclusionOut,
    ConfirmIn,
    DraftAssignee,
    DraftChoice,
    DraftFindingOut,
    DraftItemOut,
    DraftOut,
    DraftTarget,
    DraftWarning,
    ParseIn,
)
from services.tasks.domain import timeliness as tl
from services.tasks.domain.documents import DocumentTooLarge, UnsupportedDocument, extract_text
from services.tasks.domain.parser import ParseResult, parse_conclusion
from services.tasks.domain.plan import bound_recurrence, plan_confirmation
from services.tasks.domain.units import UnitDirectory, When
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
MAX_UPLOAD = 10 * 1024 * 1024
PARSE_TIMEOUT_S = 20.0


class PayloadTooLarge(Problem):
    status, slug = 413, "payload-too-large"


@router.post(
    "/conclusions",
    summary="Create a conclusion with its findings and remediation items",
    status_code=201,
    response_model=ConclusionOut,
    responses=problem_responses(401, 403, 409, 422),
)
@idempotent("create_conclusion")
async def create_conclusion(
    body: ConclusionIn,
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: Inspector,
) -> JSONResponse:
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


def _as_of(value: date | None) -> date:
    return value or tl.local_date(repo.utcnow())


def _province_id(units: UnitDirectory, result: ParseResult, override: str | None) -> str | None:
    """The issuing body's province at the document's time (an id of the registry)."""
    if override:
        if units.get(override) is None:
            raise UnprocessableContent(f"unknown province_id {override!r}")
        return override
    if not result.province:
        return None
    when = When(on=result.issued_on, year=None if result.issued_on else result.reference_year)
    found = units.provinces_named(result.province, when) or units.provinces_named(result.province)
    return found[0].id if len(found) == 1 else None


def _parse_sync(
    data: bytes | None,
    filename: str | None,
    text: str | None,
    issued_on: date | None,
    units: UnitDirectory,
) -> tuple[str, ParseResult]:
    """Conversion and parsing: CPU-bound, run in a worker thread (never on the event loop)."""
    if data is not None:
        text = extract_text(data, filename)
    assert text is not None
    return text, parse_conclusion(text, issued_on=issued_on, units=units)


@router.post(
    "/conclusions/parse",
    summary="Parse a dispatch (text, .docx or text-layer .pdf) into a draft with its "
    "confirmation plan",
    status_code=201,
    response_model=DraftOut,
    responses=problem_responses(400, 401, 403, 413, 422),
    openapi_extra=_PARSE_BODY,
)
async def parse_document(request: Request, session: SessionDep, principal: Inspector) -> DraftOut:
    content_type = request.headers.get("content-type", "")
    issued_on: date | None
    as_of: date | None = None
    province_override: str | None = None
    data: bytes | None = None
    filename: str | None = None
    text: str | None = None

    def form_date(raw: object, name: str) -> date | None:
        try:
            return date.fromisoformat(raw) if isinstance(raw, str) and raw else None
        except ValueError as exc:
            raise BadRequest(f"{name} must be YYYY-MM-DD") from exc

    if content_type.startswith("multipart/form-data"):
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise BadRequest("multipart body needs a 'file' part")
        data = await upload.read(MAX_UPLOAD + 1)
        if len(data) > MAX_UPLOAD:
            raise PayloadTooLarge("file too large (10 MB max)")
        filename = upload.filename
        issued_on = form_date(form.get("issued_on"), "issued_on")
        as_of = form_date(form.get("as_of"), "as_of")
        raw_prov = form.get("province_id")
        province_override = raw_prov if isinstance(raw_prov, str) and raw_prov else None
    else:
        raw_body = await request.body()
        if len(raw_body) > MAX_UPLOAD:
            raise PayloadTooLarge("body too large (10 MB max)")
        try:
            body = ParseIn.model_validate_json(raw_body)
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
        as_of, province_override = body.as_of, body.province_id
    units = await repo.unit_directory(session)
    try:
        text, result = await asyncio.wait_for(
            asyncio.to_thread(_parse_sync, data, filename, text, issued_on, units),
            timeout=PARSE_TIMEOUT_S,
        )
    except DocumentTooLarge as exc:
        raise PayloadTooLarge(str(exc)) from exc
    except UnsupportedDocument as exc:
        raise UnprocessableContent(str(exc)) from exc
    except TimeoutError as exc:
        raise UnprocessableContent("document too complex to parse in time") from exc
    when = _as_of(as_of)
    province_id = _province_id(units, result, province_override)
    proposals = [
        DraftItemOut(
            index=n,
            assignees=[
                DraftAssignee(
                    name=a.name,
                    role=a.role,
                    unit_id=a.unit_id,
                    group=a.group,
                    canonical=a.canonical,
                )
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
    plan = plan_confirmation(
        [p.model_dump(mode="json") for p in proposals],
        units,
        as_of=when,
        province_id=province_id,
        issued_on=result.issued_on,
        number=result.number,
        is_directive=result.is_directive,
        recurrence_until=result.horizon_until,
        reference_year=result.reference_year,
    )
    warnings = [DraftWarning(**w.to_dict()) for w in plan.warnings]
    if result.number and result.issuer:
        earlier = await repo.same_number_conclusion(
            session, issuer=result.issuer, number=result.number
        )
        if earlier is not None:
            warnings.append(
                DraftWarning(
                    code="duplicate_number",
                    message=f"Số {result.number} của cơ quan này đã được xác nhận "
                    f"({earlier.id}); chỉ xác nhận lại như bản sửa đổi (revision: true) "
                    "(this number from this issuer was confirmed before)",
                )
            )
    items: list[DraftItemOut] = []
    for proposal, ip in zip(proposals, plan.items, strict=True):
        targets = [
            DraftTarget(
                unit_id=u.unit_id,
                name=u.name,
                role="lead" if u.role == "lead" else "support",
                via=u.via,
                written=u.written,
                original_unit_id=u.original_unit_id,
                group=u.group,
            )
            for u in [*ip.leads, *ip.supports]
        ]
        items.append(
            proposal.model_copy(
                update={
                    "targets": targets,
                    "creates": len(ip.leads),
                    "planned_recurrence": ip.recurrence,
                }
            )
        )
    meta = {
        "number": result.number,
        "issuer": result.issuer,
        "province_id": plan.province_id,
        "as_of": when.isoformat(),
        "is_directive": result.is_directive and bool(result.items),
        "total_items": plan.total,
        "warnings": [w.model_dump(mode="json") for w in warnings],
    }
    draft = Draft(
        id=repo.new_id("drf"),
        created_by=principal.subject,
        issued_on=result.issued_on,
        source_text=text,
        items=[i.model_dump(mode="json") for i in items],
        status="pending",
        meta=meta,
    )
    session.add(draft)
    await session.flush()
    return DraftOut(
        id=draft.id,
        number=result.number,
        issuer=result.issuer,
        province_id=plan.province_id,
        as_of=when,
        issued_on=result.issued_on,
        reference_year=result.reference_year,
        is_directive=result.is_directive,
        warnings=warnings,
        total_items=plan.total,
        items=items,
        findings=[DraftFindingOut(text=x.text, span=x.span) for x in result.findings],
    )


def _explicit_unit_problems(
    choices: list[DraftChoice], units: UnitDirectory, *, on: date, province_id: str | None
) -> list[str]:
    """What is wrong with the units an inspector names in place of the draft's plan: the plan
    only ever targets units valid on the confirmation date inside the document's province, so
    an abolished unit (with its successors named) or another province's unit is refused, not
    silently given work."""
    problems: list[str] = []
    for choice in choices:
        for uid in dict.fromkeys(
            [*(choice.lead_unit_ids or []), *(choice.supporting_unit_ids or [])]
        ):
            unit = units.get(uid)
            if unit is None:
                continue  # unknown ids are refused where the items are written
            if not unit.valid_on(on):
                successors = units.successors(uid, on)
                problems.append(
                    f"item {choice.index}: {unit.name} ({uid}) không còn hiệu lực ngày "
                    f"{on.strftime('%d/%m/%Y')}"
                    + (f"; đơn vị kế thừa: {', '.join(successors)}" if successors else "")
                    + f" (unit not valid on {on.isoformat()})"
                )
            elif province_id is not None and units.province_of(uid) not in (province_id, None):
                problems.append(
                    f"item {choice.index}: {unit.name} ({uid}) không thuộc tỉnh của văn bản "
                    f"({province_id}) (unit outside the document's province)"
                )
    return problems


@router.post(
    "/drafts/{draft_id}/confirm",
    summary="Confirm a draft: creates exactly the items its plan showed",
    status_code=201,
    response_model=ConclusionOut,
    responses=problem_responses(401, 403, 404, 409, 422),
)
@idempotent("confirm_draft")
async def confirm_draft(
    draft_id: str,
    body: ConfirmIn,
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: Inspector,
) -> JSONResponse:
    draft = (
        await session.execute(select(Draft).where(Draft.id == draft_id).with_for_update())
    ).scalar_one_or_none()
    if draft is None:
        raise NotFound("draft not found")
    if draft.status != "pending":
        raise Conflict(f"draft already {draft.status} (conclusion {draft.conclusion_id})")
    meta = draft.meta or {}
    if not meta.get("is_directive", True) or not draft.items:
        raise UnprocessableContent(
            "Văn bản không có phần giao nhiệm vụ: không thể xác nhận thành kết luận rỗng "
            "(no directive section: cannot be confirmed as an empty conclusion)"
        )
    issued_on = body.issued_on or draft.issued_on
    number = body.number or meta.get("number")
    issuer = meta.get("issuer")
    revision_of: str | None = None
    if number and issuer:
        earlier = await repo.same_number_conclusion(session, issuer=issuer, number=number)
        if earlier is not None and not body.revision:
            raise Conflict(
                f"Số {number} của {issuer} đã được xác nhận ({earlier.id}); gửi revision: true "
                "nếu đây là bản sửa đổi (same number from the same issuer already confirmed)"
            )
        revision_of = earlier.id if earlier is not None else None
    proposals = draft.items
    choices = body.choices
    explicit = choices is not None
    if choices is None:
        choices = [DraftChoice(index=p["index"]) for p in proposals]
    new_items: list[repo.NewItem] = []
    problems: list[str] = []
    if any(c.lead_unit_ids or c.supporting_unit_ids for c in choices):
        # units the inspector names instead of the plan's are held to the plan's own rules
        problems += _explicit_unit_problems(
            choices,
            await repo.unit_directory(session),
            on=date.fromisoformat(meta["as_of"]) if meta.get("as_of") else _as_of(None),
            province_id=meta.get("province_id"),
        )
    for choice in choices:
        if not 0 <= choice.index < len(proposals):
            raise UnprocessableContent(f"draft has no item {choice.index}")
        p = proposals[choice.index]
        targets = p.get("targets") or []
        # the plan the draft showed; an inspector's explicit lead list replaces it
        leads = choice.lead_unit_ids or [t["unit_id"] for t in targets if t["role"] == "lead"]
        supports = (
            choice.supporting_unit_ids
            if choice.supporting_unit_ids is not None
            else [t["unit_id"] for t in targets if t["role"] == "support"]
        )
        if not leads:
            if explicit:
                problems.append(f"item {choice.index}: no lead unit; pass lead_unit_ids")
            continue  # shown in the draft as creating nothing (warning no_lead)
        deadline = choice.deadline or (date.fromisoformat(p["deadline"]) if p["deadline"] else None)
        code = choice.recurrence or p.get("planned_recurrence") or p.get("recurrence")
        if code:
            code = bound_recurrence(
                code,
                issued_on=issued_on,
                as_of=date.fromisoformat(meta["as_of"]) if meta.get("as_of") else _as_of(None),
                until=None,
                reference_year=issued_on.year if issued_on else None,
            )
        for lead in dict.fromkeys(leads):
            new_items.append(
                repo.NewItem(
                    title=choice.title or p["action"],
                    lead_unit_id=lead,
                    supporting_unit_ids=[s for s in dict.fromkeys(supports) if s != lead],
                    deadline=deadline,
                    recurrence=code,
                    criteria=choice.criteria if choice.criteria is not None else p["criteria"],
                )
            )
    if problems:
        raise UnprocessableContent("; ".join(problems))
    if not new_items:
        raise UnprocessableContent(
            "Không có nhiệm vụ nào có đơn vị chủ trì: không tạo kết luận rỗng "
            "(no item has a lead unit: nothing to confirm)"
        )
    conclusion, items = await repo.create_conclusion(
        session,
        runtime.outbox,
        actor=principal.subject,
        number=number,
        title=body.title,
        issued_on=issued_on,
        issuer=issuer,
        source_text=draft.source_text,
        findings=[(None, body.title, [], new_items)],
        revision_of=revision_of,
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
    return JSONResponse(out, status_code=201)
