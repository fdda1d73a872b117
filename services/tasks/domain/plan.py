"""The confirmation plan: exactly which units every draft item becomes items for.

Pure (no I/O, no clock). The draft shows this plan before anything is confirmed, and
confirming creates exactly it — nothing the draft did not show:

* a unit named in the document that still exists on the confirmation date (``as_of``) is
  used as is; one that no longer exists goes to its successor(s) through the lineage, the
  original addressee kept beside the mapping; no successor → a warning, the name is kept;
* a group ("các sở, ban, ngành", "UBND các xã, phường") expands only to units valid on
  ``as_of`` inside the issuing body's province (itself mapped to its successor province);
  with no province known, or a group the registry does not model ("các bộ, ngành"), it
  expands to nothing and says so;
* a name that matched nothing stays as written, unresolved, with a warning;
* an item left without any lead unit is listed as creating nothing;
* a recurring duty gets bounds: from the conclusion's date (no periods before it) to the
  plan's horizon / the year written / an explicit end, else the end of the issue year.

Messages are Vietnamese first, English beside.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from services.tasks.domain import recurrence as rec
from services.tasks.domain.units import UnitDirectory

GROUP_LABELS: dict[str, str] = {
    "departments": "các sở, ban, ngành",
    "districts": "UBND cấp huyện",
    "communes": "UBND cấp xã",
    "public_service_units": "đơn vị sự nghiệp công lập",
    "related_units": "cơ quan, đơn vị liên quan",
    "all_units": "các cơ quan, đơn vị, địa phương",
    "ministries": "các bộ, cơ quan ngang bộ",
    "provinces": "UBND các tỉnh, thành phố",
}


@dataclass(frozen=True)
class Warning_:
    code: str
    message: str
    item_index: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PlannedUnit:
    unit_id: str
    name: str
    role: str  # lead | support
    via: str  # direct | successor | group
    written: str  # the addressee as written in the document
    original_unit_id: str | None = None  # the abolished unit, for via == successor
    group: str | None = None


@dataclass
class ItemPlan:
    index: int
    leads: list[PlannedUnit] = field(default_factory=list)
    supports: list[PlannedUnit] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)
    recurrence: str | None = None

    @property
    def lead_ids(self) -> list[str]:
        return [u.unit_id for u in self.leads]

    @property
    def support_ids(self) -> list[str]:
        lead = set(self.lead_ids)
        return [u.unit_id for u in self.supports if u.unit_id not in lead]

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "leads": [asdict(u) for u in self.leads],
            "supports": [asdict(u) for u in self.supports],
            "unresolved": list(self.unresolved),
            "recurrence": self.recurrence,
            "creates": len(self.leads),
        }


@dataclass
class Plan:
    as_of: date
    province_id: str | None
    items: list[ItemPlan]
    warnings: list[Warning_]

    @property
    def total(self) -> int:
        return sum(len(p.leads) for p in self.items)


def _name(units: UnitDirectory, unit_id: str) -> str:
    u = units.get(unit_id)
    return u.name if u is not None else unit_id


def plan_confirmation(
    items: Sequence[Mapping[str, Any]],
    units: UnitDirectory,
    *,
    as_of: date,
    province_id: str | None,
    issued_on: date | None,
    number: str | None,
    is_directive: bool,
    recurrence_until: date | None = None,
    reference_year: int | None = None,
) -> Plan:
    """Plan the items of a draft (``items``: dicts with ``index``, ``assignees``,
    ``recurrence``) for confirmation on ``as_of``."""
    warnings: list[Warning_] = []
    if not is_directive or not items:
        warnings.append(
            Warning_(
                "no_directive",
                "Không tìm thấy phần giao nhiệm vụ: không thể xác nhận thành kết luận rỗng "
                "(no directive section: cannot be confirmed as an empty conclusion)",
            )
        )
    if not number:
        warnings.append(
            Warning_("no_number", "Văn bản chưa có số (dự thảo?) (document has no number)")
        )
    if issued_on is None:
        warnings.append(
            Warning_("no_date", "Văn bản chưa có ngày ban hành (dự thảo?) (document has no date)")
        )
    # the issuing body's province as it is on the confirmation date
    province_now: str | None = None
    if province_id is not None:
        t = units.target(province_id, as_of)
        province_now = t.unit_ids[0] if len(t.unit_ids) == 1 else None
        if t.via == "successor" and province_now is not None:
            warnings.append(
                Warning_(
                    "province_successor",
                    f"Tỉnh ban hành {_name(units, province_id)} nay là "
                    f"{_name(units, province_now)} (issuing province mapped to its successor)",
                )
            )
    if province_id is None and any(
        a.get("unit_id")
        and units.get(str(a["unit_id"])) is not None
        and units.province_of(str(a["unit_id"])) is not None
        for raw in items
        for a in raw.get("assignees") or []
    ):
        warnings.append(
            Warning_(
                "province_unknown",
                "Văn bản không ghi tỉnh ban hành: tên đơn vị được khớp với danh mục hiện có — "
                "kiểm tra đúng tỉnh trước khi xác nhận, hoặc chỉ rõ province_id "
                "(issuing province unknown: names matched the registry as it is; check them)",
            )
        )
    expansions: dict[str, list[str]] = {}

    def expand(group: str) -> list[str]:
        if group not in expansions:
            if group == "provinces" and province_id is None:
                # a central body's document: every province valid on the confirmation date
                expansions[group] = units.expand_group(group, on=as_of)
            elif province_now is not None and group != "provinces":
                expansions[group] = units.expand_group(group, on=as_of, province_id=province_now)
            else:
                expansions[group] = []
        return expansions[group]

    out: list[ItemPlan] = []
    for raw in items:
        idx = int(raw["index"])
        plan = ItemPlan(idx)
        for a in raw.get("assignees") or []:
            role = str(a.get("role") or "lead")
            written = str(a.get("name") or "")
            target = plan.leads if role == "lead" else plan.supports
            have = {u.unit_id for u in target}
            if a.get("unit_id"):
                t = units.target(str(a["unit_id"]), as_of)
                if not t.unit_ids:
                    warnings.append(
                        Warning_(
                            "no_successor",
                            f"“{written}” không còn tồn tại ngày {as_of:%d/%m/%Y} và không có "
                            "đơn vị kế thừa: không tạo nhiệm vụ cho đơn vị này "
                            "(abolished, no successor)",
                            idx,
                        )
                    )
                    plan.unresolved.append(written)
                    continue
                if t.via == "successor":
                    warnings.append(
                        Warning_(
                            "successor",
                            f"“{written}” → "
                            + ", ".join(_name(units, u) for u in t.unit_ids)
                            + " (abolished unit mapped to its successor)",
                            idx,
                        )
                    )
                for uid in t.unit_ids:
                    if uid not in have:
                        have.add(uid)
                        target.append(
                            PlannedUnit(
                                uid,
                                _name(units, uid),
                                role,
                                t.via,
                                written,
                                original_unit_id=t.original_id if t.via == "successor" else None,
                            )
                        )
            elif a.get("group"):
                group = str(a["group"])
                ids = expand(group)
                label = GROUP_LABELS.get(group, group)
                if ids:
                    warnings.append(
                        Warning_(
                            "group_expanded",
                            f"“{written}” mở rộng thành {len(ids)} đơn vị của "
                            f"{_name(units, province_now or '')} còn hiệu lực ngày "
                            f"{as_of:%d/%m/%Y} (group {label} expanded to {len(ids)} units)",
                            idx,
                        )
                    )
                else:
                    why = (
                        "không xác định được tỉnh ban hành (issuing province unknown)"
                        if province_now is None and group != "provinces"
                        else "không có đơn vị nào trong danh mục còn hiệu lực (no valid unit)"
                    )
                    warnings.append(Warning_("group_empty", f"“{written}” ({label}): {why}", idx))
                    plan.unresolved.append(written)
                for uid in ids:
                    if uid not in have:
                        have.add(uid)
                        target.append(
                            PlannedUnit(uid, _name(units, uid), role, "group", written, group=group)
                        )
            else:
                plan.unresolved.append(written)
                warnings.append(
                    Warning_(
                        "unresolved",
                        f"“{written}” không khớp đơn vị nào trong danh mục, giữ nguyên như văn "
                        "bản (name not in the registry, kept as written)",
                        idx,
                    )
                )
        if not plan.leads:
            warnings.append(
                Warning_(
                    "no_lead",
                    "Nhiệm vụ chưa có đơn vị chủ trì: sẽ không được tạo nếu không chọn đơn vị "
                    "(item without a lead unit: nothing is created for it)",
                    idx,
                )
            )
        code = raw.get("recurrence")
        if code:
            plan.recurrence = bound_recurrence(
                str(code),
                issued_on=issued_on,
                as_of=as_of,
                until=recurrence_until,
                reference_year=reference_year,
            )
        out.append(plan)
    return Plan(as_of, province_now, out, warnings)


def bound_recurrence(
    code: str,
    *,
    issued_on: date | None,
    as_of: date,
    until: date | None,
    reference_year: int | None,
) -> str:
    """Give a recurrence code its bounds: from the conclusion's date (else the confirmation
    date) to `until` (the plan's horizon or an explicit end), else the end of the document's
    year (else the confirmation year)."""
    lo, hi = rec.bounds(code)
    start = lo or issued_on or as_of
    end = hi or until
    if end is None:
        year = issued_on.year if issued_on else (reference_year or as_of.year)
        end = date(year, 12, 31)
    return rec.bounded(code, start, end)
