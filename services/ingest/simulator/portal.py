"""The national portal's reporting API, served by the simulator from its own data.

`POST /api/v1/reporting/evaluation/{report}` with `{rootDepartmentId, timeType, year, quarter?,
month?}` answers `{"data": {"evaluation": [province node]}}`, the province's agencies as its
`children`, each node with `groupScores` and `metrics[]{code, numerator, denominator, ratio,
score, maxScore}` of the report's group (service-results: the totals and every group).

It counts like the portal, not like CCHC Monitor, so the differences endpoint has something to
show: on time is over the dossiers *received* in the period (ignoring supplement pauses), and
the sync denominator is the national report's figure, which lags two days. The scoring rules
are the portal's as published (points half up to 2 decimals); this is a stand-in for an
outside system and shares no code with scoring.
"""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from datetime import datetime
from typing import Any

from services.ingest.simulator.data import DAY, VN, Dataset

REPORT_GROUPS: dict[str, tuple[str, ...]] = {
    "transparency": ("CKMB",),
    "dvc-progress-tree": ("TDGQ",),
    "provide-online-tree": ("CLGQ",),
    "formality-online-payment-tree": ("TTTT",),
    "handling-satisfaction": ("MDHL",),
    "dossier-digitized": ("MDSH",),
    "service-results": ("CKMB", "TDGQ", "CLGQ", "TTTT", "MDHL", "MDSH"),
}
GROUP_MAX = {"CKMB": 18, "TDGQ": 20, "CLGQ": 12, "TTTT": 10, "MDHL": 18, "MDSH": 22}
# metric: (group, max or None when the portal publishes no metric points, rule, threshold,
#          empty: "null" | "zero" | "full" | "info")
METRICS: dict[str, tuple[str, float | None, float, str]] = {
    "PUBLISH_ON_TIME": ("CKMB", 6, 1.0, "null"),
    "PUBLIC_UPDATE_ON_TIME": ("CKMB", 4, 1.0, "null"),
    "PUBLIC_CONTENT_FULL": ("CKMB", 2, 1.0, "null"),
    "DOSSIER_SYNC": ("CKMB", 6, 1.0, "null"),
    "ON_TIME": ("TDGQ", 20, 1.0, "zero"),
    "FULL": ("CLGQ", None, 0.8, "zero"),
    "HAS_ONLINE": ("CLGQ", None, 1.0, "zero"),
    "ONLINE_DOSSIERS": ("CLGQ", None, 0.5, "zero"),
    "ONLINE_ON_TIME": ("CLGQ", None, 1.0, "info"),
    "PAY_DOSSIERS": ("TTTT", None, 1.0, "zero"),
    "PAY_FORMALITIES": ("TTTT", None, 0.8, "zero"),
    "PAY_PROVISION": ("TTTT", None, 1.0, "zero"),
    "PETITION_CLASSIFICATION_TTHC": ("MDHL", 0, 1.0, "info"),
    "DOSSIER_RECEIVING_SATISFACTION": ("MDHL", 6, 0.9, "zero"),
    "PETITION_PROCESSING_ON_TIME": ("MDHL", 6, 1.0, "full"),
    "PETITION_HANDLING_SATISFACTION": ("MDHL", 6, 1.0, "full"),
    "PETITION_CLASSIFICATION_STAFF": ("MDHL", 0, 1.0, "info"),
    "ORIGINAL_RESULT_AVAILABLE": ("MDSH", 6, 1.0, "null"),
    "SO_HOA_GIAY_TO_GIAI_QUYET": ("MDSH", 4, 1.0, "null"),
    "REUSED_DIGITIZED_DATA": ("MDSH", 2, 0.8, "null"),
    "SYNCED_WITH_DVCQG_PERSONAL_STORAGE": ("MDSH", 4, 1.0, "null"),
    "CITIZEN_DATA_CONNECTED_DOSSIER": ("MDSH", 2, 1.0, "null"),
    "CITIZEN_DATA_CONNECTED_FORMALITY": ("MDSH", 2, 1.0, "null"),
    "ELECTRONIC_CERTIFIED_COPY": ("MDSH", 2, 1.0, "full"),
}
# the group fits' term maxima of the groups published without metric points
FIT_MAX = {"FULL": 2, "HAS_ONLINE": 4, "ONLINE_DOSSIERS": 6, "PAY_DOSSIERS": 6,
           "PAY_FORMALITIES": 2, "PAY_PROVISION": 2.5}  # fmt: skip
NAMESPACE = uuid.UUID("1d0c7f0e-7c47-4d5e-9b4e-2f6a4c3e9d11")


def half_up(x: float) -> float:
    return math.floor(x * 100 + 0.5 + 1e-9) / 100


def department_id(code: str) -> str:
    return str(uuid.uuid5(NAMESPACE, code))


