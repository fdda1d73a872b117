"""Evidence uploads (multipart on progress and remediation reports) and downloads.

A report is JSON (`ProgressIn`, evidence as links) or `multipart/form-data` with the same
fields plus `files` (PDF, Office documents, images). Each file is checked — size, empty,
type from its bytes against its name and declared type — scanned through the hook, hashed
(SHA-256) and stored (PostgreSQL chunks by default, S3 when configured) in the request's
transaction. Downloads are authorised like the item: another agency's evidence is 404.
"""

from __future__ import annotations

import asyncio
import copy
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import UploadFile

from services.tasks.api.common import ensure_can_read
from services.tasks.config import TasksSettings
from services.tasks.domain import evidence as ev
from services.tasks.store import blobs, repo
from services.tasks.store.models import EvidenceFile, Item
from shared.app import Runtime, RuntimeDep, SessionDep
from shared.auth.principal import Principal
from shared.auth.security import current_principal
from shared.problems import (
    NotFound,
    Problem,
    ServiceUnavailable,
    UnprocessableContent,
    problem_responses,
)

router = APIRouter(prefix="/api/v1", tags=["items"])
Reader = Annotated[Principal, Depends(current_principal)]


class PayloadTooLarge(Problem):
    status, slug = 413, "payload-too-large"


class UnsupportedMediaType(Problem):
    status, slug = 415, "unsupported-media-type"


def tasks_settings(request: Request) -> TasksSettings:
    return getattr(request.app.state, "tasks_settings", None) or TasksSettings()


TasksConfig = Annotated[TasksSettings, Depends(tasks_settings)]


def blob_store(runtime: Runtime) -> blobs.PostgresBlobStore | blobs.S3BlobStore:
    store = runtime.extras.get("blob_store")
    if store is None:
        settings = runtime.extras.get("tasks_settings") or TasksSettings()
        store = runtime.extras["blob_store"] = blobs.make_store(settings, runtime.sessions)
    return store


def upload_size_guard(request: Request, settings: TasksConfig) -> None:
    """Refuse an upload that is too large before its body is read (Content-Length)."""
    declared = request.headers.get("content-length")
    limit = settings.evidence_max_bytes * settings.evidence_max_files + (1 << 20)
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the request is {declared} bytes; the limit is {limit} bytes")


UploadGuard = Depends(upload_size_guard)


@dataclass
class Submission:
    fields: BaseModel
    uploads: list[UploadFile] = field(default_factory=list)


async def read_submission(
    request: Request, model: type[BaseModel], settings: TasksSettings
) -> Submission:
    """The request's fields (validated by `model`) and its uploaded files."""
    content_type = request.headers.get("content-type", "")
    uploads: list[UploadFile] = []
    try:
        if content_type.startswith("multipart/form-data"):
            form = await request.form(max_files=settings.evidence_max_files + 1)
            raw: dict[str, Any] = {}
            for name, value in form.multi_items():
                if isinstance(value, UploadFile):
                    uploads.append(value)
                elif name in ("note", "reason", "percent"):
                    raw[name] = value if value != "" else None
            if len(uploads) > settings.evidence_max_files:
                raise UnprocessableContent(
                    f"at most {settings.evidence_max_files} files per report"
                )
            return Submission(
                model.model_validate({k: v for k, v in raw.items() if v is not None}), uploads
            )
        body = await request.body()
        return Submission(model.model_validate_json(body or b"{}"))
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from exc


