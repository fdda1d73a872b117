"""Header stage: the document's number, date, issuing body, province and plan horizon.

Read from the furniture at the top (the agency block, "Số: …", the place-and-date line) or
from a metadata block ("Số hiệu: … / Nơi ban hành: … / Ngày ban hành: …") when a crawled
page has no printed header. Hard-wrapped header lines are joined first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from services.tasks.domain.parsing.folding import Folded
from services.tasks.domain.units import fold

_NUMBER = re.compile(
    r"\b(?:so\s*:|so hieu\s*:?)\s*\|?\s*([0-9][0-9a-z.\-]*/[a-z0-9\-./]+|/[a-z0-9\-./]+)"
)
_LOCAL = re.compile(r"(?:uy ban nhan dan|ubnd|so|van phong (?:uy ban nhan dan|ubnd))\b")
_META_ISSUER = re.compile(r"\bnoi ban hanh\s*:\s*\|?\s*([^|\n]+)")
_META_DATE = re.compile(r"ngay ban hanh\s*:?\s*\|?\s*(\d{1,2})/(\d{1,2})/(\d{4})")
_PLACE_DATE = re.compile(
    r"(?:^|\||-{3,}|\s)\s*((?:[a-z]+ ){0,3}[a-z]+)\s*,\s*ngay\s+(?:(\d{1,2})\s*(?:thang\s+|/)\s*"
    r"(\d{1,2})\s*(?:nam\s+|/)|thang\s+nam\s+)\s*(\d{4})"
)
_DRAFT_DATE = re.compile(r"ngay\s+thang\s+nam\s+(\d{4})")
_ISSUER_HEAD = re.compile(
    r"^\s*((?:uy ban nhan dan|ubnd|bo|van phong|thu tuong|ban chi dao|so)\b[^|:]{0,120}?)"
    r"\s*(?:-{3,}|\||cong hoa)"
)
_PROVINCE_IN = re.compile(
    r"\b(?:tinh|thanh pho)\s+([a-z][a-z \-]{1,30}?)(?:\s*(?:-{2,}|\||$|,|\.))"
)
_UNTIL_YEAR = re.compile(r"\bgiai doan\s+(20\d\d)\s*[-–—]\s*(20\d\d)\b")


@dataclass(frozen=True)
class Header:
    number: str | None  # "012/CT-UBND"; None for a draft "Số: /UBND-NC"
    issued_on: date | None
    year: int | None  # the year of an undated draft ("ngày tháng năm 2023")
    issuer: str | None  # as written, hard wraps joined ("Ủy ban nhân dân tỉnh Đắk Lắk")
    province: str | None  # the issuing body's province or city, as written ("Đắk Lắk")
    horizon_until: date | None  # end of the plan's period ("giai đoạn 2026-2030")


def _mk(y: int, m: int, d: int) -> date | None:
    try:
        return date(y, m, d)
    except ValueError:
        return None


def read_header(text: str) -> Header:
    body = re.sub(r"^#[^\n]*\n", "", text[:4000])  # a provenance comment line, if any
    flat = " ".join(body.split())
    fd = Folded(flat)
    head = fd.f

    def orig(m: re.Match[str], g: int = 1) -> str:
        return fd.original(m.start(g), m.end(g)).strip(" -|")

    number: str | None = None
    m = _NUMBER.search(head, 0, 2500)
    if m:
        number = None if m.group(1).startswith("/") else orig(m)
    issued_on: date | None = None
    year: int | None = None
    place: str | None = None
    md = _META_DATE.search(head)
    if md:
        issued_on = _mk(int(md.group(3)), int(md.group(2)), int(md.group(1)))
    pm = _PLACE_DATE.search(head, 0, 2500)
    if pm:
        place = orig(pm)
        if not all(w[:1].isupper() for w in place.split()):
            place = None  # "… của UBND tỉnh, ngày …" is a citation, not the place line
        if issued_on is None and pm.group(2) and pm.group(3):
            issued_on = _mk(int(pm.group(4)), int(pm.group(3)), int(pm.group(2)))
        elif issued_on is None:
            year = int(pm.group(4))
    if issued_on is not None:
        year = issued_on.year
    issuer: str | None = None
    mi = _META_ISSUER.search(head)
    if mi:
        issuer = orig(mi)
    else:
        fm = _ISSUER_HEAD.match(head)
        if fm:
            issuer = orig(fm)
    province: str | None = None
    local = issuer is None or bool(_LOCAL.match(fold(issuer)))
    if issuer is not None and local:
        fi = Folded(issuer)
        pi = _PROVINCE_IN.search(fi.f + " |")
        if pi:
            province = fi.original(pi.start(1), pi.end(1)).strip()
    if province is None and local and place:
        province = place
    horizon: date | None = None
    hm = _UNTIL_YEAR.search(head, 0, 1500)
    if hm and int(hm.group(2)) >= int(hm.group(1)):
        horizon = date(int(hm.group(2)), 12, 31)
    return Header(number, issued_on, year, issuer, province, horizon)
