"""The typed dossier fast path (`domain.fast` via `sync.prepare.prepare_page`) must give exactly
what the reference path gives: `decode_envelope` + `normalise_dossier` + `pages.prepare`
(same rows, same event JSON, same rejections with the same reasons), and its event JSON must be
the `DossierRecord` / `DossiersChanged` contract."""

from __future__ import annotations

import json
import struct
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from services.ingest.connectors.national import decode_envelope
from services.ingest.domain import fast
from services.ingest.domain.agencies import mapping_from_registry
from services.ingest.domain.copybin import encode_dossier_rows
from services.ingest.simulator import build
from services.ingest.store.pages import PreparedPage, event_json, prepare
from services.ingest.sync.prepare import normalise_page, prepare_dossiers_fast, prepare_page
from shared.events.payloads import DossierRecord, DossiersChanged
from tests.ingest.test_ingest_normalise import AGENCIES, DOSSIER, NOW, dossier


def reference(body: bytes, agencies: dict[str, str], now: datetime) -> tuple[PreparedPage, int]:
    page = decode_envelope(body)
    good, bad, details = normalise_page(
        "dossiers", page.records, page.invalid, source_id="demo", agencies=agencies, now=now,
        scan_nul=page.may_contain_nul,
    )  # fmt: skip
    return prepare("dossiers", good, bad, page.next_cursor, details), len(bad)


def body_of(items: list[Any], cursor: str | None = "c2") -> bytes:
    doc = {"items": items, "next_cursor": cursor, "server_time": "20261001080000"}
    return json.dumps(doc, ensure_ascii=False).encode()


def copy_fields(data: bytes | None) -> list[list[Any]] | None:
    """The rows of a binary COPY stream as their fields' bytes, the `details` field (JSON
    text) decoded: the fast path keeps the source's own bytes of the processing steps where
    the reference path re-serialises them, so the two compare as JSON values."""
    if data is None:
        return None
    from services.ingest.store.pages import COPY_COLUMNS

    at, rows = 19, list[list[Any]]()
    details = COPY_COLUMNS.index("details")
    while True:
        (count,) = struct.unpack_from(">h", data, at)
        at += 2
        if count == -1:
            return rows
        fields: list[Any] = []
        for _ in range(count):
            (n,) = struct.unpack_from(">i", data, at)
            at += 4
            fields.append(None if n < 0 else data[at : at + n])
            at += max(n, 0)
        if fields[details] is not None:
            fields[details] = json.loads(fields[details])
        rows.append(fields)


def view(page: PreparedPage) -> tuple[Any, ...]:
    """What the writer uses of a page; rows as the binary COPY stream they become (the fast
    path ships only that)."""
    copy = page.copy_data
    if copy is None and page.rows:
        copy = encode_dossier_rows(page.rows, details=page.details)
    return (
        page.next_cursor, page.received, copy_fields(copy), page.record_json, page.codes,
        page.units, page.max_seen, page.rejections, page.reason_kinds,
    )  # fmt: skip


def assert_same(body: bytes, agencies: dict[str, str], now: datetime) -> PreparedPage:
    expected, expected_rejected = reference(body, agencies, now)
    got, rejected = prepare_page(body, "dossiers", "demo", agencies, now)
    assert view(got) == view(expected)
    assert rejected == expected_rejected
    return got


def test_simulator_pages_agree_and_take_the_fast_path() -> None:
    sim = build(seed=7, dossiers=3000, malformed_rate=0.02)
    sim.pregenerate("dossiers", 500)
    agencies = mapping_from_registry("demo-igate")
    now = datetime.fromtimestamp(sim.clock, UTC)
    fast_pages = rejected = 0
    for body in sim._pages.values():
        page = assert_same(body, agencies, now)
        rejected += len(page.rejections)
        fast_pages += prepare_dossiers_fast(body, "demo", agencies, now) is not None
    assert rejected > 0  # malformed records were quarantined with the reference reasons
    assert fast_pages > 0


def test_malformations_without_nul_go_through_the_fast_decoder() -> None:
    # The simulator's malformations other than NUL bytes, on a page the typed decoder reads.
    sim = build(seed=7, dossiers=3000, malformed_rate=0.05)
    agencies = mapping_from_registry("demo-igate")
    truth = sim.truth("dossiers")
    malformed = sim.malformed_codes()
    items = [truth[c] for c in truth if malformed.get(c) != "nul_byte"]
    assert {malformed[c] for c in truth if c in malformed} - {"nul_byte"}
    body = body_of(items)
    now = datetime.fromtimestamp(sim.clock, UTC)
    assert prepare_dossiers_fast(body, "demo", agencies, now) is not None
    page = assert_same(body, agencies, now)
    kinds = {r[1].split("\x1f")[0].split(":")[0] for r in page.rejections}
    assert {"unknown_agency", "missing_code", "date_before_2000"} <= kinds


