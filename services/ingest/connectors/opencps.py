"""OpenCPS (the open-source one-stop system several provinces and ministries run).

`GET {base}/o/rest/v2/dossiers?start=&end=&sort=modified&order=desc&status=&agency=&year=&month=`
with the site's `groupId` header and HTTP Basic authentication (`auth.type = "basic"`) answers
`{"total": N, "data": [dossier…]}`. A dossier carries `dossierNo` (our MaHoSo), `serviceCode` /
`serviceName`, `domainCode` / `domainName`, `govAgencyCode` / `govAgencyName`, `dossierStatus`
(a status name) and `dossierStatusText`, `online`, `viaPostal`, and the dates `submitDate`,
`receiveDate`, `dueDate`, `finishDate`, `releaseDate`, `deniedDate`, `modifiedDate`
(`dd/MM/yyyy HH:mm:ss`, Vietnam time), with the lists `payments[]`, `dossierParts[]`,
`dossierRequests[]` (supplements), `apologies[]`, `dossierResults[]` and `dossierActions[]`
(processing steps: `actionUser`, `actionUserTitle`, `stepName`, `actionName`, `status` (a
status name, as `dossierStatus`), `createDate`).

The list has offset paging and no updated-since filter, so the walk reads it newest first
(`sort=modified&order=desc`): an offset cursor over a list where changed records jump to the
front never skips one (it re-reads a few, which the store deduplicates), and an incremental
walk ends at the first page reaching past the watermark minus the look-back window (the
decode stage sees it; see `connectors.wire`).

Deployment details are source options (`ingest.sources.options`):
- `group_id` (required by OpenCPS: the Liferay site id, sent as the `groupId` header);
- `path` (default `/o/rest/v2/dossiers`), `sort` (default `modified`), `extra_params` (e.g.
  `{"agency": "STP", "status": "processing", "year": 2026, "month": 6}`);
- `status_map`: OpenCPS status name → national TrangThaiHoSo, over `STATUS_MAP` (our reading
  of the OpenCPS vocabulary); an unmapped name is passed on as it is, so the record is
  quarantined (`invalid_status`) rather than guessed; once the map is corrected,
  re-processing the quarantine translates the kept OpenCPS record again.
The field names of the lists (payments, parts, requests, apologies, results, actions) are our
reading of OpenCPS's dossier detail model; verify them against the deployment.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import msgspec
import orjson

from services.ingest.connectors.base import Capabilities, Feed, SourceError
from services.ingest.connectors.national import VN, NationalJsonConnector
from services.ingest.connectors.wire import PageContext, TypedPage, WireFormat, register_wire
from services.ingest.domain import fast
from services.ingest.domain.details import NO_STEPS, Fee, Supplement

# OpenCPS dossierStatus → national TrangThaiHoSo (1 registered … 10 result returned)
STATUS_MAP: dict[str, int] = {
    "new": 1,
    "receiving": 1,
    "received": 2,
    "denied": 3,
    "processing": 4,
    "interoperating": 4,
    "waiting": 5,
    "paying": 6,
    "cancelled": 7,
    "ended": 8,
    "releasing": 9,
    "done": 10,
    "archived": 10,
}
STATUS_TEXT: dict[str, str] = {
    "new": "Mới", "receiving": "Chờ tiếp nhận", "received": "Đã tiếp nhận",
    "denied": "Từ chối", "processing": "Đang xử lý", "interoperating": "Liên thông",
    "waiting": "Chờ bổ sung", "paying": "Chờ thanh toán", "cancelled": "Đã rút",
    "ended": "Dừng xử lý", "releasing": "Chờ trả kết quả", "done": "Đã trả kết quả",
    "archived": "Lưu trữ",
}  # fmt: skip


def to_national_ts(value: Any) -> Any:
    """`dd/MM/yyyy HH:mm:ss` (Vietnam time) as the national `yyyyMMddHHmmss` ("" for none);
    anything else is passed on (the normaliser then rejects it with its reason)."""
    if value is None or value == "":
        return ""
    if isinstance(value, str) and len(value) == 19 and value[2] == "/" and value[5] == "/":
        return value[6:10] + value[3:5] + value[0:2] + value[11:13] + value[14:16] + value[17:19]
    return value


def from_national_ts(value: Any) -> Any:
    """The inverse (the simulator's OpenCPS dialect)."""
    if isinstance(value, str) and len(value) == 14 and value.isdigit():
        v = value
        return f"{v[6:8]}/{v[4:6]}/{v[0:4]} {v[8:10]}:{v[10:12]}:{v[12:14]}"
    return value or None


def _flag(value: Any) -> int:
    return 1 if value in (True, "true", 1, "1") else 0


def _status(status_map: dict[str, int], status: Any) -> Any:
    return status_map.get(status, status) if isinstance(status, str) else status


def dossier_to_national(r: dict[str, Any], status_map: dict[str, int]) -> dict[str, Any]:
    ts = to_national_ts
    status = r.get("dossierStatus")
    channel = 2 if _flag(r.get("online")) else 3 if _flag(r.get("viaPostal")) else 1
    return {
        "MaHoSo": r.get("dossierNo"),
        "MaTTHC": r.get("serviceCode"),
        "TenTTHC": r.get("serviceName"),
        "MaLinhVuc": r.get("domainCode"),
        "TenLinhVuc": r.get("domainName"),
        "KenhThucHien": channel,
        "MaDonVi": r.get("govAgencyCode"),
        "TenDonVi": r.get("govAgencyName"),
        "NgayNopHoSo": ts(r.get("submitDate")),
        "NgayTiepNhan": ts(r.get("receiveDate")),
        "NgayHenTra": ts(r.get("dueDate")),
        "NgayKetThucXuLy": ts(r.get("finishDate")),
        "NgayTra": ts(r.get("releaseDate")),
        "NgayTuChoi": ts(r.get("deniedDate")),
        "TrangThaiHoSo": status_map.get(status, status) if isinstance(status, str) else status,
        "HoSoCoThanhPhanSoHoa": r.get("digitized", 0),
        "DuocThanhToanTrucTuyen": r.get("paymentOnline", 0),
        # personal data store and population data use: field names not confirmed from public
        # code (configurable through the wire translation)
        "DongBoKhoDuLieuCaNhan": r.get("pdsSynced", 0),
        "SuDungDuLieuDanCu": r.get("citizenDataUsed", 0),
        "TaiKhoanDuocXacThucVoiVNeID": r.get("vneidVerified", 0),
        "DaDongBoDVCQG": r.get("syncedNational", 0),
        "DanhSachLePhi": [
            {
                "MaPhiLePhi": p.get("feeCode"),
                "TenPhiLePhi": p.get("feeName"),
                "Gia": p.get("feeAmount"),
                "HinhThucThu": p.get("paymentMethod"),
                "LoaiPhiLePhi": p.get("feeType"),
            }
            for p in r.get("payments") or ()
        ],
        "DanhSachThanhPhanHoSo": [
            {
                "TenThanhPhan": p.get("partName"),
                "DuocSoHoa": p.get("digitized"),
                "DuocTaiSuDung": p.get("reused"),
            }
            for p in r.get("dossierParts") or ()
        ],
        "DanhSachHoSoBoSung": [
            {
                "NgayYeuCauBoSung": ts(q.get("requestDate")),
                "NgayTiepNhanBoSung": ts(q.get("replyDate")),
                "NgayHenTraTruoc": ts(q.get("previousDueDate")),
                "NgayHenTraMoi": ts(q.get("newDueDate")),
            }
            for q in r.get("dossierRequests") or ()
        ],
        "DanhSachPhieuXinLoi": [
            {
                "NgayXinLoi": ts(a.get("apologyDate")),
                "NgayHenTraMoi": ts(a.get("newDueDate")),
                "LyDo": a.get("reason"),
            }
            for a in r.get("apologies") or ()
        ],
        "DanhSachGiayToKetQua": [
            {
                "TenGiayTo": d.get("displayName"),
                "MaThanhPhanHoSo": d.get("partNo"),
                "GiayToId": d.get("referenceUid"),
                "DuongDanTepTinKetQua": d.get("fileUrl") or "",
            }
            for d in r.get("dossierResults") or ()
        ],
        "QuaTrinhXuLy": steps_to_national(r.get("dossierActions"), status_map),
        "NgayCapNhat": ts(r.get("modifiedDate")),
    }


def steps_to_national(actions: Any, status_map: dict[str, int]) -> list[dict[str, Any]]:
    """OpenCPS `dossierActions[]` as national QuaTrinhXuLy items."""
    ts = to_national_ts
    return [
        {
            "NguoiXuLy": a.get("actionUser"),
            "ChucDanh": a.get("actionUserTitle"),
            "ThoiDiemXuLy": ts(a.get("createDate")),
            "PhongBanXuLy": a.get("stepName"),
            "NoiDungXuLy": a.get("actionName"),
            "TrangThai": _status(status_map, a.get("status")),
        }
        for a in (actions if isinstance(actions, list) else ())
        if isinstance(a, dict)
    ]


def steps(actions: list[Any], options: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Stored OpenCPS actions for the dossier view, with the source's current status map."""
    return steps_to_national(actions, _status_map(options))


# The typed decode: only the fields the national record and the dossier view need, decoded by
# msgspec in C (the processing steps `dossierActions[]` are kept as raw JSON, the rest is
# skipped unread); a page of another shape takes the plain path above.
class _Payment(msgspec.Struct, gc=False):
    feeCode: Any = None
    feeName: Any = None
    feeAmount: Any = None
    paymentMethod: Any = None
    feeType: Any = None


class _Part(msgspec.Struct, gc=False):
    partName: Any = None
    digitized: Any = None
    reused: Any = None


class _Request(msgspec.Struct, gc=False):
    requestDate: Any = None
    replyDate: Any = None
    previousDueDate: Any = None
    newDueDate: Any = None


class _Apology(msgspec.Struct, gc=False):
    apologyDate: Any = None
    newDueDate: Any = None
    reason: Any = None


class _Result(msgspec.Struct, gc=False):
    displayName: Any = None
    partNo: Any = None
    referenceUid: Any = None
    fileUrl: Any = None


class _Dossier(msgspec.Struct, gc=False):
    dossierNo: Any = None
    serviceCode: Any = None
    serviceName: Any = None
    domainCode: Any = None
    domainName: Any = None
    govAgencyCode: Any = None
    govAgencyName: Any = None
    dossierStatus: Any = None
    online: Any = None
    viaPostal: Any = None
    submitDate: Any = None
    receiveDate: Any = None
    dueDate: Any = None
    finishDate: Any = None
    releaseDate: Any = None
    deniedDate: Any = None
    modifiedDate: Any = None
    digitized: Any = 0
    paymentOnline: Any = 0
    pdsSynced: Any = 0
    citizenDataUsed: Any = 0
    vneidVerified: Any = 0
    syncedNational: Any = 0
    payments: list[_Payment] | None = None
    dossierParts: list[_Part] | None = None
    dossierRequests: list[_Request] | None = None
    apologies: list[_Apology] | None = None
    dossierResults: list[_Result] | None = None
    dossierActions: msgspec.Raw = NO_STEPS  # kept as sent, translated when shown


class _Page(msgspec.Struct, gc=False):
    data: list[_Dossier] | None = None
    total: Any = None


_decode_page = msgspec.json.Decoder(_Page).decode


def typed_to_national(r: _Dossier, status_map: dict[str, int]) -> dict[str, Any]:
    ts = to_national_ts
    status = r.dossierStatus
    channel = 2 if _flag(r.online) else 3 if _flag(r.viaPostal) else 1
    return {
        "MaHoSo": r.dossierNo,
        "MaTTHC": r.serviceCode,
        "TenTTHC": r.serviceName,
        "MaLinhVuc": r.domainCode,
        "TenLinhVuc": r.domainName,
        "KenhThucHien": channel,
        "MaDonVi": r.govAgencyCode,
        "TenDonVi": r.govAgencyName,
        "NgayNopHoSo": ts(r.submitDate),
        "NgayTiepNhan": ts(r.receiveDate),
        "NgayHenTra": ts(r.dueDate),
        "NgayKetThucXuLy": ts(r.finishDate),
        "NgayTra": ts(r.releaseDate),
        "NgayTuChoi": ts(r.deniedDate),
        "TrangThaiHoSo": status_map.get(status, status) if isinstance(status, str) else status,
        "HoSoCoThanhPhanSoHoa": r.digitized,
        "DuocThanhToanTrucTuyen": r.paymentOnline,
        "DongBoKhoDuLieuCaNhan": r.pdsSynced,
        "SuDungDuLieuDanCu": r.citizenDataUsed,
        "TaiKhoanDuocXacThucVoiVNeID": r.vneidVerified,
        "DaDongBoDVCQG": r.syncedNational,
        "DanhSachLePhi": [
            {
                "MaPhiLePhi": p.feeCode,
                "TenPhiLePhi": p.feeName,
                "Gia": p.feeAmount,
                "HinhThucThu": p.paymentMethod,
                "LoaiPhiLePhi": p.feeType,
            }
            for p in r.payments or ()
        ],
        "DanhSachThanhPhanHoSo": [
            {"TenThanhPhan": p.partName, "DuocSoHoa": p.digitized, "DuocTaiSuDung": p.reused}
            for p in r.dossierParts or ()
        ],
        "DanhSachHoSoBoSung": [
            {
                "NgayYeuCauBoSung": ts(q.requestDate),
                "NgayTiepNhanBoSung": ts(q.replyDate),
                "NgayHenTraTruoc": ts(q.previousDueDate),
                "NgayHenTraMoi": ts(q.newDueDate),
            }
            for q in r.dossierRequests or ()
        ],
        "DanhSachPhieuXinLoi": [
            {"NgayXinLoi": ts(a.apologyDate), "NgayHenTraMoi": ts(a.newDueDate), "LyDo": a.reason}
            for a in r.apologies or ()
        ],
        "DanhSachGiayToKetQua": [
            {
                "TenGiayTo": d.displayName,
                "MaThanhPhanHoSo": d.partNo,
                "GiayToId": d.referenceUid,
                "DuongDanTepTinKetQua": d.fileUrl or "",
            }
            for d in r.dossierResults or ()
        ],
        "QuaTrinhXuLy": steps_to_national(orjson.loads(bytes(r.dossierActions)), status_map),
        "NgayCapNhat": ts(r.modifiedDate),
    }


def typed_to_raw(r: _Dossier, status_map: dict[str, int]) -> fast.RawDossier:
    """`typed_to_national`, as the fast path's record (what decoding its JSON would give)."""
    ts = to_national_ts
    status = r.dossierStatus
    return fast.RawDossier(
        MaHoSo=r.dossierNo,
        MaDonVi=r.govAgencyCode,
        MaTTHC=r.serviceCode,
        MaLinhVuc=r.domainCode,
        KenhThucHien=2 if _flag(r.online) else 3 if _flag(r.viaPostal) else 1,
        TrangThaiHoSo=status_map.get(status, status) if isinstance(status, str) else status,
        NgayNopHoSo=ts(r.submitDate),
        NgayTiepNhan=ts(r.receiveDate),
        NgayHenTra=ts(r.dueDate),
        NgayKetThucXuLy=ts(r.finishDate),
        NgayTra=ts(r.releaseDate),
        NgayTuChoi=ts(r.deniedDate),
        NgayCapNhat=ts(r.modifiedDate),
        DuocThanhToanTrucTuyen=r.paymentOnline,
        HoSoCoThanhPhanSoHoa=r.digitized,
        DongBoKhoDuLieuCaNhan=r.pdsSynced,
        SuDungDuLieuDanCu=r.citizenDataUsed,
        TaiKhoanDuocXacThucVoiVNeID=r.vneidVerified,
        DaDongBoDVCQG=r.syncedNational,
        DanhSachHoSoBoSung=[
            Supplement(ts(q.requestDate), ts(q.replyDate), ts(q.previousDueDate),
                       ts(q.newDueDate))
            for q in r.dossierRequests or ()
        ],
        DanhSachLePhi=[
            Fee(p.feeCode, p.feeName, p.feeAmount, p.paymentMethod, p.feeType)
            for p in r.payments or ()
        ],
        DanhSachThanhPhanHoSo=[fast.Component(p.reused) for p in r.dossierParts or ()],
        DanhSachGiayToKetQua=[fast.Result(d.fileUrl or "") for d in r.dossierResults or ()],
        DanhSachPhieuXinLoi=[fast.Apology() for _ in r.apologies or ()],
        TenTTHC=r.serviceName,
        TenLinhVuc=r.domainName,
        TenDonVi=r.govAgencyName,
        QuaTrinhXuLy=r.dossierActions,
    )  # fmt: skip


def to_typed(body: bytes | memoryview, feed: Feed, ctx: PageContext) -> TypedPage | None:
    """One typed decode of a dossier page into the fast path's records; None: another shape."""
    try:
        page = _decode_page(body)
    except msgspec.DecodeError:
        return None
    if page.data is None:
        return None
    status_map = _status_map(ctx.options)
    items = [typed_to_raw(r, status_map) for r in page.data]
    oldest = to_national_ts(page.data[-1].modifiedDate) if page.data else None
    nxt = _next(ctx, len(page.data), page.total, oldest)
    loaded: list[Any] = []

    def sources() -> list[Any]:
        if not loaded:
            loaded.extend(orjson.loads(body)["data"])
        return loaded

    def raws() -> list[Any]:
        return [dossier_to_national(r, status_map) if isinstance(r, dict) else r
                for r in sources()]  # fmt: skip

    return TypedPage(items, nxt, None, raws, sources, steps_wire="opencps")


def _status_map(options: Mapping[str, Any]) -> dict[str, int]:
    return {str(k): int(v) for k, v in {**STATUS_MAP, **(options.get("status_map") or {})}.items()}


def translate(record: Any, options: Mapping[str, Any]) -> Any:
    """One OpenCPS dossier in national fields, with the source's options (re-processing)."""
    return dossier_to_national(record, _status_map(options)) if isinstance(record, dict) else record


def records(body: bytes | memoryview) -> list[Any]:
    doc = orjson.loads(body)
    data = doc.get("data") if isinstance(doc, dict) else None
    return data if isinstance(data, list) else []


def _next(ctx: PageContext, count: int, total: Any, oldest: Any) -> str | None:
    """The next offset, or None: a short page, the end of `total`, or (newest first) a page
    reaching past `ctx.since`. The next page starts where this one was asked to end (a page
    may repeat records of the one before: counting what came would skip as many)."""
    start = _offset(ctx)
    more = count >= ctx.limit and (not isinstance(total, int) or start + ctx.limit < total)
    if more and ctx.since is not None:
        since = ctx.since.astimezone(VN).strftime("%Y%m%d%H%M%S")
        if isinstance(oldest, str) and oldest < since:
            more = False
    return str(start + ctx.limit) if more else None


def _offset(ctx: PageContext) -> int:
    try:
        return int(ctx.cursor or 0)
    except ValueError:
        raise SourceError("protocol", f"not an OpenCPS offset: {ctx.cursor!r}") from None


def to_national(body: bytes | memoryview, feed: Feed, ctx: PageContext) -> bytes:
    status_map = _status_map(ctx.options)
    try:  # typed, in C, skipping what the record does not need
        page = _decode_page(body)
    except msgspec.DecodeError:
        page = None
    if page is not None and (page.data is not None or page.total == 0):
        data: list[Any] = page.data or []
        items: list[Any] = [typed_to_national(r, status_map) for r in data]
        total = page.total
    else:  # plain: whatever the body holds, record by record
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise SourceError("protocol", f"invalid JSON body ({len(body)} bytes)") from exc
        found = doc.get("data") if isinstance(doc, dict) else None
        if found is None and isinstance(doc, dict) and doc.get("total") == 0:
            found = []
        if not isinstance(found, list):
            raise SourceError("protocol", "body has no 'data' list")
        data = found
        items = [dossier_to_national(r, status_map) if isinstance(r, dict) else r for r in data]
        total = doc.get("total")
    oldest = items[-1].get("NgayCapNhat") if items and isinstance(items[-1], dict) else None
    return orjson.dumps({"items": items, "next_cursor": _next(ctx, len(data), total, oldest)})


def peek(tail: bytes, ctx: PageContext) -> tuple[bool, str | None]:
    """Offset paging: the next page starts where a full page ends (a page that turns out to be
    the last one only costs a dropped fetch)."""
    if not tail.rstrip().endswith(b"}"):
        return False, None
    return True, str(_offset(ctx) + ctx.limit)


WIRE = register_wire(
    WireFormat("opencps", to_national=to_national, peek=peek, descending=True, to_typed=to_typed,
               translate=translate, records=records, steps=steps)
)  # fmt: skip


class OpenCPSConnector(NationalJsonConnector):
    kind = "opencps"
    capabilities = Capabilities(wire="opencps", feeds=("dossiers",), into_buffer=True)

    def path(self, feed: Feed) -> str:
        if feed != "dossiers":
            raise SourceError("client", f"OpenCPS's dossier list serves no {feed}")
        return str(self.config.options.get("path", "/o/rest/v2/dossiers"))

    def params(
        self, updated_since: datetime | None, cursor: str | None, limit: int
    ) -> dict[str, Any]:
        opts = self.config.options
        start = int(cursor or 0)
        params: dict[str, Any] = {"start": start, "end": start + limit,
                                  "sort": opts.get("sort", "modified"), "order": "desc"}  # fmt: skip
        params.update(opts.get("extra_params") or {})
        return params

    def headers(self) -> dict[str, str]:
        group = self.config.options.get("group_id")
        return {"groupId": str(group)} if group is not None else {}
