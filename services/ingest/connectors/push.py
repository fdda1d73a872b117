"""The national synchronisation push: a one-stop system sends its dossiers to us the way it
sends them to the national portal (Cổng Dịch vụ công quốc gia), so a province can point its
existing sync at us instead of writing a pull connector.

Two messages, JSON over HTTPS on `POST /api/v1/push/{source_id}/{service}`:
- `DongBoHoSoMC`: `{"session", "madonvi", "service": "DongBoHoSoMC", "isUpdating", "data": [dossier…]}`
  with dossiers in the national field set (MaHoSo, MaTTHC, MaDonVi, KenhThucHien, NgayTiepNhan,
  NgayHenTra, TrangThaiHoSo, DanhSachLePhi, DanhSachHoSoBoSung, DanhSachGiayToKetQua,
  QuaTrinhXuLy, …): each is validated like a pulled record (quarantined when invalid);
- `CapNhatTienDoHoSoMC`: progress of dossiers already sent (`MaHoSo`, `TrangThaiHoSo`, dates,
  the new `QuaTrinhXuLy` steps): applied over the stored dossier; one we have never stored is
  quarantined (`unknown_dossier`) until its full record arrives.

A push carries no `NgayCapNhat` in the material we found. A record without one is stamped with
the latest instant it carries (its dates and processing steps), so re-sending the same record is
recognised as a repeat (nothing stored, no event) and a real progress step is newer. The source
of kind `national-push` is never pulled (`Capabilities.pull = False`).
"""

from __future__ import annotations

from datetime import datetime

from services.ingest.connectors.base import (
    Capabilities,
    ConnectorConfig,
    Feed,
    Page,
    Sink,
    SourceError,
)


class NationalPushConnector:
    """A source that pushes: nothing to fetch."""

    kind = "national-push"
    capabilities = Capabilities(wire="national-json", feeds=("dossiers",), pull=False)

    def __init__(self, config: ConnectorConfig) -> None:
        self.config = config

    async def fetch_body(
        self, feed: Feed, *, updated_since: datetime | None, cursor: str | None, limit: int,
        sink: Sink | None = None,
    ) -> bytes | int:  # fmt: skip
        raise SourceError("client", "a national-push source sends its dossiers; it is not pulled")

    async def fetch_page(
        self, feed: Feed, *, updated_since: datetime | None, cursor: str | None, limit: int
    ) -> Page:
        raise SourceError("client", "a national-push source sends its dossiers; it is not pulled")

    def source_clock(self) -> datetime | None:
        return None

    async def aclose(self) -> None:
        return None
