"""What the ingest service consumes (handlers) and runs in the background."""

from __future__ import annotations

from shared.app import Runtime, Worker
from shared.events.consumer import IdempotentConsumer


def consumers(runtime: Runtime) -> list[IdempotentConsumer]:
    return []


def workers(runtime: Runtime) -> list[Worker]:
    return []
