"""Ingest against a peer: the same dossiers pulled from the simulator into PostgreSQL by dlt (the
tool a Python team would pick: its REST API source with a cursor paginator, its postgres
destination, merge on MaHoSo) and by ingest's sync engine, in the same run.

    python bench/dlt_bench.py [--dlt-dossiers 20000] [--page-size 5000] [--workers 2]

dlt is run with its defaults (it normalises the nested lists of each dossier, QuaTrinhXuLy,
DanhSachLePhi…, into child tables, as it would for a user); ingest runs as in
`ingest_bench.py` (typed validation, upsert newer-wins, status history, outbox events). Both
read the same pre-serialised pages from one simulator process. `--dlt-dossiers` keeps dlt's
part short (at ~1,000 records/s, a million dossiers would take a quarter of an hour).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import asyncpg  # noqa: E402
from ingest_bench import measure, start_simulator  # noqa: E402

from shared.devstack import Postgres  # noqa: E402
from shared.settings import to_plain_url  # noqa: E402


def run_dlt(sim_url: str, db_url: str, page_size: int, workdir: str) -> float:
    """Seconds dlt takes to pull every dossier into `db_url` (merge on MaHoSo)."""
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")
    import dlt
    from dlt.sources.rest_api import rest_api_source

    source = rest_api_source(
        {
            "client": {
                "base_url": sim_url,
                "headers": {"X-API-Key": "demo-key"},
                "paginator": {"type": "cursor", "cursor_path": "next_cursor",
                              "cursor_param": "cursor"},
            },
            "resource_defaults": {"primary_key": "MaHoSo", "write_disposition": "merge"},
            "resources": [
                {"name": "dossiers",
                 "endpoint": {"path": "/api/v1/dossiers", "params": {"limit": page_size},
                              "data_selector": "items"}},
            ],
        }
    )  # fmt: skip
    url = urlsplit(to_plain_url(db_url))
    if url.password is None:  # dlt insists on one; a trust-authenticated server ignores it
        url = url._replace(netloc=f"{url.username or 'postgres'}:unused@{url.hostname}:{url.port}")
    pipeline = dlt.pipeline(
        pipeline_name=f"cchc_dlt_{uuid.uuid4().hex[:6]}",
        destination=dlt.destinations.postgres(credentials=urlunsplit(url)),
        dataset_name="dlt_bench",
        pipelines_dir=workdir,
    )
    started = time.perf_counter()
    pipeline.run(source)
    return time.perf_counter() - started


async def main(n: int, page_size: int, workers: int) -> None:
    pg = Postgres.start()
    sim = None
    workdir = tempfile.mkdtemp(prefix="cchc-dlt-")
    name = f"cchc_dlt_{uuid.uuid4().hex[:8]}"
    try:
        sim, sim_url = start_simulator(n, page_size)
        db_url = await pg.create_database(name)
        elapsed = await asyncio.to_thread(run_dlt, sim_url, db_url, page_size, workdir)
        conn = await asyncpg.connect(to_plain_url(db_url))
        try:
            rows = await conn.fetchval("SELECT count(*) FROM dlt_bench.dossiers")
            distinct = await conn.fetchval(
                'SELECT count(DISTINCT "ma_ho_so") FROM dlt_bench.dossiers'
            )
        finally:
            await conn.close()
        dlt_rate = rows / elapsed
        print(f"dlt (rest_api cursor → postgres, merge on MaHoSo): {rows:,} rows "
              f"({distinct:,} distinct) in {elapsed:.1f}s = {dlt_rate:,.0f} records/s")  # fmt: skip
        ingest_rate = await measure(pg, sim_url, "national-json", page_size, workers, False)
        print(f"ingest vs dlt     : ingest {ingest_rate:,.0f} records/s, dlt {dlt_rate:,.0f} "
              f"records/s -> ingest is {ingest_rate / dlt_rate:,.1f}x dlt")  # fmt: skip
    finally:
        if sim is not None:
            sim.terminate()
            sim.wait(30)
        await pg.drop_database(name)
        pg.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--dlt-dossiers", type=int, default=20_000)
    p.add_argument("--page-size", type=int, default=5000)
    p.add_argument("--workers", type=int, default=2)
    args, _ = p.parse_known_args()  # `make bench` passes every bench the same arguments
    asyncio.run(main(args.dlt_dossiers, args.page_size, args.workers))
