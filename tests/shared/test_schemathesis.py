"""Schemathesis against each service's own OpenAPI document: no input gives a 500, and every
answer conforms to the document (status code, content type, body schema) (issue 16).

Each service runs as a real uvicorn process on a database of its own (freshly migrated), so the
generated requests — an admin token in every one — can create and delete what they like without
touching the session's data. The run is bounded: a fixed seed, a capped number of examples per
operation and a time budget per service (SCHEMATHESIS_MAX_TIME_S, default 40 s; with the
services' start-up the three take about four and a half minutes on two cores). `/readyz` is left
out: without a broker (this run has none) it answers 503 by design.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from shared import migrate
from shared.devstack import Postgres, free_port
from shared.settings import REPO_ROOT, Settings

SERVICES = ("ingest", "scoring", "tasks")
CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_schema_conformance"
)
MAX_TIME_S = os.environ.get("SCHEMATHESIS_MAX_TIME_S", "40")
MAX_EXAMPLES = os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "25")


@pytest.fixture(scope="module")
async def fuzz_database(pg_server: Postgres) -> AsyncIterator[str]:
    name = f"cchc_fuzz_{uuid.uuid4().hex[:8]}"
    url = await pg_server.create_database(name)
    for service in migrate.SERVICES:
        await asyncio.to_thread(migrate.upgrade, service, url)
    yield url
    await pg_server.drop_database(name)


def _serve(service: str, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", f"services.{service}.main:app", "--port", str(port),
         "--log-level", "warning", "--no-access-log"],
        cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return process, base
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            break
        time.sleep(0.2)
    process.kill()
    assert process.stderr is not None  # started with stderr=PIPE
    raise AssertionError(f"{service} did not start: {process.stderr.read()[-2000:]!r}")


@pytest.mark.timeout(900)  # ~800 generated requests; a PDF export converts with LibreOffice
@pytest.mark.parametrize("service", SERVICES)
def test_no_server_error_and_conformance(
    service: str,
    fuzz_database: str,
    subprocess_env: dict[str, str],
    token: Callable[..., str],
    settings: Settings,
    tmp_path: Path,
) -> None:
    env = {
        **subprocess_env,
        "DATABASE_URL": fuzz_database,
        "WORKERS_ENABLED": "false",  # no relay, consumers or schedulers: the API alone
        "PYTHONPATH": str(REPO_ROOT),
    }
    process, base = _serve(service, env)
    try:
        report = tmp_path / "junit.xml"
        result = subprocess.run(
            [str(Path(sys.executable).parent / "st"), "run", f"{base}/openapi.json",
             "--checks", CHECKS, "--max-examples", MAX_EXAMPLES, "--max-time", MAX_TIME_S,
             "--seed", "16", "--workers", "1", "--request-timeout", "300",
             "--phases", "examples,coverage,fuzzing", "--suppress-health-check", "all",
             # readiness answers 503 by design while the broker is away (no broker here)
             "--exclude-path", "/readyz",
             # calls the national portal (outside the system, unreachable here): its answer is
             # the documented 503 "the portal did not answer", after the client's timeout
             "--exclude-path", "/api/v1/sources/{source_id}/official-scores",
             "--header", f"Authorization: Bearer {token('admin')}",
             "--report", "junit", "--report-junit-path", str(report)],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900,
        )  # fmt: skip
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
    (tmp_path / "schemathesis.log").write_text(result.stdout + result.stderr)
    # the first failures in full (a network error names its operation there), then the summary
    out = result.stdout
    failures = out[out.find("=====") :][:6000] + "\n…\n" + out[-3000:]
    assert result.returncode == 0, f"schemathesis found failures in {service}:\n{failures}"
    assert report.exists() and "<testcase" in report.read_text()
