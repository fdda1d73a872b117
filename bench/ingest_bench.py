"""Ingest throughput: dossiers end to end from the simulator to committed rows + outbox events,
against a raw PostgreSQL COPY of the same rows into a scratch table, in the same run.

    python bench/ingest_bench.py [--dossiers 1000000] [--page-size 5000] [--workers 2]
                                 [--dialects national-json,vnpt-igate,opencps]

Each connector kind pulls the same generated dossiers from the simulator's dialect of it
(pre-serialised too), into its own fresh database; the rates are compared with the first.

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


# How the bench registers a source of each connector kind against the simulator.
DIALECTS: dict[str, dict[str, object]] = {
    "national-json": {"auth": {"type": "api_key", "key": "demo-key"}, "options": {}},
    "vnpt-igate": {
        "auth": {"type": "oauth2_client_credentials", "token_url": "/oauth/token",
                 "client_id": "cchc-monitor", "client_secret": "demo-secret"},
        "options": {},
    },
    "opencps": {
        "auth": {"type": "basic", "username": "cchc-monitor", "password": "demo-secret"},
        "options": {"group_id": "35417"},
    },
}  # fmt: skip


def start_simulator(
    n: int, page_size: int, dialects: list[str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    extra = [a for d in dialects or [] if d != "national-json"
             for a in ("--pregenerate-dialect", d)]  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.ingest.simulator", "--port", str(port), "--seed", "42",
         "--dossiers", str(n), "--pregenerate", str(page_size), "--horizon-days", "0", *extra],
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


async def measure(
    pg: Postgres, sim_url: str, dialect: str, page_size: int, workers: int, baseline: bool
) -> float:
    """One full dossier pull through the connector of `dialect` into a fresh database; prints
    its figures and returns its rate (records/s)."""
    name = f"cchc_bench_{uuid.uuid4().hex[:8]}"
    url = await pg.create_database(name)
    try:
        await asyncio.to_thread(upgrade, "ingest", url)
        pool = await asyncpg.create_pool(to_plain_url(url), min_size=2, max_size=4)
        sid = "bench"
        cfg = DIALECTS[dialect]
        await pool.execute(
            "INSERT INTO ingest.sources (id, name, kind, base_url, auth, agencies, options, feeds,"
            " page_size, rate_limit_per_s, timeout_s) VALUES ($1, 'bench', $2, $3, $4::jsonb,"
            " $5::jsonb, $6::jsonb, '{dossiers}', $7, 10000, 120)",
            sid, dialect, sim_url, json.dumps(cfg["auth"]),
            json.dumps(mapping_from_registry("demo-igate")), json.dumps(cfg["options"]), page_size,
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
        print(f"--- {dialect}: run {result.status}: pulled {result.pulled:,}, "
              f"stored {result.stored:,}, quarantined {result.quarantined:,}, "
              f"pages {result.pages:,}")  # fmt: skip
        print(f"committed rows {rows:,}; outbox events {events:,} carrying {carried:,} "
              f"dossiers; status-history rows {history:,}")  # fmt: skip
        print(f"ingest end to end : {elapsed:8.1f}s  {ingest_rate:>10,.0f} records/s")
        if baseline:
            # Baseline: COPY the same rows into a scratch table (no indexes, upsert, events).
            records = [tuple(r) for r in await pool.fetch(
                f"SELECT {', '.join(DOSSIER_COLUMNS)} FROM ingest.dossiers")]  # fmt: skip
            async with pool.acquire() as conn:
                await conn.execute(
                    "CREATE TABLE public.bench_copy (LIKE ingest.dossiers INCLUDING DEFAULTS)"
                )
                started = time.perf_counter()
                async with conn.transaction():
                    await conn.copy_records_to_table(
                        "bench_copy", schema_name="public", records=records,
                        columns=DOSSIER_COLUMNS,
                    )  # fmt: skip
                copy_elapsed = time.perf_counter() - started
            copy_rate = len(records) / copy_elapsed
            print(f"raw COPY baseline : {copy_elapsed:8.1f}s  {copy_rate:>10,.0f} records/s")
            print(f"ingest / COPY     : {ingest_rate / copy_rate:8.1%}")
        await pool.close()
        per = {k: v / max(result.pulled, 1) * 1e6 for k, v in cpu.items()}
        total = sum(per.values())
        print("CPU per record    : " + ", ".join(f"{k} {v:.1f} us" for k, v in per.items())
              + f" = {total:.1f} us -> at most {2e6 / total:,.0f} records/s on 2 cores"
              f" (wall clock used {sum(cpu.values()) / elapsed:.2f} cores)")  # fmt: skip
        return ingest_rate
    finally:
        await pg.drop_database(name)


async def run(n: int, page_size: int, workers: int = 1, dialects: list[str] | None = None) -> None:
    dialects = dialects or ["national-json"]
    pg = Postgres.start()
    sim = None
    try:
        t0 = time.perf_counter()
        sim, sim_url = start_simulator(n, page_size, dialects)
        print(
            f"simulator ready (generation + pre-serialisation) in {time.perf_counter() - t0:.1f}s"
        )
        rates = {d: await measure(pg, sim_url, d, page_size, workers, d == dialects[0])
                 for d in dialects}  # fmt: skip
        if len(rates) > 1:
            first = dialects[0]
            print("dialects          : " + ", ".join(
                f"{d} {r:,.0f}/s ({r / rates[first]:.0%} of {first})" for d, r in rates.items()
            ) + "  (target: every dialect within 2x, i.e. >= 50%)")  # fmt: skip
    finally:
        if sim is not None:
            sim.terminate()
            sim.wait(30)
        pg.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--dossiers", type=int, default=1_000_000)
    p.add_argument("--page-size", type=int, default=5000)
    p.add_argument("--workers", type=int, default=2, help="page-decoding worker processes")
    p.add_argument(
        "--dialects", default="national-json,vnpt-igate,opencps",
        help="connector kinds to pull through, comma-separated (the first is the reference)",
    )  # fmt: skip
    args, _ = p.parse_known_args()  # `make bench` passes every bench the same arguments
    dialects = [d for d in args.dialects.split(",") if d]
    asyncio.run(run(args.dossiers, args.page_size, args.workers, dialects))


if __name__ == "__main__":
    main()
