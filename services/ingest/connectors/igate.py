"""VNPT iGate: the dossier search of the province's one-stop system.

`GET {base}/pa/dossier/search?page=&size=&sort=updatedDate,asc&updated-from=…` with a Bearer
token (OAuth2 client credentials, `auth.type = "oauth2_client_credentials"`; iGate deployments
issue it from their identity server, so `token_url` is per province) answers a Spring page:
`{"content": [dossier…], "totalElements", "totalPages", "number", "size", "last", …}`.

A dossier carries `code` (the province's dossier code, our MaHoSo), `nationCode` (its code on the
national portal, present once synchronised), `procedure {code, name, sector {code, name}}`,
`agency {code, name}`, `applyMethod {id}`, `dossierStatus {id, name}`, `applicant`, the dates
`appliedDate`, `acceptedDate`, `appointmentDate`, `completedDate`, `returnedDate`,
`cancelledDate`, `updatedDate` (ISO 8601), `fee[]`, `attachment[]`, `additionalRequirement[]`,
`apology[]`, `result[]`, the processing steps `task[]` and `currentTask[]` (each with
`assignee {fullname}`, `position`, `agency {name}`, `name`, `status {id, name}` in the
dossier-status vocabulary, `createdDate`): the steps are `task[]`, or `currentTask[]` where a
deployment sends no history.

Paging: page numbers over a list that changes while we read it would skip records (one updated
behind the reader shifts the rest back), so the walk pages by *time*: each request asks from
the last `updatedDate` seen (inclusive) at page 0, moving to page k+1 only while a whole page
shares one stamp. The cursor is `"{k}|{stamp}"`; repeats at a stamp are deduplicated by the
store (newest wins).

Unknown or deployment-specific details are source options (`ingest.sources.options`):
- `path` (default `/pa/dossier/search`), `since_param` (default `updated-from`: the name of the
  updated-since filter is not in the public material we found; set it to what the province's
  iGate accepts), `sort` (default `updatedDate,asc`), `extra_params` (e.g. `{"agency-id": …,
  "dossier-status": "2,3,4"}`), `accepted_from` / `accepted_to` (dates sent as
  `accepted-from`/`accepted-to`);
- `status_map`: iGate `dossierStatus.id` → national TrangThaiHoSo, over `STATUS_MAP` (our
  reading of iGate's vocabulary: verify it against the deployment); an unmapped id is passed on
  as it is, so the record is quarantined (`invalid_status`) rather than guessed; once the map
  is corrected, re-processing the quarantine translates the kept iGate record again;
- `channel_map`: `applyMethod.id` → national KenhThucHien, over `CHANNEL_MAP`;
- `code_field`: `code` (default) or `nationCode`, the field our MaHoSo is taken from.
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

WIRE_NAME = "vnpt-igate"

# iGate dossierStatus.id → national TrangThaiHoSo (1 registered … 10 result returned)
STATUS_MAP: dict[str, int] = {
    "0": 1,  # Chờ tiếp nhận
    "1": 2,  # Đã tiếp nhận
    "2": 4,  # Đang xử lý
    "3": 5,  # Chờ bổ sung
    "4": 6,  # Chờ thanh toán
    "5": 9,  # Có kết quả
    "6": 10,  # Đã trả kết quả
    "7": 7,  # Công dân rút hồ sơ
    "8": 8,  # Dừng xử lý
    "9": 3,  # Từ chối tiếp nhận
}
STATUS_NAMES: dict[str, str] = {
    "0": "Chờ tiếp nhận", "1": "Đã tiếp nhận", "2": "Đang xử lý", "3": "Chờ bổ sung",
    "4": "Chờ thanh toán", "5": "Có kết quả", "6": "Đã trả kết quả", "7": "Đã rút hồ sơ",
    "8": "Dừng xử lý", "9": "Từ chối tiếp nhận",
}  # fmt: skip
# applyMethod.id → national KenhThucHien (1 at the desk, 2 online, 3 by post)
CHANNEL_MAP: dict[str, int] = {"0": 1, "1": 2, "2": 3}


def to_national_ts(value: Any) -> Any:
    """An ISO 8601 instant as the national `yyyyMMddHHmmss` in Vietnam time ("" for none). The
    common `…+07:00` form is sliced; others are parsed; what does not parse is passed on (the
    normaliser then rejects it with its reason)."""
    if value is None or value == "":
        return ""
    if not isinstance(value, str):
        return value
    if len(value) == 25 and value[10] == "T" and value.endswith("+07:00"):
        return value[0:4] + value[5:7] + value[8:10] + value[11:13] + value[14:16] + value[17:19]
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=VN)
    return dt.astimezone(VN).strftime("%Y%m%d%H%M%S")


def iso_ts(value: datetime) -> str:
    return value.astimezone(VN).isoformat(timespec="seconds")


def _get(value: Any, key: str) -> Any:
    return value.get(key) if isinstance(value, dict) else None


def _mapped(table: dict[str, int], value: Any) -> Any:
    if isinstance(value, dict):
        value = value.get("id")
    got = table.get(str(value))
    return value if got is None else got


def dossier_to_national(
    r: dict[str, Any], status_map: dict[str, int], channel_map: dict[str, int], code_field: str
) -> dict[str, Any]:
    """One iGate dossier in the national field set (what `normalise_dossier` reads, plus the
    processing steps and names the dossier view shows)."""
    ts = to_national_ts
    procedure = r.get("procedure") or {}
    sector = procedure.get("sector") or {}
    agency = r.get("agency") or {}
    applicant = (r.get("applicant") or {}).get("data") or {}
    return {
        "MaHoSo": r.get(code_field),
        "MaTTHC": procedure.get("code"),
        "TenTTHC": procedure.get("name"),
        "MaLinhVuc": sector.get("code"),
        "TenLinhVuc": sector.get("name"),
        "KenhThucHien": _mapped(channel_map, r.get("applyMethod")),
        "MaDonVi": agency.get("code"),
        "TenDonVi": agency.get("name"),
        "NgayNopHoSo": ts(r.get("appliedDate")),
        "NgayTiepNhan": ts(r.get("acceptedDate")),
        "NgayHenTra": ts(r.get("appointmentDate")),
        "NgayKetThucXuLy": ts(r.get("completedDate")),
        "NgayTra": ts(r.get("returnedDate")),
        "NgayTuChoi": ts(r.get("cancelledDate")),
        "TrangThaiHoSo": _mapped(status_map, r.get("dossierStatus")),
        "HoSoCoThanhPhanSoHoa": r.get("digitized", 0),
        "DuocThanhToanTrucTuyen": r.get("onlinePayment", 0),
        # personal data store and population data use: field names not confirmed from public
        # code; configurable like the rest of this dialect through the wire translation
        "DongBoKhoDuLieuCaNhan": r.get("pdsSynced", 0),
        "SuDungDuLieuDanCu": r.get("citizenDataUsed", 0),
        "TaiKhoanDuocXacThucVoiVNeID": applicant.get("identityVerified", 0),
        "DaDongBoDVCQG": 1 if r.get("nationCode") else 0,
        "DanhSachLePhi": [
            {
                "MaPhiLePhi": f.get("code"),
                "TenPhiLePhi": f.get("name"),
                "Gia": f.get("amount"),
                "HinhThucThu": f.get("method"),
                "LoaiPhiLePhi": f.get("type"),
            }
            for f in r.get("fee") or ()
        ],
        "DanhSachThanhPhanHoSo": [
            {
                "TenThanhPhan": a.get("name"),
                "DuocSoHoa": a.get("digitized"),
                "DuocTaiSuDung": a.get("reused"),
            }
            for a in r.get("attachment") or ()
        ],
        "DanhSachHoSoBoSung": [
            {
                "NgayYeuCauBoSung": ts(s.get("requestDate")),
                "NgayTiepNhanBoSung": ts(s.get("receivedDate")),
                "NgayHenTraTruoc": ts(s.get("oldAppointmentDate")),
                "NgayHenTraMoi": ts(s.get("newAppointmentDate")),
            }
            for s in r.get("additionalRequirement") or ()
        ],
        "DanhSachPhieuXinLoi": [
            {
                "NgayXinLoi": ts(a.get("date")),
                "NgayHenTraMoi": ts(a.get("newAppointmentDate")),
                "LyDo": a.get("reason"),
            }
            for a in r.get("apology") or ()
        ],
        "DanhSachGiayToKetQua": [
            {
                "TenGiayTo": d.get("name"),
                "MaThanhPhanHoSo": d.get("code"),
                "GiayToId": d.get("id"),
                "DuongDanTepTinKetQua": d.get("url") or "",
            }
            for d in r.get("result") or ()
        ],
        "QuaTrinhXuLy": steps_to_national(r.get("task") or r.get("currentTask"), status_map),
        "NgayCapNhat": ts(r.get("updatedDate")),
    }


def steps_to_national(tasks: Any, status_map: dict[str, int]) -> list[dict[str, Any]]:
    """iGate tasks (`task[]` or `currentTask[]`) as national QuaTrinhXuLy items."""
    ts = to_national_ts
    return [
        {
            "NguoiXuLy": _get(t.get("assignee"), "fullname"),
            "ChucDanh": t.get("position"),
            "ThoiDiemXuLy": ts(t.get("createdDate")),
            "PhongBanXuLy": _get(t.get("agency"), "name"),
            "NoiDungXuLy": t.get("name"),
            "TrangThai": _mapped(status_map, t.get("status")),
        }
        for t in (tasks if isinstance(tasks, list) else ())
        if isinstance(t, dict)
    ]


def steps(tasks: list[Any], options: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Stored iGate steps for the dossier view, with the source's current status map."""
    return steps_to_national(tasks, _options_maps(options)[0])


# The typed decode: only the fields the national record and the dossier view need, decoded by
# msgspec in C (the processing steps `task[]` are kept as raw JSON; the applicant's data and
# everything else are skipped unread). A page it cannot read (an unexpected shape) takes the
# plain path above, record by record.
class _Named(msgspec.Struct, gc=False):
    code: Any = None
    name: Any = None


class _Procedure(msgspec.Struct, gc=False):
    code: Any = None
    name: Any = None
    sector: _Named | None = None


class _Id(msgspec.Struct, gc=False):
    id: Any = None


class _ApplicantData(msgspec.Struct, gc=False):
    identityVerified: Any = 0


class _Applicant(msgspec.Struct, gc=False):
    data: _ApplicantData | None = None


class _Fee(msgspec.Struct, gc=False):
    code: Any = None
    name: Any = None
    amount: Any = None
    method: Any = None
    type: Any = None


class _Attachment(msgspec.Struct, gc=False):
    name: Any = None
    digitized: Any = None
    reused: Any = None


class _Requirement(msgspec.Struct, gc=False):
    requestDate: Any = None
    receivedDate: Any = None
    oldAppointmentDate: Any = None
    newAppointmentDate: Any = None


class _Apology(msgspec.Struct, gc=False):
    date: Any = None
    newAppointmentDate: Any = None
    reason: Any = None


