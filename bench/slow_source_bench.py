"""A slow source: the simulator answers each page after 200 ms and we may ask it 10 times a
second. A year's backfill walked as one sequence of pages, then as parallel date slices within
the same feed (source option `backfill_slices`, each slice checkpointed): the share of the
allowed request rate each reaches.

    python bench/slow_source_bench.py [--slow-dossiers 20000] [--slow-page-size 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402

from services.ingest.connectors.retry import RetryPolicy  # noqa: E402
from services.ingest.domain.agencies import mapping_from_registry  # noqa: E402
from services.ingest.simulator.data import DEFAULT_CLOCK  # noqa: E402
from services.ingest.sync.engine import SyncEngine  # noqa: E402
from shared.devstack import Postgres, free_port  # noqa: E402
from shared.migrate import upgrade  # noqa: E402
from shared.settings import to_plain_url  # noqa: E402

RATE = 10.0  # requests/s the source allows
LATENCY_MS = 200


def start_simulator(n: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.ingest.simulator", "--port", str(port), "--seed", "7",
         "--dossiers", str(n), "--horizon-days", "0", "--latency-ms", str(LATENCY_MS)],
        cwd=ROOT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1):
                return proc, url
        except OSError:
            time.sleep(0.5)
    raise RuntimeError("simulator did not start")


async def backfill(pg: Postgres, url: str, slices: int, page_size: int) -> tuple[float, int]:
    name = f"cchc_slow_{uuid.uuid4().hex[:8]}"
    db = await pg.create_database(name)
    try:
        await asyncio.to_thread(upgrade, "ingest", db)
        pool = await asyncpg.create_pool(to_plain_url(db), min_size=2, max_size=slices + 3)
        await pool.execute(
            "INSERT INTO ingest.sources (id, name, base_url, auth, agencies, options, feeds,"
            " page_size, rate_limit_per_s, concurrency, timeout_s) VALUES ('slow', 'slow', $1,"
            " $2::jsonb, $3::jsonb, $4::jsonb, '{dossiers}', $5, $6, $7, 30)",
            url, json.dumps({"type": "api_key", "key": "demo-key"}),
            json.dumps(mapping_from_registry("demo-igate")),
            json.dumps({"backfill_slices": slices}), page_size, RATE, max(2, slices),
        )  # fmt: skip
        engine = SyncEngine(pool, policy=RetryPolicy(attempts=3))
        since = DEFAULT_CLOCK - timedelta(days=400)
        started = time.perf_counter()
        result = await engine.run("slow", "dossiers", kind="backfill", since=since)
        elapsed = time.perf_counter() - started
        await engine.stop()
        requests = result.pages + sum(result.errors.values())
        await pool.close()
        rate = requests / elapsed
        print(f"{slices} slice(s): {result.status}, {result.pulled:,} records, {requests} "
              f"requests in {elapsed:.1f}s = {rate:.1f} requests/s = {rate / RATE:.0%} of the "
              f"allowed {RATE:g}/s")  # fmt: skip
        return rate, requests
    finally:
        await pg.drop_database(name)


async def main(n: int, page_size: int) -> None:
    pg = Postgres.start()
    sim, url = start_simulator(n)
    try:
        print(f"slow source: {LATENCY_MS} ms per page, {RATE:g} requests/s allowed, "
              f"{n:,} dossiers over a year, pages of {page_size}")  # fmt: skip
        for slices in (1, 8):
            await backfill(pg, url, slices, page_size)
    finally:
        sim.terminate()
        sim.wait(30)
        pg.stop()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--slow-dossiers", type=int, default=20_000)
    p.add_argument("--slow-page-size", type=int, default=100)
    args, _rest = p.parse_known_args()  # `make bench` passes every bench the same arguments
    asyncio.run(main(args.slow_dossiers, args.slow_page_size))
