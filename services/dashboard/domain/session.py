"""Signed, expiring session values (HMAC-SHA256) and PKCE (RFC 7636), pure functions."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from typing import Any


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(value: dict[str, Any], secret: str, ttl_s: int, now: float | None = None) -> str:
    body = _b64(json.dumps({**value, "exp": int((now or time.time()) + ttl_s)}).encode())
    mac = hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(mac)}"


def unsign(cookie: str | None, secret: str, now: float | None = None) -> dict[str, Any] | None:
    """The value, or None when the cookie is missing, forged, malformed or expired."""
    if not cookie or "." not in cookie:
        return None
    body, _, mac = cookie.rpartition(".")
    expected = hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()
    try:
        if not hmac.compare_digest(_unb64(mac), expected):
            return None
        value = json.loads(_unb64(body))
    except (ValueError, TypeError):
        return None
    if not isinstance(value, dict) or value.get("exp", 0) < (now or time.time()):
        return None
    return value


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge)."""
    verifier = secrets.token_urlsafe(48)
    challenge = _b64(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge
