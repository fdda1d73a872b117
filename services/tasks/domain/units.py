"""Effective-dated unit directory used to resolve agency names found in documents.

Matching is accent-insensitive and case-insensitive: names are folded with
:func:`fold` (NFD, combining marks dropped, ``đ`` → ``d``, lower case) and reduced to
alphanumeric word tokens, so "Văn hoá - Thể thao" and "Văn hóa, Thể thao" agree,
as do "Ủy"/"Uỷ" and NFC/NFD spellings. "Ủy ban nhân dân" is treated as "UBND".
A unit only matches on a date inside its validity interval (or, when only a year is
known, when its interval overlaps that year).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

DEFAULT_UNITS_PATH = Path(__file__).resolve().parents[3] / "shared" / "reference" / "units.json"

# Group codes for collective addressees ("các sở, ban, ngành" …) and the unit levels
# (plus an optional kind filter) they expand to.
GROUP_LEVELS: dict[str, tuple[str, ...]] = {
    "departments": ("department",),
    "districts": ("district",),
    "communes": ("commune",),
    "public_service_units": (),  # not modelled in the registry: expands to nothing
    "related_units": (),  # decided case by case by the official
    "all_units": ("department", "district", "commune"),
    "ministries": ("ministry",),  # central bodies: not in the provincial registry today
    "provinces": ("province",),
}


def fold_char(ch: str) -> str:
    """Fold one character: strip diacritics, đ→d, lower case. May return ''."""
    if ch in "đĐ":
        return "d"
    decomposed = unicodedata.normalize("NFD", ch)
    base = "".join(c for c in decomposed if not unicodedata.combining(c))
    return base.lower()


def fold(text: str) -> str:
    return "".join(fold_char(c) for c in text)


_WORD = re.compile(r"[a-z0-9]+")


def name_key(name: str) -> tuple[str, ...]:
    """Word-token key of a name: folded, punctuation dropped, 'uy ban nhan dan' → 'ubnd'."""
    words = _WORD.findall(fold(name))
    out: list[str] = []
    i = 0
    while i < len(words):
        if words[i : i + 4] == ["uy", "ban", "nhan", "dan"]:
            out.append("ubnd")
            i += 4
        else:
            out.append(words[i])
            i += 1
    return tuple(out)


def _parse_date(value: Any) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


@dataclass(frozen=True)
class Unit:
    id: str
    name: str
    level: str
    kind: str
    parent_id: str | None
    valid_from: date | None
    valid_to: date | None
    aliases: tuple[str, ...] = ()
    external_codes: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Unit:
        return cls(
            id=str(d["id"]),
            name=str(d["name"]),
            level=str(d.get("level", "")),
            kind=str(d.get("kind", "")),
            parent_id=d.get("parent_id"),
            valid_from=_parse_date(d.get("valid_from")),
            valid_to=_parse_date(d.get("valid_to")),
            aliases=tuple(d.get("aliases") or ()),
            external_codes=dict(d.get("external_codes") or {}),
        )

    def valid_on(self, on: date) -> bool:
        if self.valid_from and on < self.valid_from:
            return False
        return not (self.valid_to and on > self.valid_to)

    def valid_in_year(self, year: int) -> bool:
        start, end = date(year, 1, 1), date(year, 12, 31)
        if self.valid_from and end < self.valid_from:
            return False
        return not (self.valid_to and start > self.valid_to)


@dataclass(frozen=True)
class When:
    """The reference time of a document: a full date, a year only, or unknown."""

    on: date | None = None
    year: int | None = None

    def admits(self, unit: Unit) -> bool:
        if self.on is not None:
            return unit.valid_on(self.on)
        if self.year is not None:
            return unit.valid_in_year(self.year)
        return True


@dataclass(frozen=True)
class LineageEdge:
    """``from_id`` stopped existing on ``effective_on`` and its duties went to ``to_id``
    (``merged_into``: one successor; ``split_into``: one edge per successor)."""

    from_id: str
    to_id: str
    kind: str
    effective_on: date | None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LineageEdge:
        return cls(
            str(d["from_id"]),
            str(d["to_id"]),
            str(d.get("kind", "")),
            _parse_date(d.get("effective_on")),
        )


@dataclass(frozen=True)
class Target:
    """Where a unit named in a document lands on a given date.

    ``unit_ids`` is empty when the unit no longer exists and has no successor valid on that
    date; ``via`` says how: ``"direct"`` (still valid) or ``"successor"`` (mapped through the
    lineage, the original addressee kept in ``original_id``)."""

    original_id: str
    unit_ids: tuple[str, ...]
    via: str


class UnitDirectory:
    """Resolves names to unit ids; built from dicts shaped like shared/reference/units.json
    (``{"units": [...], "lineage": [...]}`` or a bare list of units plus ``lineage=``)."""

    def __init__(
        self,
        units: Iterable[Mapping[str, Any] | Unit] | Mapping[str, Any],
        lineage: Iterable[Mapping[str, Any] | LineageEdge] | None = None,
    ) -> None:
        rows: Iterable[Mapping[str, Any] | Unit] = (
            units["units"] if isinstance(units, Mapping) else units  # whole units.json, or rows
        )
        if lineage is None and isinstance(units, Mapping):
            lineage = units.get("lineage") or []
        self.lineage: dict[str, list[LineageEdge]] = {}
        for raw_edge in lineage or []:
            edge = (
                raw_edge if isinstance(raw_edge, LineageEdge) else LineageEdge.from_dict(raw_edge)
            )
            self.lineage.setdefault(edge.from_id, []).append(edge)
        self.units: dict[str, Unit] = {}
        self._by_key: dict[tuple[str, ...], list[Unit]] = {}
        for raw in rows:
            unit = raw if isinstance(raw, Unit) else Unit.from_dict(raw)
            self.units[unit.id] = unit
            for name in (unit.name, *unit.aliases):
                for key in self._variants(name_key(name)):
                    bucket = self._by_key.setdefault(key, [])
                    if unit not in bucket:
                        bucket.append(unit)
        self.max_key_len = max((len(k) for k in self._by_key), default=0)

    @staticmethod
    def _variants(key: tuple[str, ...]) -> list[tuple[str, ...]]:
        out = [key]
        # "UBND Huyện Văn Giang" is also written "huyện Văn Giang"
        if len(key) > 1 and key[0] == "ubnd":
            out.append(key[1:])
        return out

    @classmethod
    def load(cls, path: str | Path = DEFAULT_UNITS_PATH) -> UnitDirectory:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if isinstance(data, dict):
            return cls(data["units"], data.get("lineage") or [])
        return cls(data)

    def get(self, unit_id: str) -> Unit | None:
        return self.units.get(unit_id)

    def lookup_key(self, key: tuple[str, ...], when: When | None = None) -> Unit | None:
        candidates = self._by_key.get(key, [])
        when = when or When()
        valid = [u for u in candidates if when.admits(u)]
        if not valid:
            return None
        if len(valid) > 1 and when.on is None and when.year is None:
            today = date.today()
            current = [u for u in valid if u.valid_on(today)]
            valid = current or valid
        return valid[0]

    def resolve(
        self,
        name: str,
        *,
        on: date | None = None,
        year: int | None = None,
        prefixes: Iterable[str] = ("", "Sở "),
    ) -> Unit | None:
        """Resolve a name on a date or year; by default a bare department name ("Nội vụ",
        "Thông tin và Truyền thông", as in enumerations) is also tried with "Sở "."""
        when = When(on=on, year=year if on is None else None)
        base = name_key(name)
        for prefix in prefixes:
            unit = self.lookup_key(name_key(prefix) + base, when)
            if unit is not None:
                return unit
        return None

    match = resolve  # alias

    def expand_group(
        self,
        group: str,
        *,
        on: date | None = None,
        parent_id: str | None = None,
        province_id: str | None = None,
    ) -> list[str]:
        """Unit ids a group code stands for: valid on `on`, optionally directly under one
        parent, or anywhere inside one province (``province_id``: its subtree)."""
        levels = GROUP_LEVELS.get(group, ())
        when = When(on=on)
        return [
            u.id
            for u in self.units.values()
            if u.level in levels
            and when.admits(u)
            and (parent_id is None or u.parent_id == parent_id)
            and (province_id is None or self.province_of(u.id) == province_id)
        ]

    # -- restructuring: where a unit's duties are on a given date

    def ancestors(self, unit_id: str) -> list[str]:
        """The unit and its parents up to the root (cycle-safe)."""
        out: list[str] = []
        cur: str | None = unit_id
        while cur is not None and cur not in out:
            out.append(cur)
            unit = self.units.get(cur)
            cur = unit.parent_id if unit is not None else None
        return out

    def province_of(self, unit_id: str) -> str | None:
        for uid in self.ancestors(unit_id):
            unit = self.units.get(uid)
            if unit is not None and unit.level == "province":
                return uid
        return None

    def successors(self, unit_id: str, on: date) -> list[str]:
        """Units valid on `on` that took over `unit_id`'s duties, following the lineage
        through several restructurings (A → B → C); [] when the chain ends nowhere."""
        out: list[str] = []
        seen: set[str] = set()
        frontier = [unit_id]
        while frontier:
            cur = frontier.pop(0)
            if cur in seen:
                continue
            seen.add(cur)
            unit = self.units.get(cur)
            if cur != unit_id and unit is not None and unit.valid_on(on):
                if cur not in out:
                    out.append(cur)
                continue
            for edge in self.lineage.get(cur, []):
                if edge.effective_on is None or edge.effective_on <= on:
                    frontier.append(edge.to_id)
        return out

    def target(self, unit_id: str, on: date) -> Target:
        """Where a task for `unit_id` goes when confirmed on `on`."""
        unit = self.units.get(unit_id)
        if unit is not None and unit.valid_on(on):
            return Target(unit_id, (unit_id,), "direct")
        return Target(unit_id, tuple(self.successors(unit_id, on)), "successor")

    def provinces_named(self, name: str, when: When | None = None) -> list[Unit]:
        """Provinces whose name (without "tỉnh"/"thành phố" and a "(trước …)" note) is
        `name`, valid at `when`."""
        want = _province_key(name)
        when = when or When()
        return [
            u
            for u in self.units.values()
            if u.level == "province" and _province_key(u.name) == want and when.admits(u)
        ]


def _province_key(name: str) -> tuple[str, ...]:
    key = name_key(re.sub(r"\(.*?\)", " ", name))
    for head in (("thanh", "pho"), ("tinh",), ("tp",), ("ubnd", "tinh"), ("ubnd", "thanh", "pho")):
        if key[: len(head)] == head and len(key) > len(head):
            key = key[len(head) :]
            break
    return key


def load_units(path: str | Path = DEFAULT_UNITS_PATH) -> UnitDirectory:
    """The directory of the shipped registry (or of another file in the same format)."""
    return UnitDirectory.load(path)
