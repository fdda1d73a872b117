"""Task-table stage: tables (STT | Nhiệm vụ | Cơ quan chủ trì | Cơ quan phối hợp | Thời hạn),
cut out of the text by the layout stage (plain-text "|" rows or real ``.docx`` tables), one
item per row with the agencies read from their cells and the deadline from the time cell."""

from __future__ import annotations

import re
from collections import Counter
from datetime import date
from typing import Any

from services.tasks.domain.parsing.agencies import _Matcher, agency_head_at
from services.tasks.domain.parsing.blocks import _NAMED_PART, _fold_range, _split_semicolons
from services.tasks.domain.parsing.deadlines import (
    _GOES_ON,
    _ROMAN,
    _DocTime,
    _find_criteria,
    _find_recurrence,
    _mkdate,
)
from services.tasks.domain.parsing.folding import Folded
from services.tasks.domain.parsing.gazetteer import gazetteer
from services.tasks.domain.parsing.model import Assignee, DraftItem, Role, _assignee, _clean
from services.tasks.domain.units import UnitDirectory, When, fold, name_key

_COL_TASK = re.compile(
    r"^(?:ten )?(?:nhiem vu|noi dung|giai phap)|^thong tin|^(?:noi dung )?(?:de xuat|kien nghi)"
)
_COL_LEAD = re.compile(
    r"(?:co quan|don vi)(?: chu tri| thuc hien| chiu trach nhiem)|chu tri|(?:bo|co quan), nganh|"
    r"phu trach|(?:co quan|don vi|bo) (?:tiep nhan|xu ly)"
)
_COL_SUPPORT = re.compile(r"(?:co quan|don vi)? ?phoi hop")
_COL_TIME = re.compile(r"thoi (?:han|gian)|tien do")
# a column of what was done ("Kết quả thực hiện", "Tình hình thực hiện"): the table reports on
# tasks assigned elsewhere, it assigns none
_COL_REPORT = re.compile(r"^(?:ket qua|tinh hinh) (?:thuc hien|trien khai)")
_COL_STATUS = re.compile(r"^(?:tien do|tinh trang|trang thai)$")
# bodies the sentence-level head words do not start ("Tòa án nhân dân tối cao", "Tập đoàn …")
_OTHER_HEAD = re.compile(r"(?:toa an|vien kiem sat|kiem toan|ngan hang|tap doan|tong cong ty|bo)\b")
_GENERIC = {"co quan", "don vi", "dia phuong", "nganh", "cac co quan", "cac don vi"}
_STT = re.compile(r"^(?:\d+(?:\.\d+)*\.?|[ivxlc]+\.?|[a-z]\)?)$")
_Q = re.compile(r"\bqu[yi] (iv|iii|ii|i|[1-4])\b\s*(?:[/\-]|nam)?\s*(\d{4})")
_MONTH = re.compile(r"\bthang (\d{1,2})\s*[/\-]\s*(\d{4})|\bthang (\d{1,2}) nam (\d{4})")
_FULL = re.compile(r"\b(\d{1,2})\s*/\s*(\d{1,2})\s*/\s*(\d{4})\b")
_YEAR = re.compile(r"^(?:truoc |trong |hoan thanh(?: trong)? )?(?:nam )?(\d{4})\W*$")


def _cell_deadline(f: str, dt: _DocTime) -> date | None:
    """A deadline cell: "15/12/2025", "Quý IV/2025", "Tháng 12/2025", "Năm 2026"; a period
    ("2026-2030"), "Thường xuyên" or a start that goes on ("Quý IV/2025 và các năm tiếp
    theo": a yearly duty, see ``_field_recurrence``) is no deadline."""
    if _GOES_ON.search(f):
        return None
    m = _FULL.search(f)
    if m and not re.search(r"\btu(?: ngay)?\s*$", f[: m.start()]):  # "Từ 01/7/2025" is a start
        return _mkdate(int(m.group(3)), int(m.group(2)), int(m.group(1)))
    m = _Q.search(f)
    if m:
        return dt.month_end(_ROMAN[m.group(1)] * 3, m.group(2))
    m = _MONTH.search(f)
    if m:
        mm, yy = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
        return dt.month_end(int(mm), yy)
    m = _YEAR.match(f.strip())
    if m:
        return date(int(m.group(1)), 12, 31)
    return None


