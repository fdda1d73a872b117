"""The facts of the portal's 2026 metrics travel from the national-style fields into the
records (reference normaliser and fast path alike) and the events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from services.ingest.domain import fast
from services.ingest.domain.copybin import row_prefix
from services.ingest.domain.normalise import (
    VN,
    normalise_dossier,
    normalise_petition,
    normalise_procedure,
)
from shared.events.payloads import DossierRecord, PetitionRecord, ProcedureRecord
from tests.ingest.test_ingest_normalise import AGENCIES, DOSSIER

NOW = datetime(2026, 10, 1, 8, 0, tzinfo=VN)


def test_dossier_flags_in_both_paths() -> None:
    raw: dict[str, Any] = {**DOSSIER, "DongBoKhoDuLieuCaNhan": 1, "SuDungDuLieuDanCu": "1"}
    rec = normalise_dossier(raw, source_id="demo", agencies=AGENCIES, now=NOW)
    assert isinstance(rec, DossierRecord) and rec.pds_synced and rec.citizen_data_used
    absent = normalise_dossier(DOSSIER, source_id="demo", agencies=AGENCIES, now=NOW)
    assert isinstance(absent, DossierRecord)
    assert not absent.pds_synced and not absent.citizen_data_used
    typed = msgspec.json.decode(msgspec.json.encode(raw), type=fast.RawDossier)
    _, _, _, text, _ = fast.fast_dossier(
        typed, "demo", AGENCIES, fast.future_limit(NOW), row_prefix("demo")
    )
    assert DossierRecord.model_validate_json(text) == rec
    bad = normalise_dossier({**raw, "SuDungDuLieuDanCu": "có"}, source_id="demo",
                            agencies=AGENCIES, now=NOW)  # fmt: skip
    assert not isinstance(bad, DossierRecord)
    assert "invalid_flag:SuDungDuLieuDanCu" in bad.reasons


def test_procedure_flags_and_petition_category() -> None:
    proc = {
        "MaTTHC": "2.000815", "TenTTHC": "Chứng thực bản sao từ bản chính",
        "MaDonVi": "102.00.00.H33", "MucDoDVC": 4, "NgayCapNhat": "20251126090000",
        "DuDieuKienToanTrinh": 1, "KetNoiDuLieuDanCu": 0, "LaThuTucChungThuc": 1,
        "ChungThucBanSaoDienTu": 1,
    }  # fmt: skip
    rec = normalise_procedure(proc, source_id="demo", agencies=AGENCIES, now=NOW)
    assert isinstance(rec, ProcedureRecord)
    assert (rec.full_online_eligible, rec.citizen_data_connected, rec.certification,
            rec.e_certified_copy) == (True, False, True, True)  # fmt: skip
    pet = {
        "MaPAKN": "PAKN-1", "MaDonVi": "102.00.00.H33", "NgayTiepNhan": "20260101080000",
        "NgayCapNhat": "20260112080000", "PhanLoai": "CBCCVC",
    }  # fmt: skip
    p = normalise_petition(pet, source_id="demo", agencies=AGENCIES, now=NOW)
    assert isinstance(p, PetitionRecord) and p.category == "staff"
    for code, want in (("TTHC", "tthc"), ("khac", "other"), ("", None), ("?", None)):
        q = normalise_petition({**pet, "PhanLoai": code}, source_id="demo", agencies=AGENCIES,
                               now=NOW)  # fmt: skip
        assert isinstance(q, PetitionRecord) and q.category == want, code
