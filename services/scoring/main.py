"""App wiring of the scoring service: `uvicorn services.scoring.main:app`."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import text

from services.scoring import events
from services.scoring.api import routers
from services.scoring.store.models import outbox_table, processed_events_table
from services.scoring.store.registry import seed_data_versions, seed_units
from shared.app import Runtime, ServiceSpec, create_service_app
from shared.db import transaction
from shared.settings import Settings


async def on_startup(runtime: Runtime) -> None:
    """Seed the unit registry from shared/reference/units.json unless this release of the data
    (its `data_versions`) was seeded before: a new data release re-seeds (an upsert: units and
    edges edited through the API are kept, official weights stand)."""
    async with transaction(runtime.sessions) as session:
        # instances starting together: one seeds, the others wait and find it done
        await session.execute(text("SELECT pg_advisory_xact_lock(hashtext('scoring.units seed'))"))
        seeded = await session.scalar(
            text("SELECT value -> 'data_versions' FROM scoring.registry_meta WHERE key = 'seed'")
        )
        if seeded is None or seeded != seed_data_versions():
            await seed_units(session)


SPEC = ServiceSpec(
    name="scoring",
    title="CCHC Monitor — scoring",
    description=(
        "Turns dossier facts into Decision 766/QĐ-TTg indicator snapshots (Bộ chỉ số 766) and "
        "PAR INDEX points per agency and period, explains every point lost, ranks agencies and "
        "raises alerts."
    ),
    version="0.1.0",
    routers=routers,
    outbox_table=outbox_table,
    processed_table=processed_events_table,
    openapi_tags=[
        {"name": "units", "description": "Unit registry: agencies, lineage, external codes."},
        {"name": "profiles", "description": "Methodology profiles and their indicators."},
        {"name": "scores", "description": "Snapshots, explanations, rankings, time series."},
        {"name": "alerts", "description": "Alerts raised by the alert rules."},
        {"name": "official", "description": "Officially published scores beside ours."},
        {"name": "exports", "description": "CSV and XLSX reports as officials lay them out."},
    ],
    consumers=events.consumers,
    workers=events.workers,
    on_startup=on_startup,
)


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(SPEC, settings)


app = create_app()
