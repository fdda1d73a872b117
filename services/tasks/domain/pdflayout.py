"""Tables in a text-layer PDF, read from where the text sits on the page.

pypdf's plain text puts every cell of a table on a line of its own with nothing to tell a
cell from a paragraph, so a task table would reach the parser as loose lines. Here the text
fragments keep their positions: a line whose fragments are a task table's header (a task
column and a lead column, "STT | Nhiệm vụ | Cơ quan chủ trì | Cơ quan phối hợp | Thời
hạn") fixes the columns by where each header cell starts; every fragment below goes to the
column it starts in, a number in the first column opens a row, other lines continue the
cells of the row above (wrapped cell text), and text in the first column that is not a row
number (a paragraph, "Nơi nhận") ends the table. A header wrapped over two lines ("Cơ quan
chủ trì" / "thực hiện") is joined before the first row. The rows are written in the
layout stage's "|" form, so a PDF table reads like a Word or a crawled one. A page with no
such header keeps pypdf's text. A table carried over to the next page goes on there while
its lines still start in the same columns.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from services.tasks.domain.parsing.tables import _COL_LEAD, _COL_TASK
from services.tasks.domain.units import fold

_LINE_TOL = 2.5  # points: fragments this close vertically are one line
_COL_TOL = 4.0  # points: a fragment starting this far left of a column still belongs to it
_ROW_NUMBER = re.compile(r"^(?:\d{1,3}(?:\.\d{1,3})*\.?|[ivxlc]{1,6}\.?|[a-z]\)?)$")


@dataclass
class _Line:
    y: float
    frags: list[tuple[float, str]] = field(default_factory=list)  # (x, text)

    def text(self) -> str:
        return " ".join(t for _, t in sorted(self.frags))


@dataclass
class _Layout:
    """The open table's columns (x where each starts) and its rows of cell texts."""

    columns: list[float]
    header: list[list[str]]
    rows: list[list[list[str]]] = field(default_factory=list)

    def column_of(self, x: float) -> int:
        k = 0
        for i, start in enumerate(self.columns):
            if x + _COL_TOL >= start:
                k = i
        return k

    def cells(self, line: _Line) -> list[list[str]]:
        out: list[list[str]] = [[] for _ in self.columns]
        for x, t in sorted(line.frags):
            out[self.column_of(x)].append(t)
        return out


def page_fragments(page: Any) -> tuple[str, list[tuple[float, float, str]]]:
    """pypdf's text of a page and its fragments with their positions (x, y, text)."""
    frags: list[tuple[float, float, str]] = []

    def visit(text: str, cm: list[float], tm: list[float], _font: Any, _size: Any) -> None:
        if text.strip():
            x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
            y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
            frags.append((x, y, " ".join(text.split())))

    plain = page.extract_text(visitor_text=visit) or ""
    return plain, frags


def _lines(frags: list[tuple[float, float, str]]) -> list[_Line]:
    out: list[_Line] = []
    for x, y, t in sorted(frags, key=lambda f: (-f[1], f[0])):
        if out and abs(out[-1].y - y) <= _LINE_TOL:
            out[-1].frags.append((x, t))
        else:
            out.append(_Line(y, [(x, t)]))
    return out


def _is_header(line: _Line) -> bool:
    cells = [fold(t).strip() for _, t in line.frags]
    return (
        len(cells) >= 3
        and any(_COL_TASK.search(c) for c in cells)
        and any(_COL_LEAD.search(c) for c in cells)
        and fold(sorted(line.frags)[0][1]).strip() in ("stt", "tt")
    )


def _row_number(cells: list[list[str]]) -> bool:
    first = " ".join(cells[0]).strip()
    return bool(first) and bool(_ROW_NUMBER.match(fold(first)))


def _table_lines(layout: _Layout) -> Iterator[str]:
    yield "|"
    for k, row in enumerate([layout.header, *layout.rows]):
        if k:
            yield "|"
        for cell in row:
            yield " ".join(cell).strip() or " "
            yield "|"


class PdfTables:
    """Pages in order; a table may run from one page onto the next."""

    def __init__(self) -> None:
        self.open: _Layout | None = None

    def page_text(self, plain: str, frags: list[tuple[float, float, str]]) -> str:
        lines = _lines(frags)
        if self.open is None and not any(_is_header(ln) for ln in lines):
            return plain
        out: list[str] = []
        layout = self.open
        in_header = False
        for line in lines:
            if _is_header(line):
                if layout is not None:
                    self._close(layout, out)  # the header again: the table before it ends
                layout = _Layout(columns=[x for x, _ in sorted(line.frags)], header=[])
                layout.header = [[t] for _, t in sorted(line.frags)]
                self.open = layout
                in_header = True
                continue
            if layout is None:
                out.append(line.text())
                continue
            if min(x for x, _ in line.frags) + _COL_TOL < layout.columns[0]:
                self._close(layout, out)
                layout = None
                out.append(line.text())
                continue
            cells = layout.cells(line)
            if _row_number(cells):
                layout.rows.append(cells)
                in_header = False
            elif cells[0]:
                self._close(layout, out)  # text in the number column: not the table
                layout = None
                out.append(line.text())
            elif in_header:
                for k, part in enumerate(cells):
                    layout.header[k].extend(part)
            elif layout.rows:
                for k, part in enumerate(cells):
                    layout.rows[-1][k].extend(part)
            else:
                self._close(layout, out)
                layout = None
                out.append(line.text())
        if layout is not None:
            # the table may go on over the page: written when it ends (or at the last page)
            self.open = layout
        return "\n".join(out)

    def _close(self, layout: _Layout, out: list[str]) -> None:
        out.extend(_table_lines(layout))
        self.open = None

    def finish(self) -> str:
        if self.open is None:
            return ""
        text = "\n".join(_table_lines(self.open))
        self.open = None
        return text
