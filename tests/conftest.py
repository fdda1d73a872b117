"""Real infrastructure for every test: a PostgreSQL server and a Kafka-protocol broker.

- PostgreSQL: DATABASE_URL when set (CI machines run one on 127.0.0.1:5432), else a throwaway
  embedded server. The session gets its own database, migrated with every service's Alembic
  history, and drops it at the end.
- Broker: KAFKA_BOOTSTRAP_SERVERS when set, else a tansu broker on a free loopback port.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from shared import migrate
from shared.auth.tokens import issue_token
from shared.devstack import Broker, Postgres
from shared.logging import JsonFormatter
from shared.settings import Settings, to_async_url

TEST_JWT_SECRET = "test-secret-" + uuid.uuid4().hex


class SecretWatch(logging.Handler):
    """Every log record of the session, formatted as the services write it (JsonFormatter),
    checked for the secrets the suite hands out: the JWT key, issued tokens and whatever a test
    adds (`secret_watch.secrets.add(...)`). Kept across `configure_logging` (`cchc_keep`)."""

    cchc_keep = True

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter("test"))
        self.secrets: set[str] = {TEST_JWT_SECRET}
        self.leaks: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # a record that cannot be formatted is not ours to judge
            return
        if any(secret in line for secret in self.secrets):
            self.leaks.append(line)


SECRET_WATCH = SecretWatch()


@pytest.fixture(scope="session", autouse=True)
def secret_watch() -> Iterator[SecretWatch]:
    root = logging.getLogger()
    root.addHandler(SECRET_WATCH)
    yield SECRET_WATCH
    root.removeHandler(SECRET_WATCH)


@pytest.fixture(autouse=True)
def no_secret_in_logs(secret_watch: SecretWatch) -> Iterator[None]:
    """Fails the test whose code logged a known secret (issue 16 item 8)."""
    secret_watch.leaks.clear()
    yield
    leaks, secret_watch.leaks[:] = list(secret_watch.leaks), []
    assert not leaks, f"a secret appeared in {len(leaks)} log line(s), e.g. {leaks[0][:400]}"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Postgres]:
    server = Postgres.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def broker() -> Iterator[Broker]:
    b = Broker.start()
    yield b
    b.stop()


@pytest.fixture(scope="session")
async def database_url(pg_server: Postgres) -> AsyncIterator[str]:
    """A fresh database for the test session with every service's schema migrated."""
    name = f"cchc_test_{uuid.uuid4().hex[:10]}"
    url = await pg_server.create_database(name)
    for service in migrate.SERVICES:
        await asyncio.to_thread(migrate.upgrade, service, url)
    yield to_async_url(url)
    await pg_server.drop_database(name)


@pytest.fixture(scope="session")
def make_settings(database_url: str, broker: Broker) -> Callable[..., Settings]:
    def factory(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "env": "test",
            "database_url": database_url,
            "kafka_bootstrap_servers": broker.bootstrap,
            "jwt_secret": TEST_JWT_SECRET,
            # tansu waits about half the session timeout before a rebalance completes
            "kafka_session_timeout_ms": 6000,
            "kafka_heartbeat_interval_ms": 500,
            "kafka_topic_partitions": 4,
            "outbox_poll_interval_s": 0.05,
            "consumer_max_attempts": 2,
            # the broker-sampling metrics worker is off unless a test asks for it
            "metrics_sample_interval_s": 0,
        }
        values.update(overrides)
        return Settings(**values)

    return factory


@pytest.fixture(scope="session")
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture(scope="session")
def token(settings: Settings) -> Callable[..., str]:
    def make(role: str = "admin", unit: str | None = None) -> str:
        issued = issue_token(settings, role, unit)
        SECRET_WATCH.secrets.add(issued)
        return issued

    return make


@pytest.fixture(scope="session")
def auth(token: Callable[..., str]) -> Callable[..., dict[str, str]]:
    """Headers for a role: `auth("officer", "P21.SNV")`."""

    def make(role: str = "admin", unit: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token(role, unit)}"}

    return make


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan (engine, producer, relay, consumers) and talk to it in-process."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


@pytest.fixture(scope="session")
def subprocess_env(settings: Settings) -> dict[str, str]:
    """Environment for service processes started by tests."""
    return {
        **os.environ,
        "ENV": "test",
        "DATABASE_URL": settings.database_url,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "JWT_SECRET": TEST_JWT_SECRET,
        "KAFKA_SESSION_TIMEOUT_MS": str(settings.kafka_session_timeout_ms),
        "KAFKA_HEARTBEAT_INTERVAL_MS": str(settings.kafka_heartbeat_interval_ms),
        "KAFKA_TOPIC_PARTITIONS": str(settings.kafka_topic_partitions),
        "OUTBOX_POLL_INTERVAL_S": "0.05",
    }