def _header_like(row: list[Any]) -> bool:
    cells = [fold(c.text).strip() for c in row]
    return any(_COL_LEAD.search(c) and len(c) < 60 for c in cells) and any(
        _COL_TASK.search(c) for c in cells
    )


def _header_start(row: list[Any]) -> int:
    """Where the header's own cells start in a header-like row ("STT" or the task column)."""
    for i, c in enumerate(row):
        t = fold(c.text).strip()
        if t == "stt" or _COL_TASK.search(t):
            return i
    return 0


def _parts(rows: list[list[Any]]) -> list[list[list[Any]]]:
    """A table cut where a header row comes again: the same columns after a part title, or
    other columns (a report appended after the task list, "Kết quả thực hiện | Tiến độ"); each
    part is read with its own header. A shorter repeat ("Nội dung | Đơn vị thực hiện | …"
    without the STT column) heads a group of rows under the same columns and is skipped."""
    out: list[list[list[Any]]] = []
    cur: list[list[Any]] = []
    width = 0  # the header cells of the current part
    for r in rows:
        if _header_like(r):
            h = _header_start(r)
            prefix = r[:h]
            if width and len(prefix) >= width and _STT.match(fold(prefix[0].text).strip()):
                # no row break between the part's last row, the next part's title and header
                cur.append(prefix[:width])
            if cur and width and len(r) - h >= width:
                out.append(cur)
                cur = []
            if not cur:
                width = len(r) - h
        cur.append(r)
    if cur:
        out.append(cur)
    return out


