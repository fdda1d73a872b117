"""The services' public HTTP APIs, called with the signed-in user's token."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx


class SignInAgain(Exception):
    """The user's token was refused (expired or revoked): send the browser to sign in."""


class Api:
    def __init__(self, http: httpx.AsyncClient, urls: dict[str, str], token: str) -> None:
        self.http = http
        self.urls = urls
        self.token = token

    async def get(self, service: str, path: str, *, optional: bool = False, **params: Any) -> Any:
        """JSON of a GET, or None for 404 (absent or outside the user's agency); an `optional`
        figure is None too when its service cannot be reached (the page shows without it)."""
        try:
            r = await self.http.get(
                self.urls[service] + path,
                params={k: v for k, v in params.items() if v is not None},
                headers={"Authorization": f"Bearer {self.token}"},
            )
        except httpx.HTTPError:
            if optional:
                return None
            raise
        if r.status_code in (403, 404) or (optional and r.status_code >= 400):
            return None
        if r.status_code == 401:
            raise SignInAgain
        r.raise_for_status()
        return r.json()

    async def gather(self, *calls: Any) -> list[Any]:
        return list(await asyncio.gather(*calls))