def window(body: dict[str, Any]) -> tuple[int, int]:
    """[start, end) of the requested period as epoch seconds, Vietnam time."""
    year = int(body["year"])
    kind = body.get("timeType", "year")
    if kind == "quarter":
        q = int(body["quarter"])
        first, last = 3 * q - 2, 3 * q
    elif kind == "month":
        first = last = int(body["month"])
    else:
        first, last = 1, 12
    start = datetime(year, first, 1, tzinfo=VN)
    end = datetime(year + (last == 12), last % 12 + 1, 1, tzinfo=VN)
    return int(start.timestamp()), int(end.timestamp())


def _counts(data: Dataset, clock: int, start: int, end: int) -> dict[int, dict[str, float]]:
    """Per agency index: the numerators and denominators the portal publishes."""
    c: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    report_cut = clock - 2 * DAY  # the national report's figure lags
    online_procs: dict[int, set[int]] = defaultdict(set)
    fee_with: dict[int, set[int]] = defaultdict(set)
    fee_paid: dict[int, set[int]] = defaultdict(set)
    for d in data.dossiers:
        if not (d.received and start <= d.received < end and d.received <= clock):
            continue
        a = c[d.agency]
        proc = data.procedures[d.procedure]
        a["received"] += 1
        finished = d.finished if 0 < d.finished <= clock else 0
        on_time = finished <= d.due0 if finished else clock <= d.due0
        a["on_time"] += on_time
        if finished:
            a["completed"] += 1
            a["days"] += (finished - d.received) / DAY
        if d.channel == 2:
            a["online"] += 1
            a["online_on_time"] += on_time
            online_procs[d.agency].add(d.procedure)
        if any(act == 13 and t <= clock for t, act in d.events):
            a["synced"] += 1
        if d.received <= report_cut:
            a["report"] += 1
        if proc.fee:
            a["fee"] += 1
            fee_with[d.agency].add(d.procedure)
            if d.paid_online and 0 < d.fee_paid_at <= clock:
                a["paid"] += 1
                fee_paid[d.agency].add(d.procedure)
        a["e_result"] += d.e_result
        a["digitised"] += d.digitised and d.e_result
        a["reused"] += d.reused
        a["pds"] += data.pds_synced(d)
        a["citizen"] += data.citizen_data_used(d)
    by_code = {ag.code: i for i, ag in enumerate(data.agencies)}
    communes = [i for i, ag in enumerate(data.agencies) if ag.level == "commune"]
    for pi, p in enumerate(data.procedures):
        owners = communes if p.commune_level else [by_code.get(p.agency_code, -1)]
        for i in owners:
            if i < 0:
                continue
            a = c[i]
            a["procs"] += 1
            a["proc_online"] += p.online_level != "none"
            a["proc_online_used"] += p.online_level != "none" and pi in online_procs[i]
            a["proc_full_eligible"] += p.online_level != "none"
            a["proc_full"] += p.online_level == "full"
            a["proc_fee"] += p.fee > 0
            a["proc_fee_with"] += p.fee > 0 and pi in fee_with[i]
            a["proc_fee_paid"] += p.fee > 0 and pi in fee_paid[i]
            a["proc_citizen"] += data.procedure_flags(pi)["citizen"]
            pub = int(datetime.combine(p.published_on, datetime.min.time(), VN).timestamp())
            if start <= pub < end:
                a["published"] += 1
                a["published_on_time"] += p.published_on <= p.publish_due_on
            due = int(datetime.combine(p.public_due_on, datetime.min.time(), VN).timestamp())
            if start <= due < end:
                a["public_due"] += 1
                a["public_on_time"] += p.public_on <= p.public_due_on
            public = int(datetime.combine(p.public_on, datetime.min.time(), VN).timestamp())
            if start <= public < end:
                a["public"] += 1
                a["public_complete"] += p.content_complete
    for pt in data.petitions:
        handled = pt.handled if 0 < pt.handled <= clock else 0
        if not (handled and start <= handled < end):
            continue
        a = c[pt.agency]
        a["pakn"] += 1
        a["pakn_on_time"] += handled <= pt.due
        a["pakn_satisfied"] += bool(pt.satisfied) and 0 < pt.rated <= clock
        category = data.petition_category(pt)
        a["pakn_tthc"] += category == "tthc"
        a["pakn_staff"] += category == "staff"
    return c


