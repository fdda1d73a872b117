"""Extraction stage: propose draft remediation items from a conclusion notice or dispatch.

Runs after conversion (``documents.py``), layout (``layout.py``: tables cut out, hard wraps
undone, offsets kept) and header (``header.py``); uses ``agencies.py`` for names and groups
and ``deadlines.py`` for dates, recurrence and criteria. The rules below walk the paragraph
blocks as a section tree. Each stage is a module of its own:

* ``blocks.py``     lines → headings, lettered items, bullets, paragraphs; sentences;
* ``sections.py``   the section tree: where the body is, whose tasks each heading holds;
* ``sentences.py``  one block → items: sentence subjects, support, chained deadlines;
* ``forms.py``      form-style blocks ("Nhiệm vụ: … / Đơn vị chủ trì: … / Thời gian: …");
* ``tables.py``     task tables (STT | Nhiệm vụ | Cơ quan chủ trì | … | Thời hạn);
* ``addressees.py`` the addressees who lead unassigned tasks ("Kính gửi: …", "… thông báo
  để X … biết, thực hiện"), meeting participants, the document's jurisdiction;
* ``model.py``      the draft types and the context the stages share.

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

from datetime import date

from services.tasks.domain.parsing.addressees import (
    _addressees_lead,
    _closing_addressees_lead,
    _participants,
    _scope,
)
from services.tasks.domain.parsing.agencies import _Matcher
from services.tasks.domain.parsing.blocks import _blocks
from services.tasks.domain.parsing.deadlines import _cited_spans, _DocTime, _header_time
from services.tasks.domain.parsing.folding import Folded
from services.tasks.domain.parsing.forms import _apply_form_fields
from services.tasks.domain.parsing.header import read_header
from services.tasks.domain.parsing.layout import split_tables, unwrap
from services.tasks.domain.parsing.model import (
    AgencyRef,
    Assignee,
    Context,
    DraftFinding,
    DraftItem,
    ParseResult,
)
from services.tasks.domain.parsing.sections import short_dispatch, walk_sections
from services.tasks.domain.parsing.tables import _items_from_tables
from services.tasks.domain.units import UnitDirectory, When

__all__ = ["AgencyRef", "Assignee", "DraftFinding", "DraftItem", "ParseResult", "parse_conclusion"]


def parse_conclusion(text: str, *, issued_on: date | None, units: UnitDirectory) -> ParseResult:
    """Propose draft items from a conclusion/dispatch text (pure; spans index ``text``)."""
    header = read_header(text)
    # layout stage (length-preserving): tables cut out, hard wraps undone
    flowing, tables = split_tables(text)
    fd = Folded(unwrap(flowing))
    dt = _header_time(fd, issued_on or header.issued_on)
    if dt.year is None and header.year is not None:
        dt = _DocTime(None, header.year)
    when = When(on=dt.issued_on, year=dt.year if dt.issued_on is None else None)
    matcher = _Matcher(fd, units, when)
    matcher.scope = _scope(units, header)
    ctx = Context(text, fd, matcher, dt, _cited_spans(fd.f), units, when)
    blocks = _blocks(fd)
    result = ParseResult(items=[], issued_on=dt.issued_on, reference_year=dt.year)
    result.number, result.issuer = header.number, header.issuer
    result.province, result.horizon_until = header.province, header.horizon_until

    in_body = walk_sections(ctx, blocks, result)
    if not in_body:
        in_body = short_dispatch(ctx, blocks, result)
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
    result.items = _apply_form_fields(result.items, fd, matcher, dt, ctx.cited)
    result.items = _addressees_lead(result.items, fd, matcher)
    result.items = _closing_addressees_lead(result.items, fd, matcher)
    return result
