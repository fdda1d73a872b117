"""Layout stage: turn a printed / crawled page into paragraphs and tables, keeping every
offset (each transformation replaces characters one for one, so a span of the result is a
span of the original text).

* Hard wraps are undone: inside a paragraph a line break becomes a space unless the next
  line starts a new block (a list marker "1.", "a)", "-", "+", "(1)", a roman numeral, a
  form label "Đơn vị chủ trì:", a table line) or the line ends a sentence and the next one
  starts with a capital. "1. Thủ\\ntrưởng" and "05 tháng 12 năm\\n2025" become one line.
* Tables written as one cell per line between lines holding only "|" (a row ends at two
  "|" lines in a row) are cut out into :class:`Table` values with cell spans, and blanked
  in the text the paragraph rules read (so cell soup never becomes a task).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from services.tasks.domain.parsing.gazetteer import hyphen_joints
from services.tasks.domain.units import name_key

_MARKER = re.compile(
    r"[ \t]*(?:(?:\d{1,3}(?:\.\d{1,3})*|[IVXLC]+)\.(?:[ \t]|$)|\(?[a-zđ]\)[ \t]|\(\d+\)[ \t]|[-–—•+*][ \t]|"
    r"(?:Đơn vị|Cơ quan) (?:chủ trì|phối hợp|thực hiện)|Thời (?:gian|hạn)|Nhiệm vụ\s*:|"
    r"Nơi nhận|Kính gửi|KT\.|TM\.|\|)"
)
_SENT_END = re.compile(r"[.:;!?…]\s*$")
_HEADING = re.compile(r"[ \t]*(?:\d{1,3}(?:\.\d{1,3})*|[IVXLC]+)\.[ \t]")


@dataclass
class Cell:
    start: int
    end: int
    text: str


@dataclass
class Table:
    start: int
    end: int
    rows: list[list[Cell]] = field(default_factory=list)


def _is_bar(line: str) -> bool:
    return line.strip() == "|"


def split_tables(text: str) -> tuple[str, list[Table]]:
    """Blank the "|" tables out of `text` (same length) and return them."""
    lines = text.split("\n")
    offsets: list[int] = []
    pos = 0
    for line in lines:
        offsets.append(pos)
        pos += len(line) + 1
    tables: list[Table] = []
    out = list(text)
    i = 0
    n = len(lines)
    while i < n:
        if not _is_bar(lines[i]):
            i += 1
            continue
        # a table runs while "|" lines keep coming (at most 40 content lines apart)
        start_line = i
        last_bar = i
        j = i + 1
        while j < n:
            if _is_bar(lines[j]):
                last_bar = j
            elif j - last_bar > 40:
                break
            j += 1
        end_line = last_bar
        table = Table(offsets[start_line], offsets[end_line] + len(lines[end_line]))
        row: list[Cell] = []
        cell_lines: list[int] = []

        def close_cell(row: list[Cell] = row, cell_lines: list[int] = cell_lines) -> None:
            if cell_lines:
                a = offsets[cell_lines[0]]
                b = offsets[cell_lines[-1]] + len(lines[cell_lines[-1]])
                body = " ".join(" ".join(lines[k].split()) for k in cell_lines).strip()
                row.append(Cell(a, b, body))
                cell_lines.clear()

        prev_bar = False
        for k in range(start_line, end_line + 1):
            if _is_bar(lines[k]):
                close_cell()
                if prev_bar and row:
                    table.rows.append(list(row))
                    row.clear()
                prev_bar = True
            else:
                if lines[k].strip():
                    cell_lines.append(k)
                prev_bar = False
        close_cell()
        if row:
            table.rows.append(list(row))
        # a row of one long cell, or with a paragraph-sized cell, is page layout (the body
        # set in a table cell), not a grid: it stays in the flowing text
        layout = [
            r
            for r in table.rows
            if (len(r) == 1 and len(r[0].text) > 200) or any(len(c.text) > 1000 for c in r)
        ]
        flow = [c for r in layout for c in r]
        table.rows = [r for r in table.rows if not any(r is x for x in layout)]
        tables.append(table)
        for k in range(table.start, table.end):
            if out[k] != "\n" and not any(c.start <= k < c.end for c in flow):
                out[k] = " "
        i = end_line + 1
    return "".join(out), tables


# a line ending in one of these words is cut inside a name or a phrase: it continues
_OPEN_END = re.compile(
    r"(?:,|\b(?:và|của|các|với|cho|tại|về|theo|Bộ|Sở|Vụ|Cục|Ban|Văn|Trung|Ủy|Uỷ|Cổng|Công|"
    r"Chi|Thanh|Tổng|Hội|Đài|Báo|Kho|Ngân|Thủ|Chủ|Phó|Giám|Tỉnh|Thành|Viện|Trường|UBND|"
    r"Ủy ban|nhân dân|Quốc|Nhà|Văn phòng))\s*$"
)
_DASH_LINE = re.compile(r"[ \t]*[-–][ \t]+(?P<next>\w+)")
_LAST_WORD = re.compile(r"(\w+)\s*$")
_YEAR = re.compile(r"(?:19|20)\d\d")


def _hyphen_runs_on(line: str, nxt: str) -> bool:
    """A line that starts with a hyphen is not a bullet when the line before was broken at
    a hyphen between two words: "kinh tế / - xã hội" (lower case goes on), "giai đoạn 2026 /
    - 2030" (a span of years), "Công nghiệp / - Viễn thông Quân đội" (a standard name's)."""
    dash, last = _DASH_LINE.match(nxt), _LAST_WORD.search(line)
    if dash is None or last is None:  # also a line ending in punctuation: nothing to go on
        return False
    left, right = last.group(1), dash.group("next")
    if right[0].isalpha() and right[0].islower():
        # a hard wrap fills its line; a short one before a lower-case dash is a list's item
        # without punctuation ("- rà soát hồ sơ / - cập nhật dữ liệu")
        return len(line.strip()) >= 50
    if _YEAR.fullmatch(left) and _YEAR.fullmatch(right):
        return True
    joint = (*name_key(left)[-1:], *name_key(right)[:1])
    return len(joint) == 2 and joint in hyphen_joints()


