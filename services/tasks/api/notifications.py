"""Notifications over HTTP: the caller's feed (delta sync, read/unread, ETag), marking read,
Web Push subscriptions, the e-mail / webhook targets of an agency or role, delivery state."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from services.tasks.api.common import json_with_etag
from services.tasks.api.evidence import TasksConfig
from services.tasks.api.idempotency import idempotent
from services.tasks.domain import notifications as dn
from services.tasks.notify import channels
from services.tasks.store import notifications as store
from services.tasks.store import repo
from services.tasks.store.models import NotificationDelivery, NotificationTarget
from shared.app import SessionDep
from shared.auth.principal import Principal, Role
from shared.auth.security import current_principal, require_roles
from shared.problems import BadRequest, NotFound, problem_responses

router = APIRouter(prefix="/api/v1", tags=["notifications"])
Reader = Annotated[Principal, Depends(current_principal)]
Manager = Annotated[Principal, Depends(require_roles(Role.admin, Role.inspector))]

KindName = Literal[
    "reminder",
    "overdue",
    "escalation",
    "extension_decided",
    "report_reopened",
    "report_accepted",
    "item_assigned",
    "report_submitted",
    "extension_requested",
    "digest",
]


class DeliveryOut(BaseModel):
    channel: Literal["webpush", "email", "webhook"]
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    last_error: str | None
    delivered_at: datetime | None
    next_attempt_at: datetime


class NotificationOut(BaseModel):
    id: int
    kind: KindName
    audience: str = Field(examples=["unit:P21.SNV"])
    title: str = Field(examples=["Sắp đến hạn (còn 3 ngày) / due in 3 day(s)"])
    body: str
    item_id: str | None
    data: dict[str, Any]
    created_at: datetime
    read: bool
    read_at: datetime | None
    updated_at: datetime = Field(description="Created or read by you: pass as updated_since.")
    deliveries: list[DeliveryOut]


class NotificationPage(BaseModel):
    items: list[NotificationOut]
    next_cursor: str | None
    unread: int = Field(description="All your unread notifications, not only this page.")


class ReadIn(BaseModel):
    ids: list[int] | None = Field(default=None, description="null: mark all read.")


class ReadOut(BaseModel):
    marked: int
    unread: int


class PushSubscriptionIn(BaseModel):
    """The browser's PushSubscription.toJSON()."""

    endpoint: str = Field(examples=["https://fcm.googleapis.com/fcm/send/abc…"])
    keys: dict[str, str] = Field(examples=[{"p256dh": "BNc…", "auth": "tBH…"}])


class TargetIn(BaseModel):
    audience: str = Field(
        pattern=r"^(unit|role|user):.+$", examples=["unit:P21.SNV", "role:viewer"]
    )
    channel: Literal["email", "webhook"]
    address: str = Field(examples=["vanphong@snv.hungyen.gov.vn", "https://smart.example/hook"])
    secret: str | None = Field(
        default=None, description="Webhook HMAC secret (write-only: never shown again)."
    )


class TargetOut(BaseModel):
    id: str
    audience: str
    channel: str
    address: str
    has_secret: bool
    active: bool


def _audiences(p: Principal) -> list[str]:
    return dn.audiences_of(subject=p.subject, role=p.role.value, unit_id=p.unit_id)


def _cursor(at: datetime, nid: int) -> str:
    return base64.urlsafe_b64encode(f"{at.isoformat()}|{nid}".encode()).decode().rstrip("=")


def _uncursor(cursor: str | None) -> tuple[datetime, int] | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, nid = raw.split("|", 1)
        return datetime.fromisoformat(at), int(nid)
    except Exception as exc:
        raise BadRequest("invalid cursor") from exc


@router.get(
    "/me/notifications",
    summary="Your notifications: reminders, overdue, escalations, decisions, new items "
    "(updated_since delta sync, unread filter, cursor, ETag)",
    response_model=NotificationPage,
    responses={304: {"description": "Not modified (If-None-Match)"}, **problem_responses(400, 401)},
)
async def my_notifications(
    request: Request,
    session: SessionDep,
    principal: Reader,
    updated_since: datetime | None = None,
    unread: bool = Query(False, description="Only unread ones."),
    cursor: str | None = None,
    limit: int = Query(50, ge=1, le=500),
) -> Response:
    audiences = _audiences(principal)
    rows = await store.feed(
        session,
        audiences=audiences,
        subject=principal.subject,
        updated_since=updated_since,
        unread_only=unread,
        after=_uncursor(cursor),
        limit=limit + 1,
    )
    page = rows[:limit]
    deliveries = await store.deliveries_of(session, [n.id for n, _, _ in page])
    body = NotificationPage(
        items=[
            NotificationOut(
                id=n.id,
                kind=n.kind,
                audience=n.audience,
                title=n.title,
                body=n.body,
                item_id=n.item_id,
                data=n.data,
                created_at=n.created_at,
                read=read_at is not None,
                read_at=read_at,
                updated_at=updated,
                deliveries=[
                    DeliveryOut(
                        channel=d.channel,
                        status=d.status,
                        attempts=d.attempts,
                        last_error=d.last_error,
                        delivered_at=d.delivered_at,
                        next_attempt_at=d.next_attempt_at,
                    )
                    for d in deliveries.get(n.id, [])
                ],
            )
            for n, read_at, updated in page
        ],
        next_cursor=_cursor(page[-1][2], page[-1][0].id) if len(rows) > limit else None,
        unread=await store.unread_count(session, audiences=audiences, subject=principal.subject),
    )
    return json_with_etag(request, body.model_dump(mode="json"))


