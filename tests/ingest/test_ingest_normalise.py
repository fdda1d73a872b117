"""Normalisation of national-field records, and the reasons records are rejected for."""

from __future__ import annotations

import copy
import unicodedata
from datetime import datetime
from typing import Any

import pytest

from services.ingest.domain.agencies import mapping_from_registry
from services.ingest.domain.normalise import (
    VN,
    Rejection,
    normalise_dossier,
    normalise_petition,
    normalise_procedure,
    parse_datetime,
)
from shared.events.payloads import DossierRecord, PetitionRecord, ProcedureRecord

NOW = datetime(2026, 10, 1, 8, 0, tzinfo=VN)
AGENCIES = {"000.02.00.H33": "P21.SNV", "102.00.00.H33": "P21.C102"}

DOSSIER: dict[str, Any] = {
    "MaHoSo": "102.00.00.H33-260408-0001",
    "MaTTHC": "1.006032",
    "TenTTHC": "Đăng ký khai sinh",
    "MaLinhVuc": "LV027",
    "KenhThucHien": 2,
    "MaDonVi": "102.00.00.H33",
    "NgayNopHoSo": "20260408095058",
    "NgayTiepNhan": "20260408122141",
    "NgayHenTra": "20260415170000",
    "NgayKetThucXuLy": "20260414215049",
    "NgayTra": "20260415090417",
    "NgayTuChoi": "",
    "TrangThaiHoSo": 10,
    "HoSoCoThanhPhanSoHoa": 1,
    "DuocThanhToanTrucTuyen": 2,
    "TaiKhoanDuocXacThucVoiVNeID": 1,
    "DaDongBoDVCQG": 1,
    "DanhSachLePhi": [{"TenPhiLePhi": "Lệ phí", "Gia": 8000}],
    "DanhSachThanhPhanHoSo": [{"TenThanhPhan": "Tờ khai", "DuocSoHoa": 1, "DuocTaiSuDung": 1}],
    "DanhSachHoSoBoSung": [
        {
            "NgayYeuCauBoSung": "20260409080000",
            "NgayTiepNhanBoSung": "20260411200000",
            "NgayHenTraTruoc": "20260413170000",
            "NgayHenTraMoi": "20260415170000",
        }
    ],
    "DanhSachPhieuXinLoi": [],
    "DanhSachGiayToKetQua": [
        {"TenGiayTo": "Trích lục", "DuongDanTepTinKetQua": "https://x/kq.pdf"}
    ],
    "QuaTrinhXuLy": [],
    "NgayCapNhat": "20260415093138",
}


def dossier(**changes: Any) -> dict[str, Any]:
    raw = copy.deepcopy(DOSSIER)
    raw.update(changes)
    return raw


def reject(raw: Any) -> Rejection:
    out = normalise_dossier(raw, source_id="demo", agencies=AGENCIES, now=NOW)
    assert isinstance(out, Rejection), out
    return out


def test_valid_dossier_maps_every_field() -> None:
    rec = normalise_dossier(DOSSIER, source_id="demo", agencies=AGENCIES, now=NOW)
    assert isinstance(rec, DossierRecord)
    assert rec.code == "102.00.00.H33-260408-0001"
    assert rec.unit_id == "P21.C102"
    assert rec.procedure_code == "1.006032" and rec.field_code == "LV027"
    assert rec.channel == 2 and rec.status == 10
    assert rec.submitted_at == datetime(2026, 4, 8, 9, 50, 58, tzinfo=VN)
    assert rec.due_at == datetime(2026, 4, 15, 17, 0, tzinfo=VN)
    assert rec.rejected_at is None
    assert rec.supplement_count == 1 and rec.supplement_days == pytest.approx(2.5)
    assert rec.apology_count == 0
    assert rec.has_fee and rec.paid_online == 2
    assert rec.digitised and rec.reused_data and rec.has_e_result
    assert rec.synced_national and rec.vneid_verified
    assert rec.source_updated_at == datetime(2026, 4, 15, 9, 31, 38, tzinfo=VN)
    # A constructed record round-trips through the contract's own validation.
    assert DossierRecord.model_validate(rec.model_dump()) == rec


