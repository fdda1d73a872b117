"""The national synchronisation push, pure parts: stamping records that carry no
`NgayCapNhat`, and applying a progress update (`CapNhatTienDoHoSoMC`) over a stored dossier.
See `connectors.push` for the protocol."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.ingest.domain.normalise import Rejection, _prelude, _Reader
from shared.events.payloads import DossierRecord

# Instants of what happened to a dossier, top level and in its lists (not the promised dates:
# an appointment lies ahead of the dossier's last change).
_TOP_DATES = ("NgayNopHoSo", "NgayTiepNhan", "NgayKetThucXuLy", "NgayTra", "NgayTuChoi")
_LIST_DATES = {
    "QuaTrinhXuLy": ("ThoiDiemXuLy",),
    "DanhSachHoSoBoSung": ("NgayYeuCauBoSung", "NgayTiepNhanBoSung"),
    "DanhSachPhieuXinLoi": ("NgayXinLoi",),
}


def latest_instant(raw: dict[str, Any]) -> str | None:
    """The latest `yyyyMMddHHmmss` instant a record carries (None: none)."""
    found: list[str] = []

    def take(value: Any) -> None:
        if isinstance(value, str) and len(value) == 14 and value.isdigit():
            found.append(value)

    for key in _TOP_DATES:
        take(raw.get(key))
    for key, fields in _LIST_DATES.items():
        items = raw.get(key)
        if isinstance(items, list):
            for item in items:
                if isinstance(item, dict):
                    for f in fields:
                        take(item.get(f))
    return max(found) if found else None


def stamped(raw: Any) -> Any:
    """`raw` with `NgayCapNhat` filled from its latest instant when it has none."""
    if isinstance(raw, dict) and not raw.get("NgayCapNhat"):
        latest = latest_instant(raw)
        if latest is not None:
            return {**raw, "NgayCapNhat": latest}
    return raw


# What a progress update may change, national field → record field.
_PROGRESS_DATES = {
    "NgayHenTra": "due_at",
    "NgayKetThucXuLy": "finished_at",
    "NgayTra": "returned_at",
    "NgayTuChoi": "rejected_at",
}


def apply_progress(
    raw: Any, stored: DossierRecord | None, *, now: datetime
) -> DossierRecord | Rejection:
    """A progress update over the stored dossier: its status and dates, stamped with its
    `NgayCapNhat` (or its latest instant). Invalid values, or a dossier never stored, are a
    rejection (quarantined like a pulled record)."""
    code, reasons = _prelude("dossiers", raw)
    if not isinstance(raw, dict):
        return Rejection("dossiers", None, tuple(reasons), raw)
    raw = stamped(raw)
    r = _Reader(raw, now)
    r.reasons = reasons
    status = r.integer("TrangThaiHoSo", range(1, 11), "invalid_status",
                       default=stored.status if stored else None)  # fmt: skip
    updated = r.ts("NgayCapNhat", required=True)
    changes: dict[str, Any] = {}
    for key, field in _PROGRESS_DATES.items():
        value = r.ts(key)
        if value is not None:
            changes[field] = value
    if stored is None and code is not None:
        r.reasons.append("unknown_dossier")
    if r.reasons or stored is None or status is None or updated is None:
        return Rejection("dossiers", code, tuple(r.reasons), raw)
    return stored.model_copy(update={**changes, "status": status, "source_updated_at": updated})
