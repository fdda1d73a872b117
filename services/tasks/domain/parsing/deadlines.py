"""Deadline, recurrence and PAR-criteria rules (pure), read from folded text.

Deadlines come only from explicit cues ("trước ngày 15/12/2025", "trước Thứ Tư ngày 03/12",
"chậm nhất ngày …", "trong tháng 12/2025", "trong quý I/2026", "hoàn thành trong năm 2026");
a date of a cited document ("Kế hoạch số 206/KH-UBND ngày 23/12/2022") is never one; a
day/month without a year takes the document's year. Recurrence codes: see ``recurrence.py``.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date

from services.tasks.domain.parsing.folding import Folded

# --------------------------------------------------------------------------- dates

_D = r"(\d{1,2})\s*[/\-.]\s*(\d{1,2})(?:\s*[/\-.]\s*(\d{4}))?(?![\d/])"
_DT = r"(\d{1,2}) thang (\d{1,2})(?: nam (\d{4}))?"
_CUE = (
    r"(?:hoan thanh |xong |thuc hien |gui |bao cao )?"
    r"(?:truoc|cham nhat(?: la)?(?: truoc| vao)?|han chot(?: la)?|khong muon hon|den het|"
    r"trong thoi han den|trong(?= ngay))"  # "trong ngày 20 tháng 11": by that day
)
_WEEKDAY = r"(?:(?:thu (?:hai|ba|tu|nam|sau|bay)|chu nhat),?\s+)?"  # "trước Thứ Tư ngày 03/12"
_DEADLINE_RES = [
    re.compile(rf"\b{_CUE}\s+{_WEEKDAY}(?:ngay\s+)?{_D}"),
    re.compile(rf"\b{_CUE}\s+{_WEEKDAY}(?:ngay\s+)?{_DT}"),
]
# "trong tháng 12/2025", "xong cuối tháng 12 năm 2025", "đến hết tháng 12 năm 2025"
_IN_MONTH = re.compile(
    r"\b(?:trong|cuoi|(?:den )?het) thang (\d{1,2})(?!\d)(?:\s*[/\-]\s*(\d{4})| nam (\d{4}))?"
)
# "hoàn thành (thực thi) trong năm 2026": the end of that year
_IN_YEAR = re.compile(r"\b(?:hoan thanh|thuc thi|xong)(?: [a-z]+){0,3} trong nam (\d{4})\b")
# "đến hết năm 2025"; "… công bố kết quả trong năm 2026." closing its clause (a year inside
# a clause, "các nhiệm vụ trong năm 2026 gồm", or a purpose, "để triển khai trong năm
# 2026", is no deadline)
_BY_YEAR_END = re.compile(r"\bden het nam (\d{4})\b")
_IN_YEAR_END = re.compile(r"\btrong nam (\d{4})(?=\s*(?:\([^)]{0,80}\)\s*)?(?:[.;]|$))")
# "để …" (folded, like "đề án", "đề nghị", "đề xuất", which are not purposes)
_PURPOSE = re.compile(r"\bde (?!an\b|nghi\b|xuat\b|ra\b|cap\b|cuong\b|tai\b|thi\b|muc\b)")
_IN_QUARTER = re.compile(r"\btrong quy (iv|iii|ii|i|[1-4])\b(?:\s*[/\-]\s*(\d{4})| nam (\d{4}))?")
_DOC_KW = (
    r"(?:nghi dinh|quyet dinh|ke hoach|bao cao|thong bao|chi thi|cong van|thong tu|"
    r"nghi quyet|ket luan|cong dien|chuong trinh(?: hanh dong)?|van ban|to trinh|quy dinh|"
    r"huong dan|luat|phap lenh)"
)
_DOCNUM = r"\d+[a-z0-9.\-]*(?:/[a-z0-9.\-]+)+|\d+-[a-z]+/[a-z]+"
_CITED = re.compile(
    rf"(?:(?:{_DOC_KW}\s+)?(?:so\s+)?(?:{_DOCNUM})|{_DOC_KW}s?)\s*,?\s+ngay\s+(?:{_D}|{_DT})"
)
_HEADER_DATE = [
    re.compile(rf"(?:^|\n)\s*ngay\s+{_D}\s*,"),
    re.compile(rf",\s*ngay\s+{_DT}"),
    re.compile(rf",\s*ngay\s+{_D}"),
]
_DRAFT_YEAR = re.compile(r"ngay\s+thang\s+nam\s+(\d{4})")
_ROMAN = {"i": 1, "ii": 2, "iii": 3, "iv": 4, "1": 1, "2": 2, "3": 3, "4": 4}


def _mkdate(y: int, m: int, d: int) -> date | None:
    try:
        return date(y, m, d)
    except ValueError:
        return None


@dataclass(frozen=True)
class _DocTime:
    issued_on: date | None
    year: int | None

    def complete(self, day: int, month: int, year: str | None) -> date | None:
        if year:
            return _mkdate(int(year), month, day)
        if self.year is None:
            return None
        d = _mkdate(self.year, month, day)
        if d is not None and self.issued_on is not None and d < self.issued_on:
            d = _mkdate(self.year + 1, month, day)
        return d

    def month_end(self, month: int, year: str | None) -> date | None:
        y = int(year) if year else self.year
        if y is None or not 1 <= month <= 12:
            return None
        d = date(y, month, calendar.monthrange(y, month)[1])
        if not year and self.issued_on is not None and d < self.issued_on:
            d = date(y + 1, month, calendar.monthrange(y + 1, month)[1])
        return d


def _header_time(fd: Folded, issued_on: date | None) -> _DocTime:
    if issued_on is not None:
        return _DocTime(issued_on, issued_on.year)
    head = fd.f[:1200]
    cited = _cited_spans(head)
    for rx in _HEADER_DATE:
        for m in rx.finditer(head):
            if any(cs <= m.start(1) < ce for cs, ce in cited):
                continue  # "Quyết định số 5/QĐ-UBND, ngày 01/01/2020" is not our date
            d = _mkdate(int(m.group(3)), int(m.group(2)), int(m.group(1))) if m.group(3) else None
            if d is not None:
                return _DocTime(d, d.year)
    m2 = _DRAFT_YEAR.search(head)
    if m2:
        return _DocTime(None, int(m2.group(1)))
    return _DocTime(None, None)


def _cited_spans(f: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in _CITED.finditer(f)]


def _find_deadline(
    f: str,
    a: int,
    b: int,
    dt: _DocTime,
    cited: list[tuple[int, int]],
    *,
    explicit_year_only: bool = False,
) -> date | None:
    seg = f[a:b]
    found: list[tuple[int, date]] = []

    def is_cited(s: int, e: int) -> bool:
        return any(cs <= a + s < ce or cs < a + e <= ce for cs, ce in cited)

    for rx in _DEADLINE_RES:
        for m in rx.finditer(seg):
            if is_cited(m.start(1), m.end()):
                continue
            # "trước ngày 25 hằng tháng" is a recurrence, not a deadline
            if re.match(r"\s*hang (?:thang|quy|nam)", seg[m.end() :]):
                continue
            if explicit_year_only and not m.group(3):
                continue  # "báo cáo quý … trước ngày 15/3, 15/6": the period calendar
            d = dt.complete(int(m.group(1)), int(m.group(2)), m.group(3))
            if d is not None:
                found.append((m.start(), d))
    for m in _IN_MONTH.finditer(seg):
        if is_cited(m.start(), m.end()):
            continue
        d = dt.month_end(int(m.group(1)), m.group(2) or m.group(3))
        if d is not None:
            found.append((m.start(), d))
    for m in _IN_YEAR.finditer(seg):
        found.append((m.start(), date(int(m.group(1)), 12, 31)))
    for m in _BY_YEAR_END.finditer(seg):
        if not re.search(r"\btu\b", re.split(r"[,;:]", seg[: m.start()])[-1]):
            found.append((m.start(), date(int(m.group(1)), 12, 31)))  # not "từ nay đến hết"
    for m in _IN_YEAR_END.finditer(seg):
        clause = re.split(r"[;:]|\.\s", seg[: m.start()])[-1]
        if not _PURPOSE.search(clause) and not is_cited(m.start(), m.end()):
            found.append((m.start(), date(int(m.group(1)), 12, 31)))
    for m in _IN_QUARTER.finditer(seg):
        q = _ROMAN[m.group(1)]
        d = dt.month_end(q * 3, m.group(2) or m.group(3))
        if d is not None:
            found.append((m.start(), d))
    if not found:
        return None
    return sorted(found)[0][1]


# --------------------------------------------------------------------------- recurrence

_REPORT_TOKEN = re.compile(
    r"(quy (?:iv|iii|ii|i)\b|quy [1-4]\b|6 thang(?: dau nam)?|9 thang(?: dau nam)?|nam\b(?! \d))"
)
_REPORT_SEP = re.compile(r"(?:\s|,|;|…|\.\.\.|\bva\b|\bbao cao\b|\bdinh ky\b)*")


def _report_code(token: str) -> str:
    if token.startswith("quy"):
        q = _ROMAN[token.split()[1]]
        return f"Q{q}"
    if token.startswith("6 thang"):
        return "H1"
    if token.startswith("9 thang"):
        return "M9"
    return "year"


def _find_recurrence(seg: str) -> str | None:
    m = re.search(r"\btu ngay (\d{1,2}) den(?: het)? ngay (\d{1,2}) (?:cua )?hang thang", seg)
    if m:
        return f"monthly:days={int(m.group(1))}-{int(m.group(2))}"
    m = re.search(r"\btruoc ngay (\d{1,2}) (?:cua )?hang thang", seg)
    if m:
        return f"monthly:by={int(m.group(1))}"
    m = re.search(r"\btruoc ngay (\d{1,2})\s*[/\-.]\s*(\d{1,2}) (?:cua )?hang nam", seg)
    if m:
        return f"yearly:by={int(m.group(2)):02d}-{int(m.group(1)):02d}"
    for rm in re.finditer(r"\bbao cao (?:dinh ky )?", seg):
        pos = rm.end()
        codes: list[str] = []
        while True:
            tm = _REPORT_TOKEN.match(seg, pos)
            if not tm:
                break
            code = _report_code(tm.group(1))
            if code not in codes:
                codes.append(code)
            pos = _REPORT_SEP.match(seg, tm.end()).end()  # type: ignore[union-attr]
        if len(codes) >= 2 or (codes and codes[0] != "year"):
            return "reports:" + ",".join(codes)
    if re.search(r"\bhang tuan\b", seg):
        return "weekly"
    if re.search(r"\bhang thang\b", seg):
        return "monthly"
    if re.search(r"\bhang quy\b", seg):
        return "quarterly"
    if re.search(r"\b(?:dinh ky 0?6 thang|0?6 thang (?:mot|1) lan)\b", seg):
        return "half_yearly"
    # "hằng năm", but not the yearly budget a task is paid from ("từ ngân sách hằng năm")
    if re.search(r"(?<!ngan sach )(?<!du toan )\bhang nam\b", seg):
        return "yearly"
    return None


# a time field "Năm 2026 và các năm tiếp theo", "Quý IV/2025 và các năm tiếp theo": from a
# year (or a quarter of it) on, every year. Not "giai đoạn 2026-2030 và những năm tiếp theo"
# (a span that goes on) nor a noun phrase "Chỉ số … năm 2025 và các năm tiếp theo" elsewhere
# "… và các năm / kỳ tiếp theo": a time that goes on, so no deadline (tables' time cells)
_GOES_ON = re.compile(r"\b(?:cac|nhung) (?:nam|ky) tiep theo\b")
_FROM_YEAR_ON = re.compile(
    r"^\W*(?:quy (?:iv|iii|ii|i|[1-4])\s*(?:[/\-]\s*|nam )|nam )\d{4},? (?:va )?(?:cac|nhung) nam "
    r"tiep theo\b"
)


def _field_recurrence(seg: str) -> str | None:
    """Recurrence of a task's time field ("Thời gian thực hiện: …")."""
    return _find_recurrence(seg) or ("yearly" if _FROM_YEAR_ON.search(seg) else None)


_CRIT = re.compile(
    r"\b(?:tctp|tieu chi thanh phan|tieu chi)\s*(?:so\s*)?:?\s*"
    r"(\d+(?:\.\d+)+(?:\s*(?:[,;]|\bva\b)\s*\d+(?:\.\d+)+)*)"
)


def _find_criteria(seg: str) -> list[str]:
    out: list[str] = []
    for m in _CRIT.finditer(seg):
        for code in re.findall(r"\d+(?:\.\d+)+", m.group(1)):
            if code not in out:
                out.append(code)
    return out
