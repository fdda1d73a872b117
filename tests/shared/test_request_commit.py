"""A write is committed before its response starts: a client that reads its 2xx and asks again,
on any connection, sees what it wrote (the dashboard's map upload once read back a 404)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date
from typing import Any

import httpx
from sqlalchemy import text
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.scoring.main import create_app
from services.scoring.store.registry import UnitIn, import_units
from shared.db import make_engine, make_sessionmaker, transaction
from shared.settings import Settings

Auth = Callable[..., dict[str, str]]


class SeenAtResponseStart:
    """ASGI wrapper: when the response starts, look in the database from another connection."""

    def __init__(self, app: ASGIApp, look: Callable[[], Any]) -> None:
        self.app, self.look, self.seen = app, look, list[Any]()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def watching(message: Message) -> None:
            if message["type"] == "http.response.start" and scope["method"] == "PUT":
                self.seen.append(await self.look())
            await send(message)

        await self.app(scope, receive, watching)


async def test_a_write_is_committed_before_its_response_starts(
    make_settings: Callable[..., Settings], auth: Auth
) -> None:
    settings = make_settings(service_name="scoring", workers_enabled=False)
    p = "R" + uuid.uuid4().hex[:8]
    engine = make_engine(settings.async_database_url, schema="scoring", pool_size=1)
    sessions = make_sessionmaker(engine)

    async def stored() -> int | None:
        async with sessions() as s:
            return (await s.execute(text(
                "SELECT feature_count FROM scoring.unit_boundaries WHERE unit_id = :u"),
                {"u": p})).scalar()  # fmt: skip

    try:
        async with transaction(sessions) as s:
            await import_units(s, [
                UnitIn(id=p, name="Tỉnh Thử", level="province", kind="tỉnh",
                       valid_from=date(2000, 1, 1)),
                UnitIn(id=f"{p}.C1", name="Xã Một", level="commune", kind="xã", parent_id=p,
                       valid_from=date(2000, 1, 1)),
            ])  # fmt: skip
        app = create_app(settings)
        probe = SeenAtResponseStart(app, stored)
        ring = [[106.0, 20.9], [106.05, 20.9], [106.05, 20.85], [106.0, 20.9]]
        doc = {"type": "FeatureCollection", "features": [{"type": "Feature",
               "properties": {"unit_id": f"{p}.C1"},
               "geometry": {"type": "Polygon", "coordinates": [ring]}}]}  # fmt: skip
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=probe), base_url="http://testserver"
            ) as client,
        ):
            r = await client.put(f"/api/v1/units/{p}/boundaries", json=doc, headers=auth())
        assert r.status_code == 200, r.text
        assert probe.seen == [1], "the 200 started before the upload was committed"
    finally:
        await engine.dispose()