VARIANTS: list[dict[str, Any]] = [
    {},
    {"MaHoSo": ""},
    {"MaHoSo": "   "},
    {"MaHoSo": " H-1 "},
    {"MaHoSo": 12},
    {"MaHoSo": "Ho\u0302\u0300-1"},  # NFD
    {"MaDonVi": "nope"},
    {"MaDonVi": ""},
    {"MaDonVi": 5},
    {"MaTTHC": 1.5},
    {"MaTTHC": 1006032},
    {"MaTTHC": ""},
    {"MaTTHC": None},
    {"MaTTHC": "Thu\u0309 tu\u0323c"},
    {"MaTTHC": ["x"]},
    {"MaLinhVuc": ""},
    {"MaLinhVuc": None},
    {"MaLinhVuc": 27},
    {"MaLinhVuc": "Li\u0303nh vu\u031bc"},
    {"KenhThucHien": "2"},
    {"KenhThucHien": " 3 "},
    {"KenhThucHien": 4},
    {"KenhThucHien": True},
    {"KenhThucHien": 2.0},
    {"KenhThucHien": None},
    {"TrangThaiHoSo": "đang xử lý"},
    {"TrangThaiHoSo": 0},
    {"TrangThaiHoSo": 11},
    {"TrangThaiHoSo": "10"},
    {"NgayNopHoSo": "19000101000000"},
    {"NgayNopHoSo": "19991231235959"},
    {"NgayNopHoSo": "20000101000000"},
    {"NgayNopHoSo": "2026-04-08T09:50:58"},
    {"NgayNopHoSo": "2026-04-08T09:50:58+00:00"},
    {"NgayNopHoSo": "08/04/2026 09:50"},
    {"NgayNopHoSo": "20260408"},
    {"NgayNopHoSo": "20261308095058"},
    {"NgayNopHoSo": "20260230095058"},
    {"NgayNopHoSo": "20260408245058"},
    {"NgayNopHoSo": "2026040809505"},
    {"NgayNopHoSo": 20260408095058},
    {"NgayNopHoSo": "２０２６０４０８０９５０５８"},
    {"NgayTiepNhan": "20300101000000"},
    {"NgayTiepNhan": "20270930150000"},  # just inside NOW + 365 days (VN)
    {"NgayTiepNhan": "20271001080001"},  # just after it
    {"NgayTiepNhan": "20271001080000"},  # exactly at it
    {"NgayKetThucXuLy": "20250701080000"},
    {"NgayKetThucXuLy": ""},
    {"NgayTiepNhan": "20260414215049", "NgayKetThucXuLy": "20260414215049"},
    {"NgayCapNhat": ""},
    {"NgayTra": "20260415093138", "NgayCapNhat": "20260415093138"},
    {"NgayTra": "", "NgayCapNhat": ""},
    {"NgayTra": None, "NgayCapNhat": None},
    {"NgayNopHoSo": "20260408095058", "NgayTiepNhan": "20260408095058"},
    {"NgayNopHoSo": "", "NgayTiepNhan": ""},
    {"NgayNopHoSo": "20260408", "NgayTiepNhan": "20260408"},
    {"NgayCapNhat": "20000101070000"},  # 0 us after the PostgreSQL epoch
    {"NgayCapNhat": "20000101065959", "NgayNopHoSo": "20000101000000"},
    {"NgayCapNhat": "20240229235959"},
    {"NgayCapNhat": "20250229120000"},
    {"NgayCapNhat": "20260415093160"},
    {"NgayCapNhat": "20260415096000"},
    {"NgayCapNhat": "20260415240000"},
    {"NgayCapNhat": "00000415093138"},
    {"NgayCapNhat": "2026041509313٥"},
    {"NgayCapNhat": "202604150\u06633138"},
    {"NgayCapNhat": "20260415093-38"},
    {"NgayCapNhat": "2026041509315x"},
    {"NgayCapNhat": "20260415093138", "NgayNopHoSo": "20260415093139",
     "NgayKetThucXuLy": "20260415093138"},
    {"NgayCapNhat": None},
    {"DuocThanhToanTrucTuyen": ""},
    {"DuocThanhToanTrucTuyen": None},
    {"DuocThanhToanTrucTuyen": "1"},
    {"DuocThanhToanTrucTuyen": 3},
    {"DuocThanhToanTrucTuyen": False},
    {"HoSoCoThanhPhanSoHoa": "true"},
    {"HoSoCoThanhPhanSoHoa": "False"},
    {"HoSoCoThanhPhanSoHoa": 2},
    {"HoSoCoThanhPhanSoHoa": 1.0},
    {"HoSoCoThanhPhanSoHoa": 0.0},
    {"HoSoCoThanhPhanSoHoa": None},
    {"DaDongBoDVCQG": "yes"},
    {"TaiKhoanDuocXacThucVoiVNeID": True},
    {"DanhSachHoSoBoSung": ""},
    {"DanhSachHoSoBoSung": "x"},
    {"DanhSachHoSoBoSung": None},
    {"DanhSachHoSoBoSung": [{"NgayYeuCauBoSung": "20260409080000"}]},
    {"DanhSachHoSoBoSung": [{"NgayYeuCauBoSung": "x", "NgayTiepNhanBoSung": ""}]},
    {"DanhSachHoSoBoSung": [{"NgayYeuCauBoSung": "20260409080000",
                             "NgayTiepNhanBoSung": "20260410083000"},
                            {"NgayYeuCauBoSung": "20260411080000",
                             "NgayTiepNhanBoSung": "20260412091234"}]},
    {"DanhSachHoSoBoSung": [{"NgayYeuCauBoSung": "20260412080000",
                             "NgayTiepNhanBoSung": "20260411080000"}]},
    {"DanhSachHoSoBoSung": [{}]},
    {"DanhSachLePhi": [{"Gia": "8000"}]},
    {"DanhSachLePhi": [{"Gia": "abc"}, {"Gia": 0}]},
    {"DanhSachLePhi": [{"Gia": None}]},
    {"DanhSachLePhi": [{"Gia": 0}, {"Gia": -5}, {"Gia": 7}]},
    {"DanhSachLePhi": [{"Gia": -1}]},
    {"DanhSachLePhi": [{"Gia": True}]},
    {"DanhSachLePhi": [{"Gia": 0.5}]},
    {"DanhSachLePhi": [{"Gia": 10**30}]},
    {"DanhSachLePhi": [{"Gia": -(10**30)}]},
    {"DanhSachLePhi": {"Gia": 1}},
    {"DanhSachLePhi": [1, 2]},
    {"DanhSachThanhPhanHoSo": [{"DuocTaiSuDung": "1"}]},
    {"DanhSachThanhPhanHoSo": [{"DuocTaiSuDung": True}, {"DuocTaiSuDung": 2}]},
    {"DanhSachThanhPhanHoSo": [{"DuocTaiSuDung": 1.0}]},
    {"DanhSachGiayToKetQua": [{"DuongDanTepTinKetQua": ""}]},
    {"DanhSachGiayToKetQua": [{"DuongDanTepTinKetQua": 0}, {"DuongDanTepTinKetQua": [1]}]},
    {"DanhSachPhieuXinLoi": [{"LyDo": "x"}, {}]},
    {"DanhSachPhieuXinLoi": "[]"},
    {"QuaTrinhXuLy": "anything", "Extra": {"nested": [1, {"a": None}]}},
]  # fmt: skip


