#!/bin/sh
# Apply every service's Alembic history, then exit (run once before the services start).
set -e
exec python -m shared.migrate all upgrade