class _Result(msgspec.Struct, gc=False):
    name: Any = None
    code: Any = None
    id: Any = None
    url: Any = None


class _Dossier(msgspec.Struct, gc=False):
    code: Any = None
    nationCode: Any = None
    procedure: _Procedure | None = None
    agency: _Named | None = None
    applicant: _Applicant | None = None
    applyMethod: _Id | None = None
    dossierStatus: _Id | None = None
    appliedDate: Any = None
    acceptedDate: Any = None
    appointmentDate: Any = None
    completedDate: Any = None
    returnedDate: Any = None
    cancelledDate: Any = None
    updatedDate: Any = None
    digitized: Any = 0
    onlinePayment: Any = 0
    pdsSynced: Any = 0
    citizenDataUsed: Any = 0
    fee: list[_Fee] | None = None
    attachment: list[_Attachment] | None = None
    additionalRequirement: list[_Requirement] | None = None
    apology: list[_Apology] | None = None
    result: list[_Result] | None = None
    # the steps are kept as sent (not decoded) and translated when shown (`steps`)
    task: msgspec.Raw = NO_STEPS
    currentTask: msgspec.Raw = NO_STEPS


class _Page(msgspec.Struct, gc=False):
    content: list[_Dossier]
    last: bool | None = None


_decode_page = msgspec.json.Decoder(_Page).decode


