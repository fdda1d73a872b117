"""Addressee stage: who leads tasks that name nobody — the "Kính gửi: …" addressees of a
dispatch, or the bodies a conclusion notice closes with ("… thông báo để UBND tỉnh X và các
Bộ liên quan biết, thực hiện./."); meeting participants ("Tham dự … : …"); and the
provinces whose registry units a document's names may mean (its jurisdiction)."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from services.tasks.domain.parsing.agencies import _Matcher
from services.tasks.domain.parsing.blocks import _fold_range
from services.tasks.domain.parsing.folding import Folded
from services.tasks.domain.parsing.model import AgencyRef, Assignee, DraftItem, _assignee, _clean
from services.tasks.domain.units import UnitDirectory, When, fold

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