def _items_from_tables(
    text: str,
    tables: list[Any],
    units: UnitDirectory,
    when: When,
    dt: _DocTime,
    horizon: date | None,
    scope: set[str] | None = None,
) -> list[DraftItem]:
    """Task tables (STT | Nhiệm vụ | Cơ quan chủ trì | Cơ quan phối hợp | Thời hạn): one item
    per row, the agencies read from their cells."""
    if not tables:
        return []
    chars = list(text)
    for t in tables:
        for row in t.rows:
            for c in row:
                for k in range(c.start, c.end):
                    if chars[k] == "\n":
                        chars[k] = " "
    fd = Folded("".join(chars))
    matcher = _Matcher(fd, units, when)
    matcher.scope = scope
    out: list[DraftItem] = []

    def agencies(c: Any, role: Role) -> list[Assignee]:
        a, b = _fold_range(fd, c.start, c.end)
        found: list[Assignee] = []
        f = fd.f
        enum = matcher.enumeration_at(a, b)  # "Các Cục: Di sản văn hóa, Bản quyền tác giả"
        if enum is not None:
            found = [
                _assignee(_clean(fd.original(m.start, m.end)), role, m.unit_id, m.group)
                for m in enum[0]
            ]
            # what the cell names after the enumeration ("…; Báo chí. Vụ Kế hoạch, Tài chính")
            a = enum[1]
            while a < b and f[a] in " ,.;":
                a += 1
        for seg_a, seg_b in _split_semicolons(f, a, b):
            # a cell holds names only: known ones, and between them names outside the registry
            # ("Bộ Xây dựng, Tòa án nhân dân tối cao, Bộ Y tế"), each kept as written
            pos = seg_a
            while pos < seg_b:
                ms, end = matcher.scan_list(pos, seg_b)
                for m in ms:
                    found.append(
                        _assignee(_clean(fd.original(m.start, m.end)), role, m.unit_id, m.group)
                    )
                if not ms:
                    cut = _NAMED_PART.search(f, pos + 1, seg_b)
                    end = cut.start() if cut else seg_b
                    name = _clean(fd.original(pos, end).strip(" ,.;"))
                    head = agency_head_at(fd, pos) or _OTHER_HEAD.match(f, pos) or pos == seg_a
                    if fold(name) in _GENERIC:
                        pass  # "Các bộ, cơ quan": a bare word of the group just read
                    elif name and not head and found and matcher.province_named(pos, end):
                        pass  # "Thuế tỉnh Đồng Nai": the province of the name just read
                    elif name and not head and found:
                        # what qualifies the name just read ("Ngân hàng Nhà nước Chi nhánh
                        # Khu vực II", "Các địa phương có đảo"): another body, as written
                        prev = found.pop()
                        whole = _clean(prev.name + " " + name)
                        found.append(
                            Assignee(whole, role, canonical=gazetteer().get(name_key(whole)))
                        )
                    elif name:
                        canonical = gazetteer().get(name_key(name))
                        found.append(Assignee(name, role, canonical=canonical))
                sep = re.compile(r"[ ,.;]*(?:va\s+)?").match(f, end)
                nxt = sep.end() if sep else end
                if nxt <= pos:
                    break
                pos = nxt
        return found

    for t in tables:
        for rows in _parts(t.rows):
            if not rows:
                continue
            # the header row: the first naming a lead column; a crawl may have glued other
            # cells (a signature block) before it, so keep as many cells as a data row has
            first = next(
                (k for k, r in enumerate(rows) if any(_COL_LEAD.search(fold(c.text)) for c in r)),
                None,
            )
            if first is None:
                continue
            lengths = Counter(len(r) for r in rows[first + 1 :])
            typical = lengths.most_common(1)[0][0] if lengths else len(rows[first])
            header_cells = rows[first][-typical:] if len(rows[first]) > typical else rows[first]
            header = [fold(c.text).strip() for c in header_cells]

            def col(
                rx: re.Pattern[str],
                exclude: re.Pattern[str] | None = None,
                header: list[str] = header,
            ) -> int | None:
                for i, h in enumerate(header):
                    if rx.search(h) and not (exclude and exclude.search(h)):
                        return i
                return None

            c_task = col(_COL_TASK)
            c_lead = col(_COL_LEAD, _COL_SUPPORT)
            c_sup = col(_COL_SUPPORT)
            c_time = col(_COL_TIME)
            if c_task is None or c_lead is None:
                continue  # not a task table (statistics, proposals …)
            c_report = col(_COL_REPORT)
            c_status = col(_COL_STATUS)
            if c_report is not None and c_status is not None and c_status != c_time:
                continue  # a progress report on earlier tasks: what was done, how far along
            width = len(header)
            section: str | None = None
            for row in rows[first + 1 :]:
                if len(row) < max(c_task, c_lead) + 1 or len(row) < width - 1:
                    if row:
                        section = row[0].text[:20]
                    continue
                shift = len(row) - width  # a row without its STT cell
                if shift > 0 and _STT.match(fold(row[0].text).strip()):
                    shift = 0  # a numbered row with the next section's title row glued after it

                def cell(i: int | None, row: list[Any] = row, shift: int = shift) -> Any:
                    if i is None:
                        return None
                    j = i + shift
                    return row[j] if 0 <= j < len(row) else None

                task = cell(c_task)
                lead = cell(c_lead)
                if task is None or lead is None or not task.text:
                    continue
                if _header_like(row):
                    continue  # the header repeated (a page break, a group of rows)
                people = agencies(lead, "lead")
                sup = cell(c_sup)
                if sup is not None:
                    seen = {(x.unit_id, x.group, x.name) for x in people}
                    people += [
                        x
                        for x in agencies(sup, "support")
                        if (x.unit_id, x.group, x.name) not in seen
                    ]
                tm = cell(c_time)
                tf = fold(tm.text) if tm is not None else ""
                recurrence = _find_recurrence(tf) or _find_recurrence(fold(task.text))
                deadline = _cell_deadline(tf, dt) if tm is not None else None
                out.append(
                    DraftItem(
                        assignees=people,
                        action=_clean(task.text),
                        deadline=deadline,
                        recurrence=recurrence,
                        criteria=_find_criteria(fold(task.text)),
                        span=(task.start, task.end),
                        section=section,
                    )
                )
    return out
