"""Static, deterministic reference data of the simulated one-stop system.

Agencies come from the unit registry seed (`shared/reference/units.json`, external codes of the
`demo-igate` source); procedure names and fields are Vietnamese, written as a provincial
catalogue would list them.
"""

from __future__ import annotations

import functools
import json
import random
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

UNITS_PATH = Path(__file__).resolve().parents[3] / "shared" / "reference" / "units.json"
SOURCE_KEY = "demo-igate"


@dataclass(frozen=True, slots=True)
class Agency:
    code: str  # MaDonVi at the source
    name: str
    unit_id: str  # our id; the simulator only uses it for the /agencies listing
    level: str  # province | department | district | commune
    valid_from: date | None = None
    valid_to: date | None = None  # None: in force today
    successors: tuple[str, ...] = ()  # codes of the agencies that took over (dissolved ones)
    parent_code: str | None = None  # an old ward's district (dissolved ones)


@dataclass(frozen=True, slots=True)
class Procedure:
    code: str  # MaTTHC
    name: str  # TenTTHC
    field_code: str  # MaLinhVuc
    field_name: str
    agency_code: str  # agency publishing/resolving it (communes share the province's list)
    commune_level: bool  # resolved by every commune rather than by `agency_code`
    online_level: str  # none | partial | full
    fee: int  # VND, 0 = no fee
    fee_name: str
    result_type: str
    days: int  # statutory processing time in working days
    published_on: date
    publish_due_on: date
    public_on: date
    public_due_on: date
    content_complete: bool
    weight: float  # relative dossier volume


def load_agencies(path: Path = UNITS_PATH, source_key: str = SOURCE_KEY) -> list[Agency]:
    """Current (not dissolved) units of the demo province that have a code at the source."""
    return [a for a in _agencies(path, source_key) if a.valid_to is None]


def load_dissolved_agencies(path: Path = UNITS_PATH, source_key: str = SOURCE_KEY) -> list[Agency]:
    """The units the source's history still names: the departments merged on 1 March 2025 and
    the districts and wards of Hưng Yên and Thái Bình abolished on 1 July 2025, each with the
    codes of its successors, so a dossier dated before the change carries the old code."""
    return [a for a in _agencies(path, source_key) if a.valid_to is not None]


@functools.cache
def _agencies(path: Path, source_key: str) -> tuple[Agency, ...]:
    data = json.loads(path.read_bytes())
    units = data["units"]
    code_of = {u["id"]: c for u in units if (c := (u.get("external_codes") or {}).get(source_key))}
    successors: dict[str, list[str]] = {}
    for e in data.get("lineage", []):
        if e["from_id"] in code_of and e["to_id"] in code_of and e.get("weight", 1.0) > 0:
            successors.setdefault(e["from_id"], []).append(code_of[e["to_id"]])
    out = [
        Agency(
            code=code_of[u["id"]],
            name=u["name"],
            unit_id=u["id"],
            level=u["level"],
            valid_from=date.fromisoformat(u["valid_from"]) if u.get("valid_from") else None,
            valid_to=date.fromisoformat(u["valid_to"]) if u.get("valid_to") else None,
            successors=tuple(sorted(successors.get(u["id"], ()))),
            parent_code=code_of.get(u.get("parent_id") or ""),
        )
        for u in units
        if u["id"] in code_of
    ]
    out.sort(key=lambda a: a.code)
    return tuple(out)


