"""Extraction stage: propose draft remediation items from a conclusion notice or dispatch.

Runs after conversion (``documents.py``), layout (``layout.py``: tables cut out, hard wraps
undone, offsets kept) and header (``header.py``); uses ``agencies.py`` for names and groups
and ``deadlines.py`` for dates, recurrence and criteria. The rules below walk the paragraph
blocks as a section tree; task tables and form-style field blocks are rules of their own
(``_items_from_tables``, ``_apply_form_fields``), as are the addressees who lead unassigned
tasks ("Kính gửi: …", "… thông báo để X … biết, thực hiện").

``parse_conclusion`` is a pure function: no I/O, no clock. All matching runs on a
*folded* copy of the text (diacritics stripped, ``đ`` → ``d``, lower case) that keeps
a map back to the original, so every span indexes the ORIGINAL text.

Structure of the documents (see ``/work/shared/samples``):

* a preamble (header, addressees, reasons) ends at the first numbered heading, or at
  a paragraph ending with "… yêu cầu:" / "… kết luận:" when there are no headings;
* a numbered heading (``1.``, ``II.``) or a lettered heading (``a)``) that names
  agencies ("1. Sở Thông tin và Truyền thông") makes them the leads of everything
  under it; a heading that starts like an addressee but is descriptive ("Các đơn vị
  được UBND tỉnh giao …") becomes one unresolved lead named as written;
* every bullet / lettered item / paragraph in the body is one draft item, except that
  a block is split at sentence boundaries where a later sentence names its own
  subject agency, or where sentences carry different timing (deadline / recurrence);
* a block that starts by naming agencies (or by an enumeration "Các Sở, ngành: Y tế,
  …; UBND các huyện: Văn Giang, …") overrides the heading's leads;
* agencies after "phối hợp với" / "phối hợp cùng" are support;
* the body stops at "Nơi nhận", the signature block, "Tin liên quan", or at a closing
  formula ending with "./.".

Deadlines come only from explicit cues ("trước ngày 04/8/2022", "hoàn thành trước
ngày …", "chậm nhất ngày …", "trong tháng 12/2020" = last day of the month, "trong
quý III/2022" = last day of the quarter). A date that belongs to a cited document
("Kế hoạch số 206/KH-UBND ngày 23/12/2022") is never a deadline. A day/month without
a year takes the year of the document (``issued_on``, else the header date / the year
of an undated draft "ngày tháng năm 2023"); if that lands before a known issue date
it rolls to the next year.

Recurrence vocabulary (``DraftItem.recurrence``):

* ``weekly`` – "hằng tuần"
* ``monthly`` – "hằng tháng" / "hàng tháng"
* ``monthly:days=A-B`` – "từ ngày 01 đến ngày 05 hằng tháng"
* ``monthly:by=D`` – "trước ngày 25 hằng tháng"
* ``quarterly`` – "hằng quý", "định kỳ hằng quý"
* ``half_yearly`` – "định kỳ 6 tháng", "6 tháng một lần"
* ``yearly`` – "hằng năm"
* ``yearly:by=MM-DD`` – "trước ngày 15/12 hằng năm"
* ``reports:P1,P2,…`` – periodic reports listed as periods, P ∈ {Q1, Q2, H1, Q3, M9,
  Q4, year} ("báo cáo quý I, 6 tháng, 9 tháng và năm" → ``reports:Q1,H1,M9,year``);
  the reporting calendar (``recurrence.py``) gives their due dates.

Group codes (``Assignee.group``): ``departments`` (các sở, ban, ngành), ``districts``
(UBND các huyện, thị xã, thành phố; UBND cấp huyện), ``communes`` (UBND các xã,
phường, thị trấn; UBND cấp xã), ``public_service_units`` (các đơn vị sự nghiệp công
lập trực thuộc UBND tỉnh), ``related_units`` (các cơ quan, đơn vị có liên quan;
địa phương liên quan), ``all_units`` (các cơ quan, đơn vị, địa phương).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import date
from typing import Any, Literal

from services.tasks.domain.parsing.agencies import (
    _AGENCY_HEAD,
    _Matcher,
    _Mention,
)
from services.tasks.domain.parsing.deadlines import (
    _ROMAN,
    _cited_spans,
    _DocTime,
    _find_criteria,
    _find_deadline,
    _find_recurrence,
    _header_time,
    _mkdate,
)
from services.tasks.domain.parsing.folding import Folded
from services.tasks.domain.parsing.gazetteer import GAZ_PREFIX
from services.tasks.domain.parsing.header import read_header
from services.tasks.domain.parsing.layout import split_tables, unwrap
from services.tasks.domain.units import UnitDirectory, When, fold, name_key

Role = Literal["lead", "support"]


class _Fields:
    """Read access by key as well as by attribute (``item["deadline"]``), and ``to_dict``."""

    def __getitem__(self, key: str) -> Any:
        try:
            return getattr(self, key)
        except AttributeError:
            raise KeyError(key) from None

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = asdict(self)  # type: ignore[call-overload]
        return out


@dataclass(frozen=True)
class Assignee(_Fields):
    name: str
    role: Role
    unit_id: str | None = None
    group: str | None = None
    canonical: str | None = None  # the gazetteer's standard name when not in the registry


@dataclass(frozen=True)
class AgencyRef(_Fields):
    """An agency mentioned without a role (e.g. a meeting participant)."""

    name: str
    unit_id: str | None = None
    group: str | None = None


@dataclass(frozen=True)
class DraftItem(_Fields):
    assignees: list[Assignee]
    action: str
    deadline: date | None
    recurrence: str | None
    criteria: list[str]
    span: tuple[int, int]
    section: str | None = None


@dataclass(frozen=True)
class DraftFinding(_Fields):
    """A shortcoming listed under a "Tồn tại, hạn chế" heading (evidence, not a task)."""

    text: str
    span: tuple[int, int]


@dataclass
class ParseResult(_Fields):
    items: list[DraftItem]
    findings: list[DraftFinding] = field(default_factory=list)
    issued_on: date | None = None
    reference_year: int | None = None
    is_directive: bool = False
    participants: list[AgencyRef] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    number: str | None = None
    issuer: str | None = None
    province: str | None = None  # the issuing body's province, as written
    horizon_until: date | None = None  # end of the plan's period ("giai đoạn 2026-2030")


# --------------------------------------------------------------------------- folding


def _clean(s: str) -> str:
    return " ".join(unicodedata.normalize("NFC", s).split())


# --------------------------------------------------------------------------- blocks


@dataclass
class _Block:
    kind: str  # "heading" | "letter" | "bullet" | "para"
    label: str | None
    start: int  # folded offsets of the content (after the marker)
    end: int


_STOP = re.compile(r"\s*(?:noi nhan\b|tm\.|kt\.|tin lien quan\b|tai lieu dinh kem\b)")
_NUM = re.compile(r"[ \t]*((?:\d+(?:\.\d+)*)|[ivx]+)\.[ \t]+")
_LETTER = re.compile(r"[ \t]*([a-z])\)[ \t]+")
_BULLET = re.compile(r"[ \t]*(?:[-–—•+*]|\(\d{1,2}\))[ \t]+")
_FOOTNOTE = re.compile(r"[ \t]*(?:[¹²³⁴⁵⁶⁷⁸⁹⁰*]|\[(?:\d{1,3}|[ivx]{1,5})\])")
_UNKNOWN_LEAD = re.compile(
    r"(?P<name>(?:so|cuc|chi cuc|ban|trung tam|cong an|bao hiem xa hoi|kho bac|van phong|"
    r"thanh tra|ubnd|uy ban nhan dan|doan|hoi|dai|bo chi huy|vien|truong)\b[^,.;:\n]{0,80}?)"
    r",?\s+(?:chu tri|chiu trach nhiem)\b"
)
_NON_DIRECTIVE = re.compile(
    r"(?:ket qua|uu diem|ton tai|han che|nguyen nhan|danh gia|tinh hinh|nhan xet|khuyet diem|"
    r"thuc trang|dac diem|mot so ket qua|muc dich|yeu cau|muc tieu|quan diem|doi tuong|"
    r"pham vi|can cu (?:phap ly|xay dung))\b"
)
_FINDINGS_HEAD = re.compile(r"(?:\S+ )?(?:ton tai|han che|khuyet diem)\b")
_HEAD_PREFIX = re.compile(r"(?:doi voi|giao cho|giao|de nghi|yeu cau)\s*:?\s+")
_DIRECT = re.compile(r"\b(?:yeu cau|giao|de nghi|giao cho|chi dao)\s+(?=\S)")
_TRIGGER = re.compile(
    r"(?:yeu cau|ket luan|chi dao|giao|de nghi|giao nhiem vu)(?: nhu sau)?\s*:\s*$"
)


def _lines(f: str) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    pos = 0
    for line in f.split("\n"):
        s, e = pos, pos + len(line)
        while s < e and f[s].isspace():
            s += 1
        while e > s and f[e - 1].isspace():
            e -= 1
        if e > s:
            out.append((s, e))
        pos += len(line) + 1
    return out


def _blocks(fd: Folded) -> list[_Block]:
    f = fd.f
    out: list[_Block] = []
    for s, e in _lines(f):
        if _FOOTNOTE.match(f, s):
            continue
        m = _NUM.match(f, s, e)
        if m and m.end() < e and (m.group(1)[0].isdigit() or fd.is_upper_at(m.start(1))):
            out.append(_Block("heading", m.group(1), m.end(), e))
            continue
        m = _LETTER.match(f, s, e)
        if m and m.end() < e:
            out.append(_Block("letter", fd.original(m.start(1), m.end(1)), m.end(), e))
            continue
        m = _BULLET.match(f, s, e)
        if m and m.end() < e:
            out.append(_Block("bullet", None, m.end(), e))
            continue
        prev = out[-1] if out else None
        if (
            prev is not None
            and f[prev.end - 1] not in ".:;!?…"
            and not fd.is_upper_at(s)
            and f[s].isalpha()
        ):
            prev.end = e  # continuation across a line or page break
            continue
        out.append(_Block("para", None, s, e))
    return out


def _sentences(fd: Folded, a: int, b: int) -> list[tuple[int, int]]:
    f = fd.f
    out: list[tuple[int, int]] = []
    start = a
    for m in re.finditer(r"[.!?…](?=\s+\S)", f[a:b]):
        end = a + m.end()
        nxt = end
        while nxt < b and f[nxt].isspace():
            nxt += 1
        if (
            nxt < b
            and fd.is_upper_at(nxt)
            and not re.search(r"\b(?:tp|q|tt|ths|ts)\.$", f[start:end])
        ):
            out.append((start, end))
            start = nxt
    out.append((start, b))
    return out


# --------------------------------------------------------------------------- main


def parse_conclusion(text: str, *, issued_on: date | None, units: UnitDirectory) -> ParseResult:
    """Propose draft items from a conclusion/dispatch text (pure; spans index ``text``)."""
    header = read_header(text)
    # layout stage (length-preserving): tables cut out, hard wraps undone
    flowing, tables = split_tables(text)
    fd = Folded(unwrap(flowing))
    f = fd.f
    dt = _header_time(fd, issued_on or header.issued_on)
    if dt.year is None and header.year is not None:
        dt = _DocTime(None, header.year)
    when = When(on=dt.issued_on, year=dt.year if dt.issued_on is None else None)
    matcher = _Matcher(fd, units, when)
    cited = _cited_spans(f)
    blocks = _blocks(fd)
    result = ParseResult(items=[], issued_on=dt.issued_on, reference_year=dt.year)
    result.number, result.issuer = header.number, header.issuer
    result.province, result.horizon_until = header.province, header.horizon_until

    matcher.scope = _scope(units, header)

    def assignee(m: _Mention, role: Role) -> Assignee:
        return _assignee(_clean(fd.original(m.start, m.end)), role, m.unit_id, m.group)

    has_headings = any(b.kind == "heading" for b in blocks)
    in_body = False
    skip_level: int | None = None  # inside an evaluation section (results, shortcomings)
    resume_leads: list[Assignee] = []  # "… tỉnh X cần thực hiện các nhiệm vụ sau đây:"
    level_leads: dict[int, list[Assignee]] = {}  # leads of the open heading at each level
    in_findings = False
    sec_leads: list[Assignee] = []
    sub_leads: list[Assignee] | None = None
    section: str | None = None
    subsection: str | None = None

    def timed_at(a: int, b: int) -> bool:
        return _find_deadline(f, a, b, dt, cited) is not None or bool(_find_recurrence(f[a:b]))

    def heading_leads(a: int, b: int) -> tuple[list[Assignee], bool] | None:
        """Leads named by a heading; returns (leads, pure_heading) or None if not agency."""
        pm = _HEAD_PREFIX.match(f, a)
        if pm:  # "2. Đối với Sở Y tế:" / "Giao Sở Nội vụ:"
            a = pm.end()
        content_end = b
        colon = f[a:b].endswith(":")
        if colon:
            content_end = b - 1
            first_colon = f.find(":", a, b)
            if first_colon < content_end:  # "8. Cục A, Cục B: Tham mưu … các cơ quan báo chí:"
                content_end = first_colon
        mentions, end = matcher.scan_list(a, content_end)
        rest = f[end:content_end].strip(" ,;")
        if mentions and (not rest or rest == "tinh"):
            return [assignee(m, "lead") for m in mentions], True
        if mentions and colon:
            # an intro sentence whose subject is the addressee: "1. Các đồng chí Bộ trưởng …
            # đề cao trách nhiệm, …:" — its subject leads the bullets under it
            return [assignee(m, "lead") for m in mentions], True
        timed = _find_deadline(f, a, b, dt, cited) is not None or _find_recurrence(f[a:b])
        if colon or (content_end - a < 120 and f[content_end - 1] != "." and not timed):
            paren = re.match(r"[^()]{0,80}\(([^()]{5,300})\)", f[a:content_end])
            if paren and _AGENCY_HEAD.match(f, a):
                # "Các cơ quan đăng ký đầu tư (Sở Tài chính, Ban quản lý …)": the bodies inside
                pa, pb = a + paren.start(1), a + paren.end(1)
                resolved: list[Assignee] = []
                for x, y in _split_named(f, pa, pb):
                    ms, e2 = matcher.scan_list(x, y)
                    if ms and not f[e2:y].strip(" ,;."):
                        resolved.extend(assignee(m, "lead") for m in ms)
                    else:
                        resolved.append(Assignee(_clean(fd.original(x, y)), "lead"))
                return resolved, True
            if _AGENCY_HEAD.match(f, a):
                parts: list[Assignee] = []
                for seg_a, seg_b in _split_semicolons(f, a, content_end):
                    ms, e2 = matcher.scan_list(seg_a, seg_b)
                    if ms and not f[e2:seg_b].strip(" ,;"):
                        parts.extend(assignee(m, "lead") for m in ms)
                    else:
                        parts.extend(
                            Assignee(_clean(fd.original(x, y)), "lead")
                            for x, y in _split_named(f, seg_a, seg_b)
                        )
                return parts, True
            return [], True
        return None

    for bi, blk in enumerate(blocks):
        if _STOP.match(f, blk.start):
            if in_body:
                break
            continue
        body_text = f[blk.start : blk.end]
        if not in_body:
            if blk.kind == "heading":
                in_body = True
            elif not has_headings and blk.kind == "para" and _TRIGGER.search(body_text):
                in_body = True
                continue
            else:
                continue
        if blk.kind == "heading":
            level = _heading_level(blk.label)
            if level == 0:
                resume_leads = []  # a new roman section: the evaluation's addressee ends
            if skip_level is not None and level <= skip_level:
                skip_level = None
            if skip_level is None and _NON_DIRECTIVE.match(f, blk.start):
                skip_level = level  # "I. KẾT QUẢ KIỂM TRA", "2. Tồn tại, hạn chế": not tasks
            if skip_level is not None:
                in_findings = bool(_FINDINGS_HEAD.match(f, blk.start))
                continue
        if skip_level is not None:
            if blk.kind == "para" and _RESUME.search(body_text):
                # "… thành phố Đà Nẵng cần tập trung thực hiện tốt một số nhiệm vụ, giải pháp
                # sau đây:" closes the evaluation: the numbered items after it are tasks
                skip_level = None
                pm = _WHO_NEEDS.search(f, blk.start, blk.end)
                sec_leads = []
                resume_leads = []
                if pm is not None:
                    kind = "thành phố" if pm.group(1).startswith("thanh") else "tỉnh"
                    name = _clean(fd.original(pm.start(2), pm.end(2)))
                    found = units.provinces_named(name, when) or units.provinces_named(name)
                    uid = (
                        found[0].id
                        if len(found) == 1 and matcher._admissible(found[0].id)
                        else None
                    )
                    sec_leads = resume_leads = [
                        Assignee(
                            f"UBND {kind} {name}",
                            "lead",
                            uid,
                            None,
                            canonical=None if uid else f"UBND {kind} {name}",
                        )
                    ]
                continue
            if in_findings:
                oa, ob = fd.span(blk.start, blk.end)
                result.findings.append(DraftFinding(_clean(text[oa:ob]), (oa, ob)))
            continue
        if blk.kind == "heading":
            section, subsection, sub_leads = blk.label, None, None
            level = _heading_level(blk.label)
            # the section tree: a sub-heading naming nobody ("2.1. Trách nhiệm chung") keeps
            # the leads of the heading above it ("2. Các sở, ban, ngành, địa phương: …")
            inherited = next(
                (level_leads[k] for k in sorted(level_leads, reverse=True) if k < level), []
            )
            for k in [k for k in level_leads if k >= level]:
                del level_leads[k]
            hl = heading_leads(blk.start, blk.end)
            if hl is not None:
                sec_leads = hl[0] or list(inherited)
                level_leads[level] = sec_leads
                continue
            colon = f.find(":", blk.start, blk.end)
            nxt = blocks[bi + 1] if bi + 1 < len(blocks) else None
            titled = (
                nxt is not None
                and nxt.kind in ("bullet", "letter")
                and blk.end - blk.start < 200
                and f[blk.end - 1] not in ".;"
                and not matcher.scan_list(blk.start, blk.end)[0]
                and not timed_at(blk.start, blk.end)
            )
            if titled or (_TOPIC.match(f, blk.start) and (colon == -1 or colon >= blk.end - 1)):
                # "2. Về kiện toàn tổ chức bộ máy …", "1. Rà soát, kiện toàn đội ngũ …" + bullets:
                # a topic title, its bullets are the tasks
                sec_leads = list(inherited)  # "2. Về kiện toàn tổ chức bộ máy …": a topic
                level_leads[level] = sec_leads
                continue
            # a numbered directive ("2. Sở Nội vụ chủ trì …, trước ngày …"): an item itself,
            # and its subject leads whatever follows under it
            subject, end = matcher.scan_list(blk.start, blk.end)
            sec_leads = (
                [assignee(m, "lead") for m in subject]
                if subject and f[end : end + 1] not in (":", "")
                else list(resume_leads)
            )
            named = _named_before_colon(fd, matcher, blk.start, blk.end)
            if named:  # "4. Văn phòng Bộ: Thực hiện tốt …", "5. Cục Di sản văn hóa: Chủ trì …"
                sec_leads = named
            if not sec_leads and level > 1:
                sec_leads = list(inherited)
            level_leads[level] = sec_leads
        elif blk.kind == "letter":
            subsection = blk.label
            sub_leads = None
            hl = heading_leads(blk.start, blk.end)
            if hl is not None and hl[0] and not f[blk.start : blk.end].endswith(":"):
                mentions, end = matcher.scan_list(blk.start, blk.end)
                if mentions and not f[end : blk.end].strip(" ,;."):
                    sub_leads = hl[0]  # "b) Sở Nội vụ": a lettered agency block
                    continue
            if f[blk.start : blk.end].endswith(":"):
                # "a) Bộ Khoa học và Công nghệ:" leads what follows; "a) Đối với …:" introduces
                if hl is not None and hl[0]:
                    sub_leads = hl[0]
                if blk.end - blk.start < 160 and not timed_at(blk.start, blk.end):
                    continue
                # a long or timed one ("b) Các Bộ: … hoàn thành trong tháng 11, cụ thể:") is
                # also a task itself
        elif blk.kind in ("para", "bullet") and body_text.endswith(":"):
            # an intro ("… UBND tỉnh yêu cầu:", "- Nghiên cứu, tham mưu Lãnh đạo Bộ:"); one that
            # asks someone ("Đề nghị Thường trực Tỉnh ủy tập trung … sau:") leads what follows
            pm = _HEAD_PREFIX.match(f, blk.start, blk.end)
            if blk.kind == "para" and pm is not None:
                asked, _e = matcher.scan_list(pm.end(), blk.end)
                if asked:
                    resume_leads = sec_leads = [assignee(m, "lead") for m in asked]
            continue
        if _NOT_A_TASK.match(f, blk.start, blk.end):
            continue
        if body_text.endswith("./.") and blk.kind == "para":
            seg = f[blk.start : blk.end]
            if _find_deadline(f, blk.start, blk.end, dt, cited) is None and not _find_recurrence(
                seg
            ):
                break  # closing formula
        context = sub_leads if sub_leads is not None else sec_leads
        label = section if subsection is None else f"{section}.{subsection}"
        result.items.extend(
            _items_from_block(fd, matcher, blk, context, dt, cited, label, assignee)
        )
    if not in_body:
        # A short dispatch without sections: only a paragraph that both directs a named
        # agency ("UBND tỉnh yêu cầu/giao Sở Nội vụ …") and sets a deadline is proposed.
        for blk in blocks:
            if blk.kind == "heading" or _STOP.match(f, blk.start):
                continue
            for m in _DIRECT.finditer(f, blk.start, blk.end):
                ms, end = matcher.scan_list(m.end(), blk.end)
                if not ms or _find_deadline(f, blk.start, blk.end, dt, cited) is None:
                    continue
                fake = _Block("para", None, m.end(), blk.end)
                leads = [assignee(x, "lead") for x in ms]
                for it in _items_from_block(fd, matcher, fake, leads, dt, cited, None, assignee):
                    result.items.append(it)
                in_body = True
                break
    table_items = _items_from_tables(
        text, tables, units, when, dt, result.horizon_until, matcher.scope
    )
    if table_items:
        result.items.extend(table_items)
        in_body = True
    result.is_directive = in_body
    result.participants = _participants(fd, matcher)
    if not in_body:
        result.warnings.append("no directive section found: not a conclusion or dispatch")
    result.items.sort(key=lambda it: it.span)
    result.items = _apply_form_fields(result.items, fd, matcher, dt, cited)
    result.items = _addressees_lead(result.items, fd, matcher)
    result.items = _closing_addressees_lead(result.items, fd, matcher)
    return result


_CLOSING = re.compile(r"thong bao (?:de|cho)\s+")


def _closing_addressees_lead(
    items: list[DraftItem], fd: Folded, matcher: _Matcher
) -> list[DraftItem]:
    """A conclusion notice ends "… thông báo để Ủy ban nhân dân tỉnh Phú Thọ và các Bộ, cơ
    quan liên quan biết, thực hiện./.": its named addressees lead the tasks that name none."""
    if not items or all(any(a.role == "lead" for a in it.assignees) for it in items):
        return items
    f = fd.f
    last = _fold_range(fd, items[-1].span[0], items[-1].span[1])[1]
    leads: list[Assignee] = []
    for m in _CLOSING.finditer(f, last, min(len(f), last + 3000)):
        end = f.find("biet", m.end(), m.end() + 300)
        if end == -1:
            continue
        ms, _e = matcher.scan_list(m.end(), end)
        leads = [
            _assignee(_clean(fd.original(x.start, x.end)), "lead", x.unit_id, x.group)
            for x in ms
            if x.group is None  # the named addressee, not "các Bộ, cơ quan liên quan"
        ]
        break
    if not leads:
        return items
    return [
        it
        if any(a.role == "lead" for a in it.assignees)
        else replace(it, assignees=leads + list(it.assignees))
        for it in items
    ]


