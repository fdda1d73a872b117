"""Ingest API: sources (admin), runs, sync triggers, quarantine, dossier lookup."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Query, Response, status
from sqlalchemy import delete, select, text

from services.ingest import connectors
from services.ingest.api.schemas import (
    DossierListItem,
    DossierOut,
    DossierPage,
    FeedName,
    FeeOut,
    PushAck,
    PushBatch,
    QuarantineOut,
    ReprocessRequest,
    ReprocessResult,
    RunOut,
    SourceCreate,
    SourceOut,
    SourceSettings,
    StatusChangeOut,
    StepOut,
    SupplementOut,
    SyncRequest,
    SyncStarted,
    auth_out,
    auth_to_store,
)
from services.ingest.domain.agencies import mapping_from_registry
from services.ingest.domain.details import StepsTranslator, read_details
from services.ingest.domain.names import CHANNEL_NAMES, status_name, unit_names
from services.ingest.runtime import engine, keyring
from services.ingest.store.credentials import Keyring
from services.ingest.store.models import Dossier, DossierStatusChange, Quarantined, Run, Source
from services.ingest.sync.engine import (
    EngineBusy,
    RunInProgress,
    SourceDisabled,
    SourceNotFound,
    reprocess_quarantine,
)
from services.ingest.sync.push import NotAPushSource, receive_push
from shared.app import RuntimeDep, SessionDep
from shared.auth.principal import Principal, Role
from shared.auth.security import require_roles
from shared.bounds import Id64
from shared.events.payloads import DossierRecord
from shared.problems import (
    Conflict,
    NotFound,
    ServiceUnavailable,
    UnprocessableContent,
    problem_responses,
)

Admin = Annotated[Principal, Depends(require_roles(Role.admin))]
Reader = Annotated[Principal, Depends(require_roles(Role.admin, Role.inspector, Role.viewer))]
Anyone = Annotated[
    Principal,
    Depends(require_roles(Role.admin, Role.inspector, Role.officer, Role.viewer, Role.service)),
]

sources = APIRouter(prefix="/api/v1/sources", tags=["sources"])
runs = APIRouter(prefix="/api/v1/runs", tags=["runs"])
quarantine = APIRouter(prefix="/api/v1/quarantine", tags=["quarantine"])
dossiers = APIRouter(prefix="/api/v1/dossiers", tags=["dossiers"])
push = APIRouter(prefix="/api/v1/push", tags=["push"])
Pusher = Annotated[Principal, Depends(require_roles(Role.admin, Role.service))]


def _source_out(row: Source) -> SourceOut:
    return SourceOut(
        id=row.id, name=row.name, kind=row.kind, base_url=row.base_url, auth=auth_out(row.auth),
        agencies=row.agencies, options=row.options or {}, feeds=list(row.feeds),
        enabled=row.enabled,
        schedule_s=row.schedule_s, lookback_s=row.lookback_s, page_size=row.page_size,
        rate_limit_per_s=row.rate_limit_per_s, concurrency=row.concurrency,
        timeout_s=row.timeout_s, health=row.health,
        consecutive_failures=row.consecutive_failures, degraded_until=row.degraded_until,
        last_error=row.last_error, source_time=row.source_time, newest_seen=row.newest_seen,
        lag_s=(((row.source_time or datetime.now(UTC)) - row.newest_seen).total_seconds()
               if row.newest_seen else None),
        lag_clock=(row.lag_clock or "server_time" if row.source_time else "local")
        if row.newest_seen else None,
        created_at=row.created_at, updated_at=row.updated_at,
    )  # fmt: skip


def _apply(row: Source, body: SourceSettings, ring: Keyring) -> None:
    data = body.model_dump(exclude_unset=True, exclude={"auth", "agencies_from_registry", "id"})
    if body.kind is not None and body.kind not in connectors.kinds():
        raise UnprocessableContent(f"unknown connector kind {body.kind!r}: {connectors.kinds()}")
    for key, value in data.items():
        if value is not None:
            setattr(row, key, value)
    if body.auth is not None:
        row.auth = ring.seal(auth_to_store(body.auth), row.id)
    if body.agencies_from_registry:
        mapping = mapping_from_registry(body.agencies_from_registry)
        if not mapping:
            raise UnprocessableContent(f"no unit has a {body.agencies_from_registry!r} code")
        row.agencies = {**mapping, **(body.agencies or {})}


async def _check_reachable(url: str, timeout_s: float) -> None:
    """A source we are to pull from must answer a TCP connection now (a typo in the host or
    port is found at registration, not by the first run)."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(parts.hostname, port), timeout=min(timeout_s, 5.0)
        )
    except (OSError, TimeoutError) as exc:
        raise UnprocessableContent(
            f"the source at {parts.hostname}:{port} cannot be reached",
            extra={"errors": [{"loc": ["body", "base_url"], "msg":
                               f"unreachable: {type(exc).__name__}", "type": "unreachable"}]},
        ) from exc  # fmt: skip
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


