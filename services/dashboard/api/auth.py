"""Sign-in: OpenID Connect authorization code with PKCE against the configured identity
provider, and (when enabled, as with `make run`) a development sign-in that picks a role and
unit and issues a development token. The session is a signed HttpOnly SameSite cookie holding
the API token; a browser without one is redirected here, never shown 401 JSON."""

from __future__ import annotations

import asyncio
import secrets
from typing import Annotated, Any
from urllib.parse import urlencode

import jwt
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from services.dashboard.domain.session import pkce_pair, sign, unsign
from shared.auth.principal import Principal, Role
from shared.auth.tokens import issue_token

router = APIRouter()
SESSION_COOKIE = "cchc_session"
OIDC_COOKIE = "cchc_oidc"


class NeedsSignIn(Exception):
    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


def _safe_next(url: str | None) -> str:
    """Only local paths: an open redirect after sign-in would hand the session to anyone."""
    if not url or not url.startswith("/") or url.startswith("//"):
        return "/"
    return url


def set_cookie(response: Response, request: Request, name: str, value: str, ttl: int) -> None:
    response.set_cookie(
        name, value, max_age=ttl, httponly=True, samesite="lax", path="/",
        secure=request.app.state.settings.secure_cookies,
    )  # fmt: skip


async def current_user(request: Request) -> dict[str, Any]:
    state = request.app.state
    user = unsign(request.cookies.get(SESSION_COOKIE), state.session_secret)
    if user is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise NeedsSignIn(target)
    return user


User = Annotated[dict[str, Any], Depends(current_user)]


def _sign_in(
    request: Request, principal: Principal, token: str, next_url: str, ttl: int | None = None
) -> Response:
    """The session cookie (the API token with who it is for), valid no longer than the token."""
    settings = request.app.state.settings
    ttl = min(ttl or settings.session_ttl_s, settings.session_ttl_s)
    value = {
        "token": token,
        "role": principal.role.value,
        "unit": principal.unit_id,
        "name": principal.name or principal.subject,
    }
    response = RedirectResponse(_safe_next(next_url), status_code=303)
    set_cookie(response, request, SESSION_COOKIE, sign(value, request.app.state.session_secret,
                                                       ttl), ttl)  # fmt: skip
    response.delete_cookie(OIDC_COOKIE, path="/")
    return response


@router.get("/signin", response_class=HTMLResponse)
async def signin_page(request: Request, next: str = "/", error: str | None = None) -> Response:
    state = request.app.state
    templates: Jinja2Templates = state.templates
    return templates.TemplateResponse(
        request, "signin.html",
        {"next": _safe_next(next), "dev": state.settings.dev_login,
         "oidc": bool(state.settings.oidc_issuer), "error": error,
         "roles": [("viewer", "Lãnh đạo / theo dõi (xem tất cả)"),
                   ("officer", "Cán bộ một cơ quan (chỉ cơ quan mình)"),
                   ("inspector", "Sở Nội vụ (kiểm tra)"), ("admin", "Quản trị")],
         "units": state.departments, "user": None},
    )  # fmt: skip


@router.post("/signin/dev")
async def signin_dev(
    request: Request,
    role: Annotated[str, Form()],
    unit: Annotated[str | None, Form()] = None,
    next: Annotated[str, Form()] = "/",
) -> Response:
    state = request.app.state
    if not state.settings.dev_login or state.jwt_settings.env == "production":
        return RedirectResponse("/signin?error=dev", status_code=303)
    try:
        principal = Principal(subject=f"dev-{role}", role=Role(role), unit_id=unit or None,
                              name=f"Tài khoản thử ({role})")  # fmt: skip
    except ValueError:
        return RedirectResponse("/signin?error=role", status_code=303)
    if principal.role is Role.officer and not principal.unit_id:
        return RedirectResponse("/signin?error=unit", status_code=303)
    token = issue_token(state.jwt_settings, principal.role, principal.unit_id,
                        subject=principal.subject)  # fmt: skip
    return _sign_in(request, principal, token, next)


