"""CSV, XLSX and PDF downloads laid out the way officials open and print them.

CSV carries a UTF-8 BOM so Excel shows Vietnamese correctly. XLSX is a report as a Sở Nội vụ
files one: the issuing body and the national motto at the top, the place and date, a title,
the period / methodology / data-as-of lines, bold wrapped headers (frozen, repeated on every
printed page), columns sized to their content, A4 landscape fitted to the page width, and a
signature block below the table. PDF is that workbook converted by LibreOffice headless.

Building a workbook is CPU work and converting it is a subprocess: `xlsx_file` / `pdf_file`
do both off the event loop, so an export never stalls other requests. Text the formats cannot
hold (control characters, which openpyxl refuses and which made every export answer 500) is
stripped from every cell.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
import shutil
import tempfile
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Response
from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from shared.problems import ServiceUnavailable

XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PDF_MEDIA_TYPE = "application/pdf"
VN = ZoneInfo("Asia/Ho_Chi_Minh")
# XML 1.0 cannot carry C0 controls other than tab, LF and CR (openpyxl's ILLEGAL_CHARACTERS_RE);
# a CSV opened in Excel shows them as boxes, so they go from both formats.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")
_THIN = Side(style="thin", color="000000")
_BOX = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)


def clean_text(value: str) -> str:
    """`value` without the characters XLSX (XML 1.0) cannot hold."""
    return _CONTROL.sub("", value)


def _cell(value: Any) -> Any:
    return clean_text(value) if isinstance(value, str) else value


def _attachment(filename: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{clean_text(filename)}"'}


@dataclass
class ReportHeader:
    """What sits above and below the table of a printed report."""

    title: str
    issuer: str = "SỞ NỘI VỤ"  # the issuing body, printed upper case at the top left
    parent_issuer: str | None = None  # e.g. "UBND TỈNH HƯNG YÊN", above the issuer
    place: str | None = None  # "Hưng Yên, ngày … tháng … năm …"
    issued_on: date | None = None
    lines: list[str] = field(default_factory=list)  # period, methodology version, scope …
    data_as_of: datetime | date | None = None  # freshness: the data the figures are built on
    signers: tuple[str, str] = ("NGƯỜI LẬP BIỂU", "THỦ TRƯỞNG CƠ QUAN")


def vn_date_words(day: date) -> str:
    return f"ngày {day.day:02d} tháng {day.month:02d} năm {day.year}"


def vn_datetime(value: datetime | date) -> str:
    if isinstance(value, datetime):
        local = value.astimezone(VN) if value.tzinfo else value
        return local.strftime("%H:%M ngày %d/%m/%Y")
    return value.strftime("%d/%m/%Y")


def csv_bytes(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> bytes:
    buf = io.StringIO()
    buf.write("\ufeff")
    writer = csv.writer(buf)
    writer.writerow([_cell(h) for h in headers])
    writer.writerows([_cell(v) for v in row] for row in rows)
    return buf.getvalue().encode("utf-8")


def csv_response(headers: Sequence[str], rows: Sequence[Sequence[Any]], filename: str) -> Response:
    return Response(
        csv_bytes(headers, rows),
        media_type="text/csv; charset=utf-8",
        headers=_attachment(filename),
    )


def _display_width(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, float):
        return len(f"{value:.2f}")
    return max((len(line) for line in str(value).splitlines()), default=0)


def _fit_widths(
    ws: Worksheet, headers: Sequence[str], rows: Sequence[Sequence[Any]], header_row: int
) -> None:
    """Each column as wide as its longest value (headers wrap onto up to three lines), capped
    so a long text column wraps instead of pushing the page beyond A4's width."""
    for i, header in enumerate(headers, 1):
        longest = max((_display_width(r[i - 1]) for r in rows if len(r) >= i), default=0)
        words = max((len(w) for w in str(header).split()), default=0)
        header_need = max(words, (len(str(header)) + 2) // 3)
        width = min(max(longest, header_need, 4) + 2, 48)
        ws.column_dimensions[get_column_letter(i)].width = width
        if longest + 2 > 48:
            for r in range(header_row + 1, header_row + 1 + len(rows)):
                ws.cell(r, i).alignment = Alignment(wrap_text=True, vertical="top")


def _wrapped_lines(text: str, width: float) -> int:
    """How many lines `text` takes in a column `width` characters wide, word-wrapped."""
    lines, used = 1, 0
    for word in text.split():
        need = len(word) if used == 0 else used + 1 + len(word)
        if need > width - 1 and used:
            lines, used = lines + 1, len(word)
        else:
            used = need
    return lines


def _merged_line(ws: Worksheet, row: int, first: int, last: int, text: str, **font: Any) -> None:
    ws.cell(row, first, clean_text(text)).font = Font(**font)
    ws.cell(row, first).alignment = Alignment(horizontal="center", vertical="center",
                                              wrap_text=True)  # fmt: skip
    if last > first:
        ws.merge_cells(start_row=row, start_column=first, end_row=row, end_column=last)


def xlsx_bytes(
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    sheet: str,
    header: ReportHeader | None = None,
    title: str | None = None,
    subtitle: str | None = None,
    freeze_columns: int = 0,
    widths: dict[int, float] | None = None,
) -> bytes:
    """The workbook as bytes (synchronous: call through `xlsx_file` from async code)."""
    if header is None:
        header = ReportHeader(title=title or sheet, lines=[subtitle] if subtitle else [])
    rows = [[_cell(v) for v in row] for row in rows]
    headers = [clean_text(str(h)) for h in headers]
    n = max(1, len(headers))
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = clean_text(sheet)[:31].replace("/", "-")  # Excel's limits
    # The letterhead: issuing body on the left half, the national motto on the right half.
    left_last = max(1, n // 2 - 1) if n >= 4 else 1
    right_first = min(n, left_last + 1)
    row = 1
    if header.parent_issuer:
        _merged_line(ws, row, 1, left_last, header.parent_issuer.upper(), size=11)
    _merged_line(ws, row, right_first, n, "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", bold=True,
                 size=11)  # fmt: skip
    row += 1
    _merged_line(ws, row, 1, left_last, header.issuer.upper(), bold=True, size=11)
    _merged_line(ws, row, right_first, n, "Độc lập - Tự do - Hạnh phúc", bold=True, size=11)
    row += 1
    issued = header.issued_on or datetime.now(VN).date()
    place = f"{header.place}, " if header.place else ""
    _merged_line(ws, row, right_first, n, place + vn_date_words(issued), italic=True, size=11)
    row += 2
    _merged_line(ws, row, 1, n, header.title.upper(), bold=True, size=13)
    ws.row_dimensions[row].height = 34
    for line in header.lines:
        row += 1
        _merged_line(ws, row, 1, n, line, size=11)
    if header.data_as_of is not None:
        row += 1
        _merged_line(ws, row, 1, n, f"Số liệu tính đến {vn_datetime(header.data_as_of)}",
                     italic=True, size=11)  # fmt: skip
    row += 2
    header_row = row
    for i, h in enumerate(headers, 1):
        cell = ws.cell(header_row, i, h)
        cell.font = Font(bold=True)
        cell.alignment = Alignment(wrap_text=True, vertical="center", horizontal="center")
        cell.border = _BOX
    for r, values in enumerate(rows, header_row + 1):
        for c, value in enumerate(values, 1):
            ws.cell(r, c, value).border = _BOX
    _fit_widths(ws, headers, rows, header_row)
    for column, width in (widths or {}).items():
        ws.column_dimensions[get_column_letter(column)].width = width
    # Spreadsheet programs do not grow a row for wrapped text on opening, so the header row
    # gets the height of its longest wrapped header (else the print shows it cut).
    lines = max(
        (_wrapped_lines(h, ws.column_dimensions[get_column_letter(i)].width or 10)
         for i, h in enumerate(headers, 1)),
        default=1,
    )  # fmt: skip
    ws.row_dimensions[header_row].height = 15 * lines + 4
    # The signature block, two places side by side under the table.
    row = header_row + len(rows) + 2
    _merged_line(ws, row, 1, left_last, header.signers[0], bold=True, size=11)
    _merged_line(ws, row, right_first, n, header.signers[1], bold=True, size=11)
    row += 1
    for first, last in ((1, left_last), (right_first, n)):
        _merged_line(ws, row, first, last, "(Ký, ghi rõ họ tên)", italic=True, size=10)
    ws.freeze_panes = f"{get_column_letter(freeze_columns + 1)}{header_row + 1}"
    # Printing: A4 landscape, every column on one page width, the header row on every page.
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_title_rows = f"{header_row}:{header_row}"
    ws.print_options.horizontalCentered = True
    ws.page_margins.left = ws.page_margins.right = 0.4
    ws.page_margins.top = ws.page_margins.bottom = 0.5
    ws.oddFooter.center.text = "Trang &P / &N"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def xlsx_response(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], filename: str, **layout: Any
) -> Response:
    """Synchronous variant for small tables; endpoints use `xlsx_file`."""
    return Response(
        xlsx_bytes(headers, rows, **layout),
        media_type=XLSX_MEDIA_TYPE,
        headers=_attachment(filename),
    )


async def xlsx_file(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], filename: str, **layout: Any
) -> Response:
    """The XLSX download, built in a worker thread."""
    body = await asyncio.to_thread(xlsx_bytes, headers, rows, **layout)
    return Response(body, media_type=XLSX_MEDIA_TYPE, headers=_attachment(filename))


