"""`make run` seed: register the simulator as the demo source, start pulling from it, and
announce the official 766 scores its portal API publishes.

Re-runnable: an existing source is left as it is, and a sync already running is not doubled.
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx

VN = ZoneInfo("Asia/Ho_Chi_Minh")

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
            # a source made before a registry release (e.g. the real geography of issue 12)
            # lacks its new codes (old districts and wards): refresh them from the registry
            mapping = existing.json().get("agencies") or {}
            if "000.00.01.H33" not in mapping:
                refreshed = await client.patch(
                    f"/api/v1/sources/{DEMO_SOURCE_ID}",
                    json={"agencies_from_registry": "demo-igate"},
                )
                refreshed.raise_for_status()
        # Catalogue and petitions first, so the first snapshots have their denominators.
        for feed in ("procedures", "petitions", "dossiers"):
            started = await client.post(
                f"/api/v1/sources/{DEMO_SOURCE_ID}/sync", json={"feed": feed}
            )
            if started.status_code not in (200, 201, 202, 409):
                started.raise_for_status()
        # The simulator also serves the national portal's 766 reporting API: announce what it
        # "published" so scoring shows official scores beside its own (differences endpoint).
        # Not essential to the demo: a failure is left to the logs.
        await client.post(
            f"/api/v1/sources/{DEMO_SOURCE_ID}/official-scores",
            json={"root_department_id": "demo", "year": datetime.now(VN).year},
        )
