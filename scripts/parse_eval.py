"""`make parse-eval`: the parser against hand annotations of the corpus and samples.

For every ``tests/tasks/annotations/<document file name>.yaml`` (our own reading of the
document: per task its lead agencies, support agencies, deadline, recurrence, criteria —
no text copied) the document is parsed and compared, as multisets per document:

* leads: one entry per (task, lead agency), agencies compared by standard name
  (registry name, else gazetteer name — a provincial body written with its province,
  "Thuế tỉnh Đắk Lắk", is the gazetteer's "Thuế tỉnh" — else the name as written;
  accents/case folded);
* deadlines: one entry per task with a deadline (the date);
* recurrences: one entry per task with a recurrence (its kind: weekly, monthly, …).

Prints precision / recall per document and overall; the last two lines are the overall
precision and recall (leads, deadlines, recurrences pooled).
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from services.tasks.domain.parser import Assignee, parse_conclusion
from services.tasks.domain.parsing.gazetteer import gazetteer
from services.tasks.domain.units import UnitDirectory, name_key

ROOT = Path(__file__).resolve().parents[1]
ANNOTATIONS = ROOT / "tests" / "tasks" / "annotations"
SHARED = ROOT.parent / "shared"
GROUP_WORDS = {
    "group:departments",
    "group:districts",
    "group:communes",
    "group:public_service_units",
    "group:related_units",
    "group:all_units",
}


def find_document(name: str) -> Path:
    for folder in ("corpus", "samples"):
        p = SHARED / folder / name
        if p.exists():
            return p
    raise FileNotFoundError(name)


_TITLES = (
    ("cac", "dong", "chi"),
    ("thu", "truong"),
    ("giam", "doc"),
    ("chu", "tich"),
    ("nguoi", "dung", "dau"),
    ("lanh", "dao"),
)


_UNIT_TYPES = {
    ("tinh",),
    ("thanh",),
    ("huyen",),
    ("quan",),
    ("thi",),
    ("xa",),
    ("phuong",),
    ("dac",),
}


def agency_key(name: str, units: UnitDirectory) -> str:
    """Agencies compared by standard name, without the title of who heads them."""
    if name.startswith("group:"):
        return name
    key = name_key(name)
    for title in _TITLES:
        if key[: len(title)] == title and len(key) > len(title) + 1:
            key = key[len(title) :]
    if key[:1] == ("cac",):
        key = key[1:]
    if key[:1] == ("ubnd",) and key[1:2] in _UNIT_TYPES:
        # "UBND tỉnh Phú Thọ" is the province unit "Tỉnh Phú Thọ", "UBND huyện Văn Giang" the
        # district unit "Huyện Văn Giang": the registry names a People's Committee by its unit
        key = key[1:]
    canonical = gazetteer().get(key) or _provincial(key, units)
    if canonical is not None:
        key = name_key(canonical)
    return " ".join(key)


def _provincial(key: tuple[str, ...], units: UnitDirectory) -> str | None:
    """A provincial body written with its province ("Thuế tỉnh Đắk Lắk", "Báo và Phát thanh,
    Truyền hình Lai Châu"): its standard name is the gazetteer's ("Thuế tỉnh")."""
    gz = gazetteer()
    for k in range(len(key) - 1, 0, -1):
        head, tail = key[:k], key[k:]
        if tail[:1] == ("tinh",):
            head, tail = (*head, "tinh"), tail[1:]
        canonical = gz.get(head) or gz.get((*head, "tinh"))
        if canonical is not None and tail and units.provinces_named(" ".join(tail)):
            return canonical
    return None


def predicted_key(a: Assignee, units: UnitDirectory) -> str:
    if a.group:
        return f"group:{a.group}"
    if a.unit_id:
        unit = units.get(a.unit_id)
        if unit is not None:
            return agency_key(unit.name, units)
    return agency_key(a.canonical or a.name, units)


def kind(code: str | None) -> str | None:
    if not code:
        return None
    return code.split("|")[0].split(":")[0]


@dataclass
class Score:
    tp: int = 0
    pred: int = 0
    gold: int = 0

    def add(self, pred: Counter[Any], gold: Counter[Any]) -> None:
        self.tp += sum((pred & gold).values())
        self.pred += sum(pred.values())
        self.gold += sum(gold.values())

    def p(self) -> float:
        return self.tp / self.pred if self.pred else 1.0

    def r(self) -> float:
        return self.tp / self.gold if self.gold else 1.0


@dataclass
class DocScore:
    leads: Score = field(default_factory=Score)
    deadlines: Score = field(default_factory=Score)
    recurrences: Score = field(default_factory=Score)


def score_document(ann: dict[str, Any], units: UnitDirectory) -> DocScore:
    text = find_document(ann["file"]).read_text(encoding="utf-8")
    result = parse_conclusion(text, issued_on=None, units=units)
    gold_leads: Counter[str] = Counter()
    gold_dl: Counter[date] = Counter()
    gold_rec: Counter[str] = Counter()
    for task in ann.get("tasks") or []:
        for lead in task.get("lead") or []:
            gold_leads[agency_key(lead, units)] += 1
        if task.get("deadline"):
            gold_dl[date.fromisoformat(str(task["deadline"]))] += 1
        if task.get("recurrence"):
            gold_rec[str(task["recurrence"])] += 1
    pred_leads: Counter[str] = Counter()
    pred_dl: Counter[date] = Counter()
    pred_rec: Counter[str] = Counter()
    for item in result.items:
        for a in item.assignees:
            if a.role == "lead":
                pred_leads[predicted_key(a, units)] += 1
        if item.deadline:
            pred_dl[item.deadline] += 1
        k = kind(item.recurrence)
        if k:
            pred_rec[k] += 1
    s = DocScore()
    s.leads.add(pred_leads, gold_leads)
    s.deadlines.add(pred_dl, gold_dl)
    s.recurrences.add(pred_rec, gold_rec)
    return s


def main() -> int:
    units = UnitDirectory.load()
    files = sorted(ANNOTATIONS.glob("*.yaml"))
    if not files:
        print("no annotations", file=sys.stderr)
        return 1
    total = DocScore()
    t0 = time.perf_counter()
    print(f"{'document':<60} {'leads P/R':>11} {'deadl P/R':>11} {'recur P/R':>11}")
    for path in files:
        ann = yaml.safe_load(path.read_text(encoding="utf-8"))
        s = score_document(ann, units)
        for name in ("leads", "deadlines", "recurrences"):
            t, d = getattr(total, name), getattr(s, name)
            t.tp, t.pred, t.gold = t.tp + d.tp, t.pred + d.pred, t.gold + d.gold
        cols = " ".join(
            f"{getattr(s, n).p():5.2f}/{getattr(s, n).r():4.2f}"
            for n in ("leads", "deadlines", "recurrences")
        )
        print(f"{ann['file'][:60]:<60} {cols}")
    for name in ("leads", "deadlines", "recurrences"):
        sc = getattr(total, name)
        print(
            f"overall {name}: precision {sc.p():.3f} recall {sc.r():.3f} ({sc.tp}/{sc.pred} of {sc.gold})"
        )
    pooled = Score()
    for name in ("leads", "deadlines", "recurrences"):
        sc = getattr(total, name)
        pooled.tp, pooled.pred, pooled.gold = (
            pooled.tp + sc.tp,
            pooled.pred + sc.pred,
            pooled.gold + sc.gold,
        )
    print(f"({len(files)} documents, {time.perf_counter() - t0:.1f} s)")
    print(f"overall precision {pooled.p():.3f}")
    print(f"overall recall {pooled.r():.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
