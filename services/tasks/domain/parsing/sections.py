"""Sections stage: the blocks walked as a section tree. The body starts at the first numbered
heading (or, without headings, after "… yêu cầu:" / "… kết luận:") and stops at "Nơi nhận",
the signature or a closing "./."; evaluation sections ("I. Kết quả", "2. Tồn tại, hạn chế")
are skipped, their shortcomings kept as findings, until a "… cần thực hiện các nhiệm vụ sau
đây:" resumes the tasks. A heading or lettered item naming agencies ("1. Sở Tài chính",
"b) Sở Nội vụ", "2. Giao Sở Nội vụ:") leads everything under it; a sub-heading naming nobody
keeps the leads of the heading above; a topic title ("2. Về …") leads nobody. Each task
block goes to the sentence stage (``sentences.py``) with the leads in force."""

from __future__ import annotations

import re

from services.tasks.domain.parsing.agencies import _Matcher, agency_head_at
from services.tasks.domain.parsing.blocks import (
    _STOP,
    _Block,
    _heading_level,
    _split_named,
    _split_semicolons,
)
from services.tasks.domain.parsing.deadlines import _find_deadline, _find_recurrence
from services.tasks.domain.parsing.folding import Folded
from services.tasks.domain.parsing.forms import opens_fields
from services.tasks.domain.parsing.model import (
    Assignee,
    Context,
    DraftFinding,
    ParseResult,
    _assignee,
    _clean,
)
from services.tasks.domain.parsing.sentences import _HEAD_PREFIX, _items_from_block

_NON_DIRECTIVE = re.compile(
    r"(?:ket qua|uu diem|ton tai|han che|nguyen nhan|danh gia|tinh hinh|nhan xet|khuyet diem|"
    r"thuc trang|dac diem|mot so ket qua|muc dich|yeu cau|muc tieu|quan diem|doi tuong|"
    r"pham vi|can cu (?:phap ly|xay dung))\b"
)
_FINDINGS_HEAD = re.compile(r"(?:\S+ )?(?:ton tai|han che|khuyet diem)\b")
_VE = re.compile(r"ve\s+")


def _after_ve(f: str, p: int) -> int:
    """Where an evaluation heading's own words start: "I. VỀ KẾT QUẢ ĐẠT ĐƯỢC", "II. Về tồn
    tại, hạn chế" open their subject with "Về" as often as not."""
    m = _VE.match(f, p)
    return m.end() if m else p


_DIRECT = re.compile(r"\b(?:yeu cau|giao|de nghi|giao cho|chi dao)\s+(?=\S)")
_TRIGGER = re.compile(
    r"(?:yeu cau|ket luan|chi dao|giao|de nghi|giao nhiem vu)(?: nhu sau)?\s*:\s*$"
)


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
_AHEAD = re.compile(r"(?:trong )?thoi gian (?:toi|sap toi)\s*,")
_WHO_NEEDS = re.compile(r"\b(tinh|thanh pho) ([a-z]+(?: [a-z]+){0,3}?) (?:can|phai)\b")


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
    if ms or colon - a > 120 or not agency_head_at(fd, a) or not fd.is_upper_at(a):
        return []
    out: list[Assignee] = []
    for x, y in _split_semicolons(f, a, colon):
        for p, q in _split_named(f, x, y):
            out.append(Assignee(_clean(fd.original(p, q)), "lead"))
    return out


def _heading_leads(ctx: Context, a: int, b: int) -> tuple[list[Assignee], bool] | None:
    """Leads named by a heading; returns (leads, pure_heading) or None if not agency."""
    fd, f, matcher, dt, cited = ctx.fd, ctx.fd.f, ctx.matcher, ctx.dt, ctx.cited
    assignee = ctx.assignee
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
        if paren and agency_head_at(fd, a):
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
        if agency_head_at(fd, a):
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


def walk_sections(ctx: Context, blocks: list[_Block], result: ParseResult) -> bool:
    """Walk the blocks as a section tree, appending items and findings to ``result``; returns
    whether a directive body was found."""
    fd, f, matcher, dt, cited = ctx.fd, ctx.fd.f, ctx.matcher, ctx.dt, ctx.cited
    text, units, when = ctx.text, ctx.units, ctx.when
    assignee, timed_at = ctx.assignee, ctx.timed_at
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
            if skip_level is None and _NON_DIRECTIVE.match(f, _after_ve(f, blk.start)):
                skip_level = level  # "I. KẾT QUẢ KIỂM TRA", "2. Tồn tại, hạn chế": not tasks
            if skip_level is not None:
                in_findings = bool(_FINDINGS_HEAD.match(f, _after_ve(f, blk.start)))
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
            if blk.kind == "para" and _AHEAD.match(f, blk.start):
                # "Trong thời gian tới, Tỉnh tổ chức thực hiện …": the evaluation turns to what
                # is to be done; this paragraph is a task
                skip_level = None
            else:
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
            hl = _heading_leads(ctx, blk.start, blk.end)
            nxt = blocks[bi + 1] if bi + 1 < len(blocks) else None
            # "4. Phối hợp kiểm tra …" / "- Cơ quan chủ trì: …": a title naming nobody, with
            # the fields of a task right under it, is that task
            fielded = nxt is not None and opens_fields(f, nxt.start)
            if hl is not None and (hl[0] or not fielded):
                sec_leads = hl[0] or list(inherited)
                level_leads[level] = sec_leads
                continue
            colon = f.find(":", blk.start, blk.end)
            titled = (
                nxt is not None
                and nxt.kind in ("bullet", "letter")
                and blk.end - blk.start < 200
                and f[blk.end - 1] not in ".;"
                and not matcher.scan_list(blk.start, blk.end)[0]
                and not timed_at(blk.start, blk.end)
                and not fielded
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
            hl = _heading_leads(ctx, blk.start, blk.end)
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
            else:
                named = _named_before_colon(fd, matcher, blk.start, blk.end)
                if named:  # "a) Bộ Khoa học và Công nghệ: (1) trình …; (2) chủ trì …"
                    sub_leads = named
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
    return in_body


def short_dispatch(ctx: Context, blocks: list[_Block], result: ParseResult) -> bool:
    """A short dispatch without sections: only a paragraph that both directs a named agency
    ("UBND tỉnh yêu cầu/giao Sở Nội vụ …") and sets a deadline is proposed."""
    fd, f, matcher, dt, cited = ctx.fd, ctx.fd.f, ctx.matcher, ctx.dt, ctx.cited
    assignee = ctx.assignee
    in_body = False
    for blk in blocks:
        if blk.kind == "heading" or _STOP.match(f, blk.start):
            continue
        for m in _DIRECT.finditer(f, blk.start, blk.end):
            ms, _end = matcher.scan_list(m.end(), blk.end)
            if not ms or _find_deadline(f, blk.start, blk.end, dt, cited) is None:
                continue
            fake = _Block("para", None, m.end(), blk.end)
            leads = [assignee(x, "lead") for x in ms]
            for it in _items_from_block(fd, matcher, fake, leads, dt, cited, None, assignee):
                result.items.append(it)
            in_body = True
            break
    return in_body