_KINH_GUI = re.compile(r"(?:^|\n|\|)\s*kinh gui\s*:\s*")


def _addressees_lead(items: list[DraftItem], fd: Folded, matcher: _Matcher) -> list[DraftItem]:
    """A dispatch to named addressees ("Kính gửi: Chủ tịch UBND các tỉnh, thành phố") whose
    tasks name no agency: the addressees lead them."""
    if not items or all(any(a.role == "lead" for a in it.assignees) for it in items):
        return items
    f = fd.f
    first = _fold_range(fd, items[0].span[0], items[0].span[1])[0]
    m = _KINH_GUI.search(f, 0, first)
    if m is None:
        return items
    end = f.find("\n\n", m.end(), first)
    stop = min(x for x in (end, m.end() + 600, first) if x != -1)
    leads: list[Assignee] = []
    for seg in re.finditer(r"[^\n;]+", f[m.end() : stop]):
        a = m.end() + seg.start()
        b = m.end() + seg.end()
        while a < b and f[a] in " -–+|":
            a += 1
        ms, _e = matcher.scan_list(a, b)
        if not ms:
            break  # the list ended (the body began)
        leads.extend(
            _assignee(_clean(fd.original(x.start, x.end)), "lead", x.unit_id, x.group) for x in ms
        )
    if not leads:
        return items
    return [
        it
        if any(a.role == "lead" for a in it.assignees)
        else replace(it, assignees=leads + list(it.assignees))
        for it in items
    ]


