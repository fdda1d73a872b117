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
class Successor:
    """An outgoing lineage edge: `id` took over (a `weight` share of) the unit on `effective_on`
    (a merger: 'merged_into'; one of several successors: 'split_into')."""

    id: str
    kind: str
    effective_on: date | None
    weight: float = 1.0

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Successor:
        return cls(
            id=str(d.get("id") or d.get("to_id")),
            kind=str(d.get("kind", "merged_into")),
            effective_on=_parse_date(d.get("effective_on")),
            weight=float(d.get("weight", 1.0)),
        )


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
    successors: tuple[Successor, ...] = ()

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
            successors=tuple(
                s if isinstance(s, Successor) else Successor.from_dict(s)
                for s in d.get("successors") or ()
            ),
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
        *,
        home_province: str | None = None,
    ) -> None:
        rows: Iterable[Mapping[str, Any] | Unit] = (
            units["units"] if isinstance(units, Mapping) else units  # whole units.json, or rows
        )
        if lineage is None and isinstance(units, Mapping):
            lineage = units.get("lineage") or []
        lineage = list(lineage or [])
        # the province this deployment serves (units.json's demo_province_id): collective
        # addressees ("các sở, ban, ngành") expand within it when no province is given
        self.home_province: str | None = home_province or (
            units.get("demo_province_id") if isinstance(units, Mapping) else None
        )
        self._home: frozenset[str] | None = None
        raw_edges = [e for e in lineage if not isinstance(e, LineageEdge)]
        if raw_edges:
            rows = _with_successors(rows, raw_edges)
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
        data = json.loads(Path(path).read_bytes())
        if isinstance(data, dict):
            return cls(
                data["units"],
                data.get("lineage") or [],
                home_province=data.get("demo_province_id"),
            )
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

    def successors_on(self, unit_id: str, on: date) -> list[tuple[Unit, float]]:
        """The units valid on `on` that took over `unit_id` (itself if still valid), following
        lineage edges in force by then, transitively, each with its share (weights multiplied;
        a weight-0 edge, a successor of functions only, is kept with share 0)."""
        out: dict[str, tuple[Unit, float]] = {}
        stack: list[tuple[str, float, frozenset[str]]] = [(unit_id, 1.0, frozenset())]
        while stack:
            uid, share, seen = stack.pop()
            unit = self.units.get(uid)
            if unit is None or uid in seen:
                continue
            if unit.valid_on(on):
                prev = out.get(uid)
                out[uid] = (unit, share + (prev[1] if prev else 0.0))
                continue
            for s in unit.successors:
                if s.effective_on is None or s.effective_on <= on:
                    stack.append((s.id, share * s.weight, seen | {uid}))
        return sorted(out.values(), key=lambda p: (-p[1], p[0].id))

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
        home = self._home_units() if province_id is None else None
        return [
            u.id
            for u in self.units.values()
            if u.level in levels
            and when.admits(u)
            and (parent_id is None or u.parent_id == parent_id)
            and (province_id is None or self.province_of(u.id) == province_id)
            and (province_id is not None or home is None or u.id in home)
        ]

    def _home_units(self) -> frozenset[str] | None:
        """Ids of the units under the home province or under a province merged into it."""
        if self.home_province is None or self.home_province not in self.units:
            return None
        if self._home is None:
            roots = {self.home_province}
            grew = True
            while grew:  # provinces whose successors are home roots (HYC, TBC → P21)
                grew = False
                for u in self.units.values():
                    if (
                        u.parent_id is None
                        and u.id not in roots
                        and any(s.id in roots for s in u.successors)
                    ):
                        roots.add(u.id)
                        grew = True
            root_of: dict[str, str] = {}

            def root(uid: str) -> str:
                chain = []
                while uid not in root_of:
                    unit = self.units.get(uid)
                    if unit is None or unit.parent_id is None or uid in chain:
                        break
                    chain.append(uid)
                    uid = unit.parent_id
                top = root_of.get(uid, uid)
                for c in chain:
                    root_of[c] = top
                return top

            self._home = frozenset(uid for uid in self.units if root(uid) in roots)
        return self._home

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


def _with_successors(
    rows: Iterable[Mapping[str, Any] | Unit], lineage: Iterable[Mapping[str, Any]]
) -> list[Mapping[str, Any] | Unit]:
    """Rows of units.json with each unit's outgoing lineage edges as `successors`."""
    out_edges: dict[str, list[Mapping[str, Any]]] = {}
    for e in lineage:
        out_edges.setdefault(str(e["from_id"]), []).append(e)
    return [
        r
        if isinstance(r, Unit) or "successors" in r
        else {**r, "successors": out_edges.get(str(r["id"]), [])}
        for r in rows
    ]


def home_province_id(path: str | Path = DEFAULT_UNITS_PATH) -> str | None:
    """units.json's `demo_province_id`, read from the file's head (it precedes the units)."""
    with Path(path).open("rb") as f:
        for line in f:
            if line.startswith(b'"demo_province_id":'):
                value = json.loads(line.split(b":", 1)[1].rstrip(b",\r\n"))
                return str(value) if value else None
            if line.startswith(b'"units"'):
                break
    return None
