"""The dossier hot path: a page body decoded by msgspec straight into typed Structs (only the
fields normalisation reads; everything else, e.g. `QuaTrinhXuLy`, is skipped in C without
building Python objects), checked with the rules of `normalise.normalise_dossier`, and turned
into COPY rows plus event JSON without building pydantic models.

The fast path is conservative: it accepts a record only when it is certain that
`normalise_dossier` would accept it *and* produce the same record. Anything unusual (a value of
an unexpected type or format, a non-canonical date, any reason for rejection) is *deferred*:
the caller runs the reference normaliser on that record's raw JSON, so rejections and their
reasons come from exactly one implementation. A page the typed decoder cannot read at all
(not the expected envelope, an item that is not an object) goes through the reference path
whole. In a page with a NUL escape, records holding a NUL anywhere are deferred.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import msgspec

from services.ingest.domain.normalise import EARLIEST, FUTURE_TOLERANCE, VN, _positive

_FALSE: tuple[Any, ...] = (None, "", 0, "0", False, "false", "False")
_TRUE: tuple[Any, ...] = (1, "1", True, "true", "True")
_REUSED: tuple[Any, ...] = (1, "1", True)
_EARLIEST = EARLIEST.strftime("%Y%m%d%H%M%S")
_fromiso = datetime.fromisoformat
_is_nfc = unicodedata.is_normalized


class Supplement(msgspec.Struct, gc=False):
    NgayYeuCauBoSung: Any = None
    NgayTiepNhanBoSung: Any = None


class Fee(msgspec.Struct, gc=False):
    Gia: Any = None


class Component(msgspec.Struct, gc=False):
    DuocTaiSuDung: Any = None


class Result(msgspec.Struct, gc=False):
    DuongDanTepTinKetQua: Any = None


class Apology(msgspec.Struct, gc=False):
    pass


class RawDossier(msgspec.Struct, gc=False):
    """The national fields `normalise_dossier` reads (a missing field reads as None)."""

    MaHoSo: Any = None
    MaDonVi: Any = None
    MaTTHC: Any = None
    MaLinhVuc: Any = None
    KenhThucHien: Any = None
    TrangThaiHoSo: Any = None
    NgayNopHoSo: Any = None
    NgayTiepNhan: Any = None
    NgayHenTra: Any = None
    NgayKetThucXuLy: Any = None
    NgayTra: Any = None
    NgayTuChoi: Any = None
    NgayCapNhat: Any = None
    DuocThanhToanTrucTuyen: Any = None
    HoSoCoThanhPhanSoHoa: Any = None
    TaiKhoanDuocXacThucVoiVNeID: Any = None
    DaDongBoDVCQG: Any = None
    DanhSachHoSoBoSung: list[Supplement] | str | None = None
    DanhSachLePhi: list[Fee] | str | None = None
    DanhSachThanhPhanHoSo: list[Component] | str | None = None
    DanhSachGiayToKetQua: list[Result] | str | None = None
    DanhSachPhieuXinLoi: list[Apology] | str | None = None


class DossierPage(msgspec.Struct, gc=False):
    items: list[RawDossier]
    next_cursor: str | None = None


class DossierOut(msgspec.Struct):
    """`shared.events.payloads.DossierRecord` field for field, in its order (its JSON is the
    same; a test checks both ways)."""

    source_id: str
    code: str
    unit_id: str
    procedure_code: str
    field_code: str | None
    channel: int
    status: int
    submitted_at: datetime | None
    received_at: datetime | None
    due_at: datetime | None
    finished_at: datetime | None
    returned_at: datetime | None
    rejected_at: datetime | None
    supplement_count: int
    supplement_days: float
    apology_count: int
    has_fee: bool
    paid_online: int
    digitised: bool
    reused_data: bool
    has_e_result: bool
    synced_national: bool
    vneid_verified: bool
    source_updated_at: datetime


page_decoder = msgspec.json.Decoder(DossierPage)
record_encoder = msgspec.json.Encoder()


class Defer(Exception):
    """This record needs the reference normaliser."""


_DEFER = Defer()


def future_limit(now: datetime) -> str:
    """`now` + tolerance as VN `yyyyMMddHHmmss` (seconds truncated: a whole-second timestamp is
    after the exact limit iff it is after the truncated one)."""
    return (now + FUTURE_TOLERANCE).astimezone(VN).strftime("%Y%m%d%H%M%S")


def _ts(value: Any, future: str) -> datetime | None:
    """A `yyyyMMddHHmmss` (VN) timestamp within range, None for absent, else defer."""
    if value is None or value == "":
        return None
    if (
        type(value) is not str
        or len(value) != 14
        or not value.isascii()
        or not value.isdigit()
        or value < _EARLIEST
        or value > future
    ):
        raise _DEFER
    try:
        return _fromiso(
            f"{value[:4]}-{value[4:6]}-{value[6:8]}T{value[8:10]}:{value[10:12]}:{value[12:14]}"
            "+07:00"
        )
    except ValueError:
        raise _DEFER from None


def _text(value: Any) -> str:
    if type(value) is not str or not value:
        raise _DEFER
    return (
        value if value.isascii() or _is_nfc("NFC", value) else unicodedata.normalize("NFC", value)
    )


def _flag(value: Any) -> bool:
    if value in _FALSE:
        return False
    if value in _TRUE:
        return True
    raise _DEFER


def _list(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    if type(value) is not list:
        raise _DEFER
    return value


def fast_dossier(
    r: RawDossier, source_id: str, agencies: Mapping[str, str], future: str
) -> tuple[Any, ...]:
    """The record's row (in `DossierRecord` field order), or raises `Defer`."""
    code = r.MaHoSo
    if type(code) is not str or not code.strip():
        raise _DEFER
    if not code.isascii():
        code = unicodedata.normalize("NFC", code)
    agency = r.MaDonVi
    if type(agency) is not str:
        raise _DEFER
    unit_id = agencies.get(agency)
    if unit_id is None:
        raise _DEFER
    procedure_code = _text(r.MaTTHC)
    field_code = r.MaLinhVuc
    field_code = None if field_code is None or field_code == "" else _text(field_code)
    channel = r.KenhThucHien
    if type(channel) is not int or not 1 <= channel <= 3:
        raise _DEFER
    status = r.TrangThaiHoSo
    if type(status) is not int or not 1 <= status <= 10:
        raise _DEFER
    submitted = _ts(r.NgayNopHoSo, future)
    received = _ts(r.NgayTiepNhan, future)
    due = _ts(r.NgayHenTra, future)
    finished = _ts(r.NgayKetThucXuLy, future)
    returned = _ts(r.NgayTra, future)
    rejected = _ts(r.NgayTuChoi, future)
    updated = _ts(r.NgayCapNhat, future)
    if updated is None:
        raise _DEFER
    paid = r.DuocThanhToanTrucTuyen
    if paid is None or paid == "":
        paid = 0
    elif type(paid) is not int or not 0 <= paid <= 2:
        raise _DEFER
    if finished is not None and (
        (received is not None and received > finished)
        or (submitted is not None and submitted > finished)
    ):
        raise _DEFER
    supplements = _list(r.DanhSachHoSoBoSung)
    supplement_days = 0.0
    for s in supplements:
        asked = _ts(s.NgayYeuCauBoSung, future)
        back = _ts(s.NgayTiepNhanBoSung, future) or updated
        if asked and back and back > asked:
            supplement_days += (back - asked).total_seconds() / 86_400
    fees = _list(r.DanhSachLePhi)
    components = _list(r.DanhSachThanhPhanHoSo)
    results = _list(r.DanhSachGiayToKetQua)
    apologies = _list(r.DanhSachPhieuXinLoi)
    digitised = _flag(r.HoSoCoThanhPhanSoHoa)
    vneid = _flag(r.TaiKhoanDuocXacThucVoiVNeID)
    synced = _flag(r.DaDongBoDVCQG)
    return (
        source_id, code, unit_id, procedure_code, field_code, channel, status,
        submitted, received, due, finished, returned, rejected,
        len(supplements), round(supplement_days, 3), len(apologies),
        any(_positive(f.Gia) for f in fees), paid, digitised,
        any(c.DuocTaiSuDung in _REUSED for c in components),
        any(bool(d.DuongDanTepTinKetQua) for d in results),
        synced, vneid, updated,
    )  # fmt: skip


def record_json(row: tuple[Any, ...]) -> str:
    """The row as `DossierRecord` JSON."""
    return record_encoder.encode(DossierOut(*row)).decode()


def decode_page(body: bytes) -> DossierPage | None:
    """The typed page, or None when the reference path must read it (see module doc)."""
    try:
        return page_decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
