"""Form-style block stage: "Nhiệm vụ: … / Đơn vị chủ trì: … / Đơn vị phối hợp: … / Thời gian
thực hiện: …". Runs over the items the sentence stage proposed: a field line gives the lead,
support or time of the task lines before it (since the previous block's fields) and is no
item itself; a "Nhiệm vụ:" label is dropped from the task's text."""

from __future__ import annotations

import re
from dataclasses import replace

from services.tasks.domain.parsing.agencies import _Matcher
from services.tasks.domain.parsing.blocks import _fold_range, _split_semicolons
from services.tasks.domain.parsing.deadlines import _DocTime, _field_recurrence, _find_deadline
from services.tasks.domain.parsing.folding import Folded
from services.tasks.domain.parsing.model import Assignee, DraftItem, Role, _assignee, _clean
from services.tasks.domain.parsing.tables import _cell_deadline

# "Đơn vị chủ trì: …", "Cơ quan phối hợp: …", "Thời gian thực hiện: …" after the task(s)
_FIELD = re.compile(
    r"(?:(?:(?:don vi|co quan)\s+(?P<lead>chu tri|thuc hien|chiu trach nhiem)(?:\s+(?:thuc hien|"
    r"tham muu(?: thuc hien)?))?|(?:don vi|co quan)?\s*(?P<sup>phoi hop)(?:\s+thuc hien)?)\s*:|"
    r"(?P<time>thoi gian|thoi han|tien do)(?:\s+(?:thuc hien|hoan thanh))?\s*:?)\s*"
)


def opens_fields(f: str, p: int) -> bool:
    """Whether a labelled field ("Cơ quan chủ trì: …", "Thời gian thực hiện: …") starts at p:
    the heading just above is then a task of its own, not a topic title over bullets."""
    m = _FIELD.match(f, p)
    return m is not None and ":" in f[m.start() : m.end()]


_TASK_LABEL = re.compile(r"(?:noi dung|nhiem vu)\s*:\s*")


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
            rec = _field_recurrence(seg)
            dl = _find_deadline(f, va, vb, dt, cited) or _cell_deadline(seg, dt)
            for k in pending:
                t = out[k]
                out[k] = replace(t, deadline=t.deadline or dl, recurrence=t.recurrence or rec)
    return out