def test_text_is_nfc_normalised_and_otherwise_exact() -> None:
    nfd_code = unicodedata.normalize("NFD", "Hồ-sơ-0001 ")
    rec = normalise_dossier(dossier(MaHoSo=nfd_code), source_id="demo", agencies=AGENCIES, now=NOW)
    assert isinstance(rec, DossierRecord)
    assert rec.code == unicodedata.normalize("NFC", nfd_code)
    assert rec.code.endswith(" ")  # not trimmed
    assert rec.code != nfd_code


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"MaHoSo": ""}, "missing_code"),
        ({"MaHoSo": None}, "missing_code"),
        ({"MaDonVi": "999.99.99.H99"}, "unknown_agency"),
        ({"MaDonVi": ""}, "missing_agency"),
        ({"MaTTHC": ""}, "missing_procedure_code"),
        ({"TenTTHC": "Đăng\x00ký"}, "nul_byte"),
        ({"NgayNopHoSo": "19000101000000"}, "date_before_2000"),
        ({"NgayTiepNhan": "20300101000000"}, "date_in_future"),
        ({"NgayTiepNhan": "2026-13-45"}, "invalid_date"),
        ({"NgayKetThucXuLy": "20260401000000"}, "received_after_finished"),
        ({"TrangThaiHoSo": "đang xử lý"}, "invalid_status"),
        ({"TrangThaiHoSo": 11}, "invalid_status"),
        ({"KenhThucHien": 4}, "invalid_channel"),
        ({"NgayCapNhat": ""}, "missing_date"),
        ({"DanhSachLePhi": "none"}, "invalid_list"),
        ({"HoSoCoThanhPhanSoHoa": "maybe"}, "invalid_flag"),
        ({"DuocThanhToanTrucTuyen": 5}, "invalid_paid_online"),
    ],
)
def test_rejections_carry_reasons(changes: dict[str, Any], reason: str) -> None:
    rej = reject(dossier(**changes))
    assert reason in rej.kinds, rej.reasons
    assert rej.raw == dossier(**changes)  # payload kept as received


def test_rejection_lists_all_reasons_and_keeps_code() -> None:
    rej = reject(dossier(MaDonVi="X", NgayNopHoSo="19991231235959", TrangThaiHoSo=0))
    assert rej.code == DOSSIER["MaHoSo"]
    assert set(rej.kinds) >= {"unknown_agency", "date_before_2000", "invalid_status"}


def test_nul_byte_in_nested_list_is_found() -> None:
    raw = dossier(QuaTrinhXuLy=[{"NoiDungXuLy": "ok"}, {"NoiDungXuLy": "x\x00"}])
    rej = reject(raw)
    assert rej.reasons[0] == "nul_byte:QuaTrinhXuLy[1].NoiDungXuLy"


def test_not_an_object() -> None:
    assert reject(["MaHoSo"]).kinds == ("not_an_object",)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("20260102030405", datetime(2026, 1, 2, 3, 4, 5, tzinfo=VN)),
        ("20260102", datetime(2026, 1, 2, tzinfo=VN)),
        ("2026-01-02T03:04:05", datetime(2026, 1, 2, 3, 4, 5, tzinfo=VN)),
        ("2026-01-01T20:04:05Z", datetime(2026, 1, 2, 3, 4, 5, tzinfo=VN)),
        ("02/01/2026 03:04:05", datetime(2026, 1, 2, 3, 4, 5, tzinfo=VN)),
        ("02/01/2026", datetime(2026, 1, 2, tzinfo=VN)),
        ("20261302030405", None),
        ("hôm qua", None),
    ],
)
def test_parse_datetime(text: str, expected: datetime | None) -> None:
    assert parse_datetime(text) == expected