@pytest.mark.parametrize("changes", VARIANTS, ids=[json.dumps(v)[:60] for v in VARIANTS])
def test_fast_path_agrees_with_the_reference_rules(changes: dict[str, Any]) -> None:
    # The variant alone, and beside valid records (a page the typed decoder may or may not
    # read as a whole, so both the per-record deferral and the page fallback are exercised).
    assert_same(body_of([dossier(**changes)]), AGENCIES, NOW)
    other = dossier(MaHoSo="102.00.00.H33-260408-0002")
    assert_same(body_of([other, dossier(**changes), DOSSIER]), AGENCIES, NOW)


def test_a_price_float_cannot_hold_fails_as_in_the_reference() -> None:
    from services.ingest.domain.details import Fee
    from services.ingest.domain.normalise import _positive

    huge = [Fee(Gia=10**400)]
    with pytest.raises(OverflowError):
        _positive(10**400)
    item = fast.page_decoder.decode(body_of([DOSSIER])).items[0]
    item.DanhSachLePhi = huge
    with pytest.raises(OverflowError):
        fast.fast_dossier(item, "demo", AGENCIES, fast.future_limit(NOW), b"")


def test_missing_fields_and_odd_items() -> None:
    for key in ("MaHoSo", "MaDonVi", "MaTTHC", "KenhThucHien", "TrangThaiHoSo", "NgayCapNhat",
                "DanhSachLePhi", "HoSoCoThanhPhanSoHoa", "MaLinhVuc", "NgayNopHoSo"):  # fmt: skip
        raw = dossier()
        del raw[key]
        assert_same(body_of([raw, DOSSIER]), AGENCIES, NOW)
    assert_same(body_of([DOSSIER, 5, "x", None, [1]]), AGENCIES, NOW)
    assert_same(body_of([dossier(TenTTHC="a\x00b"), DOSSIER]), AGENCIES, NOW)
    assert_same(body_of([], None), AGENCIES, NOW)
    assert_same(body_of([DOSSIER], ""), AGENCIES, NOW)


