"""What a dossier view shows beyond the scoring record: the names the source gives the
procedure, its field and the agency, the fees (DanhSachLePhi), the supplement requests
(DanhSachHoSoBoSung) and the processing steps (QuaTrinhXuLy), as the source sent them.

Stored as one JSON text per dossier (`ingest.dossiers.details`), built on the ingest hot path,
so it is kept cheap: the fast path (`domain.fast`) decodes the short fee and supplement lists
into the Structs below (national fields; a vendor's connector translates its own), takes the
steps as the raw JSON the source sent (`msgspec.Raw`: not decoded at all) and encodes the lot
in one call. Steps of a vendor source stay in the vendor's shape, marked with its wire format
(`steps_wire`), and are translated when shown (`read_details`, with the source's current
options: a corrected status map shows at once). The reference path (`details_json`) builds
the same document from a record decoded as a dict: the same JSON value, though not always the
same bytes (the source's spacing inside the steps is kept by the fast path only).

Reading (`read_details`) turns the text into the view's fees, supplements and steps with
Vietnamese labels for the coded values.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec

from services.ingest.domain.normalise import parse_datetime


class Fee(msgspec.Struct, gc=False):
    """A DanhSachLePhi item (the fast path reads `Gia` for has_fee)."""

    MaPhiLePhi: Any = None
    TenPhiLePhi: Any = None
    Gia: Any = None
    HinhThucThu: Any = None
    LoaiPhiLePhi: Any = None


class Supplement(msgspec.Struct, gc=False):
    """A DanhSachHoSoBoSung item (the fast path reads the two first dates)."""

    NgayYeuCauBoSung: Any = None
    NgayTiepNhanBoSung: Any = None
    NgayHenTraTruoc: Any = None
    NgayHenTraMoi: Any = None


NO_STEPS = msgspec.Raw(b"[]")


class Details(msgspec.Struct, gc=False, omit_defaults=True):
    TenTTHC: Any = None
    TenLinhVuc: Any = None
    TenDonVi: Any = None
    DanhSachLePhi: list[Fee] = []
    DanhSachHoSoBoSung: list[Supplement] = []
    QuaTrinhXuLy: msgspec.Raw = NO_STEPS
    steps_wire: str | None = None  # the steps' shape when not national (a wire format name)


encode = msgspec.json.Encoder().encode


def steps_raw(value: Any) -> msgspec.Raw:
    """Raw step JSON as the fast path keeps it: a JSON array of valid UTF-8 (PostgreSQL text
    takes nothing else; msgspec does not check the bytes it skips), else no steps."""
    try:
        text = str(value, "utf-8")
    except (UnicodeDecodeError, TypeError):
        return NO_STEPS
    return value if text[:1] == "[" else NO_STEPS


def _items(value: Any, struct: type[Any]) -> list[Any]:
    items = value if isinstance(value, list) else ()
    fields = struct.__struct_fields__
    return [struct(**{f: i.get(f) for f in fields}) for i in items if isinstance(i, dict)]


def details_json(raw: Any, steps_wire: str | None = None) -> bytes | None:
    """The details of a record decoded as a dict (national fields; its steps in the shape of
    `steps_wire`, national when None); None when it cannot be encoded (e.g. a lone
    surrogate)."""
    if not isinstance(raw, dict):
        return None
    steps = raw.get("QuaTrinhXuLy")
    try:
        return encode(Details(
            raw.get("TenTTHC"), raw.get("TenLinhVuc"), raw.get("TenDonVi"),
            _items(raw.get("DanhSachLePhi"), Fee), _items(raw.get("DanhSachHoSoBoSung"), Supplement),
            msgspec.Raw(encode([s for s in steps if isinstance(s, dict)]))
            if isinstance(steps, list) else NO_STEPS,
            steps_wire,
        ))  # fmt: skip
    except (TypeError, ValueError, UnicodeEncodeError, OverflowError):
        return None


StepsTranslator = Callable[[str, list[Any]], list[Any]]
"""(wire format, steps in its shape) → steps in national fields (with the source's options)."""


def _load(text: str | None) -> dict[str, Any]:
    try:
        doc = json.loads(text) if text else {}
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def national_steps(doc: dict[str, Any], translate: StepsTranslator | None) -> list[Any]:
    steps = doc.get("QuaTrinhXuLy")
    steps = [s for s in steps if isinstance(s, dict)] if isinstance(steps, list) else []
    wire = doc.get("steps_wire")
    if isinstance(wire, str) and steps:
        if translate is None:
            return []
        steps = [s for s in translate(wire, steps) if isinstance(s, dict)]
    return steps


def merge_progress(
    stored: str | None, update: Any, translate: StepsTranslator | None = None
) -> bytes | None:
    """The details after a progress update (`CapNhatTienDoHoSoMC`): the steps it reports are
    added to the stored ones (a step sent again is not repeated), and the fees and
    supplements it lists, when it lists them, replace the stored ones."""
    old = _load(stored)
    new = _load((details_json(update) or b"").decode()) if isinstance(update, dict) else {}
    merged: dict[str, Any] = {**old, "QuaTrinhXuLy": national_steps(old, translate),
                              "steps_wire": None}  # fmt: skip
    for key in ("TenTTHC", "TenLinhVuc", "TenDonVi"):
        if new.get(key) is not None:
            merged[key] = new[key]
    for key in ("DanhSachLePhi", "DanhSachHoSoBoSung"):
        if isinstance(update, dict) and isinstance(update.get(key), list):
            merged[key] = new.get(key, [])
    for step in new.get("QuaTrinhXuLy") or []:
        if step not in merged["QuaTrinhXuLy"]:
            merged["QuaTrinhXuLy"].append(step)
    return details_json(merged)


# Coded values of the lists, as the national field set uses them (our reading of the
# synchronisation material; an unknown code is shown as it came).
FEE_METHODS: dict[int, str] = {1: "Nộp trực tiếp", 2: "Thanh toán trực tuyến", 3: "Qua bưu chính"}
FEE_KINDS: dict[int, str] = {1: "Lệ phí", 2: "Phí"}


def _code(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def label(table: dict[int, str], value: Any) -> str | None:
    """The Vietnamese name of a coded value; "Không rõ (…)" for a code we do not know."""
    if value is None or value == "":
        return None
    code = _code(value)
    if code is not None and code in table:
        return table[code]
    return f"Không rõ ({str(value)[:40]})"


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _amount(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return float(value)
    except OverflowError:  # an int no float holds: not an amount we can show
        return None


def _at(value: Any) -> datetime | None:
    return parse_datetime(value) if isinstance(value, str) and value else None


@dataclass(frozen=True, slots=True)
class ReadDetails:
    procedure_name: str | None
    field_name: str | None
    agency_name: str | None
    fees: list[dict[str, Any]]
    supplements: list[dict[str, Any]]
    steps: list[dict[str, Any]]


def read_details(
    text: str | None, status_name: Callable[[int], str],
    translate: StepsTranslator | None = None,
) -> ReadDetails:  # fmt: skip
    """The stored details as the view shows them (`status_name` names a step's status;
    `translate` brings a vendor's steps into national fields). Stored text that does not
    parse reads as no details."""
    doc = _load(text)

    def items(key: str) -> list[dict[str, Any]]:
        value = doc.get(key)
        return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []

    fees = [
        {
            "code": _text(f.get("MaPhiLePhi")),
            "name": _text(f.get("TenPhiLePhi")),
            "amount": _amount(f.get("Gia")),
            "method": _code(f.get("HinhThucThu")),
            "method_name": label(FEE_METHODS, f.get("HinhThucThu")),
            "kind": _code(f.get("LoaiPhiLePhi")),
            "kind_name": label(FEE_KINDS, f.get("LoaiPhiLePhi")),
        }
        for f in items("DanhSachLePhi")
    ]
    supplements = [
        {
            "requested_at": _at(s.get("NgayYeuCauBoSung")),
            "received_at": _at(s.get("NgayTiepNhanBoSung")),
            "previous_due_at": _at(s.get("NgayHenTraTruoc")),
            "new_due_at": _at(s.get("NgayHenTraMoi")),
        }
        for s in items("DanhSachHoSoBoSung")
    ]
    steps = []
    for s in national_steps(doc, translate):
        status = _code(s.get("TrangThai"))
        raw_status = s.get("TrangThai")
        steps.append(
            {
                "at": _at(s.get("ThoiDiemXuLy")),
                "officer": _text(s.get("NguoiXuLy")),
                "position": _text(s.get("ChucDanh")),
                "department": _text(s.get("PhongBanXuLy")),
                "action": _text(s.get("NoiDungXuLy")),
                "status": status,
                "status_name": (
                    status_name(status) if status is not None
                    else f"Không rõ ({str(raw_status)[:40]})" if raw_status not in (None, "")
                    else None
                ),
            }
        )  # fmt: skip
    return ReadDetails(
        procedure_name=_text(doc.get("TenTTHC")),
        field_name=_text(doc.get("TenLinhVuc")),
        agency_name=_text(doc.get("TenDonVi")),
        fees=fees,
        supplements=supplements,
        steps=steps,
    )
