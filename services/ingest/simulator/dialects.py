"""The simulator's vendor dialects: the same generated dossiers in VNPT iGate's and OpenCPS's
shapes (our reading of their public integration code). The tables here are the simulator's own,
written apart from the connectors', so a test pulling through a connector checks its mapping
against an independent rendering."""

from __future__ import annotations

import hashlib
from typing import Any

# national TrangThaiHoSo → iGate dossierStatus (id, name)
IGATE_STATUS: dict[int, tuple[int, str]] = {
    1: (0, "Chờ tiếp nhận"), 2: (1, "Đã tiếp nhận"), 4: (2, "Đang xử lý"),
    5: (3, "Chờ bổ sung"), 6: (4, "Chờ thanh toán"), 9: (5, "Có kết quả"),
    10: (6, "Đã trả kết quả"), 7: (7, "Đã rút hồ sơ"), 8: (8, "Dừng xử lý"),
    3: (9, "Từ chối tiếp nhận"),
}  # fmt: skip
# national KenhThucHien → iGate applyMethod (id, name)
IGATE_CHANNEL: dict[int, tuple[int, str]] = {
    1: (0, "Trực tiếp"), 2: (1, "Trực tuyến"), 3: (2, "Bưu chính công ích"),
}  # fmt: skip
# A status of a deployment's own, standing for national 4 (processing): what the
# `unknown_status_rate` fault sends; the connectors' default vocabularies do not know it.
IGATE_UNKNOWN_STATUS = {"id": 11, "name": "Chờ phê duyệt"}
OPENCPS_UNKNOWN_STATUS = "approving"
# national TrangThaiHoSo → OpenCPS dossierStatus
OPENCPS_STATUS: dict[int, str] = {
    1: "new", 2: "received", 3: "denied", 4: "processing", 5: "waiting", 6: "paying",
    7: "cancelled", 8: "ended", 9: "releasing", 10: "done",
}  # fmt: skip


def iso(v: Any) -> Any:
    """National `yyyyMMddHHmmss` (Vietnam time) → ISO 8601 with the offset; "" → None."""
    if isinstance(v, str) and len(v) == 14 and v.isdigit():
        return f"{v[0:4]}-{v[4:6]}-{v[6:8]}T{v[8:10]}:{v[10:12]}:{v[12:14]}+07:00"
    return v or None


def vn(v: Any) -> Any:
    """National → OpenCPS `dd/MM/yyyy HH:mm:ss`; "" → None."""
    if isinstance(v, str) and len(v) == 14 and v.isdigit():
        return f"{v[6:8]}/{v[4:6]}/{v[0:4]} {v[8:10]}:{v[10:12]}:{v[12:14]}"
    return v or None


def _id(code: Any) -> str:
    return hashlib.blake2b(str(code).encode(), digest_size=12).hexdigest()


def _igate_status(status: Any) -> dict[str, Any]:
    st = IGATE_STATUS.get(status) if isinstance(status, int) else None
    return {"id": st[0], "name": st[1]} if st else {"id": status}


def to_igate(r: dict[str, Any]) -> dict[str, Any]:
    status = r.get("TrangThaiHoSo")
    st = IGATE_STATUS.get(status) if isinstance(status, int) else None
    ch = IGATE_CHANNEL.get(r.get("KenhThucHien"))  # type: ignore[arg-type]
    history = [
        {
            "assignee": {"fullname": h["NguoiXuLy"]},
            "position": h["ChucDanh"],
            "agency": {"name": h["PhongBanXuLy"]},
            "name": h["NoiDungXuLy"],
            "status": _igate_status(h["TrangThai"]),
            "createdDate": iso(h["ThoiDiemXuLy"]),
        }
        for h in r.get("QuaTrinhXuLy") or ()
    ]
    return {
        "id": _id(r.get("MaHoSo")),
        "code": r.get("MaHoSo"),
        "nationCode": f"G22.{r.get('MaHoSo')}" if r.get("DaDongBoDVCQG") else None,
        "procedure": {
            "code": r.get("MaTTHC"),
            "name": r.get("TenTTHC"),
            "sector": {"code": r.get("MaLinhVuc"), "name": r.get("TenLinhVuc")},
        },
        "agency": {"code": r.get("MaDonVi"), "name": r.get("TenDonVi")},
        "applicant": {"data": {"identityVerified": r.get("TaiKhoanDuocXacThucVoiVNeID", 0)}},
        "applyMethod": {"id": ch[0], "name": ch[1]} if ch else {"id": r.get("KenhThucHien")},
        "dossierStatus": {"id": st[0], "name": st[1]} if st else {"id": status},
        "appliedDate": iso(r.get("NgayNopHoSo")),
        "acceptedDate": iso(r.get("NgayTiepNhan")),
        "appointmentDate": iso(r.get("NgayHenTra")),
        "completedDate": iso(r.get("NgayKetThucXuLy")),
        "returnedDate": iso(r.get("NgayTra")),
        "cancelledDate": iso(r.get("NgayTuChoi")),
        "digitized": r.get("HoSoCoThanhPhanSoHoa", 0),
        "pdsSynced": r.get("DongBoKhoDuLieuCaNhan", 0),
        "citizenDataUsed": r.get("SuDungDuLieuDanCu", 0),
        "onlinePayment": r.get("DuocThanhToanTrucTuyen", 0),
        "fee": [
            {
                "code": f["MaPhiLePhi"],
                "name": f["TenPhiLePhi"],
                "amount": f["Gia"],
                "method": f["HinhThucThu"],
                "type": f["LoaiPhiLePhi"],
            }
            for f in r.get("DanhSachLePhi") or ()
        ],
        "attachment": [
            {"name": c["TenThanhPhan"], "digitized": c["DuocSoHoa"], "reused": c["DuocTaiSuDung"]}
            for c in r.get("DanhSachThanhPhanHoSo") or ()
        ],
        "additionalRequirement": [
            {
                "requestDate": iso(s["NgayYeuCauBoSung"]),
                "receivedDate": iso(s["NgayTiepNhanBoSung"]),
                "oldAppointmentDate": iso(s["NgayHenTraTruoc"]),
                "newAppointmentDate": iso(s["NgayHenTraMoi"]),
            }
            for s in r.get("DanhSachHoSoBoSung") or ()
        ],
        "apology": [
            {
                "date": iso(a["NgayXinLoi"]),
                "newAppointmentDate": iso(a["NgayHenTraMoi"]),
                "reason": a["LyDo"],
            }
            for a in r.get("DanhSachPhieuXinLoi") or ()
        ],
        "result": [
            {
                "name": d["TenGiayTo"],
                "code": d["MaThanhPhanHoSo"],
                "id": d["GiayToId"],
                "url": d["DuongDanTepTinKetQua"],
            }
            for d in r.get("DanhSachGiayToKetQua") or ()
        ],
        "task": history,
        "currentTask": history[-1:],
        "updatedDate": iso(r.get("NgayCapNhat")),  # last: the connector peeks it from the tail
    }


