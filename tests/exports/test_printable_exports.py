"""Exports officials print: the XLSX of the rankings, the items and the province report laid
out as a Sở Nội vụ report (letterhead, date, as-of, methodology, signature block, A4 landscape
fitted to the width, header repeated), converted to PDF by LibreOffice headless and checked
page by page: landscape, every header on page 1 (no column cut), the header on every page."""

from __future__ import annotations

import asyncio
import io
import os
import re
import shutil
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime
from typing import Any

import httpx
import openpyxl
import pytest
from pypdf import PdfReader
from sqlalchemy import text

from services.scoring.domain.periods import Period
from services.scoring.main import create_app as scoring_app
from services.scoring.recompute import Scoring, default_profile, recompute
from services.scoring.store.facts_store import upsert_facts
from services.scoring.store.models import outbox_table
from services.scoring.store.registry import UnitIn, import_units
from services.tasks.main import create_app as tasks_app
from shared.db import make_engine, make_sessionmaker, transaction
from shared.events.outbox import Outbox
from shared.exports import clean_text, soffice_path, xlsx_bytes
from shared.settings import Settings
from tests.conftest import running
from tests.scoring.test_scoring_store import TODAY, dossier, vn

AS_OF = datetime(2026, 11, 20, tzinfo=UTC)
Auth = Callable[..., dict[str, str]]
COMMUNES = 45  # enough rows for a second printed page


def need_office() -> None:
    if soffice_path() is None:
        if os.environ.get("CI"):
            pytest.fail("LibreOffice (soffice) is missing: .ci/run installs libreoffice-calc")
        pytest.skip("LibreOffice (soffice) not installed")


@pytest.fixture(scope="module")
async def province(make_settings: Callable[..., Settings]) -> str:
    """A province with many communes scored for September 2026."""
    settings = make_settings()
    p = "X" + uuid.uuid4().hex[:8]
    ids = [f"{p}.C{i:02d}" for i in range(COMMUNES)]
    engine = make_engine(settings.async_database_url, schema="scoring", pool_size=2)
    try:
        async with transaction(make_sessionmaker(engine)) as s:
            await import_units(s, [
                UnitIn(id=p, name="Tỉnh Hưng Thử", level="province", kind="tỉnh",
                       valid_from=date(2000, 1, 1)),
                *[UnitIn(id=c, name=f"Xã Phước Long Thượng Số {i}", level="commune", kind="xã",
                         parent_id=p, valid_from=date(2000, 1, 1)) for i, c in enumerate(ids)],
            ])  # fmt: skip
            facts = [dossier(c, n, finished_at=vn(2026, 9, 5 + (i + n) % 10))
                     for i, c in enumerate(ids) for n in range(3)]  # fmt: skip
            await upsert_facts(s, facts, now=AS_OF)
            ctx = Scoring(outbox=Outbox(outbox_table, "/cchc-monitor/scoring"))
            await recompute(s, ctx, [p, *ids], [Period.parse("202609")], AS_OF, today=TODAY)
    finally:
        await engine.dispose()
    return p


@pytest.fixture(scope="module")
async def scoring(make_settings: Callable[..., Settings]) -> AsyncIterator[httpx.AsyncClient]:
    async with running(scoring_app(make_settings(service_name="scoring",
                                                 workers_enabled=False))) as c:  # fmt: skip
        yield c


@pytest.fixture(scope="module")
async def tasks(make_settings: Callable[..., Settings]) -> AsyncIterator[httpx.AsyncClient]:
    async with running(tasks_app(make_settings(service_name="tasks",
                                               workers_enabled=False))) as c:  # fmt: skip
        yield c


def header_row(ws: Any) -> int:
    return next(r for r in range(1, ws.max_row + 1) if ws.cell(r, 1).value == "STT")


def pdf_pages(pdf: bytes) -> list[tuple[float, float, str]]:
    reader = PdfReader(io.BytesIO(pdf))
    return [(float(p.mediabox.width), float(p.mediabox.height),
             re.sub(r"\s+", " ", p.extract_text() or "")) for p in reader.pages]  # fmt: skip


def assert_printable(pdf: bytes, headers: list[str], min_pages: int = 1) -> int:
    pages = pdf_pages(pdf)
    assert len(pages) >= min_pages
    for width, height, _ in pages:
        assert width > height, "every page is landscape"
        assert round(width) in (841, 842) and round(height) in (595, 596), "A4"
    first = pages[0][2]
    for h in headers:  # every column's header on page 1: nothing cut to a second page width
        for word in h.split():
            assert word in first, (h, word)
    for _, _, page_text in pages[1:]:  # the header row repeated
        assert "STT" in page_text and headers[1].split()[0] in page_text
    return len(pages)


