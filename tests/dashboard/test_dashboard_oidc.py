"""Signing in through the province's identity provider: OpenID Connect authorization code with
PKCE, against a small but real OIDC provider (an HTTP server with discovery, an authorization
endpoint, a token endpoint that checks the PKCE verifier, and JWKS). The services trust the
same provider's keys, so the dashboard shows the API's figures with the user's own token."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI, Form, HTTPException
from fastapi.responses import RedirectResponse
from playwright.async_api import async_playwright

from services.dashboard.domain.figures import fmt
from services.dashboard.domain.session import unsign
from services.dashboard.main import create_app as dashboard_app
from services.dashboard.settings import DashboardSettings
from services.scoring.main import create_app as scoring_app
from services.tasks.main import create_app as tasks_app
from shared.settings import Settings
from tests.dashboard.conftest import (
    ARTIFACTS,
    CHROMIUM_ARGS,
    PERIODS,
    Province,
    free_port,
    need_chromium,
    serving,
)

CLIENT_ID = "cchc-dashboard"


def provider(issuer: str, user: dict[str, Any]) -> tuple[FastAPI, dict[str, Any]]:
    """A minimal OpenID provider that signs in `user` at once (no login form)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    jwk |= {"kid": "k1", "use": "sig", "alg": "RS256"}
    codes: dict[str, dict[str, Any]] = {}
    seen: dict[str, Any] = {"token_requests": []}
    app = FastAPI()

    @app.get("/.well-known/openid-configuration")
    async def discovery() -> dict[str, Any]:
        return {"issuer": issuer, "authorization_endpoint": f"{issuer}/authorize",
                "token_endpoint": f"{issuer}/token", "jwks_uri": f"{issuer}/jwks",
                "response_types_supported": ["code"],
                "code_challenge_methods_supported": ["S256"],
                "id_token_signing_alg_values_supported": ["RS256"]}  # fmt: skip

    @app.get("/jwks")
    async def jwks() -> dict[str, Any]:
        return {"keys": [jwk]}

    @app.get("/authorize")
    async def authorize(response_type: str, client_id: str, redirect_uri: str, state: str,
                        nonce: str, code_challenge: str, code_challenge_method: str,
                        scope: str = "") -> RedirectResponse:  # fmt: skip
        if response_type != "code" or client_id != CLIENT_ID or code_challenge_method != "S256":
            raise HTTPException(400, "bad authorization request")
        code = secrets.token_urlsafe(16)
        codes[code] = {"challenge": code_challenge, "nonce": nonce, "redirect_uri": redirect_uri}
        return RedirectResponse(f"{redirect_uri}?{urlencode({'code': code, 'state': state})}")

    @app.post("/token")
    async def token(grant_type: str = Form(), code: str = Form(), redirect_uri: str = Form(),
                    client_id: str = Form(), code_verifier: str = Form()) -> dict[str, Any]:  # fmt: skip
        seen["token_requests"].append(code)
        grant = codes.pop(code, None)  # one use only
        digest = base64.urlsafe_b64encode(hashlib.sha256(code_verifier.encode()).digest())
        if (grant is None or grant_type != "authorization_code"
                or redirect_uri != grant["redirect_uri"]
                or digest.rstrip(b"=").decode() != grant["challenge"]):  # fmt: skip
            raise HTTPException(400, "invalid_grant")
        now = int(time.time())
        base = {"iss": issuer, "sub": user["sub"], "iat": now, "exp": now + 600, **user}
        id_token = jwt.encode({**base, "aud": client_id, "nonce": grant["nonce"]}, key,
                              algorithm="RS256", headers={"kid": "k1"})  # fmt: skip
        access = jwt.encode({**base, "aud": "cchc-monitor"}, key, algorithm="RS256",
                            headers={"kid": "k1"})  # fmt: skip
        return {"access_token": access, "id_token": id_token, "token_type": "Bearer",
                "expires_in": 600}  # fmt: skip

    return app, seen


