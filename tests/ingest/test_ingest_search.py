"""Dossier search and list for integrators: every filter against the stored set computed here,
cursor pagination without gaps or repeats, officers confined to their agency, and the dossier
view with names and the overdue flag."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import pytest

from services.ingest.connectors.retry import RetryPolicy
from services.ingest.main import create_app
from services.ingest.simulator import build
from services.ingest.simulator.data import VN
from services.ingest.sync.engine import SyncEngine
from shared.settings import Settings, to_plain_url
from tests.conftest import running

from .conftest import serve_simulator
from .ingest_db import add_source, stored


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await asyncpg.create_pool(to_plain_url(database_url), min_size=1, max_size=4)
    yield p
    await p.close()


async def _all(client: Any, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    cursor = None
    for _ in range(200):
        r = await client.get("/api/v1/dossiers", headers=headers,
                             params={**params, "limit": 37, **({"cursor": cursor} if cursor else {})})  # fmt: skip
        assert r.status_code == 200, r.text
        page = r.json()
        out.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return out
    raise AssertionError("pagination does not end")


async def test_search_filters_pagination_scope_and_view(
    make_settings: Callable[..., Settings], auth: Callable[..., dict[str, str]],
    pool: asyncpg.Pool,
) -> None:  # fmt: skip
    sim = build(27, 700)
    with serve_simulator(sim) as url:
        sid = await add_source(pool, url)
        engine = SyncEngine(pool, policy=RetryPolicy(attempts=2, base_s=0.01))
        try:
            for feed in ("procedures", "dossiers"):
                assert (await engine.run(sid, feed)).status == "succeeded"
        finally:
            await engine.stop()
    records = await stored(pool, sid)
    clock = datetime.fromtimestamp(sim.clock, VN)
    admin = auth("admin")
    app = create_app(make_settings(service_name="ingest", workers_enabled=False))
    async with running(app) as client:
        every = await _all(client, admin, source_id=sid)
        codes = [d["code"] for d in every]
        assert len(codes) == len(set(codes)) == len(records) and set(codes) == set(records)

        def want(pred: Callable[[Any], bool]) -> set[str]:
            return {c for c, r in records.items() if pred(r)}

        async def got(**params: Any) -> set[str]:
            return {d["code"] for d in await _all(client, admin, source_id=sid, **params)}

        assert await got(status=[4, 5]) == want(lambda r: r.status in (4, 5)) != set()
        unit = next(iter(records.values())).unit_id
        assert await got(agency=unit, channel=2) == want(
            lambda r: r.unit_id == unit and r.channel == 2)  # fmt: skip
        lo, hi = clock - timedelta(days=20), clock - timedelta(days=5)
        assert await got(received_from=lo.isoformat(), received_to=hi.isoformat()) == want(
            lambda r: r.received_at is not None and lo <= r.received_at < hi) != set()  # fmt: skip
        proc = next(iter(records.values())).procedure_code
        assert await got(procedure=proc) == want(lambda r: r.procedure_code == proc)

        def late(r: Any) -> bool:
            end = r.finished_at or r.returned_at or r.rejected_at or clock
            return r.due_at is not None and end > r.due_at

        assert await got(overdue="true") == want(late) != set()
        assert await got(overdue="false") == want(lambda r: not late(r))
        fragment = codes[len(codes) // 2][-9:]
        assert await got(q=fragment.lower()) == want(lambda r: fragment.lower() in r.code.lower())

        # Officers: their agency only, whatever they ask for.
        officer = auth("officer", unit)
        mine = {d["code"] for d in await _all(client, officer, source_id=sid)}
        assert mine == want(lambda r: r.unit_id == unit)
        other = next(r.unit_id for r in records.values() if r.unit_id != unit)
        assert await _all(client, officer, source_id=sid, agency=other) == []
        r = await client.get("/api/v1/dossiers", headers=admin, params={"cursor": "nope"})
        assert r.status_code == 422

        # The view: names beside codes, Vietnamese status name, the overdue flag.
        code = next(c for c in codes if records[c].status == 4)
        view = (await client.get(f"/api/v1/dossiers/{code}", headers=admin)).json()
        assert view["status_name"].startswith("Đang xử lý")
        assert view["procedure_name"] and view["unit_name"]
        assert view["overdue"] == late(records[code])
