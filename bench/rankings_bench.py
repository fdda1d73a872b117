"""Rankings read: `GET /api/v1/rankings` for every commune of the country against the raw SQL
that reads the same ranking rows.

    python bench/rankings_bench.py [--communes 3321] [--requests 60] [--warmup 5]

Creates its own database (DATABASE_URL's server or an embedded PostgreSQL), migrates scoring,
seeds the real unit registry (shared/reference/units.json: 34 provinces and the 3,321 real
communes in force since 1 July 2025, plus the abolished units, which get no snapshot); synthetic
communes are added only if --communes asks for more than the registry has. Every commune gets a 2026Q2 and a 2026Q3 snapshot scored by the real engine from
random but plausible counters and written by the real writer (`score_and_write`), a second
2026Q3 version for one commune in ten, and both quarters are ranked (`rank_period`), so
`previous_rank` is filled. Then times, in the same run, with an admin token, the real app
in-process (workers and consumers off) through `httpx.ASGITransport`:

(a) `GET /api/v1/rankings?period=2026Q3&level=commune`, median and p95;
(b) the same with `&indicator=prog_on_time` and with `&group=progress`;
(c) baseline — the raw SQL reading the same ranking rows (units JOIN rankings JOIN the latest
    snapshot's total) with asyncpg directly, median; and the ratios (a)/(c), (b)/(c).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg
import httpx
from sqlalchemy import text

from services.scoring.domain.facts import COUNTERS
from services.scoring.domain.periods import Period
from services.scoring.main import create_app
from services.scoring.recompute import default_profile
from services.scoring.store.registry import UnitIn, import_units, seed_units
from services.scoring.store.snapshots import rank_period, score_and_write
from shared.auth.tokens import issue_token
from shared.db import make_engine, make_sessionmaker, transaction
from shared.devstack import Postgres
from shared.migrate import upgrade
from shared.settings import Settings, to_async_url, to_plain_url

PERIOD = Period.parse("2026Q3")
PREVIOUS = Period.parse("2026Q2")
JWT_SECRET = "rankings-bench-secret-" + uuid.uuid4().hex

BASELINE = """
WITH latest AS (
    SELECT DISTINCT ON (unit_id) unit_id, total
    FROM scoring.snapshots WHERE period = $1 AND profile = $2
    ORDER BY unit_id, version DESC
)
SELECT u.id, u.name, u.level, u.kind, k.peer_group, k.rank, k.previous_rank, l.total
FROM latest l
JOIN scoring.units u ON u.id = l.unit_id
JOIN scoring.rankings k ON k.unit_id = l.unit_id AND k.period = $1 AND k.profile = $2
WHERE u.level = 'commune'
ORDER BY k.peer_group, k.rank NULLS LAST, u.id
"""


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def plausible_counters(rng: random.Random) -> dict[str, float]:
    """A commune's quarter: a few dozen to a few thousand dossiers, shares that vary by unit."""

    def part(n: float, lo: float, hi: float) -> int:
        return round(n * rng.uniform(lo, hi))

    received = rng.randint(30, 3000)
    finished = part(received, 0.80, 1.0)
    on_time = part(finished, 0.70, 1.0)
    open_at_end = part(received, 0.0, 0.15)
    overdue = part(open_at_end, 0.0, 0.3)
    needs_result = part(finished, 0.70, 0.95)
    digitised = part(received, 0.40, 0.95)
    fee = part(received, 0.10, 0.40)
    proc_total = rng.randint(120, 400)
    proc_online = part(proc_total, 0.50, 0.95)
    proc_fee = part(proc_total, 0.15, 0.40)
    published = rng.randint(0, 20)
    public_due = rng.randint(0, 20)
    public = rng.randint(0, 20)
    handled = rng.randint(0, 60)
    rated = part(handled, 0.0, 0.8)
    c: dict[str, float] = {
        "received": received,
        "received_online": part(received, 0.30, 0.95),
        "synced": part(received, 0.80, 1.0),
        "fee_dossiers": fee,
        "paid_online": part(fee, 0.20, 0.90),
        "digitised": digitised,
        "digitised_e_result": part(digitised, 0.30, 0.90),
        "reused": part(received, 0.0, 0.40),
        "vneid": part(received, 0.10, 0.70),
        "finished": finished,
        "finished_on_time": on_time,
        "finished_late": finished - on_time,
        "needs_result": needs_result,
        "e_result": part(needs_result, 0.30, 0.95),
        "open_at_end": open_at_end,
        "open_within_time": open_at_end - overdue,
        "open_overdue": overdue,
        "proc_published": published,
        "proc_published_on_time": part(published, 0.6, 1.0),
        "proc_public_due": public_due,
        "proc_public_on_time": part(public_due, 0.6, 1.0),
        "proc_public": public,
        "proc_public_complete": part(public, 0.7, 1.0),
        "proc_total": proc_total,
        "proc_online": proc_online,
        "proc_fee": proc_fee,
        "proc_online_with_dossiers": part(proc_online, 0.2, 0.9),
        "proc_fee_with_dossiers": part(proc_fee, 0.3, 1.0),
        "proc_fee_paid_online": part(proc_fee, 0.1, 0.8),
        "pakn_handled": handled,
        "pakn_handled_on_time": part(handled, 0.7, 1.0),
        "pakn_rated": rated,
        "pakn_satisfied": part(rated, 0.5, 1.0),
    }
    if rng.random() < 0.5:  # manual counters entered by half of the communes
        base = part(received, 0.1, 0.5)
        c.update(pds_base=base, pds_used=part(base, 0.0, 0.6))
        req = rng.randint(0, 300)
        c.update(e_cert_requests=req, e_cert_issued=part(req, 0.2, 1.0))
        cdb = part(received, 0.2, 0.8)
        c.update(citizen_data_base=cdb, citizen_data_used=part(cdb, 0.3, 1.0))
    for name, d in COUNTERS.items():
        if d.kind == "derived":
            c[name] = sum(c.get(t, 0.0) for t in d.terms)
    return c


