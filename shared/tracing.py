"""Distributed tracing (OpenTelemetry), one trace from a source call to the alert it raised.

Off unless `OTEL_EXPORTER_OTLP_ENDPOINT` is set: then each process exports its spans over
OTLP/HTTP to that collector, and HTTP requests (FastAPI), outgoing calls (httpx; the ingest fast
fetch adds its own span), database statements (asyncpg: under SQLAlchemy and ingest's own pool alike) and events are
traced.

The context crosses Kafka the CloudEvents way: the outbox row keeps the W3C `traceparent` of
the span that wrote it, the relay sends it as the `ce_traceparent` header (the distributed-
tracing extension in binary mode), and the consumer continues the trace from it. Where work is
queued in a table first (scoring's stale queue), the queued row keeps the traceparent too.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, SpanKind, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

log = logging.getLogger("cchc.tracing")
_PROPAGATOR = TraceContextTextMapPropagator()
_configured: dict[str, bool] = {}


def enabled() -> bool:
    return bool(_configured)


def configure_tracing(service: str, endpoint: str | None) -> bool:
    """Install the process's tracer provider once (the first service configured names it)."""
    if not endpoint:
        return False
    if _configured:
        return True
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": f"cchc-{service}"}))
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces"))
    )
    trace.set_tracer_provider(provider)
    HTTPXClientInstrumentor().instrument()
    AsyncPGInstrumentor().instrument()  # type: ignore[no-untyped-call]
    _configured[service] = True
    log.info("tracing exported over OTLP", extra={"endpoint": endpoint})
    return True


def shutdown() -> None:
    """Flush what is buffered (called when a service stops)."""
    provider: Any = trace.get_tracer_provider()
    if enabled() and hasattr(provider, "force_flush"):
        provider.force_flush(5_000)


def instrument_app(app: Any) -> None:
    if enabled():
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz,readyz,metrics")


def tracer() -> Tracer:
    return trace.get_tracer("cchc-monitor")


def current_traceparent() -> str | None:
    """The W3C traceparent of the current span, or None (tracing off, or no span)."""
    if not _configured:
        return None
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get("traceparent")


def context_of(traceparent: str | None) -> Context | None:
    if not traceparent or not _configured:
        return None
    return _PROPAGATOR.extract({"traceparent": traceparent})


def inject_headers(headers: dict[str, str]) -> dict[str, str]:
    """Add `traceparent` to outgoing HTTP headers (calls not made through httpx)."""
    tp = current_traceparent()
    if tp:
        headers["traceparent"] = tp
    return headers


@contextmanager
def span(
    name: str,
    *,
    parent: str | None = None,
    links: list[str] | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: dict[str, Any] | None = None,
) -> Iterator[None]:
    """A span (a no-op when tracing is off), child of `parent` (a traceparent) when given,
    else of the current span; `links` tie in other traceparents (e.g. several queued events)."""
    if not _configured:
        yield
        return
    ctx = context_of(parent)
    span_links = []
    for tp in links or ():
        linked = context_of(tp)
        if linked is not None:
            span_links.append(Link(trace.get_current_span(linked).get_span_context()))
    token = otel_context.attach(ctx) if ctx is not None else None
    try:
        with tracer().start_as_current_span(
            name, kind=kind, links=span_links, attributes=attributes or {}
        ):
            yield
    finally:
        if token is not None:
            otel_context.detach(token)
