"""Prometheus metrics shared by every service (one process = one service, default registry)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

HTTP_REQUESTS = Counter(
    "http_requests_total", "HTTP requests by route and status", ["route", "method", "status"]
)
HTTP_LATENCY = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency by route",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
OUTBOX_BACKLOG = Gauge("outbox_backlog", "Outbox rows not yet published", ["service"])
OUTBOX_OLDEST_AGE = Gauge(
    "outbox_oldest_unpublished_age_seconds",
    "Age of the oldest outbox row not yet published (0 when none is waiting)",
    ["service"],
)
OUTBOX_RELAY_LEADER = Gauge(
    "outbox_relay_leader",
    "1 while this process's relay holds the service's leadership",
    ["service"],
)
OUTBOX_PUBLISHED = Counter("outbox_published_total", "Outbox rows published", ["service"])
OUTBOX_ERRORS = Counter(
    "outbox_publish_errors_total", "Failed outbox publish attempts", ["service"]
)
EVENTS_CONSUMED = Counter(
    "events_consumed_total", "Events handled by consumers", ["consumer", "outcome"]
)
CONSUMER_LAG = Gauge(
    "kafka_consumer_lag",
    "Messages not yet committed by a consumer group (end offset - committed offset)",
    ["group", "topic", "partition"],
)
DLQ_DEPTH = Gauge("kafka_dlq_messages", "Messages held in a dead-letter topic", ["topic"])
EVENT_HANDLING = Histogram(
    "event_handling_seconds", "Time to handle one event, transaction included", ["consumer"]
)


def install_metrics(app: FastAPI) -> None:
    @app.middleware("http")
    async def _measure(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        start = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        HTTP_REQUESTS.labels(path, request.method, str(response.status_code)).inc()
        HTTP_LATENCY.labels(path, request.method).observe(time.perf_counter() - start)
        return response

    @app.get(
        "/metrics",
        include_in_schema=True,
        tags=["health"],
        operation_id="health-metrics",
        summary="Prometheus metrics",
        response_class=Response,
    )
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
