"""Delivery of notifications to people, behind one seam: a `Channel` sends one notification
to one target and raises on failure. `DeliveryWorker` (worker.py) claims due deliveries,
sends them outside any database transaction, and records the outcome with retries and
backoff — so a channel that is down never blocks the write that created the notification."""