async def test_rankings_xlsx_prints_as_a_report(
    scoring: httpx.AsyncClient, auth: Auth, province: str
) -> None:
    need_office()
    params = {"period": "202609", "under": province, "level": "commune"}
    r = await scoring.get("/api/v1/exports/rankings.xlsx", params=params, headers=auth("viewer"))
    assert r.status_code == 200, r.text
    wb = openpyxl.load_workbook(io.BytesIO(r.content))
    ws = wb.active
    assert ws is not None
    top = [str(ws.cell(r_, c).value or "") for r_ in range(1, 10) for c in range(1, 15)]
    assert "UBND TỈNH HƯNG THỬ" in top and "SỞ NỘI VỤ" in top
    assert "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM" in top
    assert any(t.startswith("Hưng Thử, ngày") for t in top)
    assert any("THÁNG 09 NĂM 2026" in t for t in top), "the period in words"
    version = default_profile().version  # the methodology the ranking was computed with
    assert any(t.startswith("Phương pháp:") and f"phiên bản {version}" in t for t in top)
    assert any(t.startswith("Số liệu tính đến") for t in top)
    h = header_row(ws)
    headers = [c.value for c in ws[h] if c.value]
    assert ws.freeze_panes == f"C{h + 1}"
    assert ws.print_title_rows == f"${h}:${h}"
    assert ws.page_setup.orientation == "landscape" and ws.page_setup.fitToWidth == 1
    names = [ws.cell(h + i, 2).value for i in range(1, COMMUNES + 1)]
    assert all(n.startswith("Xã Phước Long Thượng") for n in names), "names, not ids"
    assert ws.column_dimensions["B"].width >= len(names[0]), "the name column fits its names"
    ranks = [ws.cell(h + i, len(headers) - 1).value for i in range(1, COMMUNES + 1)]
    api = (await scoring.get("/api/v1/rankings", params=params, headers=auth("viewer"))).json()
    assert ranks == [f"{x['rank']}/{COMMUNES}" for x in api], "peer ranks as the API gives"
    signature = [str(c.value) for row in ws.iter_rows(min_row=h + COMMUNES + 1) for c in row]
    assert "NGƯỜI LẬP BIỂU" in signature and "(Ký, ghi rõ họ tên)" in signature

    pdf = await scoring.get("/api/v1/exports/rankings.pdf", params=params,
                            headers=auth("viewer"), timeout=180)  # fmt: skip
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    pages = assert_printable(pdf.content, [str(x) for x in headers], min_pages=2)
    assert pages <= 3, "45 rows on A4 landscape"
    last = pdf_pages(pdf.content)[-1][2]
    assert "NGƯỜI LẬP BIỂU" in last


async def test_export_does_not_stall_other_requests(
    scoring: httpx.AsyncClient, auth: Auth, province: str
) -> None:
    """While a PDF is built (seconds of LibreOffice), health answers at once."""
    need_office()
    params = {"period": "202609", "under": province, "level": "commune"}
    export = asyncio.create_task(scoring.get("/api/v1/exports/rankings.pdf", params=params,
                                             headers=auth("viewer"), timeout=180))  # fmt: skip
    await asyncio.sleep(0.3)
    started = asyncio.get_running_loop().time()
    assert (await scoring.get("/healthz")).status_code == 200
    assert asyncio.get_running_loop().time() - started < 0.5
    assert not export.done(), "the conversion was still running"
    assert (await export).status_code == 200