def typed_to_national(
    r: _Dossier, status_map: dict[str, int], channel_map: dict[str, int], code_field: str
) -> dict[str, Any]:
    ts = to_national_ts
    procedure = r.procedure or _Procedure()
    sector = procedure.sector or _Named()
    agency = r.agency or _Named()
    data = r.applicant.data if r.applicant and r.applicant.data else _ApplicantData()
    status = r.dossierStatus.id if r.dossierStatus else None
    channel = r.applyMethod.id if r.applyMethod else None
    return {
        "MaHoSo": r.nationCode if code_field == "nationCode" else r.code,
        "MaTTHC": procedure.code,
        "TenTTHC": procedure.name,
        "MaLinhVuc": sector.code,
        "TenLinhVuc": sector.name,
        "KenhThucHien": _mapped(channel_map, channel),
        "MaDonVi": agency.code,
        "TenDonVi": agency.name,
        "NgayNopHoSo": ts(r.appliedDate),
        "NgayTiepNhan": ts(r.acceptedDate),
        "NgayHenTra": ts(r.appointmentDate),
        "NgayKetThucXuLy": ts(r.completedDate),
        "NgayTra": ts(r.returnedDate),
        "NgayTuChoi": ts(r.cancelledDate),
        "TrangThaiHoSo": _mapped(status_map, status),
        "HoSoCoThanhPhanSoHoa": r.digitized,
        "DuocThanhToanTrucTuyen": r.onlinePayment,
        "DongBoKhoDuLieuCaNhan": r.pdsSynced,
        "SuDungDuLieuDanCu": r.citizenDataUsed,
        "TaiKhoanDuocXacThucVoiVNeID": data.identityVerified,
        "DaDongBoDVCQG": 1 if r.nationCode else 0,
        "DanhSachLePhi": [
            {
                "MaPhiLePhi": f.code,
                "TenPhiLePhi": f.name,
                "Gia": f.amount,
                "HinhThucThu": f.method,
                "LoaiPhiLePhi": f.type,
            }
            for f in r.fee or ()
        ],
        "DanhSachThanhPhanHoSo": [
            {"TenThanhPhan": a.name, "DuocSoHoa": a.digitized, "DuocTaiSuDung": a.reused}
            for a in r.attachment or ()
        ],
        "DanhSachHoSoBoSung": [
            {
                "NgayYeuCauBoSung": ts(q.requestDate),
                "NgayTiepNhanBoSung": ts(q.receivedDate),
                "NgayHenTraTruoc": ts(q.oldAppointmentDate),
                "NgayHenTraMoi": ts(q.newAppointmentDate),
            }
            for q in r.additionalRequirement or ()
        ],
        "DanhSachPhieuXinLoi": [
            {"NgayXinLoi": ts(a.date), "NgayHenTraMoi": ts(a.newAppointmentDate), "LyDo": a.reason}
            for a in r.apology or ()
        ],
        "DanhSachGiayToKetQua": [
            {
                "TenGiayTo": d.name,
                "MaThanhPhanHoSo": d.code,
                "GiayToId": d.id,
                "DuongDanTepTinKetQua": d.url or "",
            }
            for d in r.result or ()
        ],
        "QuaTrinhXuLy": steps_to_national(orjson.loads(bytes(_tasks(r))), status_map),
        "NgayCapNhat": ts(r.updatedDate),
    }


def _tasks(r: _Dossier) -> msgspec.Raw:
    """The raw step list: `task[]`, or `currentTask[]` when that is empty or null (the JSON
    `[]` and `null`; any real list is longer)."""
    return r.task if len(r.task) > 4 else r.currentTask


