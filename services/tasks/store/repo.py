"""Queries and state changes of remediation items. Every change writes its history row and
its event (through the shared outbox) in the caller's transaction; nothing here commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    and_,
    case,
    cast,
    delete,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy import text as sql_text
from sqlalchemy.ext.asyncio import AsyncSession

from services.tasks.domain import notifications as dn
from services.tasks.domain import recurrence, workflow
from services.tasks.domain import timeliness as tl
from services.tasks.domain.units import UnitDirectory, home_province_id, name_key
from services.tasks.store import notifications as notes_store
from services.tasks.store.clock import set_clock as set_clock  # repo.set_clock, repo.utcnow:
from services.tasks.store.clock import utcnow as utcnow  # the service's names for its clock
from services.tasks.store.models import (
    Conclusion,
    DeadlineChange,
    EvidenceFile,
    ExtensionRequest,
    Finding,
    IdempotencyKey,
    Item,
    ItemHistory,
    ProgressNote,
    UnitLineage,
    UnitRow,
)
from shared.events.outbox import Outbox
from shared.events.payloads import (
    RemediationAccepted,
    RemediationCreated,
    RemediationDeadlineChanged,
    RemediationItemEvent,
    RemediationStatusChanged,
)
from shared.problems import Conflict, NotFound, UnprocessableContent


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


# ----------------------------------------------------------------- timeliness in SQL


def timeliness_expr(today: date) -> ColumnElement[str]:
    """SQL twin of ``domain.timeliness.classify`` (Vietnam dates); 'cancelled' for cancelled."""
    done_day = cast(func.timezone("Asia/Ho_Chi_Minh", Item.completed_at), Date)
    today_lit = literal(today, Date)
    return case(
        (Item.status == "cancelled", literal("cancelled")),
        (Item.deadline.is_(None), literal("no_deadline")),
        (
            Item.completed_at.is_not(None),
            case(
                (done_day > Item.deadline, "done_late"),
                (
                    and_(Item.original_deadline.is_not(None), done_day > Item.original_deadline),
                    "done_late_extended",
                ),
                else_="done_on_time",
            ),
        ),
        (Item.deadline < today_lit, literal("overdue")),
        (Item.deadline - today_lit <= tl.DUE_SOON_DAYS, literal("due_soon")),
        else_=literal("in_progress_within_time"),
    )


def item_timeliness(item: Item, now: datetime) -> str:
    if item.status == "cancelled":
        return "cancelled"
    return tl.classify(
        deadline=item.deadline,
        now=now,
        completed_at=item.completed_at,
        original_deadline=item.original_deadline,
    ).value


def judged_deadline(item: Item) -> date | None:
    """The deadline on-time is judged by (items from before tasks_0007 may lack it)."""
    return item.original_deadline if item.original_deadline is not None else item.deadline


# ----------------------------------------------------------------- events


def event_fields(item: Item) -> dict[str, Any]:
    return {
        "item_id": item.id,
        "unit_id": item.lead_unit_id,
        "conclusion_id": item.conclusion_id,
        "origin": item.origin,
        "alert_id": item.alert_id,
        "indicator": item.indicator,
        "criteria": list(item.criteria or []),
        "status": item.status,
        "deadline": item.deadline,
        "completed_on": tl.local_date(item.completed_at) if item.completed_at else None,
    }


async def emit(session: AsyncSession, outbox: Outbox, payload: RemediationItemEvent) -> None:
    await outbox.add(session, payload, key=payload.unit_id, subject=payload.item_id)


def history(
    item: Item,
    actor: str,
    action: str,
    *,
    from_status: str | None = None,
    to_status: str | None = None,
    reason: str | None = None,
    details: dict[str, Any] | None = None,
) -> ItemHistory:
    return ItemHistory(
        item_id=item.id,
        actor=actor,
        action=action,
        from_status=from_status,
        to_status=to_status,
        reason=reason,
        details=details or {},
    )


# ----------------------------------------------------------------- units


_directories: dict[str, tuple[tuple[int, int], UnitDirectory]] = {}


async def unit_directory(session: AsyncSession) -> UnitDirectory:
    """The unit directory of the registry table, built once per version of the table (~15,000
    units since issue 12: building takes a few hundred ms; only migrations write the table, so
    a row count and the newest row version tell whether it changed)."""
    db, count, newest = (
        await session.execute(
            sql_text(
                "SELECT current_database(), count(*), coalesce(max(xmin::text::bigint), 0) "
                "FROM tasks.units"
            )
        )
    ).one()
    cached = _directories.get(db)
    if cached is not None and cached[0] == (count, newest):
        return cached[1]
    # in the registry's order (the demo province first: see tasks_0005)
    rows = (
        (await session.execute(select(UnitRow).order_by(UnitRow.position.nulls_last(), UnitRow.id)))
        .scalars()
        .all()
    )
    edges = (await session.execute(select(UnitLineage))).scalars().all()
    directory = UnitDirectory(
        (
            {
                "id": r.id,
                "name": r.name,
                "level": r.level,
                "kind": r.kind,
                "parent_id": r.parent_id,
                "valid_from": r.valid_from,
                "valid_to": r.valid_to,
                "aliases": r.aliases,
                "external_codes": r.external_codes,
            }
            for r in rows
        ),
        [
            {
                "from_id": e.from_id,
                "to_id": e.to_id,
                "kind": e.kind,
                "effective_on": e.effective_on,
                "weight": e.weight,
            }
            for e in edges  # each unit's successors come from these (UnitDirectory)
        ],
        home_province=home_province_id(),
    )
    _directories[db] = ((count, newest), directory)
    return directory


async def same_number_conclusion(
    session: AsyncSession, *, issuer: str, number: str
) -> Conclusion | None:
    """The earliest conclusion already confirmed with this number from this issuer (issuers
    compared accent- and case-insensitively: "UỶ BAN NHÂN DÂN" = "Ủy ban nhân dân"). The
    transaction-scoped advisory lock makes two concurrent confirmations of one document
    queue here, so the second one sees the first."""
    key = name_key(issuer)
    await session.execute(
        select(func.pg_advisory_xact_lock(func.hashtextextended(f"{key}\x1f{number}", 0)))
    )
    rows = (
        (
            await session.execute(
                select(Conclusion)
                .where(Conclusion.number == number, Conclusion.issuer.is_not(None))
                .order_by(Conclusion.created_at)
            )
        )
        .scalars()
        .all()
    )
    return next((c for c in rows if name_key(c.issuer or "") == key), None)


async def ensure_units_exist(session: AsyncSession, unit_ids: Sequence[str]) -> None:
    wanted = set(unit_ids)
    if not wanted:
        return
    found = set(
        (await session.execute(select(UnitRow.id).where(UnitRow.id.in_(wanted)))).scalars().all()
    )
    missing = sorted(wanted - found)
    if missing:
        raise UnprocessableContent(f"unknown unit ids: {', '.join(missing)}")


# ----------------------------------------------------------------- creation


@dataclass
class NewItem:
    title: str
    lead_unit_id: str
    supporting_unit_ids: list[str]
    deadline: date | None = None
    recurrence: str | None = None
    criteria: list[str] | None = None
    indicator: str | None = None
    priority: str = "normal"
    responsible_person: str | None = None
    finding_id: str | None = None
    monitoring_unit_ids: list[str] = field(default_factory=list)


async def create_conclusion(
    session: AsyncSession,
    outbox: Outbox,
    *,
    actor: str,
    number: str | None,
    title: str,
    issued_on: date | None,
    issuer: str | None,
    source_text: str | None,
    findings: Sequence[tuple[str | None, str, list[str], Sequence[NewItem]]],
    revision_of: str | None = None,
) -> tuple[Conclusion, list[Item]]:
    conclusion = Conclusion(
        revision_of=revision_of,
        id=new_id("con"),
        number=number,
        title=title,
        issued_on=issued_on,
        issuer=issuer,
        source_text=source_text,
        created_by=actor,
    )
    session.add(conclusion)
    await session.flush()
    items: list[Item] = []
    for unit_id, text, criteria, new_items in findings:
        finding = Finding(
            id=new_id("fnd"),
            conclusion_id=conclusion.id,
            unit_id=unit_id,
            text=text,
            criteria=criteria,
        )
        session.add(finding)
        await session.flush()
        for ni in new_items:
            ni.finding_id = finding.id
            items.append(
                await create_item(session, outbox, actor=actor, new=ni, conclusion_id=conclusion.id)
            )
    return conclusion, items


async def create_item(
    session: AsyncSession,
    outbox: Outbox,
    *,
    actor: str,
    new: NewItem,
    conclusion_id: str | None = None,
    origin: str = "conclusion",
) -> Item:
    await ensure_units_exist(
        session, [new.lead_unit_id, *new.supporting_unit_ids, *new.monitoring_unit_ids]
    )
    if new.recurrence:
        try:
            recurrence.expand(new.recurrence, date(2000, 1, 1), date(2000, 1, 1))
        except recurrence.InvalidRecurrence as exc:
            raise UnprocessableContent(f"unknown recurrence code {new.recurrence!r}") from exc
    now = utcnow()
    item = Item(
        id=new_id("itm"),
        conclusion_id=conclusion_id,
        finding_id=new.finding_id,
        origin=origin,
        indicator=new.indicator,
        title=new.title,
        lead_unit_id=new.lead_unit_id,
        supporting_unit_ids=[u for u in new.supporting_unit_ids if u != new.lead_unit_id],
        monitoring_unit_ids=[u for u in new.monitoring_unit_ids if u != new.lead_unit_id],
        responsible_person=new.responsible_person,
        criteria=list(new.criteria or []),
        priority=new.priority,
        deadline=new.deadline,
        original_deadline=new.deadline,
        recurrence=new.recurrence,
        status="not_started",
        progress_percent=0,
        version=1,
        created_by=actor,
        created_at=now,
        updated_at=now,
    )
    session.add(item)
    await session.flush()
    session.add(history(item, actor, "created", to_status="not_started"))
    await emit(session, outbox, RemediationCreated(**event_fields(item)))
    await notes_store.add(session, dn.item_assigned(notes_store.facts(item)))
    return item


# ----------------------------------------------------------------- reads


async def get_item(session: AsyncSession, item_id: str, *, for_update: bool = False) -> Item:
    stmt = select(Item).where(Item.id == item_id)
    if for_update:
        stmt = stmt.with_for_update()
    item = (await session.execute(stmt)).scalar_one_or_none()
    if item is None:
        raise NotFound("item not found")
    return item


def visible_to_unit(unit_id: str) -> ColumnElement[bool]:
    return or_(
        Item.lead_unit_id == unit_id,
        Item.supporting_unit_ids.contains([unit_id]),
        Item.monitoring_unit_ids.contains([unit_id]),
    )


# ----------------------------------------------------------------- workflow


async def transition(
    session: AsyncSession,
    outbox: Outbox,
    item: Item,
    action: workflow.Action,
    *,
    actor: str,
    reason: str | None,
    now: datetime | None = None,
    details: dict[str, Any] | None = None,
) -> Item:
    now = now or utcnow()
    previous = item.status
    try:
        target = workflow.transition(workflow.Status(previous), action, reason=reason)
    except workflow.WorkflowError as exc:
        raise UnprocessableContent(str(exc)) from exc
    item.status = target.value
    if target is workflow.Status.reported:
        item.completed_at = now
        item.progress_percent = 100
    elif target is workflow.Status.in_progress and previous == "reported":
        item.completed_at = None
    item.version += 1
    item.updated_at = now
    session.add(
        history(
            item,
            actor,
            action.value,
            from_status=previous,
            to_status=target.value,
            reason=reason,
            details=details,
        )
    )
    await session.flush()
    fields = event_fields(item)
    await emit(
        session,
        outbox,
        RemediationStatusChanged(**fields, previous_status=previous, reason=reason),
    )
    if target is workflow.Status.accepted:
        # judged by the original deadline: an extension granted late does not make it on time
        judged = judged_deadline(item)
        on_time = (
            None
            if judged is None or item.completed_at is None
            else not tl.is_late(item.completed_at, judged)
        )
        await emit(session, outbox, RemediationAccepted(**fields, on_time=on_time))
        await notes_store.add(session, [dn.report_accepted(notes_store.facts(item), on_time)])
    elif target is workflow.Status.reported:
        await notes_store.add(session, [dn.report_submitted(notes_store.facts(item), item.version)])
    elif action is workflow.Action.reopen:
        await notes_store.add(
            session, [dn.report_reopened(notes_store.facts(item), item.version, reason)]
        )
    return item


async def add_progress(
    session: AsyncSession,
    outbox: Outbox,
    item: Item,
    *,
    actor: str,
    note: str,
    percent: int | None,
    evidence: list[dict[str, Any]],
    unit_id: str | None = None,
    role: str | None = None,
    kind: str = "progress",
    files: Sequence[EvidenceFile] = (),
) -> ProgressNote:
    """A progress note with its evidence (links and stored files). The lead's (or an
    inspector's) moves the item's percent and starts it; a supporting unit's is its own
    contribution: recorded and shown, never moving the status. A `report` note goes with the
    report transition, which writes the history row and the event."""
    if item.status in ("accepted", "cancelled"):
        raise UnprocessableContent(f"the item is {item.status}")
    contribution = role == workflow.ItemRole.supporting.value
    row = ProgressNote(
        item_id=item.id,
        author=actor,
        note=note,
        percent=percent,
        evidence=evidence,
        unit_id=unit_id,
        role=role,
        kind=kind,
    )
    session.add(row)
    await session.flush()
    for f in files:
        f.note_id = row.id
        session.add(f)
    if kind == "report":
        await session.flush()
        return row
    previous = item.status
    if not contribution:
        if percent is not None:
            item.progress_percent = percent
        if item.status == "not_started":
            item.status = "in_progress"
    item.version += 1
    item.updated_at = utcnow()
    session.add(
        history(
            item,
            actor,
            "contribution" if contribution else "progress",
            from_status=previous,
            to_status=item.status,
            details={
                "note_id": row.id,
                "unit_id": unit_id,
                "percent": percent,
                "evidence": len(evidence) + len(files),
            },
        )
    )
    await session.flush()
    if previous != item.status:
        await emit(
            session,
            outbox,
            RemediationStatusChanged(**event_fields(item), previous_status=previous),
        )
    return row


async def change_deadline(
    session: AsyncSession,
    outbox: Outbox,
    item: Item,
    new_deadline: date | None,
    *,
    actor: str,
    reason: str | None,
    extension_id: str | None = None,
) -> Item:
    previous = item.deadline
    now = utcnow()
    item.original_deadline = tl.on_time_deadline_after_change(
        on_time=judged_deadline(item), new_deadline=new_deadline, at=now
    )
    item.deadline = new_deadline
    item.version += 1
    item.updated_at = now
    session.add(
        DeadlineChange(
            item_id=item.id,
            actor=actor,
            previous_deadline=previous,
            new_deadline=new_deadline,
            reason=reason,
            extension_id=extension_id,
        )
    )
    session.add(
        history(
            item,
            actor,
            "deadline_changed",
            reason=reason,
            details={
                "previous": previous.isoformat() if previous else None,
                "new": new_deadline.isoformat() if new_deadline else None,
                "original": item.original_deadline.isoformat() if item.original_deadline else None,
            },
        )
    )
    await session.flush()
    await emit(
        session,
        outbox,
        RemediationDeadlineChanged(**event_fields(item), previous_deadline=previous, reason=reason),
    )
    return item


async def request_extension(
    session: AsyncSession,
    item: Item,
    *,
    actor: str,
    requested: date,
    reason: str,
) -> ExtensionRequest:
    pending = (
        await session.execute(
            select(ExtensionRequest.id).where(
                ExtensionRequest.item_id == item.id, ExtensionRequest.status == "pending"
            )
        )
    ).first() is not None
    try:
        workflow.request_extension(
            status=workflow.Status(item.status),
            current_deadline=item.deadline,
            requested=requested,
            reason=reason,
            pending=pending,
        )
    except workflow.ExtensionError as exc:
        if pending:
            raise Conflict(str(exc)) from exc
        raise UnprocessableContent(str(exc)) from exc
    ext = ExtensionRequest(
        id=new_id("ext"),
        item_id=item.id,
        requested_deadline=requested,
        reason=reason,
        status="pending",
        requested_by=actor,
    )
    session.add(ext)
    item.version += 1
    item.updated_at = utcnow()
    session.add(
        history(
            item,
            actor,
            "extension_requested",
            reason=reason,
            details={"extension_id": ext.id, "requested_deadline": requested.isoformat()},
        )
    )
    await session.flush()
    await notes_store.add(
        session, [dn.extension_requested(notes_store.facts(item), ext.id, requested, reason)]
    )
    return ext


async def decide_extension(
    session: AsyncSession,
    outbox: Outbox,
    item: Item,
    ext_id: str,
    *,
    actor: str,
    approve: bool,
    reason: str | None,
) -> ExtensionRequest:
    ext = (
        await session.execute(
            select(ExtensionRequest)
            .where(ExtensionRequest.id == ext_id, ExtensionRequest.item_id == item.id)
            .with_for_update()
        )
    ).scalar_one_or_none()
    if ext is None:
        raise NotFound("extension request not found")
    try:
        workflow.decide_extension(
            workflow.Extension(
                ext.requested_deadline, ext.reason, workflow.ExtensionStatus(ext.status)
            ),
            approve=approve,
            reason=reason,
        )
    except workflow.ExtensionError as exc:
        raise UnprocessableContent(str(exc)) from exc
    ext.status = "approved" if approve else "rejected"
    ext.decided_by = actor
    ext.decided_at = utcnow()
    ext.decision_reason = reason
    session.add(
        history(
            item,
            actor,
            f"extension_{ext.status}",
            reason=reason,
            details={"extension_id": ext.id},
        )
    )
    if approve:
        await change_deadline(
            session,
            outbox,
            item,
            ext.requested_deadline,
            actor=actor,
            reason=reason or ext.reason,
            extension_id=ext.id,
        )
    else:
        item.version += 1
        item.updated_at = utcnow()
        await session.flush()
    await notes_store.add(
        session,
        [
            dn.extension_decided(
                notes_store.facts(item),
                ext.id,
                approved=approve,
                new_deadline=ext.requested_deadline,
                reason=reason,
            )
        ],
    )
    return ext


# ----------------------------------------------------------------- list filters


@dataclass
class ItemFilter:
    unit_id: str | None = None
    status: str | None = None
    timeliness: str | None = None
    conclusion_id: str | None = None
    criterion: str | None = None
    deadline_from: date | None = None
    deadline_to: date | None = None
    updated_since: datetime | None = None


def filter_clauses(f: ItemFilter, today: date) -> list[ColumnElement[bool]]:
    out: list[ColumnElement[bool]] = []
    if f.unit_id:
        out.append(visible_to_unit(f.unit_id))
    if f.status:
        out.append(Item.status == f.status)
    if f.timeliness:
        out.append(timeliness_expr(today) == f.timeliness)
    if f.conclusion_id:
        out.append(Item.conclusion_id == f.conclusion_id)
    if f.criterion:
        out.append(Item.criteria.contains([f.criterion]))
    if f.deadline_from:
        out.append(Item.deadline >= f.deadline_from)
    if f.deadline_to:
        out.append(Item.deadline <= f.deadline_to)
    if f.updated_since:
        out.append(Item.updated_at > f.updated_since)
    return out


async def list_items(
    session: AsyncSession,
    f: ItemFilter,
    *,
    today: date,
    scope_unit: str | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[Item]:
    clauses = filter_clauses(f, today)
    if scope_unit is not None:
        clauses.append(visible_to_unit(scope_unit))
    if after is not None:
        clauses.append(
            or_(
                Item.updated_at > after[0],
                and_(Item.updated_at == after[0], Item.id > after[1]),
            )
        )
    stmt = select(Item).where(*clauses).order_by(Item.updated_at, Item.id).limit(limit)
    return list((await session.execute(stmt)).scalars().all())


async def bump_items(session: AsyncSession, item_ids: Sequence[str]) -> None:
    if item_ids:
        await session.execute(
            update(Item)
            .where(Item.id.in_(item_ids))
            .values(version=Item.version + 1, updated_at=func.now())
        )


async def purge_expired_keys(session: AsyncSession, now: datetime) -> int:
    """Drop Idempotency-Keys past their replay window (one statement)."""
    result = await session.execute(
        delete(IdempotencyKey).where(IdempotencyKey.expires_at <= now).returning(IdempotencyKey.key)
    )
    return len(result.all())


# ----------------------------------------------------------------- item detail


@dataclass
class ItemContext:
    """What an item's answer names besides the item: its conclusion and units (set-based)."""

    conclusions: dict[str, tuple[str | None, str]] = field(default_factory=dict)
    unit_names: dict[str, str] = field(default_factory=dict)


