"""The leaders' morning digest (bản tin sáng), composed from facts (pure).

Scores come only from `scoring.snapshots` events the tasks service stored (`unit_scores`);
items from the tasks service's own tables. The digest says: the province's total and its
change since yesterday, its rank, the three biggest open issues, the units that fell, and the
overdue items by agency — in Vietnamese first, English beside.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from services.tasks.domain import notifications as dn
from services.tasks.domain.timeliness import VN_TZ


@dataclass(frozen=True)
class Score:
    unit_id: str
    name: str | None
    total: float | None
    previous_total: float | None
    rank: int | None
    previous_rank: int | None

    @property
    def change(self) -> float | None:
        if self.total is None or self.previous_total is None:
            return None
        return round(self.total - self.previous_total, 2)

    @property
    def fell_by(self) -> int:
        """Places lost since yesterday (0 when not fallen or unknown)."""
        if self.rank is None or self.previous_rank is None:
            return 0
        return max(0, self.rank - self.previous_rank)


@dataclass(frozen=True)
class Issue:
    item_id: str
    title: str
    unit_id: str
    unit_name: str | None
    priority: str
    days_overdue: int


@dataclass(frozen=True)
class DigestFacts:
    day: date
    province_id: str
    province_name: str | None
    period: str | None
    province: Score | None
    units: list[Score] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)  # open overdue items, worst first
    overdue_by_agency: list[tuple[str, str | None, int]] = field(default_factory=list)


_PRIORITY = {"urgent": 0, "high": 1, "normal": 2, "low": 3}


def due_at(day: date, at: str) -> datetime:
    """When the digest of `day` is due ("07:00" local)."""
    hh, mm = (int(x) for x in at.split(":", 1))
    return datetime.combine(day, time(hh, mm), tzinfo=VN_TZ)


def dedup_key(day: date, audience: str) -> str:
    return f"digest:{day}:{audience}"


def biggest_issues(issues: list[Issue], n: int = 3) -> list[Issue]:
    return sorted(issues, key=lambda i: (_PRIORITY.get(i.priority, 9), -i.days_overdue, i.item_id))[
        :n
    ]


def units_that_fell(units: list[Score]) -> list[Score]:
    """Units that lost places (most first), then those whose total dropped."""
    fell = [u for u in units if u.fell_by > 0 or (u.change is not None and u.change < 0)]
    return sorted(fell, key=lambda u: (-u.fell_by, u.change or 0.0, u.unit_id))


def _num(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}".rstrip("0").rstrip(".")


def _signed(x: float | None) -> str:
    if x is None:
        return "—"
    return ("+" if x > 0 else "") + _num(x)


def compose(f: DigestFacts, audience: str) -> dn.NewNotification:
    name = f.province_name or f.province_id
    lines: list[str] = []
    p = f.province
    if p is not None:
        lines.append(
            f"Điểm {name} kỳ {f.period}: {_num(p.total)} ({_signed(p.change)} so với hôm qua), "
            f"xếp hạng {p.rank or '—'}"
            + (
                f" (hôm qua {p.previous_rank})"
                if p.previous_rank and p.previous_rank != p.rank
                else ""
            )
            + f". / Score {_num(p.total)} ({_signed(p.change)}), rank {p.rank or '—'}."
        )
    else:
        lines.append(f"Chưa có điểm của {name}. / No score for the province yet.")
    top = biggest_issues(f.issues)
    if top:
        lines.append("Ba vấn đề lớn nhất / Three biggest issues:")
        for i in top:
            lines.append(
                f"  • {i.title} — {i.unit_name or i.unit_id}, quá hạn {i.days_overdue} ngày"
            )
    fell = units_that_fell(f.units)
    if fell:
        lines.append("Đơn vị giảm hạng, giảm điểm / Units that fell:")
        for u in fell[:10]:
            lines.append(
                f"  • {u.name or u.unit_id}: hạng {u.previous_rank or '—'} → {u.rank or '—'}, "
                f"điểm {_signed(u.change)}"
            )
    if f.overdue_by_agency:
        lines.append("Nhiệm vụ quá hạn theo đơn vị / Overdue items by agency:")
        for unit_id, unit_name, n in f.overdue_by_agency:
            lines.append(f"  • {unit_name or unit_id}: {n}")
    else:
        lines.append("Không có nhiệm vụ quá hạn. / No overdue items.")
    data: dict[str, Any] = {
        "day": str(f.day),
        "period": f.period,
        "province": None
        if p is None
        else {
            "unit_id": f.province_id,
            "total": p.total,
            "change": p.change,
            "rank": p.rank,
            "previous_rank": p.previous_rank,
        },
        "biggest_issues": [
            {
                "item_id": i.item_id,
                "title": i.title,
                "unit_id": i.unit_id,
                "days_overdue": i.days_overdue,
            }
            for i in top
        ],
        "units_fell": [
            {
                "unit_id": u.unit_id,
                "rank": u.rank,
                "previous_rank": u.previous_rank,
                "change": u.change,
            }
            for u in fell
        ],
        "overdue_by_agency": [{"unit_id": u, "overdue": n} for u, _, n in f.overdue_by_agency],
    }
    return dn.NewNotification(
        audience=audience,
        kind=dn.Kind.digest,
        title=f"Bản tin sáng {f.day:%d/%m/%Y} / Morning digest",
        body="\n".join(lines),
        dedup_key=dedup_key(f.day, audience),
        data=data,
    )
