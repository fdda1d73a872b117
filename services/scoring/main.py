"""App wiring of the scoring service: `uvicorn services.scoring.main:app`."""

from __future__ import annotations

from fastapi import FastAPI

from services.scoring import events
from services.scoring.api import routers
from services.scoring.store.models import outbox_table, processed_events_table
from shared.app import ServiceSpec, create_service_app
from shared.settings import Settings

SPEC = ServiceSpec(
    name="scoring",
    title="CCHC Monitor — scoring",
    description="Turns dossier facts into Decision 766/QĐ-TTg indicator snapshots (Bộ chỉ số 766) and PAR INDEX points per agency and period, explains every point lost, ranks agencies and raises alerts.",
    version="0.1.0",
    routers=routers,
    outbox_table=outbox_table,
    processed_table=processed_events_table,
    consumers=events.consumers,
    workers=events.workers,
)


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(SPEC, settings)


app = create_app()
