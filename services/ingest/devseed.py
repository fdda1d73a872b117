"""`make run` seed: register the simulator as the demo source and start pulling from it.

Re-runnable: an existing source is left as it is, and a sync already running is not doubled.
"""

from __future__ import annotations

import contextlib
from typing import Any

import httpx

DEMO_SOURCE_ID = "demo-igate"


async def seed(ctx: Any) -> None:
    simulator = ctx.urls.get("simulator")
    if simulator is None:
        return
    headers = {"Authorization": f"Bearer {ctx.admin_token}"}
    transport = getattr(ctx, "transport", None)  # tests pass an in-process ASGI transport
    if transport is None:
        # One dossier in a hundred comes with an agency code no mapping has yet, so the demo
        # shows quarantine (GET /api/v1/quarantine?reason=unknown_agency) and its repair: map
        # the code (PATCH the source's agencies), then POST /api/v1/quarantine/reprocess.
        async with httpx.AsyncClient(base_url=simulator, timeout=10) as sim:
            with contextlib.suppress(httpx.HTTPError):
                await sim.post("/admin/faults", json={"invalid_rate": 0.01},
                               headers={"X-API-Key": "demo-key"})  # fmt: skip
    async with httpx.AsyncClient(
        base_url=ctx.urls["ingest"], headers=headers, timeout=30, transport=transport
    ) as client:
        existing = await client.get(f"/api/v1/sources/{DEMO_SOURCE_ID}")
        if existing.status_code == 404:
            created = await client.post(
                "/api/v1/sources",
                json={
                    "id": DEMO_SOURCE_ID,
                    "name": "Hệ thống một cửa điện tử (mô phỏng) — demo one-stop simulator",
                    "base_url": simulator,
                    "auth": {"type": "api_key", "key": "demo-key"},
                    "agencies_from_registry": "demo-igate",
                    "schedule_s": 60,
                },
            )
            created.raise_for_status()
        else:
            existing.raise_for_status()
        # Catalogue and petitions first, so the first snapshots have their denominators.
        for feed in ("procedures", "petitions", "dossiers"):
            started = await client.post(
                f"/api/v1/sources/{DEMO_SOURCE_ID}/sync", json={"feed": feed}
            )
            if started.status_code not in (200, 201, 202, 409):
                started.raise_for_status()
