"""Simulated provincial one-stop system (VNPT iGate-like) serving the national field names.

`build()` gives an in-process `Simulator`; `create_app(sim)` the FastAPI app; run it with
`python -m services.ingest.simulator --port 8009 --seed 42`.
"""

from __future__ import annotations

from datetime import datetime

from services.ingest.simulator.data import DEFAULT_CLOCK, Dataset
from services.ingest.simulator.faults import Faults
from services.ingest.simulator.state import Simulator

__all__ = ["Dataset", "Faults", "Simulator", "build"]


def build(
    seed: int = 42,
    dossiers: int = 20_000,
    *,
    clock: datetime = DEFAULT_CLOCK,
    malformed_rate: float = 0.0,
    horizon_days: int = 60,
    api_key: str = "demo-key",
    client_id: str = "cchc-monitor",
    client_secret: str = "demo-secret",
    faults: Faults | None = None,
) -> Simulator:
    dataset = Dataset(
        seed=seed, dossiers=dossiers, clock=clock, malformed_rate=malformed_rate,
        horizon_days=horizon_days,
    )  # fmt: skip
    return Simulator(
        dataset, api_key=api_key, client_id=client_id, client_secret=client_secret, faults=faults
    )
