"""Locate the shared sample documents (the `shared` folder beside the checkout)."""

from __future__ import annotations

import os
from pathlib import Path

from services.tasks.domain.units import UnitDirectory


def samples_dir() -> Path:
    env = os.environ.get("CCHC_SAMPLES_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "shared" / "samples"


def sample(name_part: str) -> str:
    matches = sorted(p for p in samples_dir().glob("*.txt") if name_part in p.name)
    assert len(matches) == 1, f"expected one sample matching {name_part!r}, got {matches}"
    return matches[0].read_text(encoding="utf-8")


_UNITS: UnitDirectory | None = None


def units() -> UnitDirectory:
    global _UNITS
    if _UNITS is None:
        _UNITS = UnitDirectory.load()
    return _UNITS
