"""The gazetteer: standard names of state bodies and their abbreviations (gazetteer.json),
consulted when a name is not in the unit registry ("Bộ NN&MT", "Sở TT&TT", "VP UBND tỉnh").
A gazetteer hit is recognised as an agency (kept as written, with its standard name) but
is not a registry unit: the draft shows it unresolved."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

from services.tasks.domain.units import name_key

GAZ_PREFIX = "~"
_PATH = Path(__file__).with_name("gazetteer.json")


@cache
def _written() -> tuple[tuple[str, str], ...]:
    """Every (name as written, standard name): the standard names and their aliases."""
    data = json.loads(_PATH.read_text(encoding="utf-8"))
    return tuple(
        (name, entry["name"])
        for entry in data["names"]
        for name in (entry["name"], *entry.get("aliases", ()))
    )


@cache
def gazetteer() -> dict[tuple[str, ...], str]:
    """Name key (standard name or abbreviation) → standard name."""
    out: dict[tuple[str, ...], str] = {}
    for name, standard in _written():
        out.setdefault(name_key(name), standard)
    return out


@cache
def hyphen_joints() -> frozenset[tuple[str, str]]:
    """The folded words either side of a spaced hyphen inside a standard name or alias
    ("Công nghiệp - Viễn thông Quân đội": ("nghiep", "vien")), where a wrapped line that
    breaks the name before its hyphen must not be read as a bullet."""
    return frozenset(
        (name_key(left)[-1], name_key(right)[0])
        for name, _ in _written()
        for left, right in re.findall(r"(\w+)\s+[-–]\s+(\w+)", name)
    )