def test_duplicates_newest_wins_ties_keep_the_first() -> None:
    older = dossier(NgayCapNhat="20260415093000", MaTTHC="older")
    newer = dossier(NgayCapNhat="20260415093138", MaTTHC="newer")
    tie = dossier(NgayCapNhat="20260415093138", MaTTHC="tie")
    slow = dossier(NgayCapNhat="2026-04-15T09:31:39+07:00", MaTTHC="slow-newest")
    for items in ([older, newer, tie], [newer, older, tie], [tie, slow, newer], [slow, older]):
        page = assert_same(body_of(items), AGENCIES, NOW)
        assert len(page.codes) == 1 and page.received == len(items)


def test_protocol_errors_are_the_same() -> None:
    from services.ingest.connectors.base import SourceError

    for body in (b"{", b"[]", b'{"items": 3}', b'{"items": [], "next_cursor": 5}', b"null"):
        with pytest.raises(SourceError) as ref:
            decode_envelope(body)
        with pytest.raises(SourceError) as got:
            prepare_page(body, "dossiers", "demo", AGENCIES, NOW)
        assert str(got.value) == str(ref.value) and got.value.kind == ref.value.kind


def test_event_json_is_the_payload_contract() -> None:
    """Records serialised by the fast path validate as `DossierRecord`s and round-trip to the
    same JSON pydantic produces; the assembled event validates as `DossiersChanged`."""
    sim = build(seed=11, dossiers=1500)
    agencies = mapping_from_registry("demo-igate")
    now = datetime.fromtimestamp(sim.clock, UTC) + timedelta(seconds=1)
    sim.pregenerate("dossiers", 5000)
    (body,) = sim._pages.values()
    page, _ = prepare_page(body, "dossiers", "demo", agencies, now)
    ref, _ = reference(body, agencies, now)
    assert page.codes and page.copy_data and not page.rows
    for row, text in zip(ref.rows, page.record_json, strict=True):
        rec = DossierRecord.model_validate_json(text)
        assert rec.model_dump_json() == text
        assert tuple(getattr(rec, f) for f in DossierRecord.model_fields) == row
    payload = event_json("dossiers", page.units[0], "run-1", page.record_json[:7])
    event = DossiersChanged.model_validate_json(payload)
    assert event.model_dump_json() == payload
    assert [d.code for d in event.dossiers] == page.codes[:7]


def test_dossier_out_mirrors_the_payload_model() -> None:
    assert tuple(fast.DossierOut.__struct_fields__) == tuple(DossierRecord.model_fields)
    sample = {**DOSSIER}
    rec = DossierRecord.model_validate(
        {"source_id": "s", "code": sample["MaHoSo"], "unit_id": "u", "procedure_code": "p",
         "channel": 2, "status": 3, "source_updated_at": NOW, "supplement_days": 1.125}
    )  # fmt: skip
    values: list[Any] = [
        v.isoformat() if isinstance(v, datetime) else v
        for v in (getattr(rec, f) for f in DossierRecord.model_fields)
    ]
    assert msgspec.json.encode(fast.DossierOut(*values)).decode() == rec.model_dump_json()


def test_prepared_pages_pickle_for_worker_processes() -> None:
    import pickle

    from services.ingest.store.pages import prepare as prepare_records

    body = body_of([DOSSIER, dossier(MaHoSo="X-2", NgayKetThucXuLy="", NgayTra="")])
    page, _ = prepare_page(body, "dossiers", "demo", AGENCIES, NOW)
    back = pickle.loads(pickle.dumps(page))
    assert back == page  # datetimes compare as instants (they travel as UTC)
    assert back.copy_data and not back.rows
    ref, _ = reference(body, AGENCIES, NOW)
    back = pickle.loads(pickle.dumps(ref))  # reference rows travel as msgpack
    assert back == ref and all(type(r) is tuple for r in back.rows)
    empty = prepare_records("petitions", [], [], None)
    assert pickle.loads(pickle.dumps(empty)) == empty


