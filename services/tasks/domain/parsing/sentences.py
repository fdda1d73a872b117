"""Sentence-assignment stage: one block (bullet, lettered item, paragraph) becomes one or more
draft items. Its lead is the subject a sentence names ("Giao Sở X chủ trì, phối hợp với Sở Y
…", "Đề nghị UBND tỉnh X …", "Trên cơ sở đó, Bộ Tư pháp tổng hợp …"), else the section's;
agencies after "phối hợp với/cùng" support. A block splits where a later sentence names its
own subject or where sentences carry different timing (chained deadlines: two items)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from functools import cache
from typing import Any

from services.tasks.domain.parsing.agencies import _Matcher, _Mention, agency_head_at
from services.tasks.domain.parsing.blocks import _Block, _sentences, _split_semicolons
from services.tasks.domain.parsing.deadlines import (
    _DocTime,
    _find_criteria,
    _find_deadline,
    _find_recurrence,
)
from services.tasks.domain.parsing.folding import Folded
from services.tasks.domain.parsing.gazetteer import gazetteer
from services.tasks.domain.parsing.model import Assignee, DraftItem, Role, _clean
from services.tasks.domain.units import name_key

_UNKNOWN_LEAD = re.compile(
    r"(?P<name>(?:so|cuc|chi cuc|ban|trung tam|cong an|bao hiem xa hoi|kho bac|van phong|"
    r"thanh tra|ubnd|uy ban nhan dan|doan|hoi|dai|bo chi huy|vien|truong)\b[^,.;:\n]{0,80}?)"
    r",?\s+(?:chu tri|chiu trach nhiem)\b"
)


_HEAD_PREFIX = re.compile(r"(?:doi voi|giao cho|giao|de nghi|yeu cau)\s*:?\s+")
_THEN_ENUMERATION = re.compile(r"\s*(?:,\s*)?(?:va\s+)?(?=cac\s)")


_OPENING = re.compile(r"(?:tren co so|can cu|sau khi|doi voi|de|ve|(?:trong )?thoi gian toi)\b")
_INNER_LEAD = re.compile(r"[,:]\s+(?:giao\s+|de nghi\s+|yeu cau\s+)?")


_INLINE_NUM = re.compile(r"\((\d{1,2})\)\s+")


def _inline_list(f: str, a: int, b: int) -> tuple[int, int, list[tuple[int, int]]] | None:
    """A block whose tasks run inline, numbered "(1) … ; (2) … ; (3) …" (each at the block's
    start or after a colon, a semicolon or a full stop): the head before "(1)" and each
    part's span. A list of short objects ("sửa đổi các Luật: (1) Luật A; (2) Luật B") is not
    tasks: the parts must read as sentences (40 characters on average)."""
    marks = []
    want = 1
    for m in _INLINE_NUM.finditer(f, a, b):
        before = f[a : m.start()].rstrip()
        if before and before[-1] not in ":;.":
            continue
        if int(m.group(1)) == want:
            marks.append(m)
            want += 1
    if len(marks) < 2:
        return None
    spans = [
        (m.end(), marks[k + 1].start() if k + 1 < len(marks) else b) for k, m in enumerate(marks)
    ]
    spans = [(x, y - (1 if f[y - 1 : y] in (";", " ") else 0)) for x, y in spans]
    if sum(y - x for x, y in spans) / len(spans) < 40:
        return None
    return a, marks[0].start(), spans


_BODY_HEAD = re.compile(r"(?:cac )?(?:doanh nghiep|tap doan|tong cong ty|to chuc)\b")
_LIST_END = re.compile(r":\s+\S")


def _addressee_list(
    fd: Folded,
    matcher: _Matcher,
    p: int,
    limit: int,
    assignee: Callable[[_Mention, Role], Assignee],
) -> list[Assignee] | None:
    """ "Đề nghị Sở X, Sở Y; Văn phòng Z; các đơn vị sự nghiệp …; UBND các xã, phường: tổ chức
    …": addressees listed by semicolons before the colon that opens their task. Every part
    must start with an agency (registry, gazetteer, group, or a name headed by an agency word,
    kept as written); else it is no list."""
    f = fd.f
    m = _LIST_END.search(f, p, min(limit, p + 700))
    if m is None or "." in f[p : m.start()].replace("tp.", "tp"):
        return None
    colon = m.start()
    segs = _split_semicolons(f, p, colon)
    if len(segs) < 2:
        return None
    out: list[Assignee] = []
    for a, b in segs:
        pos = a
        while pos < b:
            ms, end = matcher.scan_list(pos, b)
            out.extend(assignee(x, "lead") for x in ms)
            rest = f[end:b].lstrip(" ,")
            if not rest:
                break
            start = b - len(rest)
            if ms and re.match(r"(?:va|cung)\b", rest):
                break
            headed = agency_head_at(fd, start) or _BODY_HEAD.match(f, start)
            if not headed:
                return None  # "Sở A chủ trì; Sở B phối hợp: …" is no list of addressees
            nxt = f.find(", cac ", start, b)  # "các doanh nghiệp …, các Hội …"
            stop = nxt if nxt != -1 else b
            name = _clean(fd.original(start, stop))
            out.append(Assignee(name, "lead", canonical=gazetteer().get(name_key(name))))
            pos = stop + 2 if nxt != -1 else b
    return out or None


_VERB_AFTER = re.compile(
    r",?\s+(?:chu tri|phoi hop|huong dan|tong hop|bao cao|khan truong|chi dao|"
    r"to chuc|thuc hien|trien khai|nghien cuu|xay dung|ra soat|tham muu|co trach nhiem|chiu trach|"
    # "Các bộ, ngành căn cứ hướng dẫn … tổ chức …", "UBND các xã chủ động …"
    r"can cu|chu dong|tiep tuc|tap trung|day manh|hoan thanh|ban hanh)\b"
)


_CLAUSE_VERB = re.compile(
    r"\b(?:chu tri|phoi hop|huong dan|tong hop|bao cao|to chuc|thuc hien|trien khai|nghien cuu|"
    r"xay dung|ra soat|tham muu|hoan thanh|ban hanh|trinh|gui|cap nhat|bao dam|dam bao)\b"
)


def _semicolon_clauses(
    fd: Folded,
    matcher: _Matcher,
    sents: list[tuple[int, int]],
    timed: Callable[[int, int], bool],
    continued: set[int],
) -> list[tuple[int, int]]:
    """A sentence that chains assignments by semicolons ("…, hoàn thành trong tháng 12; Bộ
    Khoa học và Công nghệ hướng dẫn …"): a clause whose subject is a body followed by its verb
    is a sentence of its own. So is a clause with its own time after a timed one ("… hoàn
    thành trước ngày 10/12; hướng dẫn …, trong tháng 12"): the same subject's next task. A
    list of names by semicolons is not cut (the clause before must be more than names). The
    starts of clauses that go on with the subject before them are added to `continued`."""
    f = fd.f
    out: list[tuple[int, int]] = []
    for a, b in sents:
        start = a
        cuts = [a + m.end() for m in re.finditer(r";\s+", f[a:b])]
        for k, cut in enumerate(cuts):
            semi = f.rfind(";", start, cut)
            ms, end = matcher.scan_list(cut, b)
            named = bool(ms) and _VERB_AFTER.match(f, end) is not None
            clause_end = cuts[k + 1] if k + 1 < len(cuts) else b
            retimed = (
                not named
                and not fd.is_upper_at(cut)
                and _CLAUSE_VERB.match(f, cut) is not None
                and timed(start, semi)
                and timed(cut, clause_end)
            )
            if not (named or retimed):
                continue
            if cut - start < 40 or not _CLAUSE_VERB.search(f, start, semi):
                continue  # the clause before names bodies only: a list, not a task
            out.append((start, semi + 1))
            start = cut
            if retimed:
                continued.add(cut)
        out.append((start, b))
    return out


def _and_tail(f: str, ms: list[_Mention]) -> int:
    """Index of the first of the last mentions joined by "và" (the last alone otherwise)."""
    k = len(ms) - 1
    while k > 0 and re.fullmatch(r",?\s+va\s+", f[ms[k - 1].end : ms[k].start]):
        k -= 1
    return k


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
    parts = _inline_list(f, blk.start, blk.end)
    if parts is not None:
        # "a) Bộ Khoa học và Công nghệ: (1) trình …; (2) chủ trì …, trước ngày …": each
        # numbered part is a task of its own, led by whom it names or by the block's lead;
        # a deadline before the list ("hoàn thành trước ngày …: (1) …") holds for each part
        head_a, head_b, segs = parts
        head_dl = _find_deadline(f, head_a, head_b, dt, cited)
        out: list[DraftItem] = []
        for sa, sb in segs:
            part = _Block(blk.kind, blk.label, sa, sb)
            for it in _items_from_block(fd, matcher, part, context, dt, cited, label, assignee):
                out.append(replace(it, deadline=it.deadline or head_dl))
        return out

    @cache  # the clause split and the grouping below ask of the same spans
    def timed(x: int, y: int) -> bool:
        return (_find_deadline(f, x, y, dt, cited), _find_recurrence(f[x:y])) != (None, None)

    continued: set[int] = set()
    sents = _semicolon_clauses(fd, matcher, _sentences(fd, blk.start, blk.end), timed, continued)
    if len(sents) > 1 and f[: sents[-1][1]].rstrip().endswith("./.") and not timed(*sents[-1]):
        # the closing formula run on into the last item ("… trước 30/11/2025. Bộ … yêu cầu
        # các đơn vị khẩn trương triển khai thực hiện./."), like a closing paragraph: no task
        sents = sents[:-1]

    def subject_at(p: int, limit: int) -> list[Assignee] | None:
        pm = _HEAD_PREFIX.match(f, p, limit)  # "Giao Sở X chủ trì …", "Đề nghị UBND tỉnh …"
        if pm:
            p = pm.end()
        enum = matcher.enumeration_at(p, limit)
        if enum is not None:
            return [assignee(m, "lead") for m in enum[0]]
        listed = _addressee_list(fd, matcher, p, limit, assignee)
        if listed is not None:
            return listed
        ms, end = matcher.scan_list(p, limit)
        if not ms:
            # an agency outside the registry that explicitly leads ("Cục Thuế tỉnh chủ trì")
            um = _UNKNOWN_LEAD.match(f, p, limit)
            if um and fd.is_upper_at(p):
                name = _clean(fd.original(um.start("name"), um.end("name")))
                # "Đài Truyền hình Việt Nam (VTV)": the abbreviation is not part of the name
                name = re.sub(r"\s*\([A-Z0-9&Đ\-]{2,12}\)$", "", name)
                return [Assignee(name, "lead")]
            return None
        nxt = f[end : end + 1]
        if nxt in (":",) or end >= limit:
            return None
        # "Các Bộ, cơ quan liên quan và các Tập đoàn: A, B, C theo chức năng …": a list that
        # goes on into an enumeration
        joined = _THEN_ENUMERATION.match(f, end, limit)
        enum = matcher.enumeration_at(joined.end(), limit) if joined else None
        if enum is not None:
            ms = [*ms, *enum[0]]
        return [assignee(m, "lead") for m in ms]

    def opening_subject(a: int, b: int) -> list[Assignee] | None:
        """ "Để xác định vị trí …, UBND tỉnh X phối hợp với …": after an opening phrase and
        its comma, a later sentence's own subject (then a verb, not "và …")."""
        if _OPENING.match(f, a) is None:
            return None
        comma = f.find(", ", a, min(b, a + 160))
        if comma == -1:
            return None
        ms, end = matcher.scan_list(comma + 2, b)
        if not ms or not re.match(r"\s+[a-z]", f[end : end + 3]) or re.match(r"\s+va\b", f[end:]):
            return None
        return [assignee(x, "lead") for x in ms]

    # Group sentences into items. A block is one item unless
    # * a later sentence names its own subject ("UBND các huyện … chỉ đạo …"): that sentence
    #   (plus a following timing-only sentence) is an item for that subject, and the block's
    #   addressees resume afterwards;
    # * sentences carry different timing: a group closes at its timed sentence; untimed
    #   trailing sentences join the last group.
    groups: list[dict[str, Any]] = []
    for i, (a, b) in enumerate(sents):
        has_timing = timed(a, b)
        subj = (subject_at(a, b) or opening_subject(a, b)) if i > 0 else None
        if i == 0 or subj is not None:
            start_new = True
        elif groups[-1]["narrow"]:
            start_new = not (has_timing and not groups[-1]["closed"])
        elif groups[-1]["closed"]:
            start_new = has_timing or any(timed(x, y) for x, y in sents[i + 1 :])
        else:
            start_new = False
        if start_new and subj is None and a in continued:
            subj = groups[-1]["subject"]  # "…, trước ngày 10/12; hướng dẫn …": the same subject
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
    # the block's own subject ("e) Bộ Giáo dục và Đào tạo chủ trì …, trước ngày …. Hướng dẫn
    # …, trong tháng 12"): it leads the block's later groups that name nobody
    addressees = (groups[0]["subject"] if groups else None) or context
    for gi, g in enumerate(groups):
        a, b = g["start"], g["end"]
        seg = f[a:b]
        if g["subject"] is None and gi > 0 and not _OPENING.match(f, a, b):
            g["subject"] = addressees
        if g["subject"] is None:
            # "Trên cơ sở kết quả khảo sát, Sở Xây dựng chủ trì, phối hợp …"; after an opening
            # phrase ("Trên cơ sở đó, Bộ Tư pháp tổng hợp …") any verb will do
            opening = _OPENING.match(f, a, b) is not None
            for im in _INNER_LEAD.finditer(f, a, min(b, a + 600)):
                directed = bool(im.group().strip(" ,:"))  # ", yêu cầu …", ", giao …", ", đề nghị …"
                if f[im.start()] == "," and im.start() > a + 200 and not directed:
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
                    # ("…, các sở, ngành và UBND các xã chủ động …": the last joined by "và")
                    last = ms if after_colon else ms[_and_tail(f, ms) :]
                    g["subject"] = [assignee(x, "lead") for x in last]
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
