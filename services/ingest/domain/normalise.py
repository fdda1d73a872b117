"""Raw national-field records → `DossierRecord` / `ProcedureRecord` / `PetitionRecord`.

A record either normalises or is rejected with *all* its reasons (so one quarantine entry says
everything wrong with it). Reasons are `kind` or `kind:detail` strings with a stable `kind`
(`missing_code`, `unknown_agency`, `nul_byte`, `invalid_date`, `date_before_2000`,
`date_in_future`, `received_after_finished`, …) usable as a metric label.

Text is NFC-normalised and otherwise kept exactly as the source sent it (no trimming, no case
changes). Timestamps without an offset are Vietnam time (UTC+7, no daylight saving).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Literal, TypeAlias, cast

from shared.events.payloads import DossierRecord, PetitionRecord, ProcedureRecord

VN = timezone(timedelta(hours=7))
EARLIEST = datetime(2000, 1, 1, tzinfo=VN)
FUTURE_TOLERANCE = timedelta(days=365)
Feed = Literal["dossiers", "procedures", "petitions"]
CODE_FIELDS: dict[str, str] = {"dossiers": "MaHoSo", "procedures": "MaTTHC", "petitions": "MaPAKN"}


@dataclass(frozen=True, slots=True)
class Rejection:
    """A record that cannot be stored: its code (if readable), why, and the raw payload (in
    national fields); `source`: the record as a vendor source sent it, before translation
    (None when the source sends national fields), so it can be translated again."""

    feed: Feed
    code: str | None
    reasons: tuple[str, ...]
    raw: Any
    source: Any = None

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(r.split(":", 1)[0] for r in self.reasons)


Record: TypeAlias = DossierRecord | ProcedureRecord | PetitionRecord
Normaliser: TypeAlias = Callable[..., "Record | Rejection"]


def nfc(value: str) -> str:
    return value if unicodedata.is_normalized("NFC", value) else unicodedata.normalize("NFC", value)


def find_nul(value: Any, path: str = "") -> str | None:
    """Path of the first string containing a NUL byte (PostgreSQL text cannot hold one)."""
    if isinstance(value, str):
        return path or "$" if "\x00" in value else None
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(k, str) and "\x00" in k:
                return f"{path}.{k!r}" if path else repr(k)
            hit = find_nul(v, f"{path}.{k}" if path else str(k))
            if hit:
                return hit
    elif isinstance(value, list):
        for i, v in enumerate(value):
            hit = find_nul(v, f"{path}[{i}]")
            if hit:
                return hit
    return None


class _Reader:
    """Reads typed fields of one raw record, collecting reasons instead of raising."""

    __slots__ = ("future", "raw", "reasons")

    def __init__(self, raw: Mapping[str, Any], now: datetime) -> None:
        self.raw = raw
        self.reasons: list[str] = []
        self.future = now + FUTURE_TOLERANCE

    def text(self, key: str, *, required: bool = False, reason: str = "") -> str | None:
        value = self.raw.get(key)
        if value is None or value == "":
            if required:
                self.reasons.append(reason or f"missing_field:{key}")
            return None
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            self.reasons.append(f"invalid_text:{key}")
            return None
        return nfc(value)

    def integer(
        self,
        key: str,
        allowed: range,
        reason: str,
        default: int | None = None,
    ) -> int | None:
        value = self.raw.get(key)
        if value is None or value == "":
            if default is None:
                self.reasons.append(f"{reason}:missing")
            return default
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value not in allowed:
            self.reasons.append(f"{reason}:{str(value)[:40]}")
            return default
        return value

    def flag(self, key: str) -> bool:
        value = self.raw.get(key)
        if value in (None, "", 0, "0", False, "false", "False"):
            return False
        if value in (1, "1", True, "true", "True"):
            return True
        self.reasons.append(f"invalid_flag:{key}")
        return False

    def ts(self, key: str, *, required: bool = False) -> datetime | None:
        return self.check_ts(key, self.raw.get(key), required=required)

    def check_ts(self, key: str, value: Any, *, required: bool = False) -> datetime | None:
        if value is None or value == "":
            if required:
                self.reasons.append(f"missing_date:{key}")
            return None
        dt = parse_datetime(value)
        if dt is None:
            self.reasons.append(f"invalid_date:{key}")
            return None
        if dt < EARLIEST:
            self.reasons.append(f"date_before_2000:{key}")
            return None
        if dt > self.future:
            self.reasons.append(f"date_in_future:{key}")
            return None
        return dt

    def day(self, key: str) -> date | None:
        value = self.raw.get(key)
        if value is None or value == "":
            return None
        dt = parse_datetime(value)
        if dt is None:
            self.reasons.append(f"invalid_date:{key}")
            return None
        if dt < EARLIEST or dt > self.future:
            self.reasons.append(
                f"{'date_before_2000' if dt < EARLIEST else 'date_in_future'}:{key}"
            )
            return None
        return dt.date()

    def items(self, key: str) -> list[dict[str, Any]]:
        value = self.raw.get(key)
        if value is None or value == "":
            return []
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.reasons.append(f"invalid_list:{key}")
            return []
        return value

    def unit(self, agencies: Mapping[str, str]) -> str | None:
        code = self.raw.get("MaDonVi")
        if code is None or code == "":
            self.reasons.append("missing_agency")
            return None
        unit = agencies.get(code) if isinstance(code, str) else None
        if unit is None:
            self.reasons.append(f"unknown_agency:{str(code)[:40]}")
        return unit


def parse_datetime(value: Any) -> datetime | None:
    """`yyyyMMddHHmmss`, `yyyyMMdd`, ISO 8601, or `dd/MM/yyyy[ HH:mm[:ss]]`; naive = VN time."""
    if not isinstance(value, str):
        return None
    try:
        n = len(value)
        if value.isdigit() and n in (14, 8):
            if n == 14:
                return datetime(
                    int(value[:4]),
                    int(value[4:6]),
                    int(value[6:8]),
                    int(value[8:10]),
                    int(value[10:12]),
                    int(value[12:14]),
                    tzinfo=VN,
                )
            return datetime(int(value[:4]), int(value[4:6]), int(value[6:8]), tzinfo=VN)
        if "/" in value:
            for pattern in ("%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y"):
                try:
                    return datetime.strptime(value, pattern).replace(tzinfo=VN)
                except ValueError:
                    continue
            return None
        dt = datetime.fromisoformat(value)
        return dt if dt.tzinfo is not None else dt.replace(tzinfo=VN)
    except ValueError:
        return None


def _prelude(feed: Feed, raw: Any, scan_nul: bool = True) -> tuple[str | None, list[str]]:
    """Code and structural reasons common to every feed. `scan_nul=False` skips the deep NUL
    scan when the caller knows the page has none (a JSON body without `\\u0000`)."""
    if not isinstance(raw, dict):
        return None, ["not_an_object"]
    reasons = []
    nul = find_nul(raw) if scan_nul else None
    if nul:
        reasons.append(f"nul_byte:{nul}")
    code = raw.get(CODE_FIELDS[feed])
    if not isinstance(code, str) or not code.strip():
        reasons.append(f"missing_code:{CODE_FIELDS[feed]}")
        code = None
    elif "\x00" in code:
        code = code.replace("\x00", "")
    return (nfc(code) if code else None), reasons


def normalise_dossier(
    raw: Any, *, source_id: str, agencies: Mapping[str, str], now: datetime, scan_nul: bool = True
) -> DossierRecord | Rejection:
    code, reasons = _prelude("dossiers", raw, scan_nul)
    if not isinstance(raw, dict):
        return Rejection("dossiers", None, tuple(reasons), raw)
    r = _Reader(raw, now)
    r.reasons = reasons
    unit_id = r.unit(agencies)
    procedure_code = r.text("MaTTHC", required=True, reason="missing_procedure_code")
    field_code = r.text("MaLinhVuc")
    channel = r.integer("KenhThucHien", range(1, 4), "invalid_channel")
    status = r.integer("TrangThaiHoSo", range(1, 11), "invalid_status")
    submitted = r.ts("NgayNopHoSo")
    received = r.ts("NgayTiepNhan")
    due = r.ts("NgayHenTra")
    finished = r.ts("NgayKetThucXuLy")
    returned = r.ts("NgayTra")
    rejected = r.ts("NgayTuChoi")
    updated = r.ts("NgayCapNhat", required=True)
    paid_online = r.integer("DuocThanhToanTrucTuyen", range(3), "invalid_paid_online", default=0)
    if received and finished and received > finished:
        r.reasons.append("received_after_finished")
    if submitted and finished and submitted > finished:
        r.reasons.append("submitted_after_finished")
    supplements = r.items("DanhSachHoSoBoSung")
    supplement_days = 0.0
    for i, s in enumerate(supplements):
        asked = r.check_ts(f"DanhSachHoSoBoSung[{i}].NgayYeuCauBoSung", s.get("NgayYeuCauBoSung"))
        back = (
            r.check_ts(f"DanhSachHoSoBoSung[{i}].NgayTiepNhanBoSung", s.get("NgayTiepNhanBoSung"))
            or updated
        )
        if asked and back and back > asked:
            supplement_days += (back - asked).total_seconds() / 86_400
    fees = r.items("DanhSachLePhi")
    components = r.items("DanhSachThanhPhanHoSo")
    results = r.items("DanhSachGiayToKetQua")
    apologies = r.items("DanhSachPhieuXinLoi")
    digitised = r.flag("HoSoCoThanhPhanSoHoa")
    vneid = r.flag("TaiKhoanDuocXacThucVoiVNeID")
    synced = r.flag("DaDongBoDVCQG")
    pds = r.flag("DongBoKhoDuLieuCaNhan")
    citizen = r.flag("SuDungDuLieuDanCu")
    if (
        r.reasons
        or code is None
        or unit_id is None
        or procedure_code is None
        or channel is None
        or status is None
        or updated is None
    ):
        return Rejection("dossiers", code, tuple(r.reasons), raw)
    return DossierRecord(
        source_id=source_id,
        code=code,
        unit_id=unit_id,
        procedure_code=procedure_code,
        field_code=field_code,
        channel=cast(Any, channel),
        status=status,
        submitted_at=submitted,
        received_at=received,
        due_at=due,
        finished_at=finished,
        returned_at=returned,
        rejected_at=rejected,
        supplement_count=len(supplements),
        supplement_days=round(supplement_days, 3),
        apology_count=len(apologies),
        has_fee=any(_positive(f.get("Gia")) for f in fees),
        paid_online=cast(Any, paid_online or 0),
        digitised=digitised,
        reused_data=any(c.get("DuocTaiSuDung") in (1, "1", True) for c in components),
        has_e_result=any(bool(d.get("DuongDanTepTinKetQua")) for d in results),
        synced_national=synced,
        vneid_verified=vneid,
        pds_synced=pds,
        citizen_data_used=citizen,
        source_updated_at=updated,
    )


_ONLINE_BY_LEVEL = {4: "full", 3: "partial", 2: "none", 1: "none"}
# ProcedureRecord flags of the portal's 2026 metrics and the national-style fields they read
_PROCEDURE_FLAGS = {
    "full_online_eligible": "DuDieuKienToanTrinh",
    "citizen_data_connected": "KetNoiDuLieuDanCu",
    "certification": "LaThuTucChungThuc",
    "e_certified_copy": "ChungThucBanSaoDienTu",
}
# PhanLoai of a petition: about procedures (TTHC), about staff (CBCCVC), other; else unknown
_PETITION_CATEGORY = {"TTHC": "tthc", "CBCCVC": "staff", "KHAC": "other"}
_ONLINE_BY_TEXT = {"toàn trình": "full", "một phần": "partial"}


def normalise_procedure(
    raw: Any, *, source_id: str, agencies: Mapping[str, str], now: datetime, scan_nul: bool = True
) -> ProcedureRecord | Rejection:
    code, reasons = _prelude("procedures", raw, scan_nul)
    if not isinstance(raw, dict):
        return Rejection("procedures", None, tuple(reasons), raw)
    r = _Reader(raw, now)
    r.reasons = reasons
    unit_id = r.unit(agencies)
    name = r.text("TenTTHC", required=True, reason="missing_name")
    field_code = r.text("MaLinhVuc")
    text_level = (r.text("DVCTrucTuyen") or "").lower()
    level = _ONLINE_BY_TEXT.get(text_level)
    if level is None:
        numeric = r.integer("MucDoDVC", range(1, 5), "invalid_online_level", default=2)
        level = _ONLINE_BY_LEVEL[numeric or 2]
    has_fee = r.flag("CoPhiLePhi") or _positive(raw.get("LePhi"))
    result_type = r.text("LoaiKetQua")
    published = r.day("NgayCongBo")
    publish_due = r.day("HanCongBo")
    public = r.day("NgayCongKhai")
    public_due = r.day("HanCongKhai")
    complete = raw.get("NoiDungDayDu")
    flags = {f: r.flag(name) for f, name in _PROCEDURE_FLAGS.items()}
    updated = r.ts("NgayCapNhat", required=True)
    if r.reasons or code is None or unit_id is None or name is None or updated is None:
        return Rejection("procedures", code, tuple(r.reasons), raw)
    return ProcedureRecord(
        source_id=source_id,
        code=code,
        name=name,
        field_code=field_code,
        unit_id=unit_id,
        online_level=cast(Any, level),
        has_fee=has_fee,
        result_type=result_type,
        published_on=published,
        publish_due_on=publish_due,
        public_on=public,
        public_due_on=public_due,
        content_complete=complete not in (0, "0", False),
        **flags,
        source_updated_at=updated,
    )


def normalise_petition(
    raw: Any, *, source_id: str, agencies: Mapping[str, str], now: datetime, scan_nul: bool = True
) -> PetitionRecord | Rejection:
    code, reasons = _prelude("petitions", raw, scan_nul)
    if not isinstance(raw, dict):
        return Rejection("petitions", None, tuple(reasons), raw)
    r = _Reader(raw, now)
    r.reasons = reasons
    unit_id = r.unit(agencies)
    received = r.ts("NgayTiepNhan", required=True)
    due = r.ts("HanXuLy")
    handled = r.ts("NgayXuLy")
    updated = r.ts("NgayCapNhat", required=True)
    rating = raw.get("DanhGiaHaiLong")
    satisfied: bool | None = None
    if rating in (1, "1", True):
        satisfied = True
    elif rating in (0, "0", False):
        satisfied = False
    elif rating not in (None, ""):
        r.reasons.append("invalid_rating")
    if received and handled and handled < received:
        r.reasons.append("handled_before_received")
    category = _PETITION_CATEGORY.get((r.text("PhanLoai") or "").upper())
    if r.reasons or code is None or unit_id is None or received is None or updated is None:
        return Rejection("petitions", code, tuple(r.reasons), raw)
    return PetitionRecord(
        source_id=source_id,
        code=code,
        unit_id=unit_id,
        received_at=received,
        due_at=due,
        handled_at=handled,
        satisfied=satisfied,
        category=cast(Any, category),
        source_updated_at=updated,
    )


NORMALISERS: dict[str, Normaliser] = {
    "dossiers": normalise_dossier,
    "procedures": normalise_procedure,
    "petitions": normalise_petition,
}


def normalise(
    feed: Feed, raw: Any, *, source_id: str, agencies: Mapping[str, str], now: datetime
) -> Record | Rejection:
    result: Record | Rejection = NORMALISERS[feed](
        raw, source_id=source_id, agencies=agencies, now=now
    )
    return result


def _positive(value: Any) -> bool:
    try:
        return float(value) > 0
    except (TypeError, ValueError):
        return False