# --------------------------------------------------------------------------- form blocks

# "Đơn vị chủ trì: …", "Cơ quan phối hợp: …", "Thời gian thực hiện: …" after the task(s)
_FIELD = re.compile(
    r"(?:(?:(?:don vi|co quan)\s+(?P<lead>chu tri|thuc hien|chiu trach nhiem)(?:\s+(?:thuc hien|"
    r"tham muu(?: thuc hien)?))?|(?:don vi|co quan)?\s*(?P<sup>phoi hop)(?:\s+thuc hien)?)\s*:|"
    r"(?P<time>thoi gian|thoi han|tien do)(?:\s+(?:thuc hien|hoan thanh))?\s*:?)\s*"
)
_TASK_LABEL = re.compile(r"(?:noi dung|nhiem vu)\s*:\s*")


def _named_before_colon(fd: Folded, matcher: _Matcher, a: int, b: int) -> list[Assignee]:
    """The agencies named before a colon that opens a numbered item ("Cục X, Cục Y: task"):
    registry/gazetteer names, or capitalised names headed by an agency word."""
    f = fd.f
    colon = f.find(":", a, min(b, a + 160))
    if colon == -1 or colon >= b - 1:
        return []
    ms, end = matcher.scan_list(a, colon)
    if ms and not f[end:colon].strip(" ,;"):
        return [
            _assignee(_clean(fd.original(m.start, m.end)), "lead", m.unit_id, m.group) for m in ms
        ]
    if ms or colon - a > 120 or not _AGENCY_HEAD.match(f, a) or not fd.is_upper_at(a):
        return []
    out: list[Assignee] = []
    for x, y in _split_semicolons(f, a, colon):
        for p, q in _split_named(f, x, y):
            out.append(Assignee(_clean(fd.original(p, q)), "lead"))
    return out


