"""The dossier hot path: a page body decoded by msgspec straight into typed Structs (only the
fields normalisation reads and those the dossier view keeps, `domain.details`; everything else
is skipped in C without building Python objects), checked with the rules of
`normalise.normalise_dossier`, and turned into COPY rows (the details as one JSON text) plus
event JSON without building pydantic models.

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
from datetime import date, datetime
from typing import Any

import msgspec

from services.ingest.domain.copybin import (
    NULL as _NULL,
)
from services.ingest.domain.copybin import (
    TEXTS as _TEXTS,
)
from services.ingest.domain.copybin import (
    channel_status as _channel_status,
)
from services.ingest.domain.copybin import i64 as _i64
from services.ingest.domain.copybin import length as _len
from services.ingest.domain.copybin import tail as _tail
from services.ingest.domain.copybin import text_field as _text_field
from services.ingest.domain.details import NO_STEPS, Details, Fee, Supplement, steps_raw
from services.ingest.domain.details import encode as _encode_details
from services.ingest.domain.normalise import EARLIEST, FUTURE_TOLERANCE, VN, _positive

_FALSE: tuple[Any, ...] = (None, "", 0, "0", False, "false", "False")
_TRUE: tuple[Any, ...] = (1, "1", True, "true", "True")
_REUSED: tuple[Any, ...] = (1, "1", True)
_EARLIEST = EARLIEST.strftime("%Y%m%d%H%M%S")
_is_nfc = unicodedata.is_normalized


class Component(msgspec.Struct, gc=False):
    DuocTaiSuDung: Any = None


class Result(msgspec.Struct, gc=False):
    DuongDanTepTinKetQua: Any = None


class Apology(msgspec.Struct, gc=False):
    pass


class RawDossier(msgspec.Struct, gc=False):
    """The national fields `normalise_dossier` reads (a missing field reads as None), and
    those the dossier view shows (`domain.details`)."""

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
    DongBoKhoDuLieuCaNhan: Any = None
    SuDungDuLieuDanCu: Any = None
    DanhSachHoSoBoSung: list[Supplement] | str | None = None
    DanhSachLePhi: list[Fee] | str | None = None
    DanhSachThanhPhanHoSo: list[Component] | str | None = None
    DanhSachGiayToKetQua: list[Result] | str | None = None
    DanhSachPhieuXinLoi: list[Apology] | str | None = None
    # read for the dossier view only (`domain.details`), not by normalisation
    TenTTHC: Any = None
    TenLinhVuc: Any = None
    TenDonVi: Any = None
    QuaTrinhXuLy: msgspec.Raw = NO_STEPS  # kept as sent, never decoded here


class DossierPage(msgspec.Struct, gc=False):
    items: list[RawDossier]
    next_cursor: str | None = None
    server_time: Any = None


class DossierOut(msgspec.Struct):
    """`shared.events.payloads.DossierRecord` field for field, in its order (its JSON is the
    same; a test checks both ways). Timestamps are already ISO 8601 text with the Vietnam
    offset, which is what pydantic writes for the aware datetimes of `DossierRecord`."""

    source_id: str
    code: str
    unit_id: str
    procedure_code: str
    field_code: str | None
    channel: int
    status: int
    submitted_at: str | None
    received_at: str | None
    due_at: str | None
    finished_at: str | None
    returned_at: str | None
    rejected_at: str | None
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
    pds_synced: bool
    citizen_data_used: bool
    source_updated_at: str


page_decoder = msgspec.json.Decoder(DossierPage)
_encode = msgspec.json.Encoder().encode


class Defer(Exception):
    """This record needs the reference normaliser."""


_DEFER = Defer()


def forget_deferral() -> None:
    """Drop the traceback the shared `Defer` keeps from its last raise: its frames hold the
    page's records, whose raw steps (`msgspec.Raw`) hold the body's buffer, and a body in
    shared memory cannot be released while anything does."""
    _DEFER.__traceback__ = None


# A valid `yyyyMMddHHmmss` stamp is split into its hour (`yyyyMMddHH`) and its minute and
# second (`mmss`); each part is validated once and cached with its share of the instant (µs
# since 2000-01-01 UTC, what a binary COPY of a timestamptz carries) and of the ISO text, so a
# stamp is two lookups (one table of all 86,400 times of day is slower: cache misses; three
# parts, day + hour-minute + second, cost a slice and a lookup more).
_DAYS: dict[str, tuple[int, str]] = {}  # days between 2000 and the future limit
_HOURS: dict[str, tuple[int, str]] = {}  # hours of those days that stamps fall in
_HOURS_MAX = 100_000  # ~11 years of hours; then it starts again
_MMSS: dict[str, tuple[int, str]] = {
    f"{m:02d}{s:02d}": ((m * 60 + s) * 1_000_000, f"{m:02d}:{s:02d}+07:00")
    for m in range(60)
    for s in range(60)
}
_PG_EPOCH = date(2000, 1, 1)
_DAY_US = 86_400_000_000
_VN_US = 7 * 3_600_000_000
Stamp = tuple[int, str]  # (µs since 2000-01-01 UTC, ISO 8601 text with +07:00)


def future_limit(now: datetime) -> str:
    """`now` + tolerance as VN `yyyyMMddHHmmss` (seconds truncated: a whole-second timestamp is
    after the exact limit iff it is after the truncated one)."""
    return (now + FUTURE_TOLERANCE).astimezone(VN).strftime("%Y%m%d%H%M%S")


def _learn_day(day: str) -> tuple[int, str]:
    """Validate the `yyyyMMdd` part as `datetime(...)` in `normalise.parse_datetime` does
    (ASCII digits, a real date) and cache it."""
    if not day.isascii() or not day.isdigit():
        raise _DEFER
    try:
        d = date(int(day[:4]), int(day[4:6]), int(day[6:8]))
    except ValueError:
        raise _DEFER from None
    out = _DAYS[day] = (
        (d - _PG_EPOCH).days * _DAY_US - _VN_US,
        f"{day[:4]}-{day[4:6]}-{day[6:8]}T",
    )
    return out


def _learn_hour(dh: str) -> tuple[int, str]:
    """Validate the `yyyyMMddHH` part (a valid day, ASCII digits, hours < 24) and cache it."""
    day, hour = dh[:8], dh[8:]
    d = _DAYS.get(day) or _learn_day(day)
    if not hour.isascii() or not hour.isdigit() or hour > "23":
        raise _DEFER
    if len(_HOURS) >= _HOURS_MAX:
        _HOURS.clear()
    out = _HOURS[dh] = (d[0] + int(hour) * 3_600_000_000, f"{d[1]}{hour}:")
    return out


def _ts(value: Any, future: str) -> Stamp | None:
    """A `yyyyMMddHHmmss` (VN) timestamp within range, None for absent, else defer. Range
    checks compare the raw digits: for valid stamps text order is time order."""
    if value is None or value == "":
        return None
    if type(value) is not str or len(value) != 14 or value < _EARLIEST or value > future:
        raise _DEFER
    h = _HOURS.get(value[:10]) or _learn_hour(value[:10])
    ms = _MMSS.get(value[10:])  # valid minutes and seconds only
    if ms is None:
        raise _DEFER
    return h[0] + ms[0], h[1] + ms[1]


def _text(value: Any) -> str:
    if type(value) is not str or not value:
        raise _DEFER
    return (
        value if value.isascii() or _is_nfc("NFC", value) else unicodedata.normalize("NFC", value)
    )


# The flag values `normalise._Reader.flag` accepts, by equality as its `in` tests do (so 0.0
# and 1.0 count too); a dict lookup is one probe instead of up to twelve comparisons.
_FLAGS: dict[Any, bool] = {**dict.fromkeys(_FALSE, False), **dict.fromkeys(_TRUE, True)}


_HUGE = 2**1023  # ints this big may overflow `float()`: left to `normalise._positive`


def _list(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    if type(value) is not list:
        raise _DEFER
    return value


FastRecord = tuple[str, str, int, str, bytes]  # code, unit, updated µs, JSON, COPY row


def fast_dossier(
    r: RawDossier, source_id: str, agencies: Mapping[str, str], future: str, prefix: bytes,
    suffix: bytes = _NULL, steps_wire: str | None = None,
) -> FastRecord:  # fmt: skip
    """(code, unit_id, source_updated_at in µs since 2000-01-01 UTC, `DossierRecord` JSON, the
    binary COPY row of `pages.COPY_COLUMNS`) or raises `Defer`. `prefix` is the row's start
    up to the code: `copybin.row_prefix(source_id)`; `suffix` its `run_id` field:
    `copybin.row_suffix(run_id)`; `steps_wire`: the wire format whose shape the raw steps
    (`QuaTrinhXuLy`) have, None for national ones."""
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
    # The common cases inline (a call costs more than the check): non-empty ASCII text, lists
    # (`_list`), flag values (one `_FLAGS` probe), text fields already encoded (`copybin.text_field`).
    procedure_code = r.MaTTHC
    if type(procedure_code) is not str or not procedure_code or not procedure_code.isascii():
        procedure_code = _text(procedure_code)
    field_code = r.MaLinhVuc
    if field_code is None or field_code == "":
        field_code = None
    elif type(field_code) is not str or not field_code.isascii():
        field_code = _text(field_code)
    channel = r.KenhThucHien
    if type(channel) is not int or not 1 <= channel <= 3:
        raise _DEFER
    status = r.TrangThaiHoSo
    if type(status) is not int or not 1 <= status <= 10:
        raise _DEFER
    # A stamp equal to one already read has the same result (most dossiers are received when
    # submitted; many were last updated when returned): reuse it.
    submitted = _ts(r.NgayNopHoSo, future)
    received = submitted if r.NgayTiepNhan == r.NgayNopHoSo else _ts(r.NgayTiepNhan, future)
    due = _ts(r.NgayHenTra, future)
    finished = _ts(r.NgayKetThucXuLy, future)
    returned = _ts(r.NgayTra, future)
    rejected = r.NgayTuChoi  # mostly absent: no call then
    rejected = None if rejected is None or rejected == "" else _ts(rejected, future)
    updated = returned if r.NgayCapNhat == r.NgayTra else _ts(r.NgayCapNhat, future)
    if updated is None:
        raise _DEFER
    paid = r.DuocThanhToanTrucTuyen
    if paid is None or paid == "":
        paid = 0
    elif type(paid) is not int or not 0 <= paid <= 2:
        raise _DEFER
    if finished is not None and (
        (received is not None and received[0] > finished[0])
        or (submitted is not None and submitted[0] > finished[0])
    ):
        raise _DEFER
    supplements = r.DanhSachHoSoBoSung
    if type(supplements) is not list:
        supplements = _list(supplements)
    supplement_days = 0.0
    for s in supplements:
        asked = _ts(s.NgayYeuCauBoSung, future)
        back = _ts(s.NgayTiepNhanBoSung, future) or updated
        if asked is not None and back[0] > asked[0]:
            # whole seconds, as `timedelta.total_seconds()` gives them
            supplement_days += ((back[0] - asked[0]) // 1_000_000) / 86_400
    if supplement_days:  # round() formats its float: skip it for the usual 0.0
        supplement_days = round(supplement_days, 3)
    fees = r.DanhSachLePhi
    if type(fees) is not list:
        fees = _list(fees)
    components = r.DanhSachThanhPhanHoSo
    if type(components) is not list:
        components = _list(components)
    results = r.DanhSachGiayToKetQua
    if type(results) is not list:
        results = _list(results)
    apologies = r.DanhSachPhieuXinLoi
    if type(apologies) is not list:
        apologies = _list(apologies)
    try:
        digitised = _FLAGS[r.HoSoCoThanhPhanSoHoa]
        vneid = _FLAGS[r.TaiKhoanDuocXacThucVoiVNeID]
        synced = _FLAGS[r.DaDongBoDVCQG]
        pds = _FLAGS[r.DongBoKhoDuLieuCaNhan]
        citizen = _FLAGS[r.SuDungDuLieuDanCu]
    except (KeyError, TypeError):  # TypeError: unhashable (a list or an object)
        raise _DEFER from None
    has_fee = False
    for f in fees:
        price = f.Gia  # mostly an int; one `float()` takes as is (it keeps the sign)
        if price > 0 if type(price) is int and -_HUGE < price < _HUGE else _positive(price):
            has_fee = True
            break
    reused = False
    for c in components:
        if c.DuocTaiSuDung in _REUSED:
            reused = True
            break
    e_result = False
    for d in results:
        if d.DuongDanTepTinKetQua:
            e_result = True
            break
    details = _encode_details(
        Details(
            r.TenTTHC,
            r.TenLinhVuc,
            r.TenDonVi,
            fees,
            supplements,
            steps_raw(r.QuaTrinhXuLy),
            steps_wire,
        )
    )
    n_supplements = len(supplements)
    n_apologies = len(apologies)
    text = _encode(
        DossierOut(
            source_id, code, unit_id, procedure_code, field_code, channel, status,
            submitted and submitted[1], received and received[1], due and due[1],
            finished and finished[1], returned and returned[1], rejected and rejected[1],
            n_supplements, supplement_days, n_apologies, has_fee, paid, digitised, reused,
            e_result, synced, vneid, pds, citizen, updated[1],
        )
    ).decode()  # fmt: skip
    code_bytes = code.encode()
    row = b"".join((
        prefix, _len(len(code_bytes)), code_bytes,
        _TEXTS.get(unit_id) or _text_field(unit_id),
        _TEXTS.get(procedure_code) or _text_field(procedure_code),
        _NULL if field_code is None else _TEXTS.get(field_code) or _text_field(field_code),
        _channel_status(2, channel, 2, status),
        _NULL if submitted is None else _i64(8, submitted[0]),
        _NULL if received is None else _i64(8, received[0]),
        _NULL if due is None else _i64(8, due[0]),
        _NULL if finished is None else _i64(8, finished[0]),
        _NULL if returned is None else _i64(8, returned[0]),
        _NULL if rejected is None else _i64(8, rejected[0]),
        _tail(2, n_supplements, 8, supplement_days, 2, n_apologies, 1, has_fee, 2, paid,
              1, digitised, 1, reused, 1, e_result, 1, synced, 1, vneid, 1, pds, 1, citizen,
              8, updated[0], 8, updated[0]),
        _len(len(details)), details,
        suffix,
    ))  # fmt: skip
    return code, unit_id, updated[0], text, row


def decode_page(body: bytes | memoryview) -> DossierPage | None:
    """The typed page, or None when the reference path must read it (see module doc)."""
    try:
        return page_decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