# Fields (lĩnh vực) per department id suffix, each with the subjects of its procedures.
_DEPARTMENT_FIELDS: dict[str, list[tuple[str, list[str]]]] = {
    "VP": [("Công báo", ["đăng Công báo văn bản quy phạm pháp luật"])],
    "SNV": [
        ("Công chức, viên chức", ["xét tuyển viên chức", "thi nâng ngạch công chức"]),
        (
            "Thi đua, khen thưởng",
            ["tặng Bằng khen của Chủ tịch UBND tỉnh", "tặng danh hiệu Tập thể lao động xuất sắc"],
        ),
        (
            "Lao động, tiền lương",
            ["giấy phép lao động cho người lao động nước ngoài", "đăng ký nội quy lao động"],
        ),
    ],
    "STP": [
        ("Lý lịch tư pháp", ["Phiếu lý lịch tư pháp số 1", "Phiếu lý lịch tư pháp số 2"]),
        ("Công chứng", ["đăng ký hành nghề công chứng", "thành lập Văn phòng công chứng"]),
        ("Luật sư", ["đăng ký hoạt động của tổ chức hành nghề luật sư"]),
    ],
    "STC": [
        (
            "Thành lập và hoạt động doanh nghiệp",
            [
                "đăng ký thành lập doanh nghiệp tư nhân",
                "đăng ký thành lập công ty TNHH một thành viên",
                "đăng ký thay đổi nội dung đăng ký doanh nghiệp",
            ],
        ),
        (
            "Đầu tư tại Việt Nam",
            [
                "quyết định chủ trương đầu tư của UBND cấp tỉnh",
                "điều chỉnh Giấy chứng nhận đăng ký đầu tư",
            ],
        ),
    ],
    "SCT": [
        (
            "Lưu thông hàng hóa trong nước",
            [
                "Giấy phép bán lẻ sản phẩm rượu",
                "Giấy chứng nhận đủ điều kiện cửa hàng bán lẻ LPG chai",
            ],
        ),
        ("An toàn thực phẩm", ["Giấy chứng nhận cơ sở đủ điều kiện an toàn thực phẩm"]),
    ],
    "SNNMT": [
        (
            "Đất đai",
            [
                "đăng ký biến động quyền sử dụng đất",
                "cấp Giấy chứng nhận quyền sử dụng đất lần đầu",
            ],
        ),
        ("Môi trường", ["Giấy phép môi trường", "thẩm định báo cáo đánh giá tác động môi trường"]),
        ("Thú y", ["Giấy chứng nhận cơ sở an toàn dịch bệnh động vật"]),
    ],
    "SXD": [
        (
            "Hoạt động xây dựng",
            ["Giấy phép xây dựng công trình cấp III", "chứng chỉ hành nghề hoạt động xây dựng"],
        ),
        (
            "Đường bộ",
            ["đổi Giấy phép lái xe do ngành Giao thông vận tải cấp", "Giấy phép lái xe quốc tế"],
        ),
    ],
    "SKHCN": [
        (
            "Hoạt động khoa học và công nghệ",
            ["đăng ký kết quả thực hiện nhiệm vụ khoa học và công nghệ"],
        )
    ],
    "SGDDT": [
        (
            "Văn bằng, chứng chỉ",
            ["chỉnh sửa nội dung văn bằng, chứng chỉ", "cấp bản sao văn bằng, chứng chỉ từ sổ gốc"],
        ),
        ("Giáo dục và Đào tạo", ["cho phép trung tâm ngoại ngữ, tin học hoạt động giáo dục"]),
    ],
    "SYT": [
        (
            "Khám bệnh, chữa bệnh",
            ["giấy phép hành nghề khám bệnh, chữa bệnh", "giấy phép hoạt động phòng khám đa khoa"],
        ),
        ("Dược phẩm", ["chứng chỉ hành nghề dược", "Giấy chứng nhận đủ điều kiện kinh doanh dược"]),
    ],
    "SVHTTDL": [
        ("Du lịch", ["thẻ hướng dẫn viên du lịch nội địa", "công nhận hạng cơ sở lưu trú du lịch"]),
        ("Văn hóa cơ sở", ["Giấy phép tổ chức lễ hội", "thông báo tổ chức biểu diễn nghệ thuật"]),
    ],
    "SDTTG": [
        (
            "Tôn giáo",
            ["đăng ký hoạt động tín ngưỡng", "thông báo tổ chức quyên góp của cơ sở tín ngưỡng"],
        )
    ],
    "TTR": [
        (
            "Tiếp công dân, khiếu nại, tố cáo",
            ["giải quyết khiếu nại lần đầu", "tiếp nhận, xử lý đơn tố cáo"],
        )
    ],
    "TTPVHCC": [("Hành chính công", ["cấp bản sao điện tử từ sổ gốc"])],
}

