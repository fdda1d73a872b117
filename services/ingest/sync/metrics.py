"""Prometheus metrics of the ingest service (default registry, exposed on /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECORDS = Counter(
    "ingest_records_total",
    "Records by outcome: pulled, stored (created/changed), unchanged, quarantined",
    ["source", "feed", "outcome"],
)
QUARANTINE_REASONS = Counter(
    "ingest_quarantine_reasons_total", "Rejection reasons by kind", ["source", "feed", "reason"]
)
SOURCE_ERRORS = Counter(
    "ingest_source_errors_total", "Failed calls to a source by kind", ["source", "kind"]
)
RUN_DURATION = Histogram(
    "ingest_run_duration_seconds",
    "Sync run duration by outcome",
    ["source", "feed", "outcome"],
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
)
LAG = Gauge(
    "ingest_lag_seconds",
    "Now minus the newest source_updated_at committed for a (source, feed)",
    ["source", "feed"],
)
PAGES = Counter("ingest_pages_total", "Pages committed", ["source", "feed"])
SOURCE_DEGRADED = Gauge(
    "ingest_source_degraded",
    "1 while a source's circuit breaker is open (consecutive failed runs), else 0",
    ["source"],
)
SOURCE_FRESHNESS = Gauge(
    "ingest_source_last_success_age_seconds",
    "Seconds since a source's last successful run finished",
    ["source"],
)
