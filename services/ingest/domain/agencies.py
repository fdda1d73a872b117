"""Agency code (at a source) → our unit id, seeded from the unit registry's external codes."""

from __future__ import annotations

import json
from pathlib import Path

UNITS_PATH = Path(__file__).resolve().parents[3] / "shared" / "reference" / "units.json"


def mapping_from_registry(source_key: str, path: Path = UNITS_PATH) -> dict[str, str]:
    """Every unit (current or dissolved, so old dossiers still map) with a code at `source_key`."""
    data = json.loads(path.read_text(encoding="utf-8"))
    out: dict[str, str] = {}
    for unit in data["units"]:
        code = (unit.get("external_codes") or {}).get(source_key)
        if code:
            out[code] = unit["id"]
    return out
