"""The simulated one-stop system's history uses the real geography (issue 12): a dossier dated
before 1 July 2025 names an old ward or district of Hưng Yên or Thái Bình by its old code, one
dated before 1 March 2025 a department merged then, and ingest's registry mapping turns each
old code into the old unit (whose lineage leads to today's)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime

from services.ingest.domain.agencies import UNITS_PATH, mapping_from_registry
from services.ingest.simulator.data import VN, Dataset

JULY_2025 = datetime(2025, 7, 1, tzinfo=VN).timestamp()


def test_dossiers_before_the_reorganisation_carry_old_codes_that_map_to_old_units() -> None:
    data = Dataset(dossiers=2000, clock=datetime(2025, 9, 1, 8, tzinfo=VN))
    mapping = mapping_from_registry("demo-igate")
    registry = json.loads(UNITS_PATH.read_bytes())
    units = {u["id"]: u for u in registry["units"]}
    successors: dict[str, set[str]] = {}
    for e in registry["lineage"]:
        successors.setdefault(e["from_id"], set()).add(e["to_id"])
    levels: Counter[str] = Counter()
    for d in data.dossiers:
        agency = data.agencies[d.agency]
        unit = units[mapping[agency.code]]
        assert unit["name"] == agency.name
        if unit["level"] not in ("commune", "district"):
            continue
        if d.submitted < JULY_2025:
            # an old ward or district, abolished on 30 June 2025, with successors in P21
            assert unit["valid_to"] == "2025-06-30", unit
            assert {units[s]["parent_id"] for s in successors[unit["id"]]} == {"P21"}
            levels[unit["level"]] += 1
        else:
            assert unit["valid_to"] is None and unit["parent_id"] == "P21"
    assert levels["commune"] > 100 and levels["district"] > 20
    # today's clock: only the 104 real communes of Hưng Yên, by their real names
    today = Dataset(dossiers=500)
    communes = {a.name for a in today.agencies[: today.current_agencies] if a.level == "commune"}
    assert len(communes) == 104 and "Phường Phố Hiến" in communes