async def _discovery(request: Request) -> dict[str, Any]:
    state = request.app.state
    if state.oidc_config is None:
        issuer = state.settings.oidc_issuer.rstrip("/")
        r = await state.http.get(f"{issuer}/.well-known/openid-configuration")
        r.raise_for_status()
        state.oidc_config = r.json()
        state.oidc_jwks = jwt.PyJWKClient(state.oidc_config["jwks_uri"], cache_keys=True)
    config: dict[str, Any] = state.oidc_config
    return config


@router.get("/signin/oidc")
async def signin_oidc(request: Request, next: str = "/") -> Response:
    settings = request.app.state.settings
    if not settings.oidc_issuer:
        return RedirectResponse("/signin?error=oidc", status_code=303)
    config = await _discovery(request)
    verifier, challenge = pkce_pair()
    flow = {"state": secrets.token_urlsafe(24), "nonce": secrets.token_urlsafe(24),
            "verifier": verifier, "next": _safe_next(next)}  # fmt: skip
    query = urlencode({
        "response_type": "code", "client_id": settings.oidc_client_id,
        "redirect_uri": f"{settings.public_url}/signin/callback", "scope": settings.oidc_scope,
        "state": flow["state"], "nonce": flow["nonce"], "code_challenge": challenge,
        "code_challenge_method": "S256",
    })  # fmt: skip
    response = RedirectResponse(f"{config['authorization_endpoint']}?{query}", status_code=303)
    set_cookie(response, request, OIDC_COOKIE,
               sign(flow, request.app.state.session_secret, 600), 600)  # fmt: skip
    return response


@router.get("/signin/callback")
async def signin_callback(
    request: Request, code: str | None = None, state: str | None = None, error: str | None = None
) -> Response:
    app_state = request.app.state
    settings = app_state.settings
    flow = unsign(request.cookies.get(OIDC_COOKIE), app_state.session_secret)
    if error or not code or flow is None or not state or state != flow.get("state"):
        return RedirectResponse("/signin?error=oidc", status_code=303)
    config = await _discovery(request)
    form = {"grant_type": "authorization_code", "code": code,
            "redirect_uri": f"{settings.public_url}/signin/callback",
            "client_id": settings.oidc_client_id, "code_verifier": flow["verifier"]}  # fmt: skip
    auth = (settings.oidc_client_id, settings.oidc_client_secret) if settings.oidc_client_secret \
        else None  # fmt: skip
    r = await app_state.http.post(config["token_endpoint"], data=form, auth=auth)
    if r.status_code != 200:
        return RedirectResponse("/signin?error=oidc", status_code=303)
    tokens = r.json()
    try:
        key = await asyncio.to_thread(app_state.oidc_jwks.get_signing_key_from_jwt,
                                      tokens["id_token"])  # fmt: skip
        claims = jwt.decode(tokens["id_token"], key.key, algorithms=["RS256", "ES256"],
                            audience=settings.oidc_client_id, issuer=config["issuer"],
                            options={"require": ["exp", "iss", "aud", "sub"]})  # fmt: skip
    except (jwt.PyJWTError, KeyError):
        return RedirectResponse("/signin?error=oidc", status_code=303)
    if claims.get("nonce") != flow.get("nonce"):
        return RedirectResponse("/signin?error=oidc", status_code=303)
    # The API token is the IdP's access token (the services verify it against the same JWKS);
    # role and unit are the province IdP's claims, as the services read them.
    access = tokens.get("access_token") or tokens["id_token"]
    try:
        principal = Principal(subject=claims["sub"], role=Role(claims.get("role", "viewer")),
                              unit_id=claims.get("unit"), name=claims.get("name"))  # fmt: skip
    except ValueError:
        return RedirectResponse("/signin?error=role", status_code=303)
    return _sign_in(request, principal, access, flow["next"], int(tokens.get("expires_in") or 0))


@router.post("/signout")
async def signout() -> Response:
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
