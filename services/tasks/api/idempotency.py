"""`Idempotency-Key` for every write a phone may retry: one decorator, one table.

    @router.post(...)
    @idempotent("add_progress")
    async def add_progress(item_id: str, request: Request, session: SessionDep,
                           principal: Worker, ...) -> Response: ...

The decorator adds the documented `Idempotency-Key` header parameter to the endpoint. With a
key it claims (subject, endpoint, key) in the request's own transaction *before* the handler
runs; a concurrent retry blocks on that row until the first commits, then replays it. After
the handler it stores the response (status, body, ETag/Location/Content-Type) in the same
transaction as the handler's effects, so a failed write leaves no key behind and a committed
one always has its answer. The same key with another request (path, query or body — JSON
canonicalised, multipart by field values and file digests) is a 422 problem. Keys replay for
`TASKS_IDEMPOTENCY_TTL_HOURS`; the scheduler purges them after (`repo.purge_expired_keys`).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import inspect
import json
import typing
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import Header, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import UploadFile

from services.tasks.config import TasksSettings
from services.tasks.store.models import IdempotencyKey
from services.tasks.store.repo import utcnow
from shared.auth.principal import Principal
from shared.problems import Conflict, UnprocessableContent

KEY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
_KEPT_HEADERS = ("content-type", "etag", "location", "content-disposition")
_KEY_DESCRIPTION = (
    "Retry-safe write: the same key and request replay the first answer (status, body, ETag) "
    "for {hours} hours; the same key with a different request is a 422 problem."
)

Endpoint = Callable[..., Awaitable[Any]]


def _digest_file(upload: UploadFile) -> str:
    f = upload.file
    f.seek(0)
    h = hashlib.sha256()
    for chunk in iter(lambda: f.read(1 << 20), b""):
        h.update(chunk)
    f.seek(0)
    return h.hexdigest()


async def request_fingerprint(request: Request) -> str:
    """A digest of what the request asks: method, path, query and body (by meaning)."""
    parts: dict[str, Any] = {
        "method": request.method,
        "path": request.url.path,
        "query": sorted(request.query_params.multi_items()),
    }
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data") or content_type.startswith(
        "application/x-www-form-urlencoded"
    ):
        form = await request.form()  # Starlette caches it: the handler sees the same form
        fields: list[Any] = []
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                digest = await asyncio.to_thread(_digest_file, value)
                fields.append([name, value.filename, digest])
            else:
                fields.append([name, value])
        parts["form"] = sorted(fields, key=json.dumps)
    else:
        raw = await request.body()
        try:
            parts["json"] = json.loads(raw) if raw else None
        except ValueError:
            parts["raw"] = hashlib.sha256(raw).hexdigest()
    return hashlib.sha256(
        json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str).encode()
    ).hexdigest()


_CLAIM = text(
    """
    INSERT INTO idempotency_keys AS k
        (subject, endpoint, key, request_hash, status_code, response, body, headers,
         created_at, expires_at)
    VALUES (:subject, :endpoint, :key, :hash, NULL, NULL, NULL, '{}'::jsonb, :now, :expires)
    ON CONFLICT (subject, endpoint, key) DO UPDATE
        SET request_hash = excluded.request_hash, status_code = NULL, response = NULL,
            body = NULL, headers = '{}'::jsonb, created_at = excluded.created_at,
            expires_at = excluded.expires_at
        WHERE k.expires_at <= :now
    RETURNING k.key
    """
)


async def claim(
    session: AsyncSession,
    *,
    subject: str,
    endpoint: str,
    key: str,
    fingerprint: str,
    now: datetime,
    ttl: timedelta,
) -> Response | None:
    """Claim the key (None: go ahead) or the stored answer to replay (422 if it differs)."""
    params = {
        "subject": subject,
        "endpoint": endpoint,
        "key": key,
        "hash": fingerprint,
        "now": now,
        "expires": now + ttl,
    }
    if (await session.execute(_CLAIM, params)).first() is not None:
        return None
    row = (
        await session.execute(
            select(IdempotencyKey).where(
                IdempotencyKey.subject == subject,
                IdempotencyKey.endpoint == endpoint,
                IdempotencyKey.key == key,
            )
        )
    ).scalar_one()
    if row.request_hash != fingerprint:
        raise UnprocessableContent(
            f"this {KEY_HEADER} was used for a different request; use a new key"
        )
    if row.status_code is None:
        raise Conflict(f"a request with this {KEY_HEADER} is still being processed")
    return stored_response(row)


def stored_response(row: IdempotencyKey) -> Response:
    headers = {k: v for k, v in (row.headers or {}).items() if k != "content-type"}
    headers[REPLAYED_HEADER] = "true"
    if row.body is None:  # stored by the earlier conclusions helper: a JSON document
        return JSONResponse(row.response, status_code=row.status_code or 200, headers=headers)
    return Response(
        content=row.body,
        status_code=row.status_code or 200,
        headers=headers,
        media_type=(row.headers or {}).get("content-type"),
    )


async def store(
    session: AsyncSession, *, subject: str, endpoint: str, key: str, response: Response
) -> None:
    body = bytes(response.body) if hasattr(response, "body") else b""
    headers = {k: v for k, v in response.headers.items() if k.lower() in _KEPT_HEADERS}
    row = await session.get(IdempotencyKey, (subject, endpoint, key))
    assert row is not None  # claimed in this transaction
    row.status_code = response.status_code
    row.body = body
    row.headers = headers
    await session.flush()


def _as_response(result: Any) -> Response:
    if isinstance(result, Response):
        return result
    return JSONResponse(jsonable_encoder(result))


def idempotent(endpoint: str) -> Callable[[Endpoint], Endpoint]:
    """Make a write endpoint honour `Idempotency-Key` (it must take `request`, `session` and
    `principal`; it should return a Response, or a value rendered as JSON with status 200)."""

    def wrap(fn: Endpoint) -> Endpoint:
        hints = typing.get_type_hints(fn, include_extras=True)
        sig = inspect.signature(fn)
        for needed in ("request", "session", "principal"):
            if needed not in sig.parameters:
                raise TypeError(f"{fn.__name__}: an idempotent endpoint needs `{needed}`")
        params = [
            p.replace(annotation=hints.get(p.name, p.annotation)) for p in sig.parameters.values()
        ]
        ttl_hours = TasksSettings().idempotency_ttl_hours
        params.append(
            inspect.Parameter(
                "idempotency_key",
                inspect.Parameter.KEYWORD_ONLY,
                default=None,
                annotation=Annotated[
                    str | None,
                    Header(
                        alias=KEY_HEADER,
                        max_length=255,
                        description=_KEY_DESCRIPTION.format(hours=ttl_hours),
                        examples=["3f1c2a9e-5b7d-4c1e-9f0a-2d6b8e4a7c10"],
                    ),
                ],
            )
        )

        @functools.wraps(fn)
        async def wrapper(*args: Any, idempotency_key: str | None = None, **kwargs: Any) -> Any:
            if not idempotency_key:
                return await fn(*args, **kwargs)
            request: Request = kwargs["request"]
            session: AsyncSession = kwargs["session"]
            principal: Principal = kwargs["principal"]
            settings: TasksSettings = (
                getattr(request.app.state, "tasks_settings", None) or TasksSettings()
            )
            fingerprint = await request_fingerprint(request)
            replayed = await claim(
                session,
                subject=principal.subject,
                endpoint=endpoint,
                key=idempotency_key,
                fingerprint=fingerprint,
                now=utcnow(),
                ttl=timedelta(hours=settings.idempotency_ttl_hours),
            )
            if replayed is not None:
                return replayed
            response = _as_response(await fn(*args, **kwargs))
            await store(
                session,
                subject=principal.subject,
                endpoint=endpoint,
                key=idempotency_key,
                response=response,
            )
            return response

        wrapper.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
        del wrapper.__wrapped__  # FastAPI must read the signature above, not the original
        return wrapper

    return wrap
