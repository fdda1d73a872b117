"""Sync engine, scheduler, rate limiting and metrics of the ingest service."""
