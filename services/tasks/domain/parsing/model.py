"""What the parser proposes (``DraftItem``, ``Assignee``, ``ParseResult`` …) and the context
every extraction stage reads: the folded text, the agency matcher, the document's time."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any, Literal

from services.tasks.domain.parsing.agencies import _Matcher, _Mention
from services.tasks.domain.parsing.deadlines import _DocTime, _find_deadline, _find_recurrence
from services.tasks.domain.parsing.folding import Folded, clean
from services.tasks.domain.parsing.gazetteer import GAZ_PREFIX
from services.tasks.domain.units import UnitDirectory, When

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


_clean = clean


def _assignee(name: str, role: Role, unit_id: str | None, group: str | None) -> Assignee:
    if unit_id is not None and unit_id.startswith(GAZ_PREFIX):
        return Assignee(name, role, None, group, canonical=unit_id[len(GAZ_PREFIX) :])
    return Assignee(name, role, unit_id, group)


@dataclass
class Context:
    """One document's shared state for the stages (sections, sentences, forms, tables)."""

    text: str  # the original text: every span indexes it
    fd: Folded  # the flowing text (tables cut out, hard wraps undone), folded
    matcher: _Matcher
    dt: _DocTime
    cited: list[tuple[int, int]]  # spans of cited documents: their dates are no deadlines
    units: UnitDirectory
    when: When

    def assignee(self, m: _Mention, role: Role) -> Assignee:
        return _assignee(_clean(self.fd.original(m.start, m.end)), role, m.unit_id, m.group)

    def timed_at(self, a: int, b: int) -> bool:
        f = self.fd.f
        return _find_deadline(f, a, b, self.dt, self.cited) is not None or bool(
            _find_recurrence(f[a:b])
        )
