"""Prometheus metrics of the scoring service (default registry, exposed on /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECOMPUTE_SECONDS = Histogram(
    "scoring_recompute_seconds",
    "One pass of the debounced recompute: stale pairs taken, snapshots and alerts written",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
STALE_QUEUE = Gauge(
    "scoring_stale_queue", "(unit, month) pairs waiting for a recompute (sampled each pass)"
)
SNAPSHOT_VERSIONS = Counter("scoring_snapshot_versions_total", "Snapshot versions written")
ALERTS = Counter("scoring_alerts_total", "Alerts raised and cleared", ["action"])
