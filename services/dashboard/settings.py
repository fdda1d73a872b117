"""Dashboard settings (environment variables, local defaults for `make run`)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class DashboardSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DASHBOARD_", extra="ignore")

    scoring_url: str = "http://127.0.0.1:8002"
    tasks_url: str = "http://127.0.0.1:8003"
    ingest_url: str = "http://127.0.0.1:8001"
    public_url: str = "http://127.0.0.1:8004"
    province: str = Field(default="P21", description="The province the overview is about.")
    period: str | None = Field(default=None, description="Default period; else this month.")
    dev_login: bool = Field(
        default=True, description="Development sign-in (pick a role and unit); off in production."
    )
    session_secret: str | None = Field(
        default=None, description="Signs the session cookie; defaults to the JWT secret."
    )
    session_ttl_s: int = 8 * 3600
    secure_cookies: bool = False
    # OpenID Connect (authorization code + PKCE); sign-in through the IdP when issuer is set.
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = None
    oidc_scope: str = "openid profile"
    api_timeout_s: float = 20
