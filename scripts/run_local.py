"""`make run`: the whole system on one machine, on embedded defaults.

Starts PostgreSQL (DATABASE_URL, or an embedded server with its data in .run/pgdata), a
Kafka-protocol broker (KAFKA_BOOTSTRAP_SERVERS, or tansu), applies every migration, starts the
one-stop simulator and the three services, runs each service's optional dev seed
(`services/<svc>/devseed.py: async def seed(ctx)`), prints the URLs, and stops everything
cleanly on Ctrl-C.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shared.auth.security import dev_secret  # noqa: E402
from shared.auth.tokens import issue_token  # noqa: E402
from shared.devstack import Broker, Postgres, port_open  # noqa: E402
from shared.settings import RUN_DIR, Settings, to_async_url  # noqa: E402

SERVICES = {"ingest": 8001, "scoring": 8002, "tasks": 8003}


def port(name: str, default: int) -> int:
    return int(os.environ.get(f"{name.upper()}_PORT", default))


class DevContext:
    def __init__(self, env: dict[str, str], urls: dict[str, str], admin_token: str) -> None:
        self.env = env
        self.urls = urls
        self.admin_token = admin_token


def main() -> int:
    RUN_DIR.mkdir(exist_ok=True)
    logs = RUN_DIR / "logs"
    logs.mkdir(exist_ok=True)
    children: list[tuple[str, subprocess.Popen[bytes]]] = []
    pg = broker = None
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        print("• PostgreSQL …", flush=True)
        pg = Postgres.start(RUN_DIR / "pgdata", throwaway=False)
        database_url = asyncio.run(pg.create_database("cchc", exist_ok=True))
        print("• Kafka-protocol broker …", flush=True)
        broker = Broker.start(
            None if os.environ.get("KAFKA_BOOTSTRAP_SERVERS") else port("kafka", 9092), logs
        )
        settings = Settings()
        env = {
            **os.environ,
            "DATABASE_URL": to_async_url(database_url),
            "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
            "JWT_SECRET": settings.jwt_secret or dev_secret(settings),
            "PYTHONPATH": str(ROOT),
            # service roots link to the dashboard
            "DASHBOARD_URL": f"http://127.0.0.1:{port('dashboard', 8004)}",
        }
        print("• migrations …", flush=True)
        subprocess.run(
            [sys.executable, "-m", "shared.migrate", "all", "upgrade"],
            env=env,
            check=True,
            cwd=ROOT,
        )

        urls: dict[str, str] = {}
        sim_port = port("simulator", 8009)
        if importlib.util.find_spec("services.ingest.simulator.__main__"):
            children.append(
                (
                    "simulator",
                    spawn(
                        [
                            sys.executable,
                            "-m",
                            "services.ingest.simulator",
                            "--port",
                            str(sim_port),
                        ],
                        env,
                        logs / "simulator.log",
                    ),
                )
            )
            urls["simulator"] = f"http://127.0.0.1:{sim_port}"
        for name, default in SERVICES.items():
            p = port(name, default)
            if port_open("127.0.0.1", p):
                raise RuntimeError(f"port {p} for {name} is taken; set {name.upper()}_PORT")
            children.append(
                (
                    name,
                    spawn(
                        [
                            sys.executable,
                            "-m",
                            "uvicorn",
                            f"services.{name}.main:app",
                            "--host",
                            "127.0.0.1",
                            "--port",
                            str(p),
                            "--no-access-log",
                        ],
                        {**env, "SERVICE_NAME": name},
                        logs / f"{name}.log",
                    ),
                )
            )
            urls[name] = f"http://127.0.0.1:{p}"
        dash_port = port("dashboard", 8004)
        if port_open("127.0.0.1", dash_port):
            raise RuntimeError(f"port {dash_port} for the dashboard is taken; set DASHBOARD_PORT")
        children.append(
            (
                "dashboard",
                spawn(
                    [sys.executable, "-m", "uvicorn", "services.dashboard.main:app",
                     "--host", "127.0.0.1", "--port", str(dash_port), "--no-access-log"],
                    {
                        **env,
                        "SERVICE_NAME": "dashboard",
                        "DASHBOARD_SCORING_URL": urls["scoring"],
                        "DASHBOARD_TASKS_URL": urls["tasks"],
                        "DASHBOARD_INGEST_URL": urls["ingest"],
                        "DASHBOARD_PUBLIC_URL": f"http://127.0.0.1:{dash_port}",
                    },
                    logs / "dashboard.log",
                ),
            )
        )  # fmt: skip
        urls["dashboard"] = f"http://127.0.0.1:{dash_port}"
        wait_ready(urls, children)
        admin = issue_token(Settings(jwt_secret=env["JWT_SECRET"]), "admin")
        ctx = DevContext(env, urls, admin)
        for name in SERVICES:
            if importlib.util.find_spec(f"services.{name}.devseed"):
                module = importlib.import_module(f"services.{name}.devseed")
                asyncio.run(module.seed(ctx))
        print("\nCCHC Monitor is up:")
        print(f"  ▶ dashboard (bảng điều hành): {urls['dashboard']}  — sign in, pick a role")
        for name, url in urls.items():
            extra = "" if name in ("simulator", "dashboard") else f"   docs {url}/docs"
            print(f"  {name:<10} {url}{extra}")
        print(f"  broker     {broker.bootstrap}")
        print(f"  database   {database_url}")
        print(f"  logs       {logs}/")
        print("  a token:   make token ROLE=admin   (or ROLE=officer UNIT=P21.SNV)")
        print("Ctrl-C stops everything.", flush=True)
        while not stopping:
            for name, child in children:
                if child.poll() is not None:
                    print(f"! {name} exited with {child.returncode}; see {logs}/{name}.log")
                    stopping = True
            time.sleep(0.5)
        return 0
    finally:
        print("\nstopping …", flush=True)
        for _name, child in reversed(children):
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for _name, child in reversed(children):
            try:
                child.wait(30)
            except subprocess.TimeoutExpired:
                child.kill()
        if broker:
            broker.stop()
        if pg:
            pg.stop()
        print("stopped.")


def spawn(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("ab")
    return subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT)


def wait_ready(
    urls: dict[str, str], children: list[tuple[str, subprocess.Popen[bytes]]], timeout: float = 180
) -> None:
    deadline = time.monotonic() + timeout
    pending = {n: u for n, u in urls.items() if n in SERVICES or n == "dashboard"}
    while pending and time.monotonic() < deadline:
        for name, child in children:
            if child.poll() is not None:
                raise RuntimeError(f"{name} exited during start-up; see .run/logs/{name}.log")
        for name, url in list(pending.items()):
            try:
                probe = "/healthz" if name == "dashboard" else "/readyz"
                if httpx.get(f"{url}{probe}", timeout=2).status_code == 200:
                    print(f"• {name} ready at {url}", flush=True)
                    del pending[name]
            except httpx.HTTPError:
                pass
        time.sleep(0.5)
    if pending:
        raise RuntimeError(f"not ready after {timeout}s: {', '.join(pending)}")


if __name__ == "__main__":
    sys.exit(main())
