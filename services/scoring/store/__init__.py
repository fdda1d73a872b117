"""SQLAlchemy models and queries of the scoring service (PostgreSQL schema `scoring`)."""
