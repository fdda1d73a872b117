"""App wiring of the ingest service: `uvicorn services.ingest.main:app`."""

from __future__ import annotations

from fastapi import FastAPI

from services.ingest import events
from services.ingest.api import routers
from services.ingest.runtime import on_startup
from services.ingest.store.models import outbox_table, processed_events_table
from shared.app import ServiceSpec, create_service_app
from shared.settings import Settings

SPEC = ServiceSpec(
    name="ingest",
    title="CCHC Monitor — ingest",
    description="Pulls TTHC dossier-processing data (hồ sơ, thủ tục hành chính, PAKN) from provincial one-stop systems (Hệ thống thông tin giải quyết TTHC), incrementally and safely, and announces every change on Kafka.",
    version="0.1.0",
    routers=routers,
    outbox_table=outbox_table,
    processed_table=processed_events_table,
    consumers=events.consumers,
    workers=events.workers,
    on_startup=on_startup,
    # a sync push's records are validated one by one: a bad one is quarantined, not the batch
    record_paths=("/api/v1/push/",),
)


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(SPEC, settings)


app = create_app()
