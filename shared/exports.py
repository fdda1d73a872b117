"""CSV and XLSX downloads laid out the way officials open them.

CSV carries a UTF-8 BOM so Excel shows Vietnamese correctly; XLSX has an optional title and
subtitle row above bold, wrapped headers, and frozen header rows.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from fastapi import Response
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter

XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _attachment(filename: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{filename}"'}


def csv_response(headers: Sequence[str], rows: Sequence[Sequence[Any]], filename: str) -> Response:
    buf = io.StringIO()
    buf.write("\ufeff")
    writer = csv.writer(buf)
    writer.writerow(headers)
    writer.writerows(rows)
    return Response(
        buf.getvalue().encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers=_attachment(filename),
    )


def xlsx_response(
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    filename: str,
    *,
    sheet: str,
    title: str | None = None,
    subtitle: str | None = None,
    freeze_columns: int = 0,
    widths: dict[int, float] | None = None,
) -> Response:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = sheet[:31]  # Excel's limit
    if title:
        ws.append([title])
        ws.merge_cells(start_row=ws.max_row, start_column=1, end_row=ws.max_row,
                       end_column=max(1, len(headers)))  # fmt: skip
        ws.cell(ws.max_row, 1).font = Font(bold=True, size=13)
        ws.cell(ws.max_row, 1).alignment = Alignment(horizontal="center")
    if subtitle:
        ws.append([subtitle])
    ws.append(list(headers))
    header_row = ws.max_row
    for cell in ws[header_row]:
        cell.font = Font(bold=True)
        cell.alignment = Alignment(wrap_text=True, vertical="center", horizontal="center")
    for row in rows:
        ws.append(list(row))
    for column, width in (widths or {}).items():
        ws.column_dimensions[get_column_letter(column)].width = width
    ws.freeze_panes = f"{get_column_letter(freeze_columns + 1)}{header_row + 1}"
    buf = io.BytesIO()
    wb.save(buf)
    return Response(buf.getvalue(), media_type=XLSX_MEDIA_TYPE, headers=_attachment(filename))
