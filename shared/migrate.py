"""Alembic, one history per service, each in its own schema.

python -m shared.migrate all upgrade head
python -m shared.migrate tasks downgrade base
"""

from __future__ import annotations

import argparse
import asyncio

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData, pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from shared.settings import REPO_ROOT, Settings, to_async_url

SERVICES = ("ingest", "scoring", "tasks")


def alembic_config(service: str, database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(REPO_ROOT / "services" / service / "migrations"))
    cfg.set_main_option("sqlalchemy.url", to_async_url(database_url))
    cfg.set_main_option("file_template", "%%(year)d%%(month).2d%%(day).2d_%%(rev)s_%%(slug)s")
    cfg.attributes["schema"] = service
    return cfg


def upgrade(service: str, database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(service, database_url), revision)


def downgrade(service: str, database_url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(service, database_url), revision)


def prefer_lz4_sql(table: str, columns: tuple[str, ...], what: str) -> str:
    """A migration statement setting lz4 compression on `columns` of `table` where the server
    supports it (built with lz4, PostgreSQL 14+); elsewhere a notice that `what` stays
    pglz-compressed, and the migration goes on. Applied migrations call it: keep what it does.
    """
    alter = f"ALTER TABLE {table} " + ", ".join(
        f"ALTER COLUMN {c} SET COMPRESSION lz4" for c in columns
    )
    return f"""
        DO $$ BEGIN
            {alter};
        EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
            RAISE NOTICE 'lz4 not available: {what} stay pglz-compressed';
        END $$"""


def run_env(metadata: MetaData, schema: str) -> None:
    """Body of every service's migrations/env.py (online mode, async engine)."""
    from alembic import context

    config = context.config
    url = config.get_main_option("sqlalchemy.url")
    assert url

    def do_run(connection: Connection) -> None:
        connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        context.configure(
            connection=connection,
            target_metadata=metadata,
            version_table_schema=schema,
            include_schemas=False,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()

    async def main() -> None:
        engine = create_async_engine(url, poolclass=pool.NullPool, hide_parameters=True)
        async with engine.begin() as conn:
            await conn.run_sync(do_run)
        await engine.dispose()

    existing = config.attributes.get("connection")
    if existing is not None:
        do_run(existing)
    else:
        asyncio.run(main())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("service", choices=[*SERVICES, "all"])
    parser.add_argument("action", choices=["upgrade", "downgrade"])
    parser.add_argument("revision", nargs="?")
    args = parser.parse_args()
    url = Settings().database_url
    for service in SERVICES if args.service == "all" else (args.service,):
        if args.action == "upgrade":
            upgrade(service, url, args.revision or "head")
        else:
            downgrade(service, url, args.revision or "base")


if __name__ == "__main__":
    main()
