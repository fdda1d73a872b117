"""Prometheus metrics of the tasks service (default registry, exposed on /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

ITEMS = Gauge(
    "tasks_items",
    "Remediation items by status and timeliness (sampled from the items table)",
    ["status", "timeliness"],
)
DEADLINE_NOTICES = Counter(
    "tasks_deadline_notices_total",
    "Reminders, overdue notices and escalations the scheduler sent (each once per threshold)",
    ["kind"],
)
DELIVERIES = Counter(
    "tasks_notification_deliveries_total",
    "Notification deliveries by channel and outcome (delivered, retried, failed)",
    ["channel", "outcome"],
)
