"""Sentence-assignment stage: one block (bullet, lettered item, paragraph) becomes one or more
draft items. Its lead is the subject a sentence names ("Giao Sở X chủ trì, phối hợp với Sở Y
…", "Đề nghị UBND tỉnh X …", "Trên cơ sở đó, Bộ Tư pháp tổng hợp …"), else the section's;
agencies after "phối hợp với/cùng" support. A block splits where a later sentence names its
own subject or where sentences carry different timing (chained deadlines: two items)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from services.tasks.domain.parsing.agencies import _Matcher, _Mention
from services.tasks.domain.parsing.blocks import _Block, _sentences
from services.tasks.domain.parsing.deadlines import (
    _DocTime,
    _find_criteria,
    _find_deadline,
    _find_recurrence,
)
from services.tasks.domain.parsing.folding import Folded
from services.tasks.domain.parsing.model import Assignee, DraftItem, Role, _clean
from services.tasks.domain.units import name_key

_UNKNOWN_LEAD = re.compile(
    r"(?P<name>(?:so|cuc|chi cuc|ban|trung tam|cong an|bao hiem xa hoi|kho bac|van phong|"
    r"thanh tra|ubnd|uy ban nhan dan|doan|hoi|dai|bo chi huy|vien|truong)\b[^,.;:\n]{0,80}?)"
    r",?\s+(?:chu tri|chiu trach nhiem)\b"
)


_HEAD_PREFIX = re.compile(r"(?:doi voi|giao cho|giao|de nghi|yeu cau)\s*:?\s+")


_OPENING = re.compile(r"(?:tren co so|can cu|sau khi|doi voi|de|ve)\b")
_INNER_LEAD = re.compile(r"[,:]\s+(?:giao\s+|de nghi\s+|yeu cau\s+)?")


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