def typed_to_raw(
    r: _Dossier, status_map: dict[str, int], channel_map: dict[str, int], code_field: str
) -> fast.RawDossier:
    """`typed_to_national`, as the fast path's record (what decoding its JSON would give)."""
    ts = to_national_ts
    procedure = r.procedure or _Procedure()
    sector = procedure.sector or _Named()
    data = r.applicant.data if r.applicant and r.applicant.data else _ApplicantData()
    return fast.RawDossier(
        MaHoSo=r.nationCode if code_field == "nationCode" else r.code,
        MaDonVi=(r.agency or _Named()).code,
        MaTTHC=procedure.code,
        MaLinhVuc=sector.code,
        KenhThucHien=_mapped(channel_map, r.applyMethod.id if r.applyMethod else None),
        TrangThaiHoSo=_mapped(status_map, r.dossierStatus.id if r.dossierStatus else None),
        NgayNopHoSo=ts(r.appliedDate),
        NgayTiepNhan=ts(r.acceptedDate),
        NgayHenTra=ts(r.appointmentDate),
        NgayKetThucXuLy=ts(r.completedDate),
        NgayTra=ts(r.returnedDate),
        NgayTuChoi=ts(r.cancelledDate),
        NgayCapNhat=ts(r.updatedDate),
        DuocThanhToanTrucTuyen=r.onlinePayment,
        HoSoCoThanhPhanSoHoa=r.digitized,
        DongBoKhoDuLieuCaNhan=r.pdsSynced,
        SuDungDuLieuDanCu=r.citizenDataUsed,
        TaiKhoanDuocXacThucVoiVNeID=data.identityVerified,
        DaDongBoDVCQG=1 if r.nationCode else 0,
        DanhSachHoSoBoSung=[
            Supplement(
                ts(q.requestDate), ts(q.receivedDate), ts(q.oldAppointmentDate),
                ts(q.newAppointmentDate),
            )
            for q in r.additionalRequirement or ()
        ],
        DanhSachLePhi=[Fee(f.code, f.name, f.amount, f.method, f.type) for f in r.fee or ()],
        DanhSachThanhPhanHoSo=[fast.Component(a.reused) for a in r.attachment or ()],
        DanhSachGiayToKetQua=[fast.Result(d.url or "") for d in r.result or ()],
        DanhSachPhieuXinLoi=[fast.Apology() for _ in r.apology or ()],
        TenTTHC=procedure.name,
        TenLinhVuc=sector.name,
        TenDonVi=(r.agency or _Named()).name,
        QuaTrinhXuLy=_tasks(r),
    )  # fmt: skip


def to_typed(body: bytes | memoryview, feed: Feed, ctx: PageContext) -> TypedPage | None:
    """One typed decode of a dossier page into the fast path's records; None: another shape
    (then `to_national` reads it record by record)."""
    try:
        page = _decode_page(body)
    except msgspec.DecodeError:
        return None
    status_map, channel_map, code_field = _maps(ctx)
    items = [typed_to_raw(r, status_map, channel_map, code_field) for r in page.content]
    last = page.last if isinstance(page.last, bool) else len(page.content) < ctx.limit
    stamp = page.content[-1].updatedDate if page.content else None
    nxt = None if not page.content else next_cursor(ctx, last, stamp)

    loaded: list[Any] = []

    def sources() -> list[Any]:
        if not loaded:
            loaded.extend(orjson.loads(body)["content"])
        return loaded

    def raws() -> list[Any]:
        return [
            dossier_to_national(r, status_map, channel_map, code_field) if isinstance(r, dict)
            else r
            for r in sources()
        ]  # fmt: skip

    return TypedPage(items, nxt, None, raws, sources, steps_wire=WIRE_NAME)


def translate(record: Any, options: Mapping[str, Any]) -> Any:
    """One iGate dossier in national fields, with the source's options (re-processing)."""
    if not isinstance(record, dict):
        return record
    return dossier_to_national(record, *_options_maps(options))


def records(body: bytes | memoryview) -> list[Any]:
    doc = orjson.loads(body)
    content = doc.get("content") if isinstance(doc, dict) else None
    return content if isinstance(content, list) else []


def _maps(ctx: PageContext) -> tuple[dict[str, int], dict[str, int], str]:
    return _options_maps(ctx.options)


def _options_maps(opts: Mapping[str, Any]) -> tuple[dict[str, int], dict[str, int], str]:
    status_map = {
        str(k): int(v) for k, v in {**STATUS_MAP, **(opts.get("status_map") or {})}.items()
    }
    channel_map = {
        str(k): int(v) for k, v in {**CHANNEL_MAP, **(opts.get("channel_map") or {})}.items()
    }
    return status_map, channel_map, str(opts.get("code_field", "code"))