async def item_context(session: AsyncSession, items: Sequence[Item]) -> ItemContext:
    """Conclusion numbers/titles and unit names for a page of items: two queries in all."""
    conclusion_ids = {i.conclusion_id for i in items if i.conclusion_id}
    unit_ids: set[str] = set()
    for i in items:
        unit_ids.add(i.lead_unit_id)
        unit_ids.update(i.supporting_unit_ids or [])
        unit_ids.update(i.monitoring_unit_ids or [])
    ctx = ItemContext()
    if conclusion_ids:
        rows = await session.execute(
            select(Conclusion.id, Conclusion.number, Conclusion.title).where(
                Conclusion.id.in_(conclusion_ids)
            )
        )
        ctx.conclusions = {cid: (number, title) for cid, number, title in rows}
    if unit_ids:
        rows2 = await session.execute(
            select(UnitRow.id, UnitRow.name).where(UnitRow.id.in_(unit_ids))
        )
        ctx.unit_names = {uid: name for uid, name in rows2}
    return ctx


async def item_notes(
    session: AsyncSession, item_id: str
) -> list[tuple[ProgressNote, list[EvidenceFile]]]:
    """The item's progress notes in order, each with its stored evidence files."""
    notes = (
        (
            await session.execute(
                select(ProgressNote)
                .where(ProgressNote.item_id == item_id)
                .order_by(ProgressNote.at, ProgressNote.id)
            )
        )
        .scalars()
        .all()
    )
    files = (
        (
            await session.execute(
                select(EvidenceFile)
                .where(EvidenceFile.item_id == item_id)
                .order_by(EvidenceFile.created_at, EvidenceFile.id)
            )
        )
        .scalars()
        .all()
    )
    by_note: dict[int | None, list[EvidenceFile]] = {}
    for f in files:
        by_note.setdefault(f.note_id, []).append(f)
    return [(n, by_note.get(n.id, [])) for n in notes]
