"""App wiring of the tasks service: `uvicorn services.tasks.main:app`."""

from __future__ import annotations

import dataclasses
import os

from fastapi import FastAPI

from services.tasks import events
from services.tasks.api import routers
from services.tasks.config import TasksSettings, dev_vapid_key
from services.tasks.store.models import outbox_table, processed_events_table
from shared.app import Runtime, ServiceSpec, create_service_app
from shared.settings import Settings

SPEC = ServiceSpec(
    name="tasks",
    title="CCHC Monitor — tasks",
    description="Turns inspection conclusions (Thông báo kết luận kiểm tra) and scoring alerts into assigned, deadline-tracked remediation items (khắc phục tồn tại, hạn chế) and reports their progress.",
    version="0.1.0",
    routers=routers,
    openapi_tags=[
        {
            "name": "conclusions",
            "description": "Conclusion notices and dispatches: create with findings and items, "
            "parse a document into draft items, confirm drafts (inspectors).",
        },
        {
            "name": "items",
            "description": "Remediation items: lists, workflow, progress, extensions. Officers "
            "see their own agency's items only (404 for others).",
        },
        {"name": "reports", "description": "Progress reports and CSV/XLSX exports."},
        {
            "name": "notifications",
            "description": "The caller's notification feed (reminders, overdue, escalations, "
            "decisions, new items, the leaders' digest) and the channels that deliver them: "
            "Web Push, e-mail, webhooks.",
        },
    ],
    outbox_table=outbox_table,
    processed_table=processed_events_table,
    consumers=events.consumers,
    workers=events.workers,
)


def create_app(settings: Settings | None = None, tasks: TasksSettings | None = None) -> FastAPI:
    """The tasks app; `tasks` overrides the TASKS_* settings (tests)."""
    tasks = tasks or TasksSettings()
    env = settings.env if settings else os.environ.get("ENV", "development")
    if not tasks.vapid_private_key and env != "production":
        tasks = tasks.model_copy(update={"vapid_private_key": dev_vapid_key()})

    def on_startup(runtime: Runtime) -> None:
        runtime.extras["tasks_settings"] = tasks

    app = create_service_app(dataclasses.replace(SPEC, on_startup=on_startup), settings)
    app.state.tasks_settings = tasks
    return app


app = create_app()