def soffice_path() -> str | None:
    return shutil.which("soffice") or shutil.which("libreoffice")


# LibreOffice shares one profile per user; parallel conversions each get their own and are
# bounded so that a burst of PDF requests does not start a dozen office processes.
_CONVERSIONS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def _conversions() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    return _CONVERSIONS.setdefault(loop, asyncio.Semaphore(2))


async def xlsx_to_pdf(xlsx: bytes, *, timeout: float = 120) -> bytes:
    """Convert a workbook with LibreOffice headless (a subprocess: the loop stays free)."""
    office = soffice_path()
    if office is None:
        raise ServiceUnavailable("PDF conversion needs LibreOffice (soffice), not installed")
    async with _conversions():
        with tempfile.TemporaryDirectory(prefix="cchc-pdf-") as tmp:
            src = Path(tmp) / "report.xlsx"
            src.write_bytes(xlsx)
            proc = await asyncio.create_subprocess_exec(
                office,
                f"-env:UserInstallation=file://{tmp}/profile",
                "--headless",
                "--norestore",
                "--convert-to",
                "pdf",
                "--outdir",
                tmp,
                str(src),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            try:
                await asyncio.wait_for(proc.wait(), timeout)
            except TimeoutError:
                proc.kill()
                await proc.wait()
                raise ServiceUnavailable("PDF conversion timed out") from None
            out = Path(tmp) / "report.pdf"
            if proc.returncode != 0 or not out.exists():
                raise ServiceUnavailable("PDF conversion failed")
            return out.read_bytes()


async def pdf_file(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], filename: str, **layout: Any
) -> Response:
    """The printable PDF of the same workbook `xlsx_file` gives."""
    xlsx = await asyncio.to_thread(xlsx_bytes, headers, rows, **layout)
    body = await xlsx_to_pdf(xlsx)
    return Response(body, media_type=PDF_MEDIA_TYPE, headers=_attachment(filename))