async def test_binary_copy_stores_what_asyncpg_copy_stores(database_url: str) -> None:
    """The fast path's binary COPY stream stores what asyncpg's `copy_records_to_table` of the
    reference path's rows stores."""
    import io

    import asyncpg

    from services.ingest.store.pages import COPY_COLUMNS, DOSSIER_COLUMNS
    from shared.settings import to_plain_url

    items = [
        DOSSIER,
        dossier(MaHoSo="Mã-hồ-sơ-2\t\\", MaLinhVuc="", NgayKetThucXuLy="", NgayTra=""),
        dossier(MaHoSo="X-3", NgayCapNhat="2026-04-15T09:31:38.123456+00:00", KenhThucHien=3),
    ]
    page, _ = prepare_page(body_of(items), "dossiers", "demo", AGENCIES, NOW, run_id="run-7")
    ref, _ = reference(body_of(items), AGENCIES, NOW)
    assert len(ref.rows) == 3 and page.copy_data is not None
    cols = ", ".join(DOSSIER_COLUMNS)
    conn = await asyncpg.connect(to_plain_url(database_url))
    try:
        async with conn.transaction():
            for name in ("t_ref", "t_bin"):
                await conn.execute(
                    f"CREATE TEMP TABLE {name} (LIKE ingest.dossiers INCLUDING DEFAULTS)"
                    " ON COMMIT DROP"
                )
            await conn.copy_records_to_table("t_ref", records=ref.rows, columns=DOSSIER_COLUMNS)
            await conn.copy_to_table(
                "t_bin", source=io.BytesIO(page.copy_data),
                columns=COPY_COLUMNS, format="binary",
            )  # fmt: skip
            ref = await conn.fetch(f"SELECT {cols} FROM t_ref ORDER BY code")
            got = await conn.fetch(f"SELECT {cols} FROM t_bin ORDER BY code")
            extra = await conn.fetch(
                "SELECT status_since = source_updated_at, run_id FROM t_bin ORDER BY code"
            )
        assert [tuple(r) for r in got] == [tuple(r) for r in ref]
        assert [tuple(r) for r in extra] == [(True, "run-7")] * 3
    finally:
        await conn.close()


def test_simulator_pages_are_the_json_dumps_bytes() -> None:
    """The simulator renders pages with orjson; the bytes are those of the stdlib encoder."""
    import orjson

    sim = build(seed=3, dossiers=800, malformed_rate=0.05)
    sim.pregenerate("dossiers", 300)
    for body in sim._pages.values():
        doc = orjson.loads(body)
        assert body == json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


async def test_shared_memory_handoff_gives_the_same_page() -> None:
    import asyncio
    from multiprocessing.shared_memory import SharedMemory

    from services.ingest.sync.prepare import SharedBodies, prepare_body, prepare_shared

    bodies = SharedBodies(keep=1)
    body = body_of([DOSSIER, dossier(MaHoSo="X-2", NgayTra=""), dossier(MaDonVi="nope")])
    small = body_of([DOSSIER])
    loop = asyncio.get_running_loop()
    shm = bodies.put(body)
    assert shm is not None
    got = prepare_shared(shm.name, len(body), "dossiers", "demo", AGENCIES, NOW)
    assert got == prepare_body(body, "dossiers", "demo", AGENCIES, NOW)
    done = loop.create_future()
    done.set_result(got)
    bodies.done(shm, done)
    again = bodies.put(small)  # the segment is reused, the smaller body read to its length
    assert again is not None and again.name == shm.name
    got = prepare_shared(again.name, len(small), "dossiers", "demo", AGENCIES, NOW)
    assert got == prepare_body(small, "dossiers", "demo", AGENCIES, NOW)
    # In place (no copy): a NUL escape found in the segment, a body only the reference
    # path reads, a body that is no page at all; a bigger body gets a new segment.
    for other in (
        body_of([DOSSIER, dossier(MaHoSo="X-3", TenTTHC="a\x00b")]),
        body_of([DOSSIER, 5]),
        b'{"items": 3}',
        body_of([dossier(MaHoSo=f"Y-{i}") for i in range(40)]),
    ):
        done = loop.create_future()
        done.set_result(None)
        bodies.done(again, done)
        again = bodies.put(other)
        assert again is not None
        got = prepare_shared(again.name, len(other), "dossiers", "demo", AGENCIES, NOW)
        assert got == prepare_body(other, "dossiers", "demo", AGENCIES, NOW)
    dropped = loop.create_future()
    dropped.cancel()
    bodies.done(again, dropped)  # a dropped page's segment is not reused
    assert all(s.name != again.name for s in bodies.free)
    with pytest.raises(FileNotFoundError):
        SharedMemory(name=again.name)
    bodies.close()
