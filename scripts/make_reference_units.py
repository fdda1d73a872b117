"""Generate the shipped unit registry seed (shared/reference/units.json).

Kept as a script so the seed is reproducible and reviewable: the 34 provinces in force since
1 July 2025, and one demo province (Hưng Yên, merged with Thái Bình on 1 July 2025) with its
departments, public-service centre and communes, plus the pre-merger units and lineage edges.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

MERGER_DAY = "2025-07-01"
LAST_DAY_BEFORE = "2025-06-30"

CITIES = ["Hà Nội", "Huế", "Hải Phòng", "Đà Nẵng", "Hồ Chí Minh", "Cần Thơ"]
PROVINCES = [
    "Lai Châu",
    "Điện Biên",
    "Sơn La",
    "Lạng Sơn",
    "Quảng Ninh",
    "Thanh Hóa",
    "Nghệ An",
    "Hà Tĩnh",
    "Cao Bằng",
    "Tuyên Quang",
    "Lào Cai",
    "Thái Nguyên",
    "Phú Thọ",
    "Bắc Ninh",
    "Hưng Yên",
    "Ninh Bình",
    "Quảng Trị",
    "Quảng Ngãi",
    "Gia Lai",
    "Khánh Hòa",
    "Lâm Đồng",
    "Đắk Lắk",
    "Đồng Nai",
    "Tây Ninh",
    "Vĩnh Long",
    "Đồng Tháp",
    "Cà Mau",
    "An Giang",
]

# Provinces the 2025 restructuring left as they were.
UNCHANGED = {
    "Hà Nội",
    "Huế",
    "Lai Châu",
    "Điện Biên",
    "Sơn La",
    "Lạng Sơn",
    "Quảng Ninh",
    "Thanh Hóa",
    "Nghệ An",
    "Hà Tĩnh",
    "Cao Bằng",
}
# Departments created by the 2025 restructuring.
NEW_IN_2025 = {"SNNMT", "SDTTG"}

# Departments in force from 1 July 2025 (code suffix, name, short aliases).
DEPARTMENTS_NEW = [
    ("VP", "Văn phòng UBND tỉnh", ["Văn phòng Ủy ban nhân dân tỉnh"]),
    ("SNV", "Sở Nội vụ", []),
    ("STP", "Sở Tư pháp", []),
    ("STC", "Sở Tài chính", []),
    ("SCT", "Sở Công Thương", []),
    ("SNNMT", "Sở Nông nghiệp và Môi trường", []),
    ("SXD", "Sở Xây dựng", []),
    ("SKHCN", "Sở Khoa học và Công nghệ", []),
    ("SGDDT", "Sở Giáo dục và Đào tạo", []),
    ("SYT", "Sở Y tế", []),
    ("SVHTTDL", "Sở Văn hóa, Thể thao và Du lịch", ["Sở Văn hoá - Thể thao và Du lịch"]),
    ("SDTTG", "Sở Dân tộc và Tôn giáo", []),
    ("TTR", "Thanh tra tỉnh", []),
    ("TTPVHCC", "Trung tâm Phục vụ hành chính công tỉnh", ["Trung tâm PVHCC"]),
]
# Departments dissolved on 1 July 2025 and the department(s) they merged into.
DEPARTMENTS_OLD = [
    ("STTTT", "Sở Thông tin và Truyền thông", ["SKHCN"]),
    ("SKHDT", "Sở Kế hoạch và Đầu tư", ["STC"]),
    ("STNMT", "Sở Tài nguyên và Môi trường", ["SNNMT"]),
    ("SNNPTNT", "Sở Nông nghiệp và Phát triển nông thôn", ["SNNMT"]),
    ("SGTVT", "Sở Giao thông vận tải", ["SXD"]),
    ("SLDTBXH", "Sở Lao động - Thương binh và Xã hội", ["SNV", "SYT"]),
]
# Districts of the two pre-merger provinces (abolished 1 July 2025).
OLD_DISTRICTS = {
    "HYC": [
        ("Thành phố Hưng Yên", "thành phố"),
        ("Văn Giang", "huyện"),
        ("Phù Cừ", "huyện"),
        ("Tiên Lữ", "huyện"),
        ("Kim Động", "huyện"),
        ("Văn Lâm", "huyện"),
        ("Yên Mỹ", "huyện"),
        ("Ân Thi", "huyện"),
        ("Khoái Châu", "huyện"),
        ("Mỹ Hào", "thị xã"),
    ],
    "TBC": [
        ("Thành phố Thái Bình", "thành phố"),
        ("Đông Hưng", "huyện"),
        ("Hưng Hà", "huyện"),
        ("Quỳnh Phụ", "huyện"),
        ("Thái Thụy", "huyện"),
        ("Tiền Hải", "huyện"),
        ("Kiến Xương", "huyện"),
        ("Vũ Thư", "huyện"),
    ],
}
COMMUNE_STEMS = [
    "An",
    "Bình",
    "Châu",
    "Đông",
    "Hòa",
    "Hưng",
    "Khánh",
    "Lạc",
    "Minh",
    "Nam",
    "Phú",
    "Quang",
    "Tân",
    "Thanh",
    "Thụy",
    "Tiên",
    "Trung",
    "Văn",
    "Vĩnh",
    "Xuân",
    "Yên",
    "Đức",
]
COMMUNE_TAILS = [
    "Lâm",
    "Thịnh",
    "Phong",
    "Hòa",
    "Tiến",
    "Thành",
    "Hưng",
    "Long",
    "Sơn",
    "Hải",
    "Mỹ",
    "Lợi",
    "Phúc",
    "Quý",
    "Bảo",
    "An",
    "Định",
    "Nghĩa",
]


def main() -> None:
    rng = random.Random(33)
    units: list[dict[str, object]] = []
    lineage: list[dict[str, str]] = []

    def add(**u: object) -> None:
        units.append(
            {"valid_from": "2000-01-01", "valid_to": None, "aliases": [], "external_codes": {}} | u
        )

    for i, name in enumerate(CITIES + PROVINCES, start=1):
        kind = "thành phố" if name in CITIES else "tỉnh"
        code = f"P{i:02d}"
        add(
            id=code,
            name=f"{'Thành phố' if kind == 'thành phố' else 'Tỉnh'} {name}",
            level="province",
            kind=kind,
            parent_id=None,
            valid_from="2000-01-01" if name in UNCHANGED else MERGER_DAY,
        )

    demo = "P21"  # Hưng Yên in the list above (6 cities + index 15)
    assert units[20]["name"] == "Tỉnh Hưng Yên"
    units[20]["external_codes"] = {"demo-igate": "000.00.00.H33"}
    units[20]["aliases"] = ["UBND tỉnh", "Ủy ban nhân dân tỉnh"]
    for old, name in (("HYC", "Tỉnh Hưng Yên (trước 01/7/2025)"), ("TBC", "Tỉnh Thái Bình")):
        add(
            id=old,
            name=name,
            level="province",
            kind="tỉnh",
            parent_id=None,
            valid_to=LAST_DAY_BEFORE,
        )
        lineage.append(
            {"from_id": old, "to_id": demo, "kind": "merged_into", "effective_on": MERGER_DAY}
        )

    for n, (suffix, name, aliases) in enumerate(DEPARTMENTS_NEW, start=1):
        level, kind = ("department", "sở")
        if suffix == "TTPVHCC":
            kind = "trung tâm"
        elif suffix in ("VP", "TTR"):
            kind = "cơ quan"
        add(
            id=f"{demo}.{suffix}",
            name=name,
            level=level,
            kind=kind,
            parent_id=demo,
            aliases=aliases,
            valid_from=MERGER_DAY if suffix in NEW_IN_2025 else "2000-01-01",
            external_codes={"demo-igate": f"000.{n:02d}.00.H33"},
        )
    for n, (suffix, name, into) in enumerate(DEPARTMENTS_OLD, start=40):
        add(
            id=f"{demo}.{suffix}",
            name=name,
            level="department",
            kind="sở",
            parent_id=demo,
            valid_to=LAST_DAY_BEFORE,
            external_codes={"demo-igate": f"000.{n:02d}.00.H33"},
        )
        for target in into:
            lineage.append(
                {
                    "from_id": f"{demo}.{suffix}",
                    "to_id": f"{demo}.{target}",
                    "kind": "merged_into",
                    "effective_on": MERGER_DAY,
                }
            )

    districts: list[str] = []
    for old, rows in OLD_DISTRICTS.items():
        for n, (name, kind) in enumerate(rows, start=1):
            did = f"{old}.D{n:02d}"
            districts.append(did)
            label = name if name.startswith("Thành phố") else f"{kind.capitalize()} {name}"
            add(
                id=did,
                name=f"UBND {label}",
                level="district",
                kind=kind,
                parent_id=old,
                aliases=[name],
                valid_to=LAST_DAY_BEFORE,
            )

    seen: set[str] = set()
    communes = 0
    while communes < 104:
        nm = f"{rng.choice(COMMUNE_STEMS)} {rng.choice(COMMUNE_TAILS)}"
        if nm in seen:
            continue
        seen.add(nm)
        communes += 1
        kind = "phường" if communes % 6 == 0 else "xã"
        cid = f"{demo}.C{communes:03d}"
        add(
            id=cid,
            name=f"{kind.capitalize()} {nm}",
            level="commune",
            kind=kind,
            parent_id=demo,
            aliases=[f"UBND {kind} {nm}"],
            external_codes={"demo-igate": f"{communes:03d}.00.00.H33"},
        )
        # Each new commune is built from the commune-level area of one or two old districts.
        for d in rng.sample(districts, k=1 if communes % 3 else 2):
            lineage.append(
                {"from_id": d, "to_id": cid, "kind": "split_into", "effective_on": MERGER_DAY}
            )

    out = {
        "generated_by": "scripts/make_reference_units.py",
        "demo_province_id": demo,
        "units": units,
        "lineage": lineage,
    }
    path = Path(__file__).resolve().parents[1] / "shared" / "reference" / "units.json"
    path.write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {len(units)} units, {len(lineage)} lineage edges to {path}")


if __name__ == "__main__":
    main()
