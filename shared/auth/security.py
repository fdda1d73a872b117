"""Token verification. Algorithms are pinned, issuer and audience always checked."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

import jwt
from fastapi import Depends, FastAPI, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from shared.auth.principal import Principal, Role
from shared.problems import Forbidden, Unauthorized
from shared.settings import Settings

DEV_SECRET_PREFIX = "dev-"


@dataclass
class AuthConfig:
    issuer: str
    audience: str
    algorithms: list[str]
    key: Any | None = None
    jwks: jwt.PyJWKClient | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> AuthConfig:
        algorithms = list(settings.jwt_algorithms)
        if "none" in (a.lower() for a in algorithms):
            raise ValueError("the 'none' JWT algorithm is never accepted")
        if settings.jwt_jwks_url:
            return cls(
                settings.jwt_issuer,
                settings.jwt_audience,
                algorithms,
                jwks=jwt.PyJWKClient(settings.jwt_jwks_url, cache_keys=True),
            )
        if settings.jwt_public_key:
            return cls(
                settings.jwt_issuer, settings.jwt_audience, algorithms, key=settings.jwt_public_key
            )
        secret = settings.jwt_secret or dev_secret(settings)
        return cls(settings.jwt_issuer, settings.jwt_audience, algorithms, key=secret)

    async def verify(self, token: str) -> Principal:
        try:
            key: Any = self.key
            if self.jwks is not None:
                # PyJWKClient does blocking HTTP; keep it off the event loop.
                key = (await run_in_threadpool(self.jwks.get_signing_key_from_jwt, token)).key
            claims = jwt.decode(
                token,
                key,
                algorithms=self.algorithms,
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"invalid token: {exc}") from exc
        try:
            role = Role(str(claims.get("role")))
        except ValueError as exc:
            raise Unauthorized("token carries no known role") from exc
        unit = claims.get("unit")
        if role is Role.officer and not unit:
            raise Unauthorized("an officer token must name its unit")
        return Principal(subject=claims["sub"], role=role, unit_id=unit, name=claims.get("name"))


def dev_secret(settings: Settings) -> str:
    """A per-checkout development secret, created on first use and never committed."""
    if settings.env == "production":
        raise ValueError("development JWT keys are refused when ENV=production")
    path = settings.jwt_dev_key_file
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = DEV_SECRET_PREFIX + secrets.token_urlsafe(32)
    path.write_text(value)
    path.chmod(0o600)
    return value


_bearer = HTTPBearer(auto_error=False, description="JWT from the province's identity provider")


def install_auth(app: FastAPI, config: AuthConfig) -> None:
    app.state.auth = config


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("a bearer token is required")
    config: AuthConfig = request.app.state.auth
    principal = await config.verify(credentials.credentials)
    request.state.principal = principal
    return principal


def require_roles(*roles: Role) -> Callable[..., Coroutine[Any, Any, Principal]]:
    allowed = set(roles)

    async def dependency(
        principal: Annotated[Principal, Depends(current_principal)],
    ) -> Principal:
        if principal.role not in allowed:
            raise Forbidden(f"role '{principal.role}' may not do this")
        return principal

    return dependency
