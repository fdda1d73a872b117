"""Agency mentions (pure): registry names (only the issuing province's units), the gazetteer's
standard names and abbreviations, groups ("các sở, ban, ngành", "UBND các xã, phường"),
titles that name an agency ("Bộ trưởng Bộ X"), enumerations ("Các Sở, ngành: A, B; UBND các
huyện: C"), and "UBND tỉnh X" as the province. All on folded text (see ``folding.py``)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from services.tasks.domain.parsing.folding import Folded, clean
from services.tasks.domain.parsing.gazetteer import GAZ_PREFIX, gazetteer
from services.tasks.domain.units import UnitDirectory, When, name_key

_clean = clean

# --------------------------------------------------------------------------- agencies

_UB = r"(?:ubnd|uy ban nhan dan)"
# "thuộc UBND tỉnh", "trực thuộc Ủy ban nhân dân Thành phố" (and its misspellings)
_UNDER = r"(?:ubnd|uy ban nhan(?: dan)?) (?:tinh|thanh pho)"
# "xã, phường, thị trấn" before 2025, "phường, xã, đặc khu" after, in any order
_CW = r"(?:xa|phuong|thi tran|dac khu)"
_COMMUNE_WORDS = rf"{_CW}(?:(?:,| va|, va|) {_CW}){{1,3}}"  # "phường xã": the comma dropped too
_GROUPS: list[tuple[str, re.Pattern[str]]] = [
    (
        "related_units",
        re.compile(
            r"(?:cac )?co quan,? don vi(?:,? dia phuong)? (?:co )?lien quan|"
            r"(?:cac )?(?:dia phuong|don vi|co quan|nganh) (?:co )?lien quan|"
            r"(?:cac )?so,? (?:ban,? )?nganh(?:,? (?:co quan|don vi))? (?:co )?lien quan"
        ),
    ),
    (
        "all_units",
        re.compile(r"(?:cac )?co quan,? don vi,? dia phuong|(?:cac )?co quan,? to chuc,? don vi"),
    ),
    (
        "public_service_units",
        re.compile(rf"(?:cac )?don vi su nghiep cong lap(?: (?:truc )?thuoc {_UNDER})?"),
    ),
    (
        "departments",
        re.compile(
            r"(?:cac )?so,? ban,? nganh(?: (?:tinh|thanh pho))?(?:,? don vi(?= ?,))?|"
            r"cac so,? nganh(?: tinh)?(?:,? don vi(?= ?,))?|"
            r"(?:cac )?co quan chuyen mon(?:,? co quan hanh chinh khac)?(?: cap tinh)?"
            rf"(?:,? (?:truc )?thuoc {_UNDER})?"
        ),
    ),
    (
        "districts",
        re.compile(
            rf"{_UB} (?:cac )?huyen,? thi xa,? thanh pho(?: thuoc tinh)?|{_UB} cap huyen|"
            r"cac huyen,? thi xa,? thanh pho"
        ),
    ),
    (
        "communes",
        re.compile(
            rf"(?:(?:hoi dong nhan dan|hdnd),? (?:va )?)?{_UB} (?:cac )?{_COMMUNE_WORDS}|"
            rf"{_UB} cap xa|cac {_COMMUNE_WORDS}"
        ),
    ),
    (
        "ministries",
        re.compile(
            r"(?:cac (?:dong chi )?)?bo truong(?: cac bo)?(?=,| va)|"
            r"(?:cac )?bo,? (?:co quan ngang bo|nganh)(?:,? co quan (?:ngang bo|thuoc chinh phu))*"
            r"(?: trung uong)?|cac bo\b|(?:cac )?co quan ngang bo(?:,? co quan thuoc chinh phu)?|"
            # "các cơ quan Trung ương (và địa phương)", "các cơ quan, bộ, ngành (và địa phương)"
            r"(?:cac )?co quan (?:trung uong|tw)\b|cac co quan,? bo,? nganh\b"
        ),
    ),
    (
        "provinces",
        re.compile(
            rf"(?:{_UB} )?(?:cac )?tinh,? (?:thanh pho|tp)(?: truc thuoc (?:trung uong|tw))?|"
            rf"(?:{_UB} )?cac dia phuong\b|"
            r"(?:(?<=nganh, )|(?<=nganh va )|(?<=uong va )|(?<=uong, )|(?<=tw va ))dia phuong\b"
        ),
    ),
]
# who heads an agency: "Bộ trưởng Bộ Công Thương", "Thủ trưởng các sở", "Chủ tịch UBND các xã"
_TITLE = re.compile(
    r"(?:cac (?:dong chi )?)?(?:bo truong|thu truong|chu tich|giam doc|nguoi dung dau|"
    r"lanh dao|chanh(?= (?:van phong|thanh tra)\b)|truong ban|cuc truong|vu truong|tong giam doc)"
    r"(?: cua)?\s+"
)
_SEP = re.compile(r"\s*(?:,\s*(?:dac biet la|nhat la)\s+|,\s*va\s+|,|;|\bva\b|\bcung\b)\s*")


@cache
def _gazetteer_max_words() -> int:
    return max((len(k) for k in gazetteer()), default=0)


_AGENCY_HEAD = re.compile(
    r"(?:(?:cac|thu truong|lanh dao|nguoi dung dau|giam doc|chu tich) )*(?P<head>so|van phong|"
    r"tieu ban|vu|vien|hoi dong|to cong tac|ban|cuc|chi cuc|trung tam|thanh tra|ubnd|"
    r"uy ban|cong an|bao hiem|kho bac|dai|hoi|doan|co quan|don vi|dia phuong|huyen|xa)\b"
)
_WORD = re.compile(r"[a-z0-9]+")
# how each head's first word is spelled: folding makes "Số hóa hồ sơ" look like "Sở …", "Đoạn
# …" like "Đoàn …", "Xa …" like "Xã …"
_HEAD_SPELLING = {
    "so": ("sở",), "van": ("văn",), "tieu": ("tiểu",), "vu": ("vụ",), "vien": ("viện",),
    "hoi": ("hội",), "to": ("tổ",), "ban": ("ban",), "cuc": ("cục",), "chi": ("chi",),
    "trung": ("trung",), "thanh": ("thanh",), "ubnd": ("ubnd",), "uy": ("ủy", "uỷ"),
    "cong": ("công",), "bao": ("bảo",), "kho": ("kho",), "dai": ("đài",), "doan": ("đoàn",),
    "co": ("cơ",), "don": ("đơn",), "dia": ("địa",), "huyen": ("huyện",), "xa": ("xã",),
}  # fmt: skip


def agency_head_at(fd: Folded, p: int) -> bool:
    """Whether an agency's head noun starts at p ("Sở …", "Các Ban …", "Giám đốc Sở …"), read
    on the folded text but checked against the accents the document wrote."""
    m = _AGENCY_HEAD.match(fd.f, p)
    if m is None:
        return False
    head = _WORD.search(fd.f, m.start("head"))
    assert head is not None
    spelled = _clean(fd.original(head.start(), head.end())).lower()
    return spelled in _HEAD_SPELLING.get(head.group(), (spelled,))


# where an enumerated name ends and the sentence goes on ("… Việt Nam theo chức năng …")
_ELEMENT_END = re.compile(
    r"\s+(?:theo chuc nang|khan truong|chu tri|phoi hop|tiep tuc|nghien cuu|co trach nhiem|"
    r"thuc hien|chu dong|to chuc|tap trung)\b"
)
_ENDS_PROVINCIAL = re.compile(r"\b(?:tinh|thanh pho)$")
_BLANKS = re.compile(r"[ \t]+")
_BRANCH = re.compile(r"[ \t]*[-–]?[ \t]*chi nhanh[ \t]+")
_BRANCH_END = re.compile(r"[:,;.()\n]|\s(?:chu tri|phoi hop|thuc hien|co trach nhiem|va)\b")
_OWN_HEAD = re.compile(
    r"(?:tap doan|tong cong ty|ngan hang|thong tan xa|dai truyen hinh|dai tieng noi)\b"
)
_PROVINCE_BODY = re.compile(
    r"(?:ubnd|uy ban nhan dan|tinh uy,? hdnd,? ubnd)\s+(?P<kind>tinh|thanh pho)\s+"
    r"(?P<name>[a-z]+(?: [a-z]+){0,3})"
)
_GENERIC_HEAD = re.compile(
    r"(?:ubnd |uy ban nhan dan )?(?:thanh pho|thi xa|thi tran|huyen|xa|phuong|so|cuc|chi cuc|"
    r"ban|trung tam|van phong)\s+"
)


@dataclass(frozen=True)
class _Mention:
    start: int
    end: int
    unit_id: str | None
    group: str | None


class _Matcher:
    def __init__(self, fd: Folded, units: UnitDirectory, when: When) -> None:
        self.fd = fd
        self.f = fd.f
        self.units = units
        self.when = when
        # provinces whose units a name may resolve to (None: any; empty: none below a
        # province) — a Đắk Lắk directive's "Sở Nội vụ" is not Hưng Yên's
        self.scope: set[str] | None = None

    def _admissible(self, unit_id: str) -> bool:
        unit = self.units.get(unit_id)
        if unit is not None and unit.level == "province":
            # a province by a generic alias ("UBND tỉnh") only in its own documents
            return self.scope is not None and unit_id in self.scope
        if self.scope is None:
            return True
        # a province matched by a generic alias ("UBND tỉnh") is only the document's own;
        # one named explicitly ("UBND tỉnh Phú Thọ") goes through province_at
        prov = self.units.province_of(unit_id)
        return prov is None or prov in self.scope

    def province_named(self, p: int, limit: int) -> bool:
        """Whether [p, limit) is a province's name ("Đồng Nai", "tỉnh Lai Châu")."""
        m = re.compile(r"(?:tinh|thanh pho|tp\.?)\s+").match(self.f, p, limit)
        start = m.end() if m else p
        name = _clean(self.fd.original(start, limit)).strip(" ,.;")
        return bool(name) and bool(self.units.provinces_named(name))

    def _province_named(self, p: int, limit: int) -> tuple[int, str] | None:
        """A province named in an enumeration ("UBND các thành phố: Hà Nội, Cần Thơ"): named
        explicitly, so admissible in any document (like "UBND tỉnh Phú Thọ")."""
        words = list(re.finditer(r"[a-z0-9]+", self.f[p:limit]))[:4]
        for k in range(len(words), 0, -1):
            end = p + words[k - 1].end()
            if not self.fd.is_upper_at(p):
                return None
            found = self.units.provinces_named(_clean(self.fd.original(p, end)), self.when)
            if len(found) == 1:
                return end, found[0].id
        return None

    def unit_at(
        self, p: int, prefixes: Sequence[str] = ("",), limit: int | None = None
    ) -> tuple[int, str] | None:
        """Longest registry name starting at p: (end, unit_id)."""
        f = self.f
        limit = len(f) if limit is None else limit
        ends: list[int] = []
        pos = p
        # the longest name either source knows: the gazetteer's ("Văn phòng Đoàn Đại biểu Quốc
        # hội và Hội đồng nhân dân Thành phố", 14 words) outrun the registry's
        max_words = max(self.units.max_key_len, _gazetteer_max_words()) + 1
        while len(ends) < max_words:
            m = re.compile(r"[a-z0-9]+").match(f, pos)
            if not m or m.end() > limit:
                break
            ends.append(m.end())
            gap = re.compile(r"[ \t\-–&]*,?[ \t\-–&]*").match(f, m.end())
            assert gap is not None
            if gap.end() == m.end() or "\n" in f[m.end() : gap.end()]:
                break
            pos = gap.end()
        gz = gazetteer()
        for end in reversed(ends):
            key = name_key(f[p:end])
            for prefix in prefixes:
                full = name_key(prefix) + key
                unit = self.units.lookup_key(full, self.when)
                if unit is not None and self._admissible(unit.id):
                    return end, unit.id
                canonical = gz.get(full)
                if canonical is not None:
                    unit = self.units.lookup_key(name_key(canonical), self.when)
                    if unit is not None and self._admissible(unit.id):
                        return end, unit.id
                    return end, GAZ_PREFIX + canonical
        return None

    def province_at(self, p: int, limit: int) -> tuple[int, str] | None:
        """ "UBND tỉnh Phú Thọ", "Ủy ban nhân dân thành phố Đà Nẵng": the province's people's
        committee — its registry unit, else its standard name."""
        m = _PROVINCE_BODY.match(self.f, p, limit)
        if m is None:
            return None
        end = m.start("name")
        for w in _WORD.finditer(self.f, m.start("name"), m.end("name")):
            if not self.fd.is_upper_at(w.start()):
                break
            end = w.end()
        if end == m.start("name"):
            return None
        name = _clean(self.fd.original(m.start("name"), end))
        found = self.units.provinces_named(name, self.when) or self.units.provinces_named(name)
        if len(found) == 1:
            return end, found[0].id
        kind = "thành phố" if m.group("kind").startswith("thanh") else "tỉnh"
        return end, f"{GAZ_PREFIX}UBND {kind} {name}"

    def group_at(self, p: int) -> tuple[int, str] | None:
        best: tuple[int, str] | None = None
        for code, rx in _GROUPS:
            m = rx.match(self.f, p)
            if m and (best is None or m.end() > best[0]):
                best = (m.end(), code)
        return best

    def agency_at(self, p: int, limit: int) -> _Mention | None:
        start = p
        tm = _TITLE.match(self.f, p, limit)
        if tm:  # the title names the agency it heads
            p = tm.end()
        g = self.group_at(p)
        u = self.unit_at(p, limit=limit)
        pv = self.province_at(p, limit)  # "UBND tỉnh Sơn La" beats a generic "UBND tỉnh" alias
        if pv is not None and (u is None or pv[0] > u[0]):
            u = pv
        cands: list[_Mention] = []
        if g and g[0] <= limit:
            cands.append(_Mention(p, g[0], None, g[1]))
        if u:
            cands.append(_Mention(p, u[0], u[1], None))
        if not cands:
            return None
        best = max(cands, key=lambda c: c.end)
        if best.unit_id is not None and _ENDS_PROVINCIAL.search(self.f, p, best.end):
            # "Thuế tỉnh Đắk Lắk", "Công an tỉnh Lai Châu": a provincial body with its province
            gap = _BLANKS.match(self.f, best.end, limit)
            named = self._province_named(gap.end(), limit) if gap else None
            if named is not None:
                best = _Mention(best.start, named[0], best.unit_id, best.group)
        branch = _BRANCH.match(self.f, best.end, limit) if best.unit_id is not None else None
        if branch is not None:
            # "Ngân hàng Nhà nước Việt Nam - Chi nhánh Khu vực II": the branch is the body
            stop = _BRANCH_END.search(self.f, branch.end(), limit)
            end = stop.start() if stop else limit
            words = list(_WORD.finditer(self.f, branch.end(), end))[:5]
            if words:
                end = words[-1].end()
                name = GAZ_PREFIX + _clean(self.fd.original(p, end))
                best = _Mention(best.start, end, name, None)
        group = best.group
        if (
            group == "provinces"
            and self.scope
            and self.f[best.start : best.end].endswith("dia phuong")
        ):
            group = "communes"  # a province's "các sở, ban, ngành, địa phương": its communes
        return _Mention(start, best.end, best.unit_id, group)

    def scan_list(self, p: int, limit: int) -> tuple[list[_Mention], int]:
        """Agencies listed from p (separated by ',', ';', 'và' …); stops at anything else."""
        out: list[_Mention] = []
        pos = p
        while pos < limit:
            while pos < limit and self.f[pos] in " \t":
                pos += 1
            m = self.agency_at(pos, limit)
            if m is None:
                break
            out.append(m)
            pos = m.end
            sep = _SEP.match(self.f, pos)
            if not sep or sep.end() == pos:
                break
            nxt = sep.end()
            if nxt >= limit or self.agency_at(nxt, limit) is None:
                break
            pos = nxt
        end = out[-1].end if out else p
        return out, end

    # -- enumerations: "Các Sở, ngành: Y tế, …; UBND các huyện: Văn Giang, …"
    _INTROS: list[tuple[re.Pattern[str], tuple[str, ...]]] = [
        (re.compile(r"cac so,? (?:ban,? )?nganh(?:,? don vi)?\s*:\s*"), ("Sở ", "")),
        (re.compile(r"cac bo(?:,? (?:nganh|co quan))?\s*:\s*"), ("Bộ ", "")),
        (re.compile(r"cac cuc\s*:\s*"), ("Cục ",)),
        (re.compile(r"cac vu\s*:\s*"), ("Vụ ",)),
        (re.compile(r"cac tap doan\s*:\s*"), ("Tập đoàn ",)),  # "các Tập đoàn: Bưu chính …"
        (re.compile(r"cac tong cong ty\s*:\s*"), ("Tổng công ty ",)),
        (
            re.compile(
                rf"{_UB} (?:cac )?(?:huyen|thi xa|thanh pho)(?:,? (?:thi xa|thanh pho))*\s*:\s*"
            ),
            ("UBND huyện ", "UBND thị xã ", "UBND thành phố ", "UBND ", ""),
        ),
        (
            re.compile(rf"{_UB} (?:cac )?(?:xa|phuong|thi tran)(?:,? (?:phuong|thi tran))*\s*:\s*"),
            ("UBND xã ", "UBND phường ", "UBND thị trấn ", "UBND ", ""),
        ),
        (re.compile(r"cac (?:co quan|don vi)(?:,? (?:don vi|dia phuong))*\s*:\s*"), ("Sở ", "")),
        (
            re.compile(rf"{_UB} cac tinh(?:,? thanh pho)?\s*:\s*"),
            ("UBND tỉnh ", "UBND thành phố ", "UBND ", ""),
        ),
    ]

    def enumeration_at(self, p: int, limit: int) -> tuple[list[_Mention], int] | None:
        f = self.f
        out: list[_Mention] = []
        pos = p
        prefixes: tuple[str, ...] | None = None
        stops = ",;.\n"
        while pos < limit:
            intro = None
            for rx, pf in self._INTROS:
                m = rx.match(f, pos)
                if m and m.end() <= limit:
                    intro = (m, pf)
                    break
            if intro is None and prefixes is None:
                return None
            if intro is not None:
                prefixes = intro[1]
                pos = intro[0].end()
                # "Các Cục: Bản quyền tác giả; Xuất bản, In và Phát hành; Báo chí": a list by
                # semicolons keeps the commas inside its names
                semi, comma = f.find(";", pos, limit), f.find(",", pos, limit)
                stops = ";.\n" if semi != -1 and (comma == -1 or semi < comma) else ",;.\n"
            assert prefixes is not None
            finished = False
            while pos < limit:
                stop = len(f)
                for ch in stops:
                    k = f.find(ch, pos, limit)
                    if k != -1:
                        stop = min(stop, k)
                stop = min(stop, limit)
                hit = self.unit_at(pos, prefixes, limit=stop)
                if hit is None and ("UBND thành phố " in prefixes or "UBND tỉnh " in prefixes):
                    hit = self._province_named(pos, stop)
                wide = self.unit_at(pos, prefixes, limit=limit)  # "Văn hóa, Thể thao và Du lịch"
                if wide is not None and wide[0] > stop and (hit is None or wide[0] > hit[0]):
                    hit = wide
                    nxt = [k for k in (f.find(ch, wide[0], limit) for ch in ",;.\n") if k != -1]
                    stop = min(nxt) if nxt else limit
                elem_end = stop
                while elem_end > pos and f[elem_end - 1] == " ":
                    elem_end -= 1
                if hit is not None and hit[0] >= elem_end:
                    out.append(_Mention(pos, hit[0], hit[1], None))
                elif hit is not None:
                    out.append(_Mention(pos, hit[0], hit[1], None))
                    rest = re.compile(r"\s+va\s+").match(f, hit[0])
                    if rest:
                        pos = rest.end()
                        continue
                    finished = True
                    pos = hit[0]
                    break
                else:
                    # "Các Cục: Di sản văn hóa, …": an element outside the registry is still
                    # "Cục Di sản văn hóa" (its standard name carries the enumeration's head)
                    head = prefixes[0] if prefixes and prefixes[0].strip() else ""
                    cut = _ELEMENT_END.search(f, pos, elem_end)
                    if cut is not None:
                        elem_end = cut.start()
                    if _OWN_HEAD.match(f, pos):
                        head = ""  # "Tập đoàn Điện lực Việt Nam" keeps its own head
                    canonical = (
                        GAZ_PREFIX + head + _clean(self.fd.original(pos, elem_end))
                        if (
                            head.strip() in ("Cục", "Vụ", "Bộ", "Sở", "Tập đoàn", "Tổng công ty")
                            or _OWN_HEAD.match(f, pos)
                        )
                        and elem_end > pos
                        and self.fd.is_upper_at(pos)
                        and elem_end - pos < 80
                        else None
                    )
                    end = elem_end if canonical is not None else self._name_end(pos, elem_end)
                    if end <= pos:
                        finished = True
                        break
                    out.append(_Mention(pos, end, canonical, None))
                    if end < elem_end:
                        finished = True
                        pos = end
                        break
                pos = stop
                if pos < limit and f[pos] == ",":
                    pos += 1
                    while pos < limit and f[pos] == " ":
                        pos += 1
                    continue
                if pos < limit and f[pos] == ";":
                    pos += 1
                    while pos < limit and f[pos] == " ":
                        pos += 1
                    break  # next segment: maybe a new intro
                finished = True
                break
            if finished:
                break
        if not out:
            return None
        return out, out[-1].end

    def _name_end(self, p: int, limit: int) -> int:
        """End of an unresolved name in an enumeration: its capitalised words ("Tam Kỳ",
        "Cục Thuế tỉnh"), after an optional lower-case generic head ("thành phố", "huyện").
        Returns p when the text does not start like a name."""
        head = _GENERIC_HEAD.match(self.f, p, limit)
        pos = head.end() if head else p
        end = p if head is None else head.end()
        for m in _WORD.finditer(self.f, pos, limit):
            if self.fd.is_upper_at(m.start()) or (end > p and m.group() == "tinh"):
                end = m.end()
                continue
            break
        if head is not None and end == head.end():
            return p  # a generic head alone is not a name
        return end