def _block_key(section: str | None) -> str | None:
    if section and re.search(r"\.[^\d.]+$", section):
        return section.rsplit(".", 1)[0]
    return section


def _apply_form_fields(
    items: list[DraftItem],
    fd: Folded,
    matcher: _Matcher,
    dt: _DocTime,
    cited: list[tuple[int, int]],
) -> list[DraftItem]:
    """Form-style task blocks: field lines give the lead, support and time of the task
    lines before them (since the previous block's fields), and are no items themselves."""
    f = fd.f
    out: list[DraftItem] = []
    pending: list[int] = []  # indexes in `out` of tasks waiting for their fields
    in_fields = False
    for it in items:
        a, b = _fold_range(fd, it.span[0], it.span[1])
        m = _FIELD.match(f, a, b)
        if m is None:
            if in_fields:
                pending = []
                in_fields = False
            tl = _TASK_LABEL.match(f, a, b)
            if tl:
                oa = fd.orig(tl.end())
                if oa >= it.span[1]:
                    continue  # "a) Nhiệm vụ:" alone: its bullets are the tasks
                it = replace(it, action=_clean(fd.text[oa : it.span[1]]), span=(oa, it.span[1]))
            out.append(it)
            pending.append(len(out) - 1)
            continue
        in_fields = True
        va, vb = m.end(), b
        # fields belong to tasks of their own block ("1.3", whatever letter), and a bare
        # "Thời gian hoàn thành …" sentence (no colon) to the task just before it
        block = _block_key(it.section)
        pending = [k for k in pending if _block_key(out[k].section) == block]
        if m.group("time") and not f[a:va].rstrip().endswith(":"):
            pending = pending[-1:]
        if m.group("lead") or m.group("sup"):
            role: Role = "lead" if m.group("lead") else "support"
            found: list[Assignee] = []
            for seg_a, seg_b in _split_semicolons(f, va, vb):
                ms, _end = matcher.scan_list(seg_a, seg_b)
                found.extend(
                    _assignee(_clean(fd.original(x.start, x.end)), role, x.unit_id, x.group)
                    for x in ms
                )
                if not ms and f[seg_a:seg_b].strip(" .,;"):
                    found.append(Assignee(_clean(fd.original(seg_a, seg_b)), role))
            for k in pending:
                t = out[k]
                keep = (
                    [x for x in t.assignees if x.role != role]
                    if role == "lead"
                    else list(t.assignees)
                )
                if role == "lead":
                    keep = found + [x for x in keep if x.role == "support"]
                else:
                    keep = keep + [x for x in found if x not in keep]
                out[k] = replace(t, assignees=keep)
        else:
            seg = f[va:vb]
            rec = _find_recurrence(seg)
            dl = _find_deadline(f, va, vb, dt, cited) or _cell_deadline(seg, dt)
            for k in pending:
                t = out[k]
                out[k] = replace(t, deadline=t.deadline or dl, recurrence=t.recurrence or rec)
    return out


