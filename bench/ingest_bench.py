"""Ingest throughput: dossiers end to end from the simulator to committed rows + outbox events,
against a raw PostgreSQL COPY of the same rows into a scratch table, in the same run.

    python bench/ingest_bench.py [--dossiers 1000000] [--page-size 5000] [--workers 2]

The simulator runs as its own process with the full pull pre-serialised (`--pregenerate`), so
it is not the bottleneck. The ingest side is the real sync engine: HTTP pages → JSON →
normalisation/validation in `--workers` decoding processes (2 by default: the best setting on
the 2-core machine the figures are recorded on; `INGEST_PARSE_WORKERS` in the service) → per
page one transaction (dossiers not stored yet COPYed straight into the table, stored ones
through the staging upsert newer-wins with RETURNING, status history of transitions, one
DossiersChanged outbox event per unit, checkpoint, run counters).
The baseline COPYs the very rows that ended up stored (already in memory, already typed) into
an unindexed scratch table — the floor any ingest pays.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402

from services.ingest.connectors.retry import RetryPolicy  # noqa: E402
from services.ingest.domain.agencies import mapping_from_registry  # noqa: E402
from services.ingest.store.pages import DOSSIER_COLUMNS  # noqa: E402
from services.ingest.sync.engine import SyncEngine  # noqa: E402
from shared.devstack import Postgres, free_port  # noqa: E402
from shared.migrate import upgrade  # noqa: E402
from shared.settings import to_plain_url  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process on this machine (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


async def cpu_by_role(pool: asyncpg.Pool, engine: SyncEngine) -> dict[str, float]:
    """CPU seconds so far of the engine's process, its decoding workers and the PostgreSQL
    backends serving this database (the simulator and other load on the box excluded)."""
    backends = await pool.fetch(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
    )
    workers = list(getattr(engine.executor, "_processes", {}) or {})
    return {
        "engine": cpu_seconds(os.getpid()),
        "workers": sum(cpu_seconds(pid) for pid in workers),
        "postgres": sum(cpu_seconds(r["pid"]) for r in backends),
    }


def start_simulator(n: int, page_size: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.ingest.simulator", "--port", str(port), "--seed", "42",
         "--dossiers", str(n), "--pregenerate", str(page_size), "--horizon-days", "0"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 1800
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("simulator exited")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1):
                return proc, url
        except OSError:
            time.sleep(0.5)
    raise RuntimeError("simulator did not start")


async def run(n: int, page_size: int, workers: int = 1) -> None:
    pg = Postgres.start()
    name = f"cchc_bench_{uuid.uuid4().hex[:8]}"
    sim = None
    try:
        url = await pg.create_database(name)
        await asyncio.to_thread(upgrade, "ingest", url)
        t0 = time.perf_counter()
        sim, sim_url = start_simulator(n, page_size)
        print(
            f"simulator ready (generation + pre-serialisation) in {time.perf_counter() - t0:.1f}s"
        )
        pool = await asyncpg.create_pool(to_plain_url(url), min_size=2, max_size=4)
        sid = "bench"
        await pool.execute(
            "INSERT INTO ingest.sources (id, name, base_url, auth, agencies, feeds, page_size,"
            " rate_limit_per_s, timeout_s) VALUES ($1, 'bench', $2, $3::jsonb, $4::jsonb,"
            " '{dossiers}', $5, 10000, 120)",
            sid, sim_url, json.dumps({"type": "api_key", "key": "demo-key"}),
            json.dumps(mapping_from_registry("demo-igate")), page_size,
        )  # fmt: skip
        engine = SyncEngine(pool, policy=RetryPolicy(attempts=3), prefetch=3, workers=workers)
        await engine.warm_up()  # a service's workers are up before its first run
        async with pool.acquire(), pool.acquire():  # open the pool's connections now
            pass
        cpu_before = await cpu_by_role(pool, engine)
        started = time.perf_counter()
        result = await engine.run(sid, "dossiers")
        elapsed = time.perf_counter() - started
        cpu_after = await cpu_by_role(pool, engine)
        cpu = {k: cpu_after[k] - cpu_before.get(k, 0.0) for k in cpu_after}
        await engine.stop()
        rows = await pool.fetchval("SELECT count(*) FROM ingest.dossiers")
        events = await pool.fetchval(
            "SELECT count(*) FROM ingest.outbox WHERE type = 'vn.cchc.ingest.dossiers.changed.v1'"
        )
        carried = await pool.fetchval(
            "SELECT sum(jsonb_array_length(payload::jsonb->'dossiers')) FROM ingest.outbox "
            "WHERE type = 'vn.cchc.ingest.dossiers.changed.v1'"
        )
        history = await pool.fetchval("SELECT count(*) FROM ingest.dossier_status_history")
        ingest_rate = result.pulled / elapsed

        # Baseline: COPY the same rows into a scratch table (no indexes, no upsert, no events).
        records = [tuple(r) for r in await pool.fetch(
            f"SELECT {', '.join(DOSSIER_COLUMNS)} FROM ingest.dossiers")]  # fmt: skip
        async with pool.acquire() as conn:
            await conn.execute(
                "CREATE TABLE public.bench_copy (LIKE ingest.dossiers INCLUDING DEFAULTS)"
            )
            started = time.perf_counter()
            async with conn.transaction():
                await conn.copy_records_to_table(
                    "bench_copy", schema_name="public", records=records, columns=DOSSIER_COLUMNS
                )
            copy_elapsed = time.perf_counter() - started
        copy_rate = len(records) / copy_elapsed
        await pool.close()

        print(f"run {result.status}: pulled {result.pulled:,}, stored {result.stored:,}, "
              f"quarantined {result.quarantined:,}, pages {result.pages:,}")  # fmt: skip
        print(f"committed rows {rows:,}; outbox events {events:,} carrying {carried:,} "
              f"dossiers; status-history rows {history:,}")  # fmt: skip
        print(f"ingest end to end : {elapsed:8.1f}s  {ingest_rate:>10,.0f} records/s")
        print(f"raw COPY baseline : {copy_elapsed:8.1f}s  {copy_rate:>10,.0f} records/s")
        print(f"ingest / COPY     : {ingest_rate / copy_rate:8.1%}  "
              f"(targets: >= 50,000 records/s and >= 40% of COPY)")  # fmt: skip
        per = {k: v / max(result.pulled, 1) * 1e6 for k, v in cpu.items()}
        total = sum(per.values())
        print("CPU per record    : " + ", ".join(f"{k} {v:.1f} us" for k, v in per.items())
              + f" = {total:.1f} us -> at most {2e6 / total:,.0f} records/s on 2 cores"
              f" (wall clock used {sum(cpu.values()) / elapsed:.2f} cores)")  # fmt: skip
    finally:
        if sim is not None:
            sim.terminate()
            sim.wait(30)
        await pg.drop_database(name)
        pg.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--dossiers", type=int, default=1_000_000)
    p.add_argument("--page-size", type=int, default=5000)
    p.add_argument("--workers", type=int, default=2, help="page-decoding worker processes")
    args = p.parse_args()
    asyncio.run(run(args.dossiers, args.page_size, args.workers))


if __name__ == "__main__":
    main()