async def _get_source(session: SessionDep, source_id: str) -> Source:
    row = await session.get(Source, source_id)
    if row is None:
        raise NotFound(f"source {source_id} not found")
    return row


@sources.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=SourceOut,
    summary="Register a one-stop system to pull from",
    responses=problem_responses(401, 403, 409, 422),
)
async def create_source(
    body: SourceCreate, session: SessionDep, runtime: RuntimeDep, _: Admin
) -> SourceOut:
    if await session.get(Source, body.id) is not None:
        raise Conflict(f"source {body.id} already exists")
    if connectors.capabilities(body.kind or "national-json").pull:
        await _check_reachable(body.base_url, body.timeout_s or 5.0)
    ring = keyring(runtime)
    row = Source(id=body.id, name=body.name, kind=body.kind or "national-json",
                 base_url=body.base_url, auth=ring.seal(auth_to_store(body.auth), body.id),
                 agencies={})  # fmt: skip
    _apply(row, body, ring)
    session.add(row)
    await session.flush()
    await session.refresh(row)
    return _source_out(row)


@sources.get("", response_model=list[SourceOut], summary="List sources",
             responses=problem_responses(401, 403))  # fmt: skip
async def list_sources(session: SessionDep, _: Admin) -> list[SourceOut]:
    rows = (await session.scalars(select(Source).order_by(Source.id))).all()
    return [_source_out(r) for r in rows]


@sources.get("/{source_id}", response_model=SourceOut, summary="One source (no secrets)",
             responses=problem_responses(401, 403, 404))  # fmt: skip
async def get_source(source_id: str, session: SessionDep, _: Admin) -> SourceOut:
    return _source_out(await _get_source(session, source_id))


@sources.patch("/{source_id}", response_model=SourceOut, summary="Change a source",
               responses=problem_responses(401, 403, 404, 422))  # fmt: skip
async def update_source(
    source_id: str, body: SourceSettings, session: SessionDep, runtime: RuntimeDep, _: Admin
) -> SourceOut:
    row = await _get_source(session, source_id)
    _apply(row, body, keyring(runtime))
    await session.flush()
    await session.refresh(row)
    return _source_out(row)


@sources.delete("/{source_id}", status_code=204, summary="Remove a source and its sync state",
                responses=problem_responses(401, 403, 404))  # fmt: skip
async def delete_source(source_id: str, session: SessionDep, _: Admin) -> Response:
    await _get_source(session, source_id)
    await session.execute(delete(Source).where(Source.id == source_id))
    return Response(status_code=204)


