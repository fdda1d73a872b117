"""Database plumbing: one async engine per process, one transaction owner per unit of work.

Following the "one owner of the transaction" rule: request dependencies and consumer wrappers
open a session, commit on success and roll back on error; domain code only flushes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

from sqlalchemy import DateTime, MetaData
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def make_metadata(schema: str) -> MetaData:
    return MetaData(schema=schema, naming_convention=NAMING_CONVENTION)


def make_base(schema: str) -> type[DeclarativeBase]:
    """A declarative base bound to the service's own PostgreSQL schema."""

    class Base(DeclarativeBase):
        metadata = make_metadata(schema)
        type_annotation_map = {datetime: DateTime(timezone=True)}

    return Base


def make_engine(url: str, *, pool_size: int = 10, schema: str | None = None) -> AsyncEngine:
    connect_args: dict[str, object] = {"server_settings": {"timezone": "UTC"}}
    if schema:
        connect_args["server_settings"] = {"timezone": "UTC", "search_path": f"{schema},public"}
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        # statement parameters never go into error messages (and so never into a log line):
        # they carry source credentials and personal data
        hide_parameters=True,
        connect_args=connect_args,
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


@asynccontextmanager
async def transaction(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """The unit of work: commit when the block succeeds, roll back when it raises."""
    async with sessions() as session, session.begin():
        yield session