def parse_cursor(ctx: PageContext) -> tuple[int, str | None]:
    """(page number, updated-from stamp) this page was asked with."""
    if ctx.cursor:
        k, _, stamp = ctx.cursor.partition("|")
        try:
            return int(k), stamp or None
        except ValueError:
            raise SourceError("protocol", f"not an iGate cursor: {ctx.cursor!r}") from None
    return 0, iso_ts(ctx.since) if ctx.since else None


def next_cursor(ctx: PageContext, last: bool, last_stamp: Any) -> str | None:
    if last or not isinstance(last_stamp, str) or not last_stamp:
        return None
    k, stamp = parse_cursor(ctx)
    # a whole page at the stamp asked from: the next page of that stamp; else from the newest
    return f"{k + 1}|{stamp}" if last_stamp == stamp else f"0|{last_stamp}"


def to_national(body: bytes | memoryview, feed: Feed, ctx: PageContext) -> bytes:
    status_map, channel_map, code_field = _maps(ctx)
    try:  # typed, in C, skipping what the record does not need
        page = _decode_page(body)
    except msgspec.DecodeError:
        page = None
    if page is not None:
        items: list[Any] = [
            typed_to_national(r, status_map, channel_map, code_field) for r in page.content
        ]
        last, count = page.last, len(page.content)
        stamp = page.content[-1].updatedDate if page.content else None
    else:  # plain: whatever the body holds, record by record
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise SourceError("protocol", f"invalid JSON body ({len(body)} bytes)") from exc
        content = doc.get("content") if isinstance(doc, dict) else None
        if not isinstance(content, list):
            raise SourceError("protocol", "body has no 'content' list")
        items = [
            dossier_to_national(r, status_map, channel_map, code_field)
            if isinstance(r, dict) else r
            for r in content
        ]  # fmt: skip
        last, count = doc.get("last"), len(content)
        tail = content[-1] if content else None
        stamp = tail.get("updatedDate") if isinstance(tail, dict) else None
    if not isinstance(last, bool):
        last = count < ctx.limit
    nxt = None if not count else next_cursor(ctx, last, stamp)
    return orjson.dumps({"items": items, "next_cursor": nxt})


def peek(tail: bytes, ctx: PageContext) -> tuple[bool, str | None]:
    """The next cursor from the page metadata and the last record's `updatedDate` (the last
    one in the body: records end with it, and the metadata follows the content)."""
    if not tail.rstrip().endswith(b"}"):
        return False, None
    at = tail.rfind(b'"last":')
    if at < 0:
        return False, None
    last = tail[at + 7 : at + 12].lstrip().startswith(b"true")
    if last:
        return True, None
    at = tail.rfind(b'"updatedDate":"')
    if at < 0:
        return False, None
    end = tail.find(b'"', at + 15)
    try:
        return True, next_cursor(ctx, False, tail[at + 15 : end].decode())
    except SourceError:
        return False, None


WIRE = register_wire(
    WireFormat(WIRE_NAME, to_national=to_national, peek=peek, to_typed=to_typed,
               translate=translate, records=records, steps=steps)
)  # fmt: skip


class IGateConnector(NationalJsonConnector):
    kind = "vnpt-igate"
    capabilities = Capabilities(wire="vnpt-igate", feeds=("dossiers",), into_buffer=True)

    def path(self, feed: Feed) -> str:
        if feed != "dossiers":
            raise SourceError("client", f"iGate's dossier search serves no {feed}")
        return str(self.config.options.get("path", "/pa/dossier/search"))

    def params(
        self, updated_since: datetime | None, cursor: str | None, limit: int
    ) -> dict[str, Any]:
        opts = self.config.options
        ctx = PageContext(cursor=cursor, limit=limit, since=updated_since, options=opts)
        k, stamp = parse_cursor(ctx)
        params: dict[str, Any] = {"page": k, "size": limit,
                                  "sort": opts.get("sort", "updatedDate,asc")}  # fmt: skip
        if stamp:
            params[str(opts.get("since_param", "updated-from"))] = stamp
        for key, name in (("accepted_from", "accepted-from"), ("accepted_to", "accepted-to")):
            if opts.get(key):
                params[name] = opts[key]
        params.update(opts.get("extra_params") or {})
        return params
