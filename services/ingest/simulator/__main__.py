"""Run the one-stop simulator: `python -m services.ingest.simulator --port 8009 --seed 42`."""

from __future__ import annotations

import argparse
import logging
import time

import uvicorn

from services.ingest.simulator import build
from services.ingest.simulator.faults import Faults
from shared.logging import configure_logging

log = logging.getLogger("simulator")


def _flag(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m services.ingest.simulator", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8009)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--dossiers", type=int, default=20_000, help="dossiers in the simulated year")
    p.add_argument(
        "--horizon-days",
        type=int,
        default=60,
        help="days after the start clock that dossiers are generated for (advance to see them)",
    )
    p.add_argument("--api-key", default="demo-key")
    p.add_argument("--client-id", default="cchc-monitor")
    p.add_argument("--client-secret", default="demo-secret")
    p.add_argument(
        "--malformed-rate",
        type=float,
        default=0.0,
        help="share of dossiers that are malformed (deterministic from the seed)",
    )
    p.add_argument(
        "--pregenerate",
        type=int,
        default=0,
        metavar="LIMIT",
        help="pre-serialise the full dossier pull in pages of LIMIT at start-up",
    )
    p.add_argument(
        "--pregenerate-dialect",
        action="append",
        default=[],
        choices=["vnpt-igate", "opencps"],
        help="also pre-serialise the full pull in this vendor dialect (pages of --pregenerate)",
    )
    for name, fld in Faults.model_fields.items():
        p.add_argument(
            f"--{name.replace('_', '-')}",
            type=int if fld.annotation is int else _flag if fld.annotation is bool else float,
            default=fld.default,
            help=fld.description,
        )
    args = p.parse_args(argv)
    configure_logging("simulator")  # one JSON object per line, like the services
    faults = Faults(**{n: getattr(args, n) for n in Faults.model_fields})
    t0 = time.perf_counter()
    sim = build(
        seed=args.seed,
        dossiers=args.dossiers,
        malformed_rate=args.malformed_rate,
        horizon_days=args.horizon_days,
        api_key=args.api_key,
        client_id=args.client_id,
        client_secret=args.client_secret,
        faults=faults,
    )
    log.info("generated %d dossiers in %.1fs", args.dossiers, time.perf_counter() - t0)
    if args.pregenerate:
        t0 = time.perf_counter()
        pages = sim.pregenerate("dossiers", args.pregenerate)
        log.info("pre-generated %d pages in %.1fs", pages, time.perf_counter() - t0)
        for dialect in args.pregenerate_dialect:
            t0 = time.perf_counter()
            pages = sim.pregenerate_dialect(dialect, args.pregenerate)
            log.info("pre-generated %d %s pages in %.1fs", pages, dialect, time.perf_counter() - t0)
    from services.ingest.simulator.app import create_app

    uvicorn.run(
        create_app(sim),
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        log_config=None,  # keep our JSON handler on the root logger
        date_header=False,  # the simulator's Date header reads its own clock
    )


if __name__ == "__main__":
    main()