@pytest.fixture(scope="module")
async def oidc_stack(
    make_settings: Callable[..., Settings], province: Province
) -> AsyncIterator[dict[str, Any]]:
    idp_port, dash_port = free_port(), free_port()
    secret = secrets.token_urlsafe(32)
    issuer = f"http://127.0.0.1:{idp_port}"
    idp, seen = provider(issuer, {"sub": "tran.thi.b", "role": "viewer",
                                  "name": "Trần Thị B"})  # fmt: skip
    trust = {"jwt_jwks_url": f"{issuer}/jwks", "jwt_algorithms": ["RS256"],
             "jwt_issuer": issuer, "jwt_audience": "cchc-monitor", "jwt_secret": None}  # fmt: skip
    async with (
        serving(idp, idp_port),
        serving(
            scoring_app(make_settings(service_name="scoring", workers_enabled=False, **trust))
        ) as scoring_url,  # fmt: skip
        serving(
            tasks_app(make_settings(service_name="tasks", workers_enabled=False, **trust))
        ) as tasks_url,  # fmt: skip
    ):
        dash = dashboard_app(
            DashboardSettings(scoring_url=scoring_url, tasks_url=tasks_url, province=province.id,
                              ingest_url=f"http://127.0.0.1:{free_port()}",
                              period=PERIODS[-1], dev_login=False, oidc_issuer=issuer,
                              oidc_client_id=CLIENT_ID,
                              public_url=f"http://127.0.0.1:{dash_port}",
                              session_secret=secret),
            make_settings(service_name="dashboard"),
        )  # fmt: skip
        async with serving(dash, dash_port) as dash_url:
            yield {"dashboard": dash_url, "scoring": scoring_url, "seen": seen,
                   "province": province, "secret": secret}  # fmt: skip


async def test_sign_in_with_the_identity_provider(
    oidc_stack: dict[str, Any], make_settings: Callable[..., Settings]
) -> None:
    path = need_chromium()
    dash, province = oidc_stack["dashboard"], oidc_stack["province"]
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        page = await browser.new_page()
        await page.goto(f"{dash}/overview")
        assert "/signin" in page.url
        assert await page.locator("#dev-signin").count() == 0, "no development sign-in here"
        await page.click("#oidc")
        await page.wait_for_load_state("networkidle")
        assert page.url == f"{dash}/overview", page.url
        assert "Trần Thị B" in await page.inner_text(".who")
        cookies = {c["name"]: c for c in await page.context.cookies()}
        session = cookies["cchc_session"]
        assert session["httpOnly"] and session["sameSite"] == "Lax"
        assert "cchc_oidc" not in cookies, "the one-time PKCE state is dropped"
        shown = await page.inner_text("[data-testid=total]")
        await page.screenshot(path=str(ARTIFACTS / "oidc-overview.png"))
        await browser.close()
    # The figure equals what the API gives with an IdP-issued token (no shared secret).
    async with httpx.AsyncClient(base_url=dash) as http:
        start = await http.get("/signin/oidc", params={"next": "/overview"})
        authorize = await http.get(start.headers["location"])
        callback = authorize.headers["location"]
        # A callback whose state does not match the browser's flow is refused.
        forged = callback.replace("state=", "state=x")
        assert (await http.get(forged)).headers["location"].startswith("/signin?error")
        # The real one was not consumed by the forgery: the provider saw no token request.
        done = await http.get(callback)
        assert done.status_code == 303 and done.headers["location"] == "/overview"
        overview = await http.get("/overview")
        assert overview.status_code == 200 and shown in overview.text
        signed = unsign(http.cookies["cchc_session"], oidc_stack["secret"])
        assert signed is not None
        token = signed["token"]
        assert jwt.get_unverified_header(token)["alg"] == "RS256", "the IdP's access token"
        r = await http.get(f"{oidc_stack['scoring']}/api/v1/units/{province.id}/scores/"
                           f"{PERIODS[-1]}", headers={"Authorization": f"Bearer {token}"})  # fmt: skip
        assert r.status_code == 200 and fmt(r.json()["total"]) == shown
    seen = oidc_stack["seen"]["token_requests"]
    assert len(seen) == 2, "one code exchange per sign-in, none for the forged callback"