# Commune-level procedures (the bulk of dossiers), resolved by every commune.
_COMMUNE_FIELDS: list[tuple[str, list[tuple[str, float]]]] = [
    (
        "Hộ tịch",
        [
            ("Đăng ký khai sinh", 30.0),
            ("Đăng ký kết hôn", 8.0),
            ("Đăng ký khai tử", 6.0),
            ("Cấp bản sao trích lục hộ tịch", 12.0),
            ("Cấp Giấy xác nhận tình trạng hôn nhân", 10.0),
            ("Đăng ký thay đổi, cải chính, bổ sung thông tin hộ tịch", 3.0),
        ],
    ),
    (
        "Chứng thực",
        [
            ("Chứng thực bản sao từ bản chính", 40.0),
            ("Chứng thực chữ ký trong giấy tờ, văn bản", 15.0),
            ("Chứng thực hợp đồng, giao dịch liên quan đến tài sản là động sản", 4.0),
        ],
    ),
    (
        "Bảo trợ xã hội",
        [
            ("Trợ giúp xã hội thường xuyên tại cộng đồng", 3.0),
            ("Hỗ trợ chi phí mai táng", 1.5),
        ],
    ),
    ("Người có công", [("Giải quyết chế độ trợ cấp thờ cúng liệt sĩ", 1.0)]),
    (
        "Thành lập và hoạt động của hộ kinh doanh",
        [
            ("Đăng ký thành lập hộ kinh doanh", 5.0),
            ("Đăng ký thay đổi nội dung đăng ký hộ kinh doanh", 2.0),
        ],
    ),
    ("Đất đai", [("Hòa giải tranh chấp đất đai", 1.0), ("Đăng ký đất đai lần đầu", 4.0)]),
    ("Hoạt động xây dựng", [("Cấp giấy phép xây dựng nhà ở riêng lẻ", 3.0)]),
]

_VERBS = ["Cấp", "Cấp lại", "Điều chỉnh", "Gia hạn"]
_RESULT_TYPES = [
    "Giấy phép",
    "Giấy chứng nhận",
    "Quyết định",
    "Văn bản xác nhận",
    "Bản sao",
    "Trích lục",
]


def build_procedures(agencies: list[Agency], rng: random.Random) -> list[Procedure]:
    province = next(a for a in agencies if a.level == "province")
    departments = {a.unit_id.split(".", 1)[1]: a for a in agencies if a.level == "department"}
    out: list[Procedure] = []
    seq = 0
    field_seq = 0

    def add(
        agency: Agency, field_code: str, field_name: str, name: str, weight: float, commune: bool
    ) -> None:
        nonlocal seq
        seq += 1
        level = rng.choices(["none", "partial", "full"], weights=[25, 35, 40])[0]
        fee = rng.choice([0, 0, 0, 10_000, 20_000, 50_000, 100_000, 500_000])
        published = date(2025, 7, 1) + _days(rng.randint(0, 200))
        public_on = published + _days(rng.choice([1, 2, 3, 5, 8, 12]))
        code = f"{1 + seq % 2}.{1000 + seq * 37 % 9000:06d}"
        out.append(
            Procedure(
                code=code,
                name=name,
                field_code=field_code,
                field_name=field_name,
                agency_code=agency.code,
                commune_level=commune,
                online_level=level,
                fee=fee,
                fee_name="Lệ phí" if fee < 100_000 else "Phí thẩm định",
                result_type=rng.choice(_RESULT_TYPES),
                days=rng.choice([1, 2, 3, 5, 7, 10, 15, 20]),
                published_on=published,
                publish_due_on=published + _days(5),
                public_on=public_on,
                public_due_on=published + _days(5),
                content_complete=rng.random() > 0.05,
                weight=weight,
            )
        )

    for suffix in sorted(departments):
        agency = departments[suffix]
        for field_name, subjects in _DEPARTMENT_FIELDS.get(suffix, []):
            field_seq += 1
            field_code = f"LV{field_seq:03d}"
            for subject in subjects:
                verbs = (
                    _VERBS
                    if subject[0].islower() or subject.startswith(("Giấy", "Phiếu"))
                    else [""]
                )
                for verb in verbs[: rng.randint(1, len(verbs))]:
                    name = f"{verb} {subject}".strip()
                    add(
                        agency,
                        field_code,
                        field_name,
                        name[0].upper() + name[1:],
                        rng.uniform(0.2, 1.5),
                        commune=False,
                    )
    for field_name, items in _COMMUNE_FIELDS:
        field_seq += 1
        field_code = f"LV{field_seq:03d}"
        for name, weight in items:
            add(province, field_code, field_name, name, weight, commune=True)
    return out


def _days(n: int) -> timedelta:
    return timedelta(days=n)
