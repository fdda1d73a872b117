"""Generate the shipped unit registry (shared/reference/units.json) from maintained data.

Sources (both pinned in pyproject.toml / uv.lock; their versions are written into the file's
`data_versions`, so a new data release is a regenerated, reviewed diff, never a silent change):

- `vietnam-provinces` (GSO codes and names): the 34 provinces and 3,321 communes (xã, phường,
  đặc khu) in force since 1 July 2025.
- `vietnam-address-converter`: the old→new mapping (old province / district / ward → new
  province / ward), which gives the 63 pre-2025 provinces, their districts and wards and the
  lineage edges. Its codes are its own (not GSO); they are kept as external codes `vnac-old` /
  `vnac-new`, and its new wards are matched to the GSO wards by name within the province.

Weights: the mapping carries no population or area, so an edge's weight is the share of the old
unit that each successor received, counted in wards: an old ward listed under n new communes
gives 1/n to each; an old district gives each new commune the (fractional) number of its wards
that went there over its number of wards; an old province gives its new province the share of its
wards (1 in 2025: provinces merged whole). Each old unit's outgoing weights sum to 1. An official
can override a weight in the scoring service (the seed never overwrites an official weight).

Stable ids kept: P01…P34 in the order below (P21 = Hưng Yên, the demo province), P21's departments
(P21.SNV, …), P21's communes P21.C001…P21.C104 (GSO order), the old provinces HYC / TBC and their
districts HYC.D01… / TBC.D01…. Other communes are `<province>.W<GSO code>`, other old units
`OP<code>` / `OD<code>` / `OW<code>` (converter codes).

Run: `uv run python scripts/make_reference_units.py`. Only the province's national-portal code
(H26 = Hà Nội, from the domain brief) is set here; the portal's codes of a province's agencies
and communes (H26.n) are not in either package, so they come with the province's own data.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import defaultdict
from pathlib import Path
from typing import Any

import vietnam_address_converter
import vietnam_provinces
from vietnam_address_converter.data import DEFAULT_DATA
from vietnam_provinces import Province, Ward

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "shared" / "reference" / "units.json"

MERGER_DAY = "2025-07-01"
LAST_DAY_BEFORE = "2025-06-30"
DEPT_MERGER_DAY = "2025-03-01"  # the March 2025 department mergers (sở, ban, ngành)
DEPT_LAST_DAY = "2025-02-28"
SINCE = "2000-01-01"  # units whose start is not in the sources: before any period we score

# Stable province ids: P01… in this order (it predates the real data; kept so ids never move).
PROVINCE_ORDER = [
    "Hà Nội", "Huế", "Hải Phòng", "Đà Nẵng", "Hồ Chí Minh", "Cần Thơ",
    "Lai Châu", "Điện Biên", "Sơn La", "Lạng Sơn", "Quảng Ninh", "Thanh Hóa", "Nghệ An",
    "Hà Tĩnh", "Cao Bằng", "Tuyên Quang", "Lào Cai", "Thái Nguyên", "Phú Thọ", "Bắc Ninh",
    "Hưng Yên", "Ninh Bình", "Quảng Trị", "Quảng Ngãi", "Gia Lai", "Khánh Hòa", "Lâm Đồng",
    "Đắk Lắk", "Đồng Nai", "Tây Ninh", "Vĩnh Long", "Đồng Tháp", "Cà Mau", "An Giang",
]  # fmt: skip
DEMO = "P21"
DEMO_SOURCE = "demo-igate"  # the simulated one-stop system of the demo province (H33)

# Departments in force after the March 2025 mergers (id suffix, name, kind, aliases).
# `{tinh}` is "tỉnh" or "thành phố".
DEPARTMENTS = [
    ("VP", "Văn phòng UBND {tinh}", "cơ quan", ["Văn phòng Ủy ban nhân dân {tinh}"]),
    ("SNV", "Sở Nội vụ", "sở", []),
    ("STP", "Sở Tư pháp", "sở", []),
    ("STC", "Sở Tài chính", "sở", []),
    ("SCT", "Sở Công Thương", "sở", []),
    ("SNNMT", "Sở Nông nghiệp và Môi trường", "sở", []),
    ("SXD", "Sở Xây dựng", "sở", []),
    ("SKHCN", "Sở Khoa học và Công nghệ", "sở", []),
    ("SGDDT", "Sở Giáo dục và Đào tạo", "sở", []),
    ("SYT", "Sở Y tế", "sở", []),
    ("SVHTTDL", "Sở Văn hóa, Thể thao và Du lịch", "sở", ["Sở Văn hoá - Thể thao và Du lịch"]),
    ("SDTTG", "Sở Dân tộc và Tôn giáo", "sở", []),
    ("TTR", "Thanh tra {tinh}", "cơ quan", []),
    ("TTPVHCC", "Trung tâm Phục vụ hành chính công {tinh}", "trung tâm", ["Trung tâm PVHCC"]),
]
NEW_IN_2025 = {"SNNMT", "SDTTG"}
# Departments dissolved by the March 2025 mergers: (suffix, name, kind, [(successor, weight)]).
# Lao động – Thương binh và Xã hội went to Nội vụ (labour, wages, people with merit); its social
# protection and children functions went to Y tế: kept as a lineage edge of weight 0 (a
# successor for routing documents, no share of the old figures, which Nội vụ carries).
OLD_DEPARTMENTS = [
    ("STTTT", "Sở Thông tin và Truyền thông", "sở", [("SKHCN", 1.0)]),
    ("SKHDT", "Sở Kế hoạch và Đầu tư", "sở", [("STC", 1.0)]),
    ("STNMT", "Sở Tài nguyên và Môi trường", "sở", [("SNNMT", 1.0)]),
    ("SNNPTNT", "Sở Nông nghiệp và Phát triển nông thôn", "sở", [("SNNMT", 1.0)]),
    ("SGTVT", "Sở Giao thông vận tải", "sở", [("SXD", 1.0)]),
    ("SLDTBXH", "Sở Lao động - Thương binh và Xã hội", "sở", [("SNV", 1.0), ("SYT", 0.0)]),
    ("BDT", "Ban Dân tộc", "ban", [("SDTTG", 1.0)]),
]
# The demo province's old districts, in the order of their stable ids HYC.D01…, TBC.D01….
OLD_DEMO_DISTRICTS = {
    "HYC": ("Hưng Yên", ["Thành phố Hưng Yên", "Huyện Văn Giang", "Huyện Phù Cừ", "Huyện Tiên Lữ",
                         "Huyện Kim Động", "Huyện Văn Lâm", "Huyện Yên Mỹ", "Huyện Ân Thi",
                         "Huyện Khoái Châu", "Thị xã Mỹ Hào"]),
    "TBC": ("Thái Bình", ["Thành phố Thái Bình", "Huyện Đông Hưng", "Huyện Hưng Hà",
                          "Huyện Quỳnh Phụ", "Huyện Thái Thụy", "Huyện Tiền Hải",
                          "Huyện Kiến Xương", "Huyện Vũ Thư"]),
}  # fmt: skip
KINDS = {
    "tinh": "tỉnh",
    "thanh-pho": "thành phố",
    "quan": "quận",
    "huyen": "huyện",
    "thi-xa": "thị xã",
    "phuong": "phường",
    "xa": "xã",
    "thi-tran": "thị trấn",
    "dac-khu": "đặc khu",
}


def nfc(s: str) -> str:
    return unicodedata.normalize("NFC", " ".join(s.split()))


def fold(s: str) -> str:
    s = unicodedata.normalize("NFD", s.replace("đ", "d").replace("Đ", "D"))
    s = "".join(c for c in s if not unicodedata.combining(c)).lower()
    return " ".join(re.findall(r"[a-z0-9]+", s))


_TYPE_WORDS = re.compile(r"^(thanh pho|tinh|quan|huyen|thi xa|phuong|xa|thi tran|dac khu) ")


def bare(s: str) -> str:
    """Folded name without its type word ("Phường Hoàn Kiếm" → "hoan kiem")."""
    return _TYPE_WORDS.sub("", fold(s))


def typed(name: str, kind: str) -> str:
    """The full published name: the converter's old names drop the type for some rows."""
    return name if fold(name).startswith(fold(kind)) else f"{kind.capitalize()} {name}"