@router.post(
    "/me/notifications/read",
    summary="Mark notifications read (the given ids, or all)",
    response_model=ReadOut,
    responses=problem_responses(401, 422),
)
@idempotent("mark_notifications_read")
async def mark_read(
    body: ReadIn, request: Request, session: SessionDep, principal: Reader
) -> Response:
    audiences = _audiences(principal)
    marked = await store.mark_read(
        session, audiences=audiences, subject=principal.subject, ids=body.ids, now=repo.utcnow()
    )
    unread = await store.unread_count(session, audiences=audiences, subject=principal.subject)
    return JSONResponse(ReadOut(marked=marked, unread=unread).model_dump())


@router.get(
    "/push/vapid-public-key",
    summary="The VAPID public key the app subscribes with (applicationServerKey)",
    responses=problem_responses(401, 404),
)
async def vapid_public_key(principal: Reader, settings: TasksConfig) -> dict[str, str]:
    if not settings.vapid_private_key:
        raise NotFound("Web Push is not configured")
    return {"public_key": channels.vapid_public_key(settings.vapid_private_key)}


def _primary_audience(p: Principal) -> str:
    """Whose notifications a device subscribed by `p` receives: the agency's for an officer,
    the role's for province-wide roles."""
    return dn.unit_audience(p.unit_id) if p.unit_id else dn.role_audience(p.role.value)


@router.post(
    "/me/push-subscriptions",
    summary="Register this device for Web Push (your agency's or role's notifications)",
    status_code=201,
    response_model=TargetOut,
    responses=problem_responses(401, 422),
)
@idempotent("subscribe_push")
async def subscribe_push(
    body: PushSubscriptionIn, request: Request, session: SessionDep, principal: Reader
) -> Response:
    if not {"p256dh", "auth"} <= set(body.keys):
        raise BadRequest("keys needs p256dh and auth")
    target = await _upsert_target(
        session,
        audience=_primary_audience(principal),
        channel="webpush",
        address=body.endpoint,
        secret=None,
        keys=body.keys,
        actor=principal.subject,
    )
    return JSONResponse(_target_out(target).model_dump(), status_code=201)


@router.delete(
    "/me/push-subscriptions",
    summary="Unregister a device (its endpoint)",
    status_code=204,
    responses=problem_responses(401),
)
async def unsubscribe_push(
    session: SessionDep, principal: Reader, endpoint: str = Query(...)
) -> Response:
    await session.execute(
        delete(NotificationTarget).where(
            NotificationTarget.channel == "webpush",
            NotificationTarget.address == endpoint,
            NotificationTarget.audience == _primary_audience(principal),
        )
    )
    return Response(status_code=204)


async def _upsert_target(
    session: SessionDep,
    *,
    audience: str,
    channel: str,
    address: str,
    secret: str | None,
    keys: dict[str, Any],
    actor: str,
) -> NotificationTarget:
    stmt = pg_insert(NotificationTarget).values(
        id=repo.new_id("tgt"),
        audience=audience,
        channel=channel,
        address=address,
        secret=secret,
        keys=keys,
        active=True,
        created_by=actor,
    )
    upsert = stmt.on_conflict_do_update(
        constraint="uq_target",
        set_={"secret": stmt.excluded.secret, "keys": stmt.excluded["keys"], "active": True},
    ).returning(NotificationTarget)
    target = (await session.execute(upsert)).scalar_one()
    return target


def _target_out(t: NotificationTarget) -> TargetOut:
    return TargetOut(
        id=t.id,
        audience=t.audience,
        channel=t.channel,
        address=t.address,
        has_secret=bool(t.secret),
        active=t.active,
    )


@router.post(
    "/notification-targets",
    summary="Send an agency's or role's notifications to an e-mail address or a webhook",
    status_code=201,
    response_model=TargetOut,
    responses=problem_responses(401, 403, 422),
)
@idempotent("add_target")
async def add_target(
    body: TargetIn, request: Request, session: SessionDep, principal: Manager
) -> Response:
    if body.channel == "webhook" and not body.address.startswith(("https://", "http://")):
        raise BadRequest("a webhook address is an http(s) URL")
    if body.channel == "email" and "@" not in body.address:
        raise BadRequest("not an e-mail address")
    target = await _upsert_target(
        session,
        audience=body.audience,
        channel=body.channel,
        address=body.address,
        secret=body.secret,
        keys={},
        actor=principal.subject,
    )
    return JSONResponse(_target_out(target).model_dump(), status_code=201)


@router.get(
    "/notification-targets",
    summary="Configured e-mail, webhook and Web Push targets (secrets never shown)",
    response_model=list[TargetOut],
    responses=problem_responses(401, 403),
)
async def list_targets(session: SessionDep, principal: Manager) -> list[TargetOut]:
    rows = (
        (await session.execute(select(NotificationTarget).order_by(NotificationTarget.created_at)))
        .scalars()
        .all()
    )
    return [_target_out(t) for t in rows]


@router.get(
    "/notification-deliveries",
    summary="Delivery state (pending, delivered, failed) across channels",
    response_model=list[dict[str, Any]],
    responses=problem_responses(401, 403),
)
async def list_deliveries(
    session: SessionDep,
    principal: Manager,
    status: Literal["pending", "delivered", "failed"] | None = None,
    limit: int = Query(100, ge=1, le=1000),
) -> list[dict[str, Any]]:
    stmt = select(NotificationDelivery).order_by(NotificationDelivery.id.desc()).limit(limit)
    if status:
        stmt = stmt.where(NotificationDelivery.status == status)
    return [
        {
            "id": d.id,
            "notification_id": d.notification_id,
            "target_id": d.target_id,
            "channel": d.channel,
            "status": d.status,
            "attempts": d.attempts,
            "last_error": d.last_error,
            "delivered_at": d.delivered_at,
            "next_attempt_at": d.next_attempt_at,
        }
        for d in (await session.execute(stmt)).scalars().all()
    ]