@sources.post(
    "/{source_id}/sync",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SyncStarted,
    summary="Start an incremental sync or a backfill of a date range now",
    responses=problem_responses(401, 403, 404, 409, 422, 503),
)
async def trigger_sync(
    source_id: str, body: SyncRequest, runtime: RuntimeDep, _: Admin
) -> SyncStarted:
    if body.kind == "backfill" and body.since is None:
        raise UnprocessableContent("a backfill needs `since`")
    if body.since and body.until and body.until < body.since:
        raise UnprocessableContent("`until` is before `since`")
    try:
        run_id = await engine(runtime).start(
            source_id, body.feed, kind=body.kind, trigger="manual",
            since=body.since if body.kind == "backfill" else None,
            until=body.until if body.kind == "backfill" else None,
        )  # fmt: skip
    except SourceNotFound as exc:
        raise NotFound(f"source {source_id} not found") from exc
    except SourceDisabled as exc:
        raise UnprocessableContent(f"source {source_id} is disabled") from exc
    except RunInProgress as exc:
        raise Conflict(str(exc)) from exc
    except EngineBusy as exc:
        raise ServiceUnavailable(f"every run slot is taken ({exc}); try again shortly") from exc
    return SyncStarted(run_id=run_id)


def _run_out(r: Run) -> RunOut:
    return RunOut.model_validate(r, from_attributes=True)


@runs.get("", response_model=list[RunOut], summary="Recent runs, newest first",
          responses=problem_responses(401, 403))  # fmt: skip
