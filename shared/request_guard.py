"""The request guard: input no handler can store or afford is refused before routing.

One ASGI middleware for the three services, so no endpoint has to remember it:

- **Body size.** Every body has a limit (`Settings.max_body_bytes`; multipart uploads
  `max_upload_bytes`; a service may set more per path prefix). A declared `Content-Length`
  over it is refused before a byte is read; a chunked body is counted while it streams and
  refused the moment it passes the limit (never read whole first) → 413 problem.
- **NUL characters.** PostgreSQL cannot store U+0000 in text, so a NUL in the path, the query
  string, a JSON string, a form field or a text body would fail at the database (500) or,
  worse, be half-stored. It is a 422 problem here instead.
- **Malformed UTF-8** in a JSON, form or text body → 422 problem (FastAPI would answer an
  undocumented 400).

The body is buffered up to its limit (bounded) and replayed to the app unchanged.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.problems import PROBLEM_BASE_URI, PROBLEM_MEDIA_TYPE

_JSON_NUL = b"\\u0000"
_JSON_SURROGATE = b"\\ud"  # a \udXXX escape: a lone surrogate is not UTF-8 (paired ones are)
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class RequestGuard:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        max_upload_bytes: int,
        limits: Mapping[str, int] | None = None,
        record_paths: Sequence[str] = (),
    ) -> None:
        self.app = app
        # bodies of records the handler validates one by one and quarantines (a one-stop
        # system's sync push): a NUL in one record's text is that record's rejection, not the
        # whole batch's, so only their UTF-8 is checked here
        self.record_paths = tuple(record_paths)
        self.max_body_bytes = max_body_bytes
        self.max_upload_bytes = max_upload_bytes
        # longest prefix first, so a specific route wins over its parent
        self.limits = sorted((limits or {}).items(), key=lambda kv: -len(kv[0]))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        if "\x00" in path or b"%00" in scope.get("raw_path", b"").lower():
            await _problem(scope, send, 422, "a NUL character in the path", ["path"])
            return
        query: bytes = scope.get("query_string", b"")
        if b"\x00" in query or b"\x00" in unquote_to_bytes(query.replace(b"+", b" ")):
            await _problem(scope, send, 422, "a NUL character in the query string", ["query"])
            return
        headers = _headers(scope)
        content_type = headers.get("content-type", "").lower()
        limit = self._limit(path, content_type)
        declared = headers.get("content-length")
        if declared is not None:
            try:
                too_big = int(declared) > limit
            except ValueError:
                await _problem(scope, send, 400, "Content-Length is not a number", ["header"])
                return
            if too_big:
                await _too_large(scope, send, limit)
                return
        bodiless = scope.get("method") in ("GET", "HEAD", "DELETE", "OPTIONS")
        if bodiless and declared is None and "transfer-encoding" not in headers:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > limit:  # refused mid-stream: the rest is never read
                await _too_large(scope, send, limit)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        refusal = _check_body(body, content_type, records=path.startswith(self.record_paths))
        if refusal is not None:
            await _problem(scope, send, 422, refusal, ["body"])
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect like Starlette

        await self.app(scope, replay, send)

    def _limit(self, path: str, content_type: str) -> int:
        for prefix, limit in self.limits:
            if path.startswith(prefix):
                return limit
        if content_type.startswith("multipart/"):
            return self.max_upload_bytes
        return self.max_body_bytes


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def _check_body(body: bytes, content_type: str, *, records: bool = False) -> str | None:
    """Why the body cannot be accepted, or None (`records`: only that it is UTF-8)."""
    if not body:
        return None
    if "json" in content_type:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return "the JSON body is not valid UTF-8"
        if records:
            return None
        # cheap pre-checks first; an escaped backslash or a string can look alike
        lowered = body.lower()
        if _JSON_NUL in body or _JSON_SURROGATE in lowered or b"NaN" in body or b"Infinity" in body:
            try:
                value = json.loads(text, parse_constant=_no_constant)
            except _NonFinite:
                return "NaN and Infinity are not JSON numbers"
            except ValueError:
                return None  # not JSON at all: the handler's validation says so
            if _has_unstorable(value):
                return "a NUL character (\\u0000) or a lone surrogate in a JSON string"
        return None
    if content_type.startswith("application/x-www-form-urlencoded"):
        if b"\x00" in body or b"\x00" in unquote_to_bytes(body.replace(b"+", b" ")):
            return "a NUL character in a form field"
        try:
            unquote_to_bytes(body.replace(b"+", b" ")).decode("utf-8")
        except UnicodeDecodeError:
            return "the form body is not valid UTF-8"
        return None
    if content_type.startswith("text/"):
        if b"\x00" in body:
            return "a NUL character in the text body"
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            return "the text body is not valid UTF-8"
    # multipart: file parts are binary by nature; a NUL in a stored text field still ends as a
    # 422 through the database error handler (shared.problems)
    return None


class _NonFinite(Exception):
    pass


def _no_constant(name: str) -> Any:
    # Python's json (and so FastAPI) accepts NaN/Infinity, which no JSON client sends and which
    # would come back out as a response that cannot be encoded
    raise _NonFinite(name)


def _has_unstorable(value: Any) -> bool:
    """A string PostgreSQL cannot store as text: a NUL, or a lone UTF-16 surrogate (json.loads
    joins a valid surrogate pair into one character, so only unpaired ones remain)."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            if _UNSTORABLE.search(v):
                return True
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return False


async def _too_large(scope: Scope, send: Send, limit: int) -> None:
    await _problem(
        scope, send, 413, f"the request body is larger than {limit} bytes", ["body"],
        slug="too-large",
    )  # fmt: skip


async def _problem(
    scope: Scope, send: Send, status: int, detail: str, loc: list[str], slug: str = "validation"
) -> None:
    titles = {400: "Bad Request", 413: "Content Too Large", 422: "Unprocessable Content"}
    problem: dict[str, Any] = {
        "type": PROBLEM_BASE_URI + slug,
        "title": titles[status],
        "status": status,
        "detail": detail,
        "instance": scope.get("path", "").replace("\x00", "\\u0000"),
    }
    if status == 422:
        problem["errors"] = [{"loc": loc, "msg": detail, "type": "value_error"}]
    body = json.dumps(problem, ensure_ascii=False).encode()
    headers = [
        (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    if status == 413:  # the unread rest of the body makes the connection unusable
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