# metric: (numerator key, denominator key) of the counts
INPUTS: dict[str, tuple[str, str]] = {
    "PUBLISH_ON_TIME": ("published_on_time", "published"),
    "PUBLIC_UPDATE_ON_TIME": ("public_on_time", "public_due"),
    "PUBLIC_CONTENT_FULL": ("public_complete", "public"),
    "DOSSIER_SYNC": ("synced", "report"),
    "ON_TIME": ("on_time", "received"),
    "FULL": ("proc_full", "proc_full_eligible"),
    "HAS_ONLINE": ("proc_online_used", "proc_online"),
    "ONLINE_DOSSIERS": ("online", "received"),
    "ONLINE_ON_TIME": ("online_on_time", "online"),
    "PAY_DOSSIERS": ("paid", "fee"),
    "PAY_FORMALITIES": ("proc_fee_paid", "proc_fee"),
    "PAY_PROVISION": ("proc_fee_with", "proc_fee"),
    "PETITION_CLASSIFICATION_TTHC": ("pakn_tthc", "pakn"),
    "DOSSIER_RECEIVING_SATISFACTION": ("on_time", "received"),
    "PETITION_PROCESSING_ON_TIME": ("pakn_on_time", "pakn"),
    "PETITION_HANDLING_SATISFACTION": ("pakn_satisfied", "pakn"),
    "PETITION_CLASSIFICATION_STAFF": ("pakn_staff", "pakn"),
    "ORIGINAL_RESULT_AVAILABLE": ("e_result", "received"),
    "SO_HOA_GIAY_TO_GIAI_QUYET": ("digitised", "received"),
    "REUSED_DIGITIZED_DATA": ("reused", "received"),
    "SYNCED_WITH_DVCQG_PERSONAL_STORAGE": ("pds", "received"),
    "CITIZEN_DATA_CONNECTED_DOSSIER": ("citizen", "received"),
    "CITIZEN_DATA_CONNECTED_FORMALITY": ("proc_citizen", "procs"),
}


def _points(code: str, num: float, den: float) -> float | None:
    _, mx, threshold, empty = METRICS[code]
    full = FIT_MAX.get(code, mx)
    if empty == "info" or full is None:
        return None
    if den <= 0:
        return {"null": None, "zero": 0.0, "full": float(full)}[empty]
    r = min(1.0, max(0.0, num / den))
    return half_up(full * min(1.0, r / threshold))


def node(code: str, name: str, counts: dict[str, float], groups: tuple[str, ...]) -> dict[str, Any]:
    metrics: list[dict[str, Any]] = []
    group_points: dict[str, float] = defaultdict(float)
    for code_m, (group, mx, _, empty) in METRICS.items():
        if code_m == "ELECTRONIC_CERTIFIED_COPY":
            num = den = None
            pts: float | None = 2.0
            ratio: float | None = 100.0
        else:
            nk, dk = INPUTS[code_m]
            num, den = counts.get(nk, 0.0), counts.get(dk, 0.0)
            pts = _points(code_m, num, den)
            ratio = round(100 * num / den, 2) if den else (None if empty == "zero" else 0)
        if pts is not None and empty != "info":
            group_points[group] += pts
        if group in groups:
            shown = pts if mx is not None and mx > 0 else None
            metrics.append({"code": code_m, "numerator": num, "denominator": den, "ratio": ratio,
                            "score": shown, "maxScore": mx})  # fmt: skip
    if "TDGQ" in groups:
        completed = counts.get("completed", 0.0)
        metrics += [
            {"code": "AVG_DAYS", "value": round(counts.get("days", 0) / completed, 2)
             if completed else None},
            {"code": "RECEIVED", "value": counts.get("received", 0.0)},
            {"code": "COMPLETED", "value": completed},
        ]  # fmt: skip
    scores = {g: half_up(min(GROUP_MAX[g], group_points[g])) for g in GROUP_MAX}
    out: dict[str, Any] = {
        "departmentId": department_id(code), "code": code, "name": name,
        "groupScores": [{"code": g, "score": scores[g], "maxScore": GROUP_MAX[g]}
                        for g in groups],
        "metrics": metrics,
    }  # fmt: skip
    if len(groups) > 1:
        out["score"] = half_up(sum(scores.values()))
        out["totalMaxScore"] = 100
    return out


def evaluation(data: Dataset, clock: int, report: str, body: dict[str, Any]) -> dict[str, Any]:
    """The report's answer: the province (root) with its agencies as children."""
    groups = REPORT_GROUPS[report]
    start, end = window(body)
    counts = _counts(data, clock, start, end)
    root = next((a for a in data.agencies if a.level == "province"), None)
    root_code = root.code if root else "ROOT"
    total: dict[str, float] = defaultdict(float)
    children = []
    for i, ag in enumerate(data.agencies):
        if ag is root:
            continue
        for k, v in counts.get(i, {}).items():
            total[k] += v
        children.append(node(ag.code, ag.name, counts.get(i, {}), groups))
    # the province's procedure list is its own (communes share it): not a sum of the children
    if root is not None:
        own = counts.get(data.agencies.index(root), {})
        for k, v in own.items():
            total[k] += v
    top = node(root_code, root.name if root else "", total, groups)
    top["children"] = children
    return {"data": {"evaluation": [top]}}
