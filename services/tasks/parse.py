"""CLI: ``python -m services.tasks.parse FILE [--issued-on YYYY-MM-DD] [--units PATH]``.

Prints exactly one JSON object ``{"items": [...]}`` with the draft items proposed for the
document (plain text, .docx or text-layer .pdf).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import date
from typing import Any

from services.tasks.domain.documents import UnsupportedDocument, extract_text, read_document
from services.tasks.domain.parser import ParseResult, parse_conclusion
from services.tasks.domain.units import DEFAULT_UNITS_PATH, UnitDirectory


def result_to_json(result: ParseResult) -> dict[str, Any]:
    return {
        "items": [
            {
                "assignees": [
                    {"name": a.name, "role": a.role, "unit_id": a.unit_id} for a in item.assignees
                ],
                "action": item.action,
                "deadline": item.deadline.isoformat() if item.deadline else None,
                "recurrence": item.recurrence,
                "criteria": list(item.criteria),
                "span": [item.span[0], item.span[1]],
            }
            for item in result.items
        ]
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m services.tasks.parse", description=__doc__)
    ap.add_argument("file", help="the document (.txt, .docx, .pdf), or - for stdin")
    ap.add_argument("--issued-on", type=date.fromisoformat, default=None)
    ap.add_argument("--units", default=str(DEFAULT_UNITS_PATH), help="unit registry JSON")
    args = ap.parse_args(argv)
    try:
        if args.file == "-":
            text = extract_text(sys.stdin.buffer.read(), None)
        else:
            text = read_document(args.file)
    except (OSError, UnsupportedDocument) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    units = UnitDirectory.load(args.units)
    result = parse_conclusion(text, issued_on=args.issued_on, units=units)
    json.dump(result_to_json(result), sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
