"""RFC 9457 problem details: every error leaves the API as `application/problem+json`.

Domain code raises a `Problem` subclass; the handlers below render it. 422 is reserved for
payload validation; an expected error never surfaces as 500.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_MEDIA_TYPE = "application/problem+json"
log = logging.getLogger("cchc.problems")


class ProblemDetail(BaseModel):
    """RFC 9457 problem details object."""

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "type": "https://cchc-monitor.example/problems/not-found",
                    "title": "Not Found",
                    "status": 404,
                    "detail": "item not found",
                    "instance": "/api/v1/items/itm_0123",
                }
            ]
        }
    }

    type: str = Field(default="about:blank", examples=["https://cchc.gov.vn/problems/not-found"])
    title: str = Field(examples=["Not Found"])
    status: int = Field(examples=[404])
    detail: str | None = Field(default=None, examples=["remediation item 42 not found"])
    instance: str | None = Field(default=None, examples=["/api/v1/items/42"])
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="Field errors, for 422 responses."
    )


class Problem(Exception):
    status: int = 400
    slug: str = "bad-request"

    def __init__(self, detail: str, *, extra: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra or {}

    @property
    def title(self) -> str:
        return HTTPStatus(self.status).phrase


class BadRequest(Problem):
    status, slug = 400, "bad-request"


class Unauthorized(Problem):
    status, slug = 401, "unauthorized"


class Forbidden(Problem):
    status, slug = 403, "forbidden"


class NotFound(Problem):
    status, slug = 404, "not-found"


class Conflict(Problem):
    status, slug = 409, "conflict"


class PreconditionFailed(Problem):
    status, slug = 412, "precondition-failed"


class PreconditionRequired(Problem):
    status, slug = 428, "precondition-required"


class UnprocessableContent(Problem):
    """Semantically invalid input that passed schema validation (e.g. an illegal transition)."""

    status, slug = 422, "unprocessable"


class ServiceUnavailable(Problem):
    status, slug = 503, "unavailable"


PROBLEM_BASE_URI = "https://cchc-monitor.example/problems/"


def problem_response(
    status: int,
    title: str,
    detail: str | None,
    request: Request,
    slug: str | None = None,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE_URI + slug if slug else "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
    }
    if extra:
        body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return problem_response(
            exc.status, exc.title, exc.detail, request, exc.slug, exc.extra, headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")}
            for e in exc.errors()
        ]
        return problem_response(
            422,
            "Unprocessable Content",
            "The request does not match the schema.",
            request,
            "validation",
            {"errors": errors},
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem_response(
            exc.status_code,
            HTTPStatus(exc.status_code).phrase,
            str(exc.detail),
            request,
            None,
            None,
            dict(exc.headers) if exc.headers else None,
        )

    async def _database(request: Request, exc: Exception) -> JSONResponse:
        sqlstate = database_sqlstate(exc)
        refusal = INPUT_REFUSALS.get(sqlstate or "") or (
            INPUT_REFUSALS[DATA_EXCEPTION] if (sqlstate or "").startswith(DATA_EXCEPTION) else None
        )
        if refusal is None:
            raise exc  # a real server error: the 500 handler below
        # The database refused a value of the request: not storable or out of range (class 22),
        # a reference to nothing, a duplicate, a broken rule (class 23). The input is at fault
        # and the transaction has rolled back, so nothing changed.
        status, detail = refusal
        log.warning("input refused by the database", extra={"sqlstate": sqlstate})
        return problem_response(
            status,
            HTTPStatus(status).phrase,
            detail,
            request,
            "conflict" if status == 409 else "validation",
        )

    # registered by class (not in the catch-all), so Starlette answers without re-raising
    app.add_exception_handler(DBAPIError, _database)
    app.add_exception_handler(asyncpg.PostgresError, _database)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return problem_response(
            500, "Internal Server Error", "An unexpected error occurred.", request, "internal"
        )


DATA_EXCEPTION = "22"  # SQLSTATE class 22: data exception (22021 NUL byte, 22003 out of range…)
# SQLSTATE → the problem a request gets when the database refuses its values
INPUT_REFUSALS: dict[str, tuple[int, str]] = {
    DATA_EXCEPTION: (422, "A value in the request cannot be stored (out of range or not text)."),
    "21000": (422, "The request names the same thing twice."),  # e.g. an upsert hit twice
    "23502": (422, "A required value is missing."),
    "23503": (422, "The request refers to something that does not exist."),
    "23505": (409, "Something with the same identity already exists."),
    "23514": (422, "A value in the request breaks a rule of the data."),
}


def database_sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a PostgreSQL error, raw asyncpg or wrapped by SQLAlchemy, else None."""
    for candidate in (exc, getattr(exc, "orig", None), exc.__cause__):
        sqlstate = getattr(candidate, "sqlstate", None)
        if isinstance(sqlstate, str):
            return sqlstate
    return None


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries documenting problem+json errors of an operation."""
    return {
        s: {
            "model": ProblemDetail,
            "description": HTTPStatus(s).phrase,
            "content": {
                PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/ProblemDetail"}}
            },
        }
        for s in statuses
    }
