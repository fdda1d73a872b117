"""SQLAlchemy models and queries of the tasks service (PostgreSQL schema `tasks`)."""
