"""Public entry point of the conclusion parser (the stages live in ``parsing/``)."""

from services.tasks.domain.parsing.engine import (
    AgencyRef,
    Assignee,
    DraftFinding,
    DraftItem,
    ParseResult,
    parse_conclusion,
)

__all__ = ["AgencyRef", "Assignee", "DraftFinding", "DraftItem", "ParseResult", "parse_conclusion"]
