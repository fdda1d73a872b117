"""Agency code (at a source) → our unit id, seeded from the unit registry's external codes."""

from __future__ import annotations

import functools
import json
from pathlib import Path

UNITS_PATH = Path(__file__).resolve().parents[3] / "shared" / "reference" / "units.json"


def mapping_from_registry(source_key: str, path: Path = UNITS_PATH) -> dict[str, str]:
    """Every unit (current or dissolved, so old dossiers still map: the departments merged in
    March 2025, the districts and wards abolished on 1 July 2025) with a code at `source_key`."""
    return dict(_mapping(source_key, path, path.stat().st_mtime_ns))


@functools.lru_cache(maxsize=8)
def _mapping(source_key: str, path: Path, _mtime: int) -> tuple[tuple[str, str], ...]:
    # the registry is ~5 MB (15,000 units): parsed once per file version, not per request
    data = json.loads(path.read_bytes())
    out: dict[str, str] = {}
    for unit in data["units"]:
        code = (unit.get("external_codes") or {}).get(source_key)
        if code:
            out[code] = unit["id"]
    return tuple(out.items())
