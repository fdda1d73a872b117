"""HTTP helpers: ETags, cursors, Idempotency-Key replay, item serialisation."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import date, datetime, timedelta
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.tasks.api.schemas import ItemOut
from services.tasks.config import TasksSettings
from services.tasks.domain import timeliness as tl
from services.tasks.store import repo
from services.tasks.store.models import IdempotencyKey, Item
from shared.auth.principal import Principal
from shared.problems import BadRequest, Conflict, PreconditionFailed, UnprocessableContent


def item_out(item: Item, now: datetime) -> ItemOut:
    return ItemOut(
        id=item.id,
        conclusion_id=item.conclusion_id,
        finding_id=item.finding_id,
        origin=item.origin,
        alert_id=item.alert_id,
        indicator=item.indicator,
        title=item.title,
        lead_unit_id=item.lead_unit_id,
        supporting_unit_ids=list(item.supporting_unit_ids or []),
        responsible_person=item.responsible_person,
        criteria=list(item.criteria or []),
        priority=item.priority,
        deadline=item.deadline,
        recurrence=item.recurrence,
        parent_item_id=item.parent_item_id,
        period_key=item.period_key,
        status=item.status,
        timeliness=repo.item_timeliness(item, now),
        progress_percent=item.progress_percent,
        completed_at=item.completed_at,
        version=item.version,
        created_at=item.created_at,
        updated_at=item.updated_at,
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


# ----------------------------------------------------------------- idempotency


def request_hash(body: Any) -> str:
    return hashlib.sha256(
        json.dumps(body, sort_keys=True, default=str, ensure_ascii=False).encode()
    ).hexdigest()


async def replay(
    session: AsyncSession, principal: Principal, endpoint: str, key: str | None, body: Any
) -> JSONResponse | None:
    """The stored response for a repeated Idempotency-Key (422 if the body differs).

    The older helpers of conclusions.py; item writes use `api.idempotency.idempotent`.
    """
    if not key:
        return None
    row = (
        await session.execute(
            select(IdempotencyKey).where(
                IdempotencyKey.subject == principal.subject,
                IdempotencyKey.endpoint == endpoint,
                IdempotencyKey.key == key,
                IdempotencyKey.expires_at > repo.utcnow(),
            )
        )
    ).scalar_one_or_none()
    if row is None:
        return None
    if row.request_hash != request_hash(body):
        raise UnprocessableContent("Idempotency-Key reused with a different request body")
    return JSONResponse(
        row.response, status_code=row.status_code or 200, headers={"Idempotent-Replayed": "true"}
    )


async def remember(
    session: AsyncSession,
    principal: Principal,
    endpoint: str,
    key: str | None,
    body: Any,
    status_code: int,
    response: Any,
) -> None:
    if not key:
        return
    result = await session.execute(
        pg_insert(IdempotencyKey)
        .values(
            subject=principal.subject,
            endpoint=endpoint,
            key=key,
            request_hash=request_hash(body),
            status_code=status_code,
            response=json.loads(json.dumps(response, default=str)),
            expires_at=repo.utcnow() + timedelta(hours=TasksSettings().idempotency_ttl_hours),
        )
        .on_conflict_do_nothing()
        .returning(IdempotencyKey.key)
    )
    if result.first() is None:
        # a concurrent request with the same key won the race: fail this one
        raise Conflict("a request with this Idempotency-Key is already being processed")