def to_opencps(r: dict[str, Any], index: int) -> dict[str, Any]:
    status = r.get("TrangThaiHoSo")
    name = OPENCPS_STATUS.get(status, status) if isinstance(status, int) else status
    channel = r.get("KenhThucHien")
    return {
        "dossierId": 10_000 + index,
        "referenceUid": _id(r.get("MaHoSo")),
        "dossierNo": r.get("MaHoSo"),
        "serviceCode": r.get("MaTTHC"),
        "serviceName": r.get("TenTTHC"),
        "domainCode": r.get("MaLinhVuc"),
        "domainName": r.get("TenLinhVuc"),
        "govAgencyCode": r.get("MaDonVi"),
        "govAgencyName": r.get("TenDonVi"),
        "dossierStatus": name,
        "online": "true" if channel == 2 else "false",
        "viaPostal": 1 if channel == 3 else 0,
        "submitDate": vn(r.get("NgayNopHoSo")),
        "receiveDate": vn(r.get("NgayTiepNhan")),
        "dueDate": vn(r.get("NgayHenTra")),
        "finishDate": vn(r.get("NgayKetThucXuLy")),
        "releaseDate": vn(r.get("NgayTra")),
        "deniedDate": vn(r.get("NgayTuChoi")),
        "digitized": r.get("HoSoCoThanhPhanSoHoa", 0),
        "pdsSynced": r.get("DongBoKhoDuLieuCaNhan", 0),
        "citizenDataUsed": r.get("SuDungDuLieuDanCu", 0),
        "paymentOnline": r.get("DuocThanhToanTrucTuyen", 0),
        "vneidVerified": r.get("TaiKhoanDuocXacThucVoiVNeID", 0),
        "syncedNational": r.get("DaDongBoDVCQG", 0),
        "payments": [
            {
                "feeCode": f["MaPhiLePhi"],
                "feeName": f["TenPhiLePhi"],
                "feeAmount": f["Gia"],
                "paymentMethod": f["HinhThucThu"],
                "feeType": f["LoaiPhiLePhi"],
            }
            for f in r.get("DanhSachLePhi") or ()
        ],
        "dossierParts": [
            {
                "partName": c["TenThanhPhan"],
                "digitized": c["DuocSoHoa"],
                "reused": c["DuocTaiSuDung"],
            }
            for c in r.get("DanhSachThanhPhanHoSo") or ()
        ],
        "dossierRequests": [
            {
                "requestDate": vn(s["NgayYeuCauBoSung"]),
                "replyDate": vn(s["NgayTiepNhanBoSung"]),
                "previousDueDate": vn(s["NgayHenTraTruoc"]),
                "newDueDate": vn(s["NgayHenTraMoi"]),
            }
            for s in r.get("DanhSachHoSoBoSung") or ()
        ],
        "apologies": [
            {
                "apologyDate": vn(a["NgayXinLoi"]),
                "newDueDate": vn(a["NgayHenTraMoi"]),
                "reason": a["LyDo"],
            }
            for a in r.get("DanhSachPhieuXinLoi") or ()
        ],
        "dossierResults": [
            {
                "displayName": d["TenGiayTo"],
                "partNo": d["MaThanhPhanHoSo"],
                "referenceUid": d["GiayToId"],
                "fileUrl": d["DuongDanTepTinKetQua"],
            }
            for d in r.get("DanhSachGiayToKetQua") or ()
        ],
        "dossierActions": [
            {
                "actionUser": h["NguoiXuLy"],
                "actionUserTitle": h["ChucDanh"],
                "stepName": h["PhongBanXuLy"],
                "actionName": h["NoiDungXuLy"],
                "status": OPENCPS_STATUS.get(h["TrangThai"], h["TrangThai"]),
                "createDate": vn(h["ThoiDiemXuLy"]),
            }
            for h in r.get("QuaTrinhXuLy") or ()
        ],
        "modifiedDate": vn(r.get("NgayCapNhat")),
    }