def _assignee(name: str, role: Role, unit_id: str | None, group: str | None) -> Assignee:
    if unit_id is not None and unit_id.startswith(GAZ_PREFIX):
        return Assignee(name, role, None, group, canonical=unit_id[len(GAZ_PREFIX) :])
    return Assignee(name, role, unit_id, group)


def _scope(units: UnitDirectory, header: Any) -> set[str] | None:
    """Provinces (with their successors) whose units the document's names may mean."""
    local = header.issuer is None or re.match(
        r"(?:uy ban nhan dan|ubnd|so|van phong (?:uy ban nhan dan|ubnd))\b", fold(header.issuer)
    )
    if not local:
        return set()  # a ministry's or the Government's document: no province's units
    if header.province is None:
        return None if header.issuer is None else set()
    when = When(on=header.issued_on, year=None if header.issued_on else header.year)
    found = units.provinces_named(header.province, when) or units.provinces_named(header.province)
    scope: set[str] = set()
    frontier = [u.id for u in found]
    while frontier:
        pid = frontier.pop()
        if pid in scope:
            continue
        scope.add(pid)
        frontier.extend(e.to_id for e in units.lineage.get(pid, []))
    return scope


# --------------------------------------------------------------------------- task tables

_COL_TASK = re.compile(
    r"^(?:ten )?(?:nhiem vu|noi dung|giai phap)|^thong tin|^(?:noi dung )?(?:de xuat|kien nghi)"
)
_COL_LEAD = re.compile(
    r"(?:co quan|don vi)(?: chu tri| thuc hien| chiu trach nhiem)|chu tri|(?:bo|co quan), nganh|"
    r"phu trach|(?:co quan|don vi|bo) (?:tiep nhan|xu ly)"
)
_COL_SUPPORT = re.compile(r"(?:co quan|don vi)? ?phoi hop")
_COL_TIME = re.compile(r"thoi (?:han|gian)|tien do")
_Q = re.compile(r"\bqu[yi] (iv|iii|ii|i|[1-4])\b\s*(?:[/\-]|nam)?\s*(\d{4})")
_MONTH = re.compile(r"\bthang (\d{1,2})\s*[/\-]\s*(\d{4})|\bthang (\d{1,2}) nam (\d{4})")
_FULL = re.compile(r"\b(\d{1,2})\s*/\s*(\d{1,2})\s*/\s*(\d{4})\b")
_YEAR = re.compile(r"^(?:truoc |trong |hoan thanh(?: trong)? )?(?:nam )?(\d{4})\W*$")