async def seed(url: str, communes: int, rng: random.Random) -> tuple[int, int]:
    engine = make_engine(to_async_url(url), schema="scoring", pool_size=2)
    sessions = make_sessionmaker(engine)
    profile = default_profile()
    try:
        async with transaction(sessions) as s:
            await seed_units(s)
            provinces = list((await s.execute(text("""
                SELECT id FROM scoring.units WHERE level = 'province' AND parent_id IS NULL
                  AND valid_to IS NULL ORDER BY id"""))).scalars())  # fmt: skip
            seeded = list((await s.execute(text(
                "SELECT id FROM scoring.units WHERE level = 'commune' AND valid_to IS NULL"
            ))).scalars())  # fmt: skip
            extra = [
                UnitIn(
                    id=f"{provinces[i % len(provinces)]}.B{i:04d}",
                    name=f"{'Phường' if i % 5 == 0 else 'Xã'} Bench {i}",
                    level="commune",
                    kind="phường" if i % 5 == 0 else "xã",
                    parent_id=provinces[i % len(provinces)],
                    valid_from=date(2025, 7, 1),
                )
                for i in range(max(0, communes - len(seeded)))
            ]
            await import_units(s, extra)
        units = sorted(seeded + [u.id for u in extra])
        for period in (PREVIOUS, PERIOD):
            counters = {period.id: {u: plausible_counters(rng) for u in units}}
            async with transaction(sessions) as s:
                await score_and_write(s, profile, counters)
        again = {PERIOD.id: {u: plausible_counters(rng) for u in units[::10]}}
        async with transaction(sessions) as s:
            await score_and_write(s, profile, again)
            await rank_period(s, PREVIOUS, profile.key)
            await rank_period(s, PERIOD, profile.key)
        async with engine.connect() as c:
            await c.execution_options(isolation_level="AUTOCOMMIT")
            await c.execute(text("VACUUM ANALYZE"))
            versions = (await c.execute(text("SELECT count(*) FROM scoring.snapshots"))).scalar()
    finally:
        await engine.dispose()
    return len(units), int(versions or 0)


async def timed(n: int, warmup: int, call: Callable[[], Awaitable[object]]) -> list[float]:
    for _ in range(warmup):
        await call()
    out = []
    for _ in range(n):
        t = time.perf_counter()
        await call()
        out.append((time.perf_counter() - t) * 1000)
    return out


async def main(args: argparse.Namespace) -> None:
    pg = Postgres.start()
    name = f"cchc_bench_rankings_{uuid.uuid4().hex[:8]}"
    try:
        url = await pg.create_database(name)
        await asyncio.to_thread(upgrade, "scoring", url)
        t = time.perf_counter()
        n_units, versions = await seed(url, args.communes, random.Random(766))
        print(f"seeded {n_units:,} communes under 34 provinces, {versions:,} snapshot versions "
              f"(2026Q2, 2026Q3), ranked, in {time.perf_counter() - t:.1f} s")  # fmt: skip

        # (c) baseline: the same ranking rows, raw SQL through asyncpg
        conn = await asyncpg.connect(to_plain_url(url))
        profile = default_profile().key
        rows: list[asyncpg.Record] = []

        async def raw() -> None:
            nonlocal rows
            rows = await conn.fetch(BASELINE, PERIOD.id, profile)

        base = await timed(args.requests, args.warmup, raw)
        await conn.close()
        base_ms = statistics.median(base)
        print(f"(c) baseline raw SQL (asyncpg): median {base_ms:.1f} ms, p95 "
              f"{pct(base, 0.95):.1f} ms, {len(rows):,} rows")  # fmt: skip

        settings = Settings(
            service_name="scoring", database_url=to_async_url(url), workers_enabled=False,
            jwt_secret=JWT_SECRET, log_level="WARNING",
        )  # fmt: skip
        app = create_app(settings)
        headers = {"Authorization": f"Bearer {issue_token(settings, 'admin')}"}
        cases = [
            ("(a) total", {}),
            ("(b) indicator=prog_on_time", {"indicator": "prog_on_time"}),
            ("(b) group=progress", {"group": "progress"}),
        ]
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                for label, extra in cases:
                    params = {"period": PERIOD.id, "level": "commune", **extra}
                    last: list[httpx.Response] = []

                    async def get(
                        params: dict[str, str] = params, last: list[httpx.Response] = last
                    ) -> None:
                        r = await client.get("/api/v1/rankings", params=params, headers=headers)
                        r.raise_for_status()
                        last[:] = [r]

                    ms = await timed(args.requests, args.warmup, get)
                    size, count = len(last[0].content), len(last[0].json())
                    med = statistics.median(ms)
                    print(f"{label}: median {med:.1f} ms, p95 {pct(ms, 0.95):.1f} ms over "
                          f"{len(ms)} requests; {count:,} rows, {size / 1024:,.0f} KiB; "
                          f"ratio to (c) {med / base_ms:.1f}x")  # fmt: skip
    finally:
        await pg.drop_database(name)
        pg.stop()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--communes", type=int, default=3321)
    ap.add_argument("--requests", type=int, default=60)
    ap.add_argument("--warmup", type=int, default=5)
    asyncio.run(main(ap.parse_args()))