async def store_uploads(
    session: AsyncSession,
    runtime: Runtime,
    settings: TasksSettings,
    item: Item,
    principal: Principal,
    uploads: list[UploadFile],
) -> list[EvidenceFile]:
    """Check, scan, hash and store each file; the rows are added with the note."""
    scanner = blobs.make_scanner(settings)
    store = blob_store(runtime)
    rows: list[EvidenceFile] = []
    for up in uploads:
        size = up.size if up.size is not None else await asyncio.to_thread(_size_of, up)
        try:
            content_type = await asyncio.to_thread(
                ev.check,
                up.file,
                filename=up.filename,
                declared=up.content_type,
                size=size,
                max_bytes=settings.evidence_max_bytes,
            )
        except ev.EvidenceRejected as exc:
            if size > settings.evidence_max_bytes:
                raise PayloadTooLarge(str(exc)) from exc
            if size == 0:
                raise UnprocessableContent(str(exc)) from exc
            raise UnsupportedMediaType(str(exc)) from exc
        try:
            scan = await scanner.scan(up.file)
        except blobs.Infected as exc:
            raise UnprocessableContent(f"{up.filename}: {exc}") from exc
        except blobs.ScanFailed as exc:
            raise ServiceUnavailable(f"{up.filename}: {exc}; try again later") from exc
        digest = await asyncio.to_thread(blobs.sha256_of, up.file)
        evidence_id = repo.new_id("evd")
        key = f"{item.id}/{evidence_id}"
        await store.put(session, key, up.file, content_type)
        rows.append(
            EvidenceFile(
                id=evidence_id,
                item_id=item.id,
                unit_id=principal.unit_id,
                name=safe_name(up.filename, evidence_id),
                content_type=content_type,
                size=size,
                sha256=digest,
                storage=store.name,
                storage_key=key,
                scan=scan,
                uploaded_by=principal.subject,
            )
        )
    return rows


def safe_name(filename: str | None, fallback: str) -> str:
    """The file's name as shown and sent back: no path, no control characters, bounded."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return name[:200] or fallback


def _size_of(up: UploadFile) -> int:
    f = up.file
    f.seek(0, 2)
    size = f.tell()
    f.seek(0)
    return size


# ----------------------------------------------------------------- OpenAPI request bodies


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """A model's JSON schema with its $defs inlined (for `openapi_extra`)."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return walk(copy.deepcopy(defs[ref.removeprefix("#/$defs/")]))
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return dict(walk(schema))


def request_body(model: type[BaseModel], *, required: list[str]) -> dict[str, Any]:
    """`openapi_extra` for an endpoint taking JSON or multipart with files."""
    json_schema = _inline(model.model_json_schema())
    props = {k: v for k, v in json_schema.get("properties", {}).items() if k != "evidence"}
    multipart = {
        "type": "object",
        "properties": {
            **props,
            "files": {
                "type": "array",
                "items": {"type": "string", "format": "binary"},
                "description": "Evidence files: PDF, Office documents, images (type checked "
                "from the bytes, size limited).",
            },
        },
        "required": required,
    }
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": json_schema},
                "multipart/form-data": {"schema": multipart},
            },
        }
    }


# ----------------------------------------------------------------- download


@router.get(
    "/items/{item_id}/evidence/{evidence_id}",
    summary="Download an evidence file (authorised like its item)",
    response_class=StreamingResponse,
    responses={
        200: {"description": "The file", "content": {"application/octet-stream": {}}},
        **problem_responses(401, 404),
    },
)
async def download_evidence(
    item_id: str,
    evidence_id: str,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: Reader,
) -> StreamingResponse:
    item = await repo.get_item(session, item_id)
    ensure_can_read(principal, item)
    f = (
        await session.execute(
            select(EvidenceFile).where(
                EvidenceFile.id == evidence_id, EvidenceFile.item_id == item_id
            )
        )
    ).scalar_one_or_none()
    if f is None:
        raise NotFound("evidence not found")
    store: blobs.PostgresBlobStore | blobs.S3BlobStore = blob_store(runtime)
    if store.name != f.storage:
        if f.storage != "postgres":
            raise ServiceUnavailable("the evidence store holding this file is not configured")
        # kept in PostgreSQL before an S3 store was configured: still readable
        store = blobs.PostgresBlobStore(runtime.sessions, 1 << 20)
    ascii_name = safe_name(f.name, f.id).encode("ascii", "replace").decode().replace('"', "")
    return StreamingResponse(
        store.open(f.storage_key),
        media_type=f.content_type,
        headers={
            "Content-Length": str(f.size),
            "Content-Disposition": f'attachment; filename="{ascii_name}"; '
            f"filename*=UTF-8''{quote(f.name)}",
            "ETag": f'"{f.sha256}"',
            "X-Content-Type-Options": "nosniff",
        },
    )
