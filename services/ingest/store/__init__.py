"""SQLAlchemy models and queries of the ingest service (PostgreSQL schema `ingest`)."""