def test_procedure_normalisation_and_online_level() -> None:
    raw = {
        "MaTTHC": "2.001037",
        "TenTTHC": unicodedata.normalize("NFD", "Cấp Giấy phép bán lẻ rượu"),
        "MaLinhVuc": "LV001",
        "MaDonVi": "000.02.00.H33",
        "MucDoDVC": 4,
        "DVCTrucTuyen": "",
        "CoPhiLePhi": 1,
        "LePhi": 50000,
        "LoaiKetQua": "Giấy phép",
        "NgayCongBo": "20251126",
        "HanCongBo": "20251201",
        "NgayCongKhai": "20251128",
        "HanCongKhai": "20251201",
        "NoiDungDayDu": 0,
        "NgayCapNhat": "20251126090000",
    }
    rec = normalise_procedure(raw, source_id="demo", agencies=AGENCIES, now=NOW)
    assert isinstance(rec, ProcedureRecord)
    assert rec.name == "Cấp Giấy phép bán lẻ rượu" and unicodedata.is_normalized("NFC", rec.name)
    assert rec.online_level == "full" and rec.has_fee and not rec.content_complete
    assert rec.unit_id == "P21.SNV" and str(rec.published_on) == "2025-11-26"
    partial = normalise_procedure(
        {**raw, "DVCTrucTuyen": "Một phần"}, source_id="demo", agencies=AGENCIES, now=NOW
    )
    assert isinstance(partial, ProcedureRecord) and partial.online_level == "partial"
    bad = normalise_procedure(
        {**raw, "TenTTHC": "", "NgayCongBo": "18990101"},
        source_id="demo",
        agencies=AGENCIES,
        now=NOW,
    )
    assert isinstance(bad, Rejection)
    assert set(bad.kinds) == {"missing_name", "date_before_2000"}


def test_petition_normalisation() -> None:
    raw = {
        "MaPAKN": "PAKN-20260101-000001",
        "TieuDe": "Phản ánh",
        "MaDonVi": "102.00.00.H33",
        "NgayTiepNhan": "20260101080000",
        "HanXuLy": "20260115170000",
        "NgayXuLy": "20260110080000",
        "TrangThai": 3,
        "DanhGiaHaiLong": 0,
        "NgayCapNhat": "20260112080000",
    }
    rec = normalise_petition(raw, source_id="demo", agencies=AGENCIES, now=NOW)
    assert isinstance(rec, PetitionRecord)
    assert rec.satisfied is False and rec.unit_id == "P21.C102"
    assert PetitionRecord.model_validate(rec.model_dump()) == rec
    unrated = normalise_petition(
        {**raw, "DanhGiaHaiLong": None}, source_id="demo", agencies=AGENCIES, now=NOW
    )
    assert isinstance(unrated, PetitionRecord) and unrated.satisfied is None
    bad = normalise_petition(
        {**raw, "NgayXuLy": "20251231080000"}, source_id="demo", agencies=AGENCIES, now=NOW
    )
    assert isinstance(bad, Rejection) and bad.kinds == ("handled_before_received",)


def test_registry_mapping_covers_current_and_dissolved_units() -> None:
    mapping = mapping_from_registry("demo-igate")
    assert mapping["000.00.00.H33"] == "P21"
    assert mapping["000.02.00.H33"] == "P21.SNV"
    assert mapping["000.45.00.H33"] == "P21.SLDTBXH"  # dissolved 2025-02-28, still maps
    assert mapping["000.00.02.H33"] == "HYC.D02"  # Văn Giang district, abolished 2025-06-30
    assert mapping["001.00.02.H33"].startswith("OW")  # one of its old wards
    # the province, 14 + 7 dissolved departments, 104 communes, 18 old districts, 381 old wards
    assert len(mapping) == 525
