"""App wiring of the dashboard: `uvicorn services.dashboard.main:app --port 8004`.

No database and no broker: pages are rendered from the other services' public APIs."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from services.dashboard.api import auth, pages
from services.dashboard.api.client import SignInAgain
from services.dashboard.settings import DashboardSettings
from shared.auth.security import dev_secret
from shared.logging import configure_logging
from shared.settings import REPO_ROOT, Settings

HERE = Path(__file__).parent


def _departments(province: str) -> list[tuple[str, str]]:
    """Units offered by the development sign-in (the seed registry shipped with the code)."""
    data = json.loads((REPO_ROOT / "shared/reference/units.json").read_text(encoding="utf-8"))
    return [(u["id"], u["name"]) for u in data["units"]
            if u.get("parent_id") == province and u["level"] == "department"]  # fmt: skip


def create_app(
    settings: DashboardSettings | None = None, jwt_settings: Settings | None = None
) -> FastAPI:
    settings = settings or DashboardSettings()
    jwt_settings = jwt_settings or Settings(service_name="dashboard")
    configure_logging("dashboard", jwt_settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with httpx.AsyncClient(timeout=settings.api_timeout_s) as http:
            app.state.http = http
            yield

    app = FastAPI(title="CCHC Monitor — bảng điều hành", lifespan=lifespan, docs_url=None,
                  redoc_url=None, openapi_url=None)  # fmt: skip
    app.state.settings = settings
    app.state.jwt_settings = jwt_settings
    app.state.session_secret = (
        settings.session_secret or jwt_settings.jwt_secret or dev_secret(jwt_settings)
    )
    app.state.urls = {"scoring": settings.scoring_url.rstrip("/"),
                      "tasks": settings.tasks_url.rstrip("/"),
                      "ingest": settings.ingest_url.rstrip("/")}  # fmt: skip
    app.state.templates = Jinja2Templates(directory=HERE / "templates")
    app.state.profile = None
    app.state.oidc_config = None
    app.state.oidc_jwks = None
    app.state.departments = _departments(settings.province)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.exception_handler(auth.NeedsSignIn)
    async def needs_sign_in(request: Request, exc: auth.NeedsSignIn) -> Response:
        return RedirectResponse(f"/signin?{httpx.QueryParams(next=exc.next_url)}",
                                status_code=303)  # fmt: skip

    @app.exception_handler(SignInAgain)
    async def sign_in_again(request: Request, exc: SignInAgain) -> Response:
        response = RedirectResponse(f"/signin?{httpx.QueryParams(next=request.url.path)}",
                                    status_code=303)  # fmt: skip
        response.delete_cookie(auth.SESSION_COOKIE, path="/")
        return response

    @app.exception_handler(httpx.HTTPError)
    async def service_unreachable(request: Request, exc: httpx.HTTPError) -> Response:
        # A service down or failing: say so in Vietnamese instead of a bare 500.
        templates: Jinja2Templates = app.state.templates
        return templates.TemplateResponse(
            request, "missing.html",
            {"user": None, "what": "Chưa kết nối được dịch vụ dữ liệu, vui lòng thử lại sau."},
            status_code=503,
        )  # fmt: skip

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok", "service": "dashboard"})

    app.include_router(auth.router)
    app.include_router(pages.router)
    return app


app = create_app()
