"""App wiring of the scoring service: `uvicorn services.scoring.main:app`."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import text

from services.scoring import events
from services.scoring.api import routers
from services.scoring.store.models import outbox_table, processed_events_table
from services.scoring.store.registry import seed_units
from shared.app import Runtime, ServiceSpec, create_service_app
from shared.db import transaction
from shared.settings import Settings


async def on_startup(runtime: Runtime) -> None:
    """Seed the unit registry from shared/reference/units.json unless it was seeded before
    (the seed's first province is present); later edits through the import API are kept."""
    async with transaction(runtime.sessions) as session:
        missing = await session.execute(
            text("SELECT NOT EXISTS (SELECT 1 FROM scoring.units WHERE id = 'P01')")
        )
        if missing.scalar():
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