async def list_runs(
    session: SessionDep,
    _: Reader,
    source_id: str | None = None,
    feed: FeedName | None = None,
    run_status: Annotated[str | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[RunOut]:
    q = select(Run).order_by(Run.started_at.desc()).limit(limit)
    if source_id:
        q = q.where(Run.source_id == source_id)
    if feed:
        q = q.where(Run.feed == feed)
    if run_status:
        q = q.where(Run.status == run_status)
    return [_run_out(r) for r in (await session.scalars(q)).all()]


@runs.get("/{run_id}", response_model=RunOut, summary="One run",
          responses=problem_responses(401, 403, 404))  # fmt: skip
async def get_run(run_id: str, session: SessionDep, _: Reader) -> RunOut:
    row = await session.get(Run, run_id)
    if row is None:
        raise NotFound(f"run {run_id} not found")
    return _run_out(row)


def _quarantine_out(q: Quarantined) -> QuarantineOut:
    try:
        raw: Any = json.loads(q.raw)
    except ValueError:
        raw = q.raw
    source_raw: Any = None
    if q.source_raw is not None:
        try:
            source_raw = json.loads(q.source_raw)
        except ValueError:
            source_raw = q.source_raw
    return QuarantineOut(
        id=q.id, source_id=q.source_id, feed=q.feed, code=q.code, reasons=list(q.reasons),
        raw=raw, source_raw=source_raw, status=q.status, seen_count=q.seen_count, first_seen_at=q.first_seen_at,
        last_seen_at=q.last_seen_at, resolved_at=q.resolved_at,
    )  # fmt: skip


@quarantine.get("", response_model=list[QuarantineOut], summary="Rejected records",
                responses=problem_responses(401, 403))  # fmt: skip
async def list_quarantine(
    session: SessionDep,
    _: Reader,
    source_id: str | None = None,
    feed: FeedName | None = None,
    entry_status: Annotated[str, Query(alias="status")] = "open",
    reason: Annotated[str | None, Query(description="Reason kind, e.g. unknown_agency")] = None,
    after_id: Annotated[Id64, Query(description="Keyset paging: last id seen")] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[QuarantineOut]:
    q = select(Quarantined).where(Quarantined.id > after_id, Quarantined.status == entry_status)
    if source_id:
        q = q.where(Quarantined.source_id == source_id)
    if feed:
        q = q.where(Quarantined.feed == feed)
    if reason:
        q = q.where(
            text("EXISTS (SELECT 1 FROM unnest(reasons) r WHERE split_part(r, ':', 1) = :reason)")
            .bindparams(reason=reason)
        )  # fmt: skip
    rows = await session.scalars(q.order_by(Quarantined.id).limit(limit))
    return [_quarantine_out(r) for r in rows.all()]


@quarantine.post(
    "/reprocess",
    response_model=ReprocessResult,
    summary="Normalise open entries again (after fixing a mapping) and store the valid ones",
    description="A vendor's record (`source_raw`) is translated again with the source's "
    "current options first, so a corrected `status_map` applies. Stored records are announced "
    "once; entries that are still invalid stay open with their new reasons.",
    responses=problem_responses(401, 403, 404),
)
async def reprocess(body: ReprocessRequest, runtime: RuntimeDep, _: Admin) -> ReprocessResult:
    try:
        out = await reprocess_quarantine(engine(runtime), body.source_id, body.feed, body.ids)
    except SourceNotFound as exc:
        raise NotFound(f"source {body.source_id} not found") from exc
    return ReprocessResult(**out)


# A dossier is overdue when it finished after its promised date, or is unfinished and past it on
# the source's clock (its last reported time; ours when it reports none).
OVERDUE_SQL = """(d.due_at IS NOT NULL AND coalesce(d.finished_at, d.returned_at, d.rejected_at,
    s.source_time, now()) > d.due_at)"""

LIST_SQL = f"""
    SELECT d.source_id, d.code, d.unit_id, d.procedure_code, p.name AS procedure_name,
           d.channel, d.status, d.submitted_at, d.received_at, d.due_at, d.finished_at,
           d.source_updated_at, d.supplement_count, d.details, {OVERDUE_SQL} AS overdue
    FROM ingest.dossiers d
    JOIN ingest.sources s ON s.id = d.source_id
    LEFT JOIN ingest.procedures p ON p.source_id = d.source_id AND p.code = d.procedure_code
    WHERE (CAST(:unit AS text) IS NULL OR d.unit_id = :unit)
      AND (CAST(:source AS text) IS NULL OR d.source_id = :source)
      AND (CAST(:procedure AS text) IS NULL OR d.procedure_code = :procedure)
      AND (CAST(:statuses AS int[]) IS NULL OR d.status = ANY(CAST(:statuses AS int[])))
      AND (CAST(:channel AS int) IS NULL OR d.channel = :channel)
      AND (CAST(:received_from AS timestamptz) IS NULL OR d.received_at >= :received_from)
      AND (CAST(:received_to AS timestamptz) IS NULL OR d.received_at < :received_to)
      AND (CAST(:due_from AS timestamptz) IS NULL OR d.due_at >= :due_from)
      AND (CAST(:due_to AS timestamptz) IS NULL OR d.due_at < :due_to)
      AND (CAST(:finished_from AS timestamptz) IS NULL OR d.finished_at >= :finished_from)
      AND (CAST(:finished_to AS timestamptz) IS NULL OR d.finished_at < :finished_to)
      AND (CAST(:overdue AS boolean) IS NULL OR {OVERDUE_SQL} = :overdue)
      AND (CAST(:q AS text) IS NULL OR strpos(lower(d.code), lower(:q)) > 0)
      AND (CAST(:after_code AS text) IS NULL
           OR (d.code, d.source_id) > (CAST(:after_code AS text) COLLATE "C",
                                       CAST(:after_source AS text) COLLATE "C"))
    ORDER BY d.code, d.source_id
    LIMIT :limit"""


def _cursor(code: str, source_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([code, source_id]).encode()).decode()


def _uncursor(cursor: str) -> tuple[str, str]:
    try:
        code, source_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return str(code), str(source_id)
    except (ValueError, TypeError) as exc:
        raise UnprocessableContent("`cursor` is not one this API gave") from exc


@dossiers.get(
    "",
    response_model=DossierPage,
    summary="Search and list dossiers (cursor pagination)",
    description="Filters combine (AND). `q` finds text in the dossier code. An agency officer "
    "sees only their agency's dossiers.",
    responses=problem_responses(401, 403, 422),
)
async def list_dossiers(
    session: SessionDep,
    principal: Anyone,
    agency: Annotated[str | None, Query(description="Our unit id, e.g. P21.SNV")] = None,
    source_id: str | None = None,
    procedure: Annotated[str | None, Query(description="MaTTHC")] = None,
    dossier_status: Annotated[
        list[int] | None, Query(alias="status", description="TrangThaiHoSo, repeatable")
    ] = None,
    channel: Annotated[int | None, Query(ge=1, le=3, description="KenhThucHien")] = None,
    received_from: datetime | None = None,
    received_to: datetime | None = None,
    due_from: datetime | None = None,
    due_to: datetime | None = None,
    finished_from: datetime | None = None,
    finished_to: datetime | None = None,
    overdue: bool | None = None,
    q: Annotated[str | None, Query(min_length=2, max_length=100)] = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> DossierPage:
    scope = principal.unit_scope()
    if scope is not None:
        if agency is not None and agency != scope:
            return DossierPage(items=[], next_cursor=None)
        agency = scope
    after = _uncursor(cursor) if cursor else (None, None)
    rows = (
        (
            await session.execute(
                text(LIST_SQL),
                {
                    "unit": agency,
                    "source": source_id,
                    "procedure": procedure,
                    "statuses": dossier_status or None,
                    "channel": channel,
                    "received_from": received_from,
                    "received_to": received_to,
                    "due_from": due_from,
                    "due_to": due_to,
                    "finished_from": finished_from,
                    "finished_to": finished_to,
                    "overdue": overdue,
                    "q": q,
                    "after_code": after[0],
                    "after_source": after[1],
                    "limit": limit + 1,
                },
            )
        )
        .mappings()
        .all()
    )
    names = unit_names()
    options = {
        o["id"]: o["options"]
        for o in (await session.execute(
            text("SELECT id, options FROM ingest.sources WHERE id = ANY(:ids)"),
            {"ids": sorted({r["source_id"] for r in rows})},
        )).mappings()
    }  # fmt: skip
    items = []
    for r in rows[:limit]:
        row = dict(r)
        shown = read_details(
            row.pop("details"), status_name, steps_translator(options.get(r["source_id"]))
        )
        amounts = [f["amount"] for f in shown.fees if f["amount"] is not None]
        items.append(DossierListItem(
            **{**row, "procedure_name": shown.procedure_name or row["procedure_name"]},
            unit_name=names.get(r["unit_id"]), status_name=status_name(r["status"]),
            source_agency_name=shown.agency_name,
            fee_total=sum(amounts) if amounts else None,
            last_step=StepOut(**shown.steps[-1]) if shown.steps else None,
        ))  # fmt: skip
    more = len(rows) > limit
    return DossierPage(
        items=items,
        next_cursor=_cursor(items[-1].code, items[-1].source_id) if more and items else None,
    )


@dossiers.get(
    "/{code}",
    response_model=DossierOut,
    summary="Track a dossier by its code (MaHoSo): status history, names, fees, supplements "
    "and processing steps",
    responses=problem_responses(401, 403, 404),
)
async def get_dossier(
    code: str, session: SessionDep, principal: Anyone, source_id: str | None = None
) -> DossierOut:
    q = select(Dossier).where(Dossier.code == code)
    if source_id:
        q = q.where(Dossier.source_id == source_id)
    row = (await session.scalars(q.order_by(Dossier.source_updated_at.desc()).limit(1))).first()
    if row is None:
        raise NotFound(f"dossier {code} not found")
    principal.ensure_unit(row.unit_id, f"dossier {code}")
    changes = (
        await session.scalars(
            select(DossierStatusChange)
            .where(DossierStatusChange.source_id == row.source_id, DossierStatusChange.code == code)
            .order_by(DossierStatusChange.source_updated_at, DossierStatusChange.id)
        )
    ).all()
    extra = (
        (
            await session.execute(
                text(f"""SELECT p.name AS procedure_name, {OVERDUE_SQL} AS overdue, s.options
                FROM ingest.dossiers d JOIN ingest.sources s ON s.id = d.source_id
                LEFT JOIN ingest.procedures p ON p.source_id = d.source_id
                     AND p.code = d.procedure_code
                WHERE d.source_id = :source AND d.code = :code"""),
                {"source": row.source_id, "code": code},
            )
        )
        .mappings()
        .one()
    )
    shown = read_details(row.details, status_name, steps_translator(extra["options"]))
    data = {c: getattr(row, c) for c in DossierRecord.model_fields}
    return DossierOut(
        **data, version=row.version, history=status_trail(row, changes),
        status_name=status_name(row.status), channel_name=CHANNEL_NAMES.get(row.channel, ""),
        unit_name=unit_names().get(row.unit_id),
        procedure_name=shown.procedure_name or extra["procedure_name"],
        field_name=shown.field_name, source_agency_name=shown.agency_name,
        overdue=bool(extra["overdue"]),
        fees=[FeeOut(**f) for f in shown.fees],
        supplements=[SupplementOut(**x) for x in shown.supplements],
        steps=[StepOut(**x) for x in shown.steps],
    )  # fmt: skip


def steps_translator(options: Mapping[str, Any] | str | None) -> StepsTranslator:
    """Brings stored vendor steps into national fields with the source's current options
    (its status map: a corrected map shows at once)."""

    opts = json.loads(options) if isinstance(options, str) else options
    opts = opts if isinstance(opts, Mapping) else {}

    def translate(wire: str, steps: list[Any]) -> list[Any]:
        fmt = connectors.WIRE_FORMATS.get(wire)
        return fmt.steps(steps, opts) if fmt is not None and fmt.steps else []

    return translate


def status_trail(row: Dossier, changes: Sequence[DossierStatusChange]) -> list[StatusChangeOut]:
    """The complete trail: the status the dossier was first stored with, then every transition.
    Only transitions are stored; the first entry is the first transition's previous status and
    when it began, or the current status when there was no transition."""
    first = changes[0] if changes else None
    start = StatusChangeOut(
        status=row.status if first is None or first.previous_status is None
        else first.previous_status,
        previous_status=None,
        source_updated_at=(
            (first.previous_status_since if first is not None else row.status_since)
            or row.source_updated_at
        ),
        recorded_at=row.first_seen_at,
    )  # fmt: skip
    return [start, *(StatusChangeOut.model_validate(h, from_attributes=True) for h in changes)]


@push.post(
    "/{source_id}/{service}",
    response_model=PushAck,
    summary="Receive a national synchronisation batch (DongBoHoSoMC / CapNhatTienDoHoSoMC)",
    description="A one-stop system pushes its dossiers here as it does to the national portal. "
    "Each record is validated like a pulled one (invalid ones are quarantined, with reasons); "
    "repeats store nothing; the answer comes once the batch is committed. Idempotent: the same "
    "batch (same `session`, same content) sent again gets the first acknowledgement again "
    "(`replayed: true`) and stores nothing. Needs a `service` (or admin) token; the source "
    "must be of kind `national-push`.",
    responses={
        200: {"description": "Committed: the acknowledgement (or, replayed, the first one)."},
        **problem_responses(401, 403, 404, 422),
    },
)
async def receive(
    source_id: str,
    service: Literal["DongBoHoSoMC", "CapNhatTienDoHoSoMC"],
    body: PushBatch,
    runtime: RuntimeDep,
    _: Pusher,
) -> PushAck:
    if body.service is not None and body.service != service:
        raise UnprocessableContent(f"the batch says service {body.service!r}, the path {service!r}")
    # what makes a repeat the same batch: its content, canonically serialised
    digest = hashlib.sha256(
        json.dumps(body.model_dump(mode="json"), sort_keys=True, ensure_ascii=False).encode()
    ).hexdigest()
    try:
        out = await receive_push(engine(runtime), source_id, service, body.data,
                                 session=body.session, digest=digest)  # fmt: skip
    except SourceNotFound as exc:
        raise NotFound(f"source {source_id} not found") from exc
    except NotAPushSource as exc:
        raise UnprocessableContent(
            f"source {source_id} is pulled, not a national-push source"
        ) from exc
    except SourceDisabled as exc:
        raise UnprocessableContent(f"source {source_id} is disabled") from exc
    return PushAck(**out)