def _cell_deadline(f: str, dt: _DocTime) -> date | None:
    """A deadline cell: "15/12/2025", "Quý IV/2025", "Tháng 12/2025", "Năm 2026"; a period
    ("2026-2030") or "Thường xuyên" is no deadline."""
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
        enum = matcher.enumeration_at(a, b)  # "Các Cục: Di sản văn hóa, Bản quyền tác giả"
        if enum is not None:
            return [
                _assignee(_clean(fd.original(m.start, m.end)), role, m.unit_id, m.group)
                for m in enum[0]
            ]
        found: list[Assignee] = []
        for seg_a, seg_b in _split_semicolons(fd.f, a, b):
            pos = seg_a
            ms, end = matcher.scan_list(pos, seg_b)
            for m in ms:
                found.append(
                    _assignee(_clean(fd.original(m.start, m.end)), role, m.unit_id, m.group)
                )
            rest = fd.f[end:seg_b].strip(" ,.;")
            if not ms and rest:
                found.append(Assignee(_clean(fd.original(seg_a, seg_b)), role))
        return found

    for t in tables:
        if not t.rows:
            continue
        # the header row: the first naming a lead column; a crawl may have glued other
        # cells (a signature block) before it, so keep as many cells as a data row has
        first = next(
            (k for k, r in enumerate(t.rows) if any(_COL_LEAD.search(fold(c.text)) for c in r)),
            None,
        )
        if first is None:
            continue
        lengths = Counter(len(r) for r in t.rows[first + 1 :])
        typical = lengths.most_common(1)[0][0] if lengths else len(t.rows[first])
        header_cells = t.rows[first][-typical:] if len(t.rows[first]) > typical else t.rows[first]
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
        width = len(header)
        section: str | None = None
        for row in t.rows[first + 1 :]:
            if len(row) < max(c_task, c_lead) + 1 or len(row) < width - 1:
                if row:
                    section = row[0].text[:20]
                continue
            shift = len(row) - width  # a row without its STT cell

            def cell(i: int | None, row: list[Any] = row, shift: int = shift) -> Any:
                if i is None:
                    return None
                j = i + shift
                return row[j] if 0 <= j < len(row) else None

            task = cell(c_task)
            lead = cell(c_lead)
            if task is None or lead is None or not task.text:
                continue
            people = agencies(lead, "lead")
            sup = cell(c_sup)
            if sup is not None:
                seen = {(x.unit_id, x.group, x.name) for x in people}
                people += [
                    x for x in agencies(sup, "support") if (x.unit_id, x.group, x.name) not in seen
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


def _fold_range(fd: Folded, a: int, b: int) -> tuple[int, int]:
    """Folded offsets of the original range [a, b)."""
    import bisect

    starts = fd._starts
    return bisect.bisect_left(starts, a), bisect.bisect_left(starts, b)


def _heading_level(label: str | None) -> int:
    if not label or not label[0].isdigit():
        return 0  # roman numerals
    return label.count(".") + 1


# guidance and boilerplate, not duties: "Về phương pháp …: thực hiện theo khoản 2 …",
# "Thẩm quyền quyết định …: …", "Trong quá trình thực hiện, nếu có khó khăn, vướng mắc …"
_TOPIC = re.compile(r"ve\s")
_NOT_A_TASK = re.compile(
    r"(?:ve [^:]{0,150}:\s*thuc hien (?:tuong tu )?(?:nhu )?(?:theo|noi dung|tai|khoan|diem|muc)\b|"
    r"thuc hien (?:tuong tu )?(?:nhu )?theo (?:muc|khoan|diem|dieu)\b|"
    r"tham quyen [^:]{0,120}:|"
    r"trong qua trinh (?:to chuc )?(?:trien khai )?thuc hien[^.]{0,40}(?:kho khan|vuong mac))"
)
_RESUME = re.compile(
    r"\b(?:can|phai|de nghi|yeu cau)\b[^.]{0,120}\b(?:nhiem vu|giai phap|noi dung)\b[^.]{0,60}"
    r"(?:sau day|nhu sau|sau)\s*:$"
)
_WHO_NEEDS = re.compile(r"\b(tinh|thanh pho) ([a-z]+(?: [a-z]+){0,3}?) (?:can|phai)\b")
_OPENING = re.compile(r"(?:tren co so|can cu|sau khi|doi voi|de|ve)\b")
_INNER_LEAD = re.compile(r"[,:]\s+(?:giao\s+|de nghi\s+|yeu cau\s+)?")
_NAMED_PART = re.compile(r",\s+(?=(?:cuc|vu|so|bo|ban|trung tam|van phong|thanh tra|vien)\s)")


def _split_named(f: str, a: int, b: int) -> list[tuple[int, int]]:
    """ "Cục Điện ảnh, Cục Du lịch Quốc gia Việt Nam": one name per comma-separated part that
    starts with an agency head word (a comma inside a name, "Cục Xuất bản, In và Phát hành",
    is followed by no head word and stays)."""
    cuts = [m for m in _NAMED_PART.finditer(f, a, b)]
    if not cuts:
        return [(a, b)]
    out: list[tuple[int, int]] = []
    s = a
    for m in cuts:
        out.append((s, m.start()))
        s = m.end()
    out.append((s, b))
    return [(x, y) for x, y in out if y > x]


def _split_semicolons(f: str, a: int, b: int) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    s = a
    for k in range(a, b + 1):
        if k == b or f[k] == ";":
            seg_a, seg_b = s, k
            while seg_a < seg_b and f[seg_a] == " ":
                seg_a += 1
            while seg_b > seg_a and f[seg_b - 1] in " .":
                seg_b -= 1
            if seg_b > seg_a:
                out.append((seg_a, seg_b))
            s = k + 1
    return out


def _items_from_block(
    fd: Folded,
    matcher: _Matcher,
    blk: _Block,
    context: list[Assignee],
    dt: _DocTime,
    cited: list[tuple[int, int]],
    label: str | None,
    assignee: Callable[[_Mention, Role], Assignee],
) -> list[DraftItem]:
    f = fd.f
    sents = _sentences(fd, blk.start, blk.end)

    def subject_at(p: int, limit: int) -> list[Assignee] | None:
        pm = _HEAD_PREFIX.match(f, p, limit)  # "Giao Sở X chủ trì …", "Đề nghị UBND tỉnh …"
        if pm:
            p = pm.end()
        enum = matcher.enumeration_at(p, limit)
        if enum is not None:
            return [assignee(m, "lead") for m in enum[0]]
        ms, end = matcher.scan_list(p, limit)
        if not ms:
            # an agency outside the registry that explicitly leads ("Cục Thuế tỉnh chủ trì")
            um = _UNKNOWN_LEAD.match(f, p, limit)
            if um and fd.is_upper_at(p):
                name = _clean(fd.original(um.start("name"), um.end("name")))
                return [Assignee(name, "lead")]
            return None
        nxt = f[end : end + 1]
        if nxt in (":",) or end >= limit:
            return None
        return [assignee(m, "lead") for m in ms]

    # Group sentences into items. A block is one item unless
    # * a later sentence names its own subject ("UBND các huyện … chỉ đạo …"): that sentence
    #   (plus a following timing-only sentence) is an item for that subject, and the block's
    #   addressees resume afterwards;
    # * sentences carry different timing: a group closes at its timed sentence; untimed
    #   trailing sentences join the last group.
    def timed(x: int, y: int) -> bool:
        return (_find_deadline(f, x, y, dt, cited), _find_recurrence(f[x:y])) != (None, None)

    groups: list[dict[str, Any]] = []
    for i, (a, b) in enumerate(sents):
        has_timing = timed(a, b)
        subj = subject_at(a, b) if i > 0 else None
        if i == 0 or subj is not None:
            start_new = True
        elif groups[-1]["narrow"]:
            start_new = not (has_timing and not groups[-1]["closed"])
        elif groups[-1]["closed"]:
            start_new = has_timing or any(timed(x, y) for x, y in sents[i + 1 :])
        else:
            start_new = False
        if start_new:
            groups.append(
                {
                    "start": a,
                    "end": b,
                    "subject": subj if i > 0 else subject_at(a, b),
                    "narrow": subj is not None,
                    "closed": has_timing,
                }
            )
        else:
            groups[-1]["end"] = b
            groups[-1]["closed"] = groups[-1]["closed"] or has_timing
    items: list[DraftItem] = []
    for g in groups:
        a, b = g["start"], g["end"]
        seg = f[a:b]
        if g["subject"] is None:
            # "Trên cơ sở kết quả khảo sát, Sở Xây dựng chủ trì, phối hợp …"; after an opening
            # phrase ("Trên cơ sở đó, Bộ Tư pháp tổng hợp …") any verb will do
            opening = _OPENING.match(f, a, b) is not None
            for im in _INNER_LEAD.finditer(f, a, min(b, a + 600)):
                if f[im.start()] == "," and im.start() > a + 200:
                    continue  # a comma far in is a list, not the clause before the subject
                enum = matcher.enumeration_at(im.end(), b)  # ", yêu cầu các Bộ: A; B; C làm …"
                if enum is not None:
                    g["subject"] = [assignee(x, "lead") for x in enum[0]]
                    break
                ms, end = matcher.scan_list(im.end(), b)
                if not ms:
                    continue
                tail = f[end : end + 30]
                if re.match(r",?\s+(?:chu tri|chiu trach nhiem)\b", tail):
                    g["subject"] = [assignee(x, "lead") for x in ms]
                    break
                after_colon = f[im.start()] == ":"  # "1. Về …: Bộ Nội vụ nghiên cứu …"
                if (
                    (opening or after_colon)
                    and re.match(r"\s+[a-z]", tail)
                    and not re.match(r"\s+va\b", tail)
                ):
                    # after an opening phrase its own objects come first: the subject is the
                    # last; after a colon the whole list is the subject
                    g["subject"] = [assignee(x, "lead") for x in (ms if after_colon else ms[-1:])]
                    break
        leads: list[Assignee] = list(g["subject"] or context)
        supports: list[Assignee] = []
        for m in re.finditer(r"\bphoi hop (?:voi|cung)\s+", seg):
            ms, _ = matcher.scan_list(a + m.end(), b)
            supports.extend(assignee(x, "support") for x in ms)
        lead_keys = {(x.unit_id, x.group, name_key(x.name)) for x in leads}
        seen: set[tuple[str | None, str | None, tuple[str, ...]]] = set()
        people: list[Assignee] = []
        for x in leads + supports:
            key = (x.unit_id, x.group, name_key(x.name))
            ident = (x.unit_id, x.group, () if (x.unit_id or x.group) else name_key(x.name))
            if ident in seen or (x.role == "support" and key in lead_keys):
                continue
            if x.role == "support" and any(
                (x.unit_id and x.unit_id == y.unit_id) or (x.group and x.group == y.group)
                for y in leads
            ):
                continue
            seen.add(ident)
            people.append(x)
        oa, ob = fd.span(a, b)
        recurrence = _find_recurrence(seg)
        deadline = _find_deadline(f, a, b, dt, cited, explicit_year_only=bool(recurrence))
        items.append(
            DraftItem(
                assignees=people,
                action=_clean(fd.text[oa:ob]),
                deadline=deadline,
                recurrence=recurrence,
                criteria=_find_criteria(seg),
                span=(oa, ob),
                section=label,
            )
        )
    return items


_PARTICIPANTS = re.compile(r"\btham du[^:.\n]{0,120}:\s*")


def _participants(fd: Folded, matcher: _Matcher) -> list[AgencyRef]:
    """Agencies listed as attending a meeting ("Tham dự … các cơ quan, đơn vị: …")."""
    f = fd.f
    m = _PARTICIPANTS.search(f)
    if not m:
        return []
    end = f.find(".", m.end())
    end = len(f) if end == -1 else end
    out: list[AgencyRef] = []
    pos = m.end()
    for piece in re.finditer(r"[^,;]+", f[pos:end]):
        s0 = pos + piece.start()
        e0 = pos + piece.end()
        ranges = [(s0, e0)]
        if _ref_at(matcher, s0, e0) is None:
            ranges = []
            cur = s0
            for vm in re.finditer(r"\s+va\s+", f[s0:e0]):
                ranges.append((cur, s0 + vm.start()))
                cur = s0 + vm.end()
            ranges.append((cur, e0))
        for s, e in ranges:
            while s < e and f[s] == " ":
                s += 1
            while e > s and f[e - 1] == " ":
                e -= 1
            if e <= s:
                continue
            ref = _ref_at(matcher, s, e)
            out.append(ref if ref is not None else AgencyRef(_clean(fd.original(s, e))))
    return out


def _ref_at(matcher: _Matcher, s: int, e: int) -> AgencyRef | None:
    while s < e and matcher.f[s] == " ":
        s += 1
    while e > s and matcher.f[e - 1] == " ":
        e -= 1
    name = _clean(matcher.fd.original(s, e))
    hit = matcher.unit_at(s, ("", "Sở "), limit=e)
    if hit is not None and hit[0] >= e:
        return AgencyRef(name, hit[1], None)
    g = matcher.group_at(s)
    if g is not None and g[0] >= e:
        return AgencyRef(name, None, g[1])
    return None
