"""What the scoring service consumes (handlers) and runs in the background."""

from __future__ import annotations

import os
from datetime import timedelta

from services.scoring.events.handlers import (
    handle_facts,
    handle_remediation,
    make_official_handler,
)
from services.scoring.recompute import Scoring, StaleWorker, default_profile
from services.scoring.store.models import processed_events_table
from shared.app import Runtime, Worker
from shared.events.consumer import IdempotentConsumer
from shared.events.payloads import (
    DossiersChanged,
    OfficialScoresPublished,
    PetitionsChanged,
    ProceduresChanged,
    RemediationAccepted,
    RemediationCreated,
    RemediationDeadlineChanged,
    RemediationOverdue,
    RemediationStatusChanged,
)


def consumers(runtime: Runtime) -> list[IdempotentConsumer]:
    common = {
        "sessions": runtime.sessions,
        "processed_table": processed_events_table,
        "producer": runtime.producer,
        "settings": runtime.settings,
    }
    return [
        IdempotentConsumer(
            name="scoring.facts",
            topics=["ingest.dossiers"],
            handlers={
                DossiersChanged.event_type: handle_facts,
                ProceduresChanged.event_type: handle_facts,
                PetitionsChanged.event_type: handle_facts,
                OfficialScoresPublished.event_type: make_official_handler(default_profile()),
            },
            **common,
        ),
        IdempotentConsumer(
            name="scoring.remediation",
            topics=["tasks.remediation"],
            handlers={
                t.event_type: handle_remediation
                for t in (
                    RemediationCreated,
                    RemediationStatusChanged,
                    RemediationDeadlineChanged,
                    RemediationOverdue,
                    RemediationAccepted,
                )
            },
            **common,
        ),
    ]


def workers(runtime: Runtime) -> list[Worker]:
    ctx = Scoring(outbox=runtime.outbox)
    runtime.extras["scoring"] = ctx
    return [
        StaleWorker(
            runtime.sessions,
            ctx,
            interval=float(os.environ.get("SCORING_STALE_INTERVAL_S", "2")),
            debounce=timedelta(seconds=float(os.environ.get("SCORING_STALE_DEBOUNCE_S", "5"))),
        )
    ]
