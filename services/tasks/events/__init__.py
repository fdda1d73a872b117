"""What the tasks service consumes (handlers) and runs in the background."""

from __future__ import annotations

import os

from services.tasks.config import TasksSettings
from services.tasks.events.handlers import make_handlers
from services.tasks.events.scheduler import DeadlineScheduler
from services.tasks.events.scores import make_score_handlers
from services.tasks.notify.worker import DeliveryWorker
from services.tasks.store.models import processed_events_table
from shared.app import Runtime, Worker
from shared.events.consumer import IdempotentConsumer

SCHEDULER_INTERVAL_S = float(os.environ.get("TASKS_SCHEDULER_INTERVAL_S", "60"))


def consumers(runtime: Runtime) -> list[IdempotentConsumer]:
    return [
        IdempotentConsumer(
            name="tasks.alerts",
            topics=["scoring.snapshots"],
            handlers={**make_handlers(runtime.outbox), **make_score_handlers()},
            sessions=runtime.sessions,
            processed_table=processed_events_table,
            producer=runtime.producer,
            settings=runtime.settings,
        )
    ]


def workers(runtime: Runtime) -> list[Worker]:
    settings = runtime.extras.get("tasks_settings") or TasksSettings()
    return [
        DeadlineScheduler(runtime.sessions, runtime.outbox, SCHEDULER_INTERVAL_S, settings),
        DeliveryWorker(runtime.sessions, settings),
    ]