def lower_type(name: str) -> str:
    """'Tỉnh Hưng Yên' → 'tỉnh Hưng Yên', as written after 'UBND'."""
    return name[0].lower() + name[1:]


def recase(name: str) -> str:
    """'Thành Phố Hà Nội' (the converter's casing of type words) → 'Thành phố Hà Nội'."""
    for word in ("Thành Phố", "Thị Xã", "Thị Trấn", "Đặc Khu"):
        if name.startswith(word + " "):
            return word[0] + word[1:].lower() + name[len(word) :]
    return name


def main(out_path: Path = OUT) -> None:
    units: list[dict[str, Any]] = []
    lineage: list[dict[str, Any]] = []
    by_id: dict[str, dict[str, Any]] = {}

    def add(**u: Any) -> dict[str, Any]:
        row = {"valid_from": SINCE, "valid_to": None, "aliases": [], "external_codes": {}} | u
        assert row["id"] not in by_id, row["id"]
        units.append(row)
        by_id[row["id"]] = row
        return row

    def edge(src: str, dst: str, weight: float, on: str, carries: str, kind: str = "") -> None:
        lineage.append(
            {
                "from_id": src,
                "to_id": dst,
                "kind": kind or ("merged_into" if weight == 1.0 else "split_into"),
                "effective_on": on,
                "weight": weight,
                "carries": carries,
            }
        )

    # ------------------------------------------------------------ new provinces (GSO)
    gso_provinces = {bare(p.name): p for p in Province.iter_all()}
    assert len(gso_provinces) == 34
    pid_of_gso: dict[int, str] = {}
    prov_rows: dict[str, dict[str, Any]] = {}
    for i, short in enumerate(PROVINCE_ORDER, start=1):
        p = gso_provinces[fold(short)]
        pid = f"P{i:02d}"
        pid_of_gso[int(p.code)] = pid
        city = p.division_type.value == "thành phố trung ương"
        name = nfc(p.name) if city else f"Tỉnh {nfc(p.name)}"
        prov_rows[pid] = add(
            id=pid,
            name=name,
            level="province",
            kind="thành phố" if city else "tỉnh",
            parent_id=None,
            valid_from=MERGER_DAY,  # set back to SINCE below for the provinces left unchanged
            aliases=[f"UBND {lower_type(name)}", f"Ủy ban nhân dân {lower_type(name)}"],
            external_codes={"gso": f"{int(p.code):02d}"},
        )
    demo = prov_rows[DEMO]
    assert demo["name"] == "Tỉnh Hưng Yên"
    demo["aliases"] += ["UBND tỉnh", "Ủy ban nhân dân tỉnh"]
    demo["external_codes"][DEMO_SOURCE] = "000.00.00.H33"
    prov_rows["P01"]["external_codes"]["dvcqg"] = "H26"  # the national portal's code of Hà Nội

    # ------------------------------------------------------------ departments, every province
    for pid, prow in prov_rows.items():
        tinh = "thành phố" if prow["kind"] == "thành phố" else "tỉnh"
        for n, (suffix, name, kind, aliases) in enumerate(DEPARTMENTS, start=1):
            row = add(
                id=f"{pid}.{suffix}",
                name=name.format(tinh=tinh),
                level="department",
                kind=kind,
                parent_id=pid,
                aliases=[a.format(tinh=tinh) for a in aliases],
                valid_from=DEPT_MERGER_DAY if suffix in NEW_IN_2025 else SINCE,
            )
            if pid == DEMO:
                row["external_codes"] = {DEMO_SOURCE: f"000.{n:02d}.00.H33"}
        for n, (suffix, name, kind, into) in enumerate(OLD_DEPARTMENTS, start=40):
            row = add(
                id=f"{pid}.{suffix}",
                name=name,
                level="department",
                kind=kind,
                parent_id=pid,
                valid_to=DEPT_LAST_DAY,
            )
            if pid == DEMO:
                row["external_codes"] = {DEMO_SOURCE: f"000.{n:02d}.00.H33"}
            for target, weight in into:
                edge(
                    f"{pid}.{suffix}",
                    f"{pid}.{target}",
                    weight,
                    DEPT_MERGER_DAY,
                    "subtree",
                    kind="merged_into" if weight == 1.0 else "split_into",
                )
    prov_rows["P01"]["external_codes"]["dvcqg"] = "H26"

    # ------------------------------------------------------------ new communes (GSO)
    commune_id: dict[tuple[str, str], str] = {}  # (province id, lower-case name) → id
    # accent-folded: a fallback only, as "Cẩm Giang" and "Cẩm Giàng" are both in Hải Phòng
    commune_folded: dict[tuple[str, str], list[str]] = defaultdict(list)

    def find_commune(pid: str, name: str) -> str | None:
        exact = commune_id.get((pid, recase(nfc(name)).lower()))
        folded = commune_folded.get((pid, fold(name)), [])
        return exact or (folded[0] if len(folded) == 1 else None)

    by_province: dict[str, list[Ward]] = defaultdict(list)
    for w in Ward.iter_all():
        by_province[pid_of_gso[int(w.province_code)]].append(w)
    for pid in prov_rows:
        wards = sorted(by_province[pid], key=lambda w: int(w.code))
        for n, w in enumerate(wards, start=1):
            cid = f"{pid}.C{n:03d}" if pid == DEMO else f"{pid}.W{int(w.code):05d}"
            name = nfc(w.name)
            codes = {"gso": f"{int(w.code):05d}"}
            if pid == DEMO:
                codes[DEMO_SOURCE] = f"{n:03d}.00.00.H33"
            add(
                id=cid,
                name=name,
                level="commune",
                kind=w.division_type.value,
                parent_id=pid,
                valid_from=MERGER_DAY,
                aliases=[f"UBND {lower_type(name)}"],
                external_codes=codes,
            )
            key = (pid, name.lower())
            assert key not in commune_id, key
            commune_id[key] = cid
            commune_folded[(pid, fold(name))].append(cid)
    if DEMO in prov_rows:
        assert sum(1 for k in commune_id if k[0] == DEMO) == 104

    # ------------------------------------------------------------ converter: new side
    data = DEFAULT_DATA
    new_prov_pid = {
        code: pid_of_gso[int(gso_provinces[bare(p["name_with_type"])].code)]
        for code, p in data["newProvinces"].items()
    }
    new_ward_id: dict[str, str] = {}
    unmatched: list[str] = []
    for code, w in data["newWards"].items():
        pid = new_prov_pid[w["parent_code"]]
        found = find_commune(pid, w["name_with_type"])
        if found is None:
            unmatched.append(f"{w['name_with_type']}, {w['path']}")
            continue
        new_ward_id[code] = found
    assert not unmatched, unmatched
    for code, cid in new_ward_id.items():
        by_id[cid]["external_codes"]["vnac-new"] = code
    for code, pid in new_prov_pid.items():
        by_id[pid]["external_codes"]["vnac-new"] = code

    # ------------------------------------------------------------ converter: old side
    rows = data["mapping"]["rows"]
    old_provinces = data["oldProvinces"]
    old_districts = data["oldDistricts"]
    old_wards = data["oldWards"]
    ward_targets: dict[str, list[str]] = defaultdict(list)  # old ward code → new commune ids
    district_wards: dict[str, list[str]] = defaultdict(list)
    district_direct: dict[str, list[str]] = defaultdict(list)  # districts mapped without wards
    district_province: dict[str, str] = {}
    province_targets: dict[str, set[str]] = defaultdict(set)
    ward_info: dict[str, tuple[str, str]] = {}  # code → (name, district code)
    for r in rows:
        o, nw = r["old"], r["new"]
        target = new_ward_id[nw["ward_code"]]
        district_province[o["district_code"]] = o["province_code"]
        province_targets[o["province_code"]].add(new_prov_pid[nw["province_code"]])
        if not o["ward_code"]:
            if target not in district_direct[o["district_code"]]:
                district_direct[o["district_code"]].append(target)
            continue
        wc = o["ward_code"]
        if wc not in ward_info:
            ward_info[wc] = (o["ward_name"], o["district_code"])
            district_wards[o["district_code"]].append(wc)
        if target not in ward_targets[wc]:
            ward_targets[wc].append(target)

    # an old province whose only successor has its name and holds no other old province was
    # left as it was: it is the same unit (its districts hang under the current province)
    olds_of_new: dict[str, list[str]] = defaultdict(list)
    for oc, successors in province_targets.items():
        for t in successors:
            olds_of_new[t].append(oc)
    old_province_id: dict[str, str] = {}
    demo_old = {v[0]: k for k, v in OLD_DEMO_DISTRICTS.items()}
    for oc in sorted(province_targets, key=int):
        p = old_provinces[oc]
        targets = sorted(province_targets[oc])
        if len(targets) == 1 and len(olds_of_new[targets[0]]) == 1:
            old_province_id[oc] = targets[0]
            prov_rows[targets[0]]["valid_from"] = SINCE
            prov_rows[targets[0]]["external_codes"]["vnac-old"] = f"P{oc}"
            continue
        oid = demo_old.get(nfc(p["name"]), f"OP{oc}")
        old_province_id[oc] = oid
        name = recase(nfc(p["name_with_type"]))
        add(
            id=oid,
            name=name,
            level="province",
            kind=KINDS[p["type"]],
            parent_id=None,
            valid_to=LAST_DAY_BEFORE,
            aliases=[f"UBND {lower_type(name)}", f"Ủy ban nhân dân {lower_type(name)}"],
            external_codes={"vnac-old": f"P{oc}"},
        )
        # wards are counted below; every 2025 province took old provinces whole
        n_wards: dict[str, int] = defaultdict(int)
        for dc, wcs in district_wards.items():
            if district_province[dc] == oc:
                for wc in wcs:
                    for t in ward_targets[wc]:
                        n_wards[by_id[t]["parent_id"]] += 1
        total = sum(n_wards.values()) or 1
        for t in targets:
            edge(oid, t, n_wards.get(t, 0) / total if len(targets) > 1 else 1.0,
                 MERGER_DAY, "subtree")  # fmt: skip

    district_id: dict[str, str] = {}
    demo_district_seq = {
        fold(name): (old, i)
        for old, (_, names) in OLD_DEMO_DISTRICTS.items()
        for i, name in enumerate(names, start=1)
    }
    for dc in sorted(district_province, key=int):
        d = old_districts.get(dc)
        kind = KINDS[d["type"]] if d else "huyện"
        name = recase(nfc(d["name_with_type"])) if d else f"Huyện {dc}"
        parent = old_province_id[district_province[dc]]
        codes = {"vnac-old": f"D{dc}"}
        did = f"OD{dc}"
        if parent in OLD_DEMO_DISTRICTS and fold(name) in demo_district_seq:
            old, i = demo_district_seq[fold(name)]
            did = f"{old}.D{i:02d}"
            codes[DEMO_SOURCE] = f"000.00.{i + (10 if old == 'TBC' else 0):02d}.H33"
        district_id[dc] = did
        bare_name = nfc(d["name"]) if d else dc
        add(
            id=did,
            name=name,
            level="district",
            kind=kind,
            parent_id=parent,
            valid_to=LAST_DAY_BEFORE,
            # "UBND huyện Văn Giang", and "Văn Giang" alone as documents list districts (not
            # for a city, whose bare name is its province's: "Hưng Yên")
            aliases=[f"UBND {lower_type(name)}"]
            + ([bare_name] if kind != "thành phố" and not bare_name.isdigit() else []),
            external_codes=codes,
        )
    for dc in OLD_DEMO_DISTRICTS:
        assert sum(1 for v in district_id.values() if v.startswith(dc + ".")) == len(
            OLD_DEMO_DISTRICTS[dc][1]
        ), dc

    for dc, wcs in district_wards.items():
        did = district_id[dc]
        demo_codes = did.startswith(tuple(f"{k}." for k in OLD_DEMO_DISTRICTS))
        for n, wc in enumerate(sorted(wcs, key=int), start=1):
            w = old_wards.get(wc)
            raw_name, _ = ward_info[wc]
            kind = KINDS[w["type"]] if w else ("phường" if fold(raw_name).startswith("phuong")
                                               else "thị trấn" if fold(raw_name).startswith(
                                                   "thi tran") else "xã")  # fmt: skip
            name = recase(nfc(w["name_with_type"])) if w else typed(recase(nfc(raw_name)), kind)
            codes = {"vnac-old": f"W{wc}"}
            if demo_codes:
                district_seq = int(codes_of(by_id, did)[DEMO_SOURCE].split(".")[2])
                codes[DEMO_SOURCE] = f"{n:03d}.00.{district_seq:02d}.H33"
            row = add(
                id=f"OW{wc}",
                name=name,
                level="commune",
                kind=kind,
                parent_id=did,
                valid_to=LAST_DAY_BEFORE,
                aliases=[f"UBND {lower_type(name)}"],
                external_codes=codes,
            )
            targets = ward_targets[wc]
            for t in targets:
                edge(f"OW{wc}", t, 1.0 / len(targets), MERGER_DAY, "self")
        # the district's own dossiers (district-level procedures) go where its wards went
        share: dict[str, float] = defaultdict(float)
        for wc in wcs:
            for t in ward_targets[wc]:
                share[t] += 1.0 / len(ward_targets[wc]) / len(wcs)
        for t in district_direct.get(dc, []):
            share[t] += 0.0
        for t, weight in sorted(share.items()):
            edge(did, t, weight, MERGER_DAY, "self")
    for dc, targets in district_direct.items():
        if dc in district_wards:
            continue  # handled above (a district with wards and a direct row)
        for t in targets:
            edge(district_id[dc], t, 1.0 / len(targets), MERGER_DAY, "self")

    # ------------------------------------------------------------ national portal (Hà Nội)
    # ------------------------------------------------------------ order and write
    # The demo province first (its subtree, then its predecessors'), then the rest by id: name
    # lookups that meet one name in many provinces ("Sở Nội vụ") list the demo unit first.
    def province_of(u: dict[str, Any]) -> str:
        while u["parent_id"] is not None:
            u = by_id[u["parent_id"]]
        return str(u["id"])

    rank = {DEMO: 0, "HYC": 1, "TBC": 2}
    level_rank = {"province": 0, "department": 1, "district": 2, "commune": 3}
    units.sort(
        key=lambda u: (
            rank.get(province_of(u), 3),
            u["valid_to"] is not None,
            level_rank[u["level"]],
            u["id"],
        )
    )
    lineage.sort(key=lambda e: (e["from_id"], e["to_id"]))
    out = {
        "generated_by": "scripts/make_reference_units.py",
        "demo_province_id": DEMO,
        "data_versions": {
            "vietnam-provinces": {
                "package": vietnam_provinces.__version__,
                "data_retrieved": vietnam_provinces.__data_version__,
                "licence": "GPL-3.0-or-later (a dev dependency: only this generator and the tests import it)",
            },
            "vietnam-address-converter": {
                "package": vietnam_address_converter.__version__,
                "mapping": data["mapping"]["meta"]["version"],
                "mapping_rows": data["mapping"]["meta"]["row_count"],
                "licence": "Apache-2.0",
            },
        },
        "weights": (
            "share of the old unit each successor received, counted in wards (an old ward "
            "split between n communes gives 1/n to each); no population or area in the sources"
        ),
        "units": [{k: u[k] for k in UNIT_KEYS} for u in units],
        "lineage": lineage,
    }
    write(out, out_path)
    levels: dict[str, int] = defaultdict(int)
    for u in units:
        levels[u["level"]] += 1
    print(f"wrote {len(units)} units {dict(levels)}, {len(lineage)} lineage edges to {out_path}")


UNIT_KEYS = ("id", "name", "level", "kind", "parent_id", "valid_from", "valid_to", "aliases",
             "external_codes")  # fmt: skip


def codes_of(by_id: dict[str, dict[str, Any]], uid: str) -> dict[str, str]:
    return dict(by_id[uid]["external_codes"])


def write(out: dict[str, Any], path: Path = OUT) -> None:
    """One unit / edge per line: small, and a data release reviews as a line diff."""
    head = {k: v for k, v in out.items() if k not in ("units", "lineage")}
    lines = ["{"]
    for k, v in head.items():
        lines.append(f"{json.dumps(k)}: {json.dumps(v, ensure_ascii=False)},")
    for key in ("units", "lineage"):
        items = out[key]
        lines.append(f'"{key}": [')
        lines += [
            json.dumps(x, ensure_ascii=False, separators=(",", ":"))
            + ("," if i < len(items) - 1 else "")
            for i, x in enumerate(items)
        ]
        lines.append("]," if key == "units" else "]")
    lines.append("}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
