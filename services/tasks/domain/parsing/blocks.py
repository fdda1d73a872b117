"""Blocks stage: the flowing text cut into lines that are numbered headings ("1.", "II.",
"2.3."), lettered items ("a)"), bullets ("-", "+", "(1)") or paragraphs (a line that does
not end a sentence runs on into the next); sentences inside a block; and the small span
helpers the other stages share (semicolon lists, comma-separated agency names)."""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

from services.tasks.domain.parsing.folding import Folded


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
_FIRST_FOOTNOTE = re.compile(r"[ \t]*(?:¹|\[1\])[ \t]")
_FOOTNOTE = re.compile(r"[ \t]*(?:[¹²³⁴⁵⁶⁷⁸⁹⁰*]|\[(?:\d{1,3}|[ivx]{1,5})\])")


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
        if s > 0.75 * len(f) and _FIRST_FOOTNOTE.match(f, s):
            # the footnotes a crawl puts at the end, after the signature and the appendices:
            # the rest is their text, wrapped over lines that look like the body's ("TP. Hồ Chí
            # Minh (87,73%), Sơn La …"). A paragraph seldom starts with "[1]" otherwise.
            break
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


def _fold_range(fd: Folded, a: int, b: int) -> tuple[int, int]:
    """Folded offsets of the original range [a, b)."""
    starts = fd._starts
    return bisect.bisect_left(starts, a), bisect.bisect_left(starts, b)


def _heading_level(label: str | None) -> int:
    if not label or not label[0].isdigit():
        return 0  # roman numerals
    return label.count(".") + 1


_NAMED_PART = re.compile(
    r",\s+(?=(?:cuc|vu|so|bo|ban|trung tam|van phong|thanh tra|vien|toa an|kiem toan|"
    r"ngan hang|tap doan|tong cong ty|kho bac|bao hiem)\s)"
)


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