async def test_items_export_with_control_characters_and_human_words(
    tasks: httpx.AsyncClient, auth: Auth, settings: Settings
) -> None:
    """A title stored with control characters (legacy data) no longer makes the export 500;
    recurrence, conclusion and status read as words; the PDFs print landscape, uncut."""
    need_office()
    number = f"{uuid.uuid4().hex[:4]}/TB-SNV"
    body = {
        "number": number, "title": "Thông báo kết luận kiểm tra CCHC", "issued_on": "2026-09-18",
        "findings": [{"unit_id": "P21.SNV", "text": "Tồn tại", "items": [
            {"title": "Báo cáo tình hình thực hiện", "lead_unit_id": "P21.SNV",
             "recurrence": "quarterly", "deadline": "2026-12-31"},
            {"title": "Rà soát quy trình nội bộ", "lead_unit_id": "P21.SNV",
             "deadline": "2026-10-01"},
        ]}],
    }  # fmt: skip
    r = await tasks.post("/api/v1/conclusions", json=body, headers=auth("inspector"))
    assert r.status_code in (200, 201), r.text
    conclusion_id = r.json()["id"]
    dirty = "Rà soát\x0b quy trình\x01 nội bộ\x1f"
    engine = make_engine(settings.async_database_url, schema="tasks", pool_size=1)
    try:
        async with transaction(make_sessionmaker(engine)) as s:
            await s.execute(text("UPDATE tasks.items SET title = :t WHERE conclusion_id = :c "
                                 "AND title LIKE 'Rà soát%'"), {"t": dirty, "c": conclusion_id})  # fmt: skip
    finally:
        await engine.dispose()
    params = {"conclusion_id": conclusion_id, "format": "xlsx"}
    r = await tasks.get("/api/v1/exports/items", params=params, headers=auth("viewer"))
    assert r.status_code == 200, r.text
    ws = openpyxl.load_workbook(io.BytesIO(r.content)).active
    assert ws is not None
    h = header_row(ws)
    headers = [str(c.value) for c in ws[h] if c.value]
    rows = {ws.cell(h + i, 2).value: [c.value for c in ws[h + i]] for i in (1, 2)}
    assert set(rows) == {"Báo cáo tình hình thực hiện", clean_text(dirty)}
    report = rows["Báo cáo tình hình thực hiện"]
    assert report[headers.index("Định kỳ")] == "Hằng quý"
    assert report[headers.index("Văn bản kết luận")] == number
    assert report[headers.index("Đơn vị chủ trì")] == "Sở Nội vụ"
    for fmt in ("pdf",):
        pdf = await tasks.get("/api/v1/exports/items", params={**params, "format": fmt},
                              headers=auth("viewer"), timeout=180)  # fmt: skip
        assert pdf.status_code == 200, pdf.text
        assert_printable(pdf.content, headers)
    r = await tasks.get("/api/v1/exports/items", params={**params, "format": "csv"},
                        headers=auth("viewer"))  # fmt: skip
    assert r.status_code == 200 and "\x0b" not in r.text

    prov = await tasks.get("/api/v1/exports/province-report", params={"format": "xlsx"},
                           headers=auth("viewer"))  # fmt: skip
    assert prov.status_code == 200
    ws = openpyxl.load_workbook(io.BytesIO(prov.content)).active
    assert ws is not None
    h = header_row(ws)
    province_headers = [str(c.value) for c in ws[h] if c.value]
    api = (await tasks.get("/api/v1/reports/province", headers=auth("viewer"))).json()
    total_row = next(r_ for r_ in range(h + 1, ws.max_row + 1)
                     if ws.cell(r_, 2).value == "Toàn tỉnh")  # fmt: skip
    assert ws.cell(total_row, 3).value == api["total"]
    pdf = await tasks.get("/api/v1/exports/province-report", params={"format": "pdf"},
                          headers=auth("viewer"), timeout=180)  # fmt: skip
    assert pdf.status_code == 200
    assert_printable(pdf.content, province_headers)


def test_workbook_strips_what_xml_cannot_hold() -> None:
    data = xlsx_bytes(["STT", "Nội\x00dung"], [[1, "a\x08b\x0cc"]], sheet="S/1")
    ws = openpyxl.load_workbook(io.BytesIO(data)).active
    assert ws is not None
    values = [c for row in ws.iter_rows(values_only=True) for c in row if c]
    assert "Nộidung" in values and "abc" in values


def test_office_present_in_ci() -> None:
    if os.environ.get("CI"):
        assert shutil.which("soffice"), ".ci/run installs LibreOffice"


def test_recurrence_and_timeliness_in_words() -> None:
    from services.tasks.api.reports import recurrence_words, timeliness_words

    assert [recurrence_words(c) for c in ("quarterly", "monthly:days=1-5", "monthly:by=25",
                                          "yearly:by=12-15", "reports:Q1,H1,M9,year", None)] == [
        "Hằng quý", "Từ ngày 01 đến ngày 05 hằng tháng", "Trước ngày 25 hằng tháng",
        "Trước ngày 15/12 hằng năm", "Báo cáo quý I, 6 tháng, 9 tháng, năm", "",
    ]  # fmt: skip
    today = date(2026, 10, 20)
    # an item reopened after completion is not "done"; an accepted one is never "in progress"
    assert timeliness_words("in_progress", "done_on_time", date(2026, 10, 1), today) == "Quá hạn"
    assert timeliness_words("accepted", "overdue", date(2026, 10, 1), today) == (
        "Hoàn thành quá hạn"
    )
    assert timeliness_words("accepted", "done_on_time", date(2026, 10, 1), today) == (
        "Hoàn thành đúng hạn"
    )


def test_period_in_words() -> None:
    from services.scoring.api.exports import period_words

    assert [period_words(Period.parse(p)) for p in ("2026", "2026Q3", "202609", "2026YTD09")] == [
        "Năm 2026", "Quý III năm 2026", "Tháng 09 năm 2026", "Từ tháng 01 đến tháng 09 năm 2026"
    ]  # fmt: skip
