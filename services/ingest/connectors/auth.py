"""httpx auth flows for sources: a static API-key header, HTTP Basic, or OAuth2 client
credentials."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Generator
from urllib.parse import urljoin

import httpx

from services.ingest.connectors.base import (
    ApiKeyAuth,
    AuthConfig,
    BasicAuth,
    OAuth2ClientCredentials,
    SourceError,
)


class ApiKeyFlow(httpx.Auth):
    def __init__(self, cfg: ApiKeyAuth) -> None:
        self._header = cfg.header
        self._key = cfg.key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers[self._header] = self._key.get_secret_value()
        yield request


class BasicFlow(httpx.Auth):
    def __init__(self, cfg: BasicAuth) -> None:
        self._value = cfg.header_value()

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._value
        yield request


class ClientCredentialsFlow(httpx.Auth):
    """Fetches a bearer token, caches it until shortly before expiry, refreshes once on 401."""

    requires_response_body = True

    def __init__(self, cfg: OAuth2ClientCredentials, base_url: str) -> None:
        self._cfg = cfg
        self._url = urljoin(base_url.rstrip("/") + "/", cfg.token_url)
        self._token: str | None = None
        self._expires = 0.0

    def valid(self) -> bool:
        return self._token is not None and time.monotonic() < self._expires

    @property
    def token(self) -> str | None:
        return self._token

    def token_request(self) -> httpx.Request:
        return self._token_request()

    def store(self, response: httpx.Response) -> None:
        self._store(response)

    def _token_request(self) -> httpx.Request:
        data = {
            "grant_type": "client_credentials",
            "client_id": self._cfg.client_id,
            "client_secret": self._cfg.client_secret.get_secret_value(),
        }
        if self._cfg.scope:
            data["scope"] = self._cfg.scope
        return httpx.Request("POST", self._url, data=data)

    def _store(self, response: httpx.Response) -> None:
        if response.status_code != 200:
            raise SourceError(
                "auth",
                f"token endpoint returned {response.status_code}",
                status=response.status_code,
            )
        try:
            body = response.json()
            self._token = str(body["access_token"])
        except (ValueError, KeyError) as exc:
            raise SourceError("auth", "token endpoint returned no access_token") from exc
        self._expires = time.monotonic() + float(body.get("expires_in", 300)) - 30

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        if self._token is None or time.monotonic() >= self._expires:
            token_response = yield self._token_request()
            await token_response.aread()
            self._store(token_response)
        request.headers["Authorization"] = f"Bearer {self._token}"
        response = yield request
        if response.status_code == 401:  # revoked or expired early: refresh once
            token_response = yield self._token_request()
            await token_response.aread()
            self._store(token_response)
            request.headers["Authorization"] = f"Bearer {self._token}"
            yield request


def build_auth(cfg: AuthConfig, base_url: str) -> httpx.Auth:
    if isinstance(cfg, ApiKeyAuth):
        return ApiKeyFlow(cfg)
    if isinstance(cfg, BasicAuth):
        return BasicFlow(cfg)
    return ClientCredentialsFlow(cfg, base_url)