_BARE_MARKER = re.compile(r"(?:\d{1,3}|[IVXLC]+)\.")


def _ends_on_a_numeral(line: str, nxt: str, after: list[str]) -> bool:
    """ "… Quốc hội khóa / XV." and "… tại Điều / 12." : a numeral alone on a line, then a
    blank, after a line cut mid-phrase, ends that sentence; it is no heading."""
    return (
        _BARE_MARKER.fullmatch(nxt.strip()) is not None
        and bool(line.strip())
        and not _SENT_END.search(line)
        and not (after and after[0].strip())
    )


_VERB_START = re.compile(r"\s*[A-ZĐÀ-Ỹ][a-zđà-ỹ]*\s+[a-zđà-ỹ]")


def unwrap(text: str) -> str:
    """Undo hard wraps inside paragraphs (same length: a newline becomes a space).

    A line starting with an upper-case word continues the paragraph, except after a short
    heading ("1. Bộ trưởng các Bộ, Thủ trưởng cơ quan ngang bộ" / "Tập trung …"): there the
    heading is complete unless it ends inside a name ("1. Vụ" / "Pháp chế")."""
    lines = text.split("\n")
    out: list[str] = []
    para = ""
    for k, line in enumerate(lines):
        out.append(line)
        para = f"{para} {line.strip()}" if para else line.strip()
        if k == len(lines) - 1:
            break
        nxt = lines[k + 1]
        if _hyphen_runs_on(line, nxt) or _ends_on_a_numeral(line, nxt, lines[k + 2 : k + 3]):
            out.append(" ")
            continue
        if not line.strip() or not nxt.strip() or _MARKER.match(nxt):
            out.append("\n")
            para = ""
            continue
        first = nxt.lstrip()[:1]
        if first.isupper():
            # a sentence ending at a line end usually goes on in the same paragraph (the
            # crawl lost blank lines); an intro "…yêu cầu:" or a closing "./." does not
            closing = line.rstrip().endswith((":", "./."))
            if closing or (len(para) > 400 and re.search(r"[.!?…]\s*$", line)):
                out.append("\n")
                para = ""
                continue
            heading = (
                _HEADING.match(para) is not None
                and len(para) < 120
                and not re.search(r"[.;:!?]", para[4:])
            )
            if heading and not _OPEN_END.search(line) and _VERB_START.match(nxt):
                out.append("\n")
                para = ""
                continue
        out.append(" ")
    return "".join(out)
