"""Which (unit, period) pairs get a score, from the units' validity intervals.

A unit exists from `valid_from` to `valid_to` (both inclusive; None = still in force). Its
figures also take in its predecessors through lineage (`store.registry.MEMBERS_CTE`), so a
period is scored under the units valid then and, for a period before a unit was created, under
today's unit as the sum of its predecessors (issue 12: "a 2024 figure of a new commune comes
from its predecessors"). What is not scored:

- a period that starts after the unit was abolished: an old ward ended on 30/6/2025 has no
  August 2025 score. Dossiers still recorded against it after its end are not lost: they are
  its own counters, which its successors (and their ancestors) sum through lineage;
- a period that ends before the unit was created, when none of its members (its subtree, its
  predecessors) existed in it either: there is nothing the figure could stand for.

The year and the year-to-dates of a reorganisation year overlap both the old and the new units,
so both keep them (their rankings keep them apart, see `store.snapshots.RANK`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from services.scoring.domain.periods import Period

Validity = tuple[date, date | None]
"""(valid_from, valid_to) of a unit, both inclusive."""


def valid_during(validity: Validity, period: Period) -> bool:
    """The unit exists on at least one day of the period."""
    valid_from, valid_to = validity
    return valid_from < period.end_date and (valid_to is None or valid_to >= period.start_date)


def scored(unit: Validity, members: Iterable[Validity], period: Period) -> bool:
    """Whether the unit gets a snapshot for the period: not when it was abolished before the
    period began; when it was created after the period ended, only if one of its aggregation
    members (`members`: its subtree and predecessors, itself included or not) existed then."""
    valid_from, valid_to = unit
    if valid_to is not None and valid_to < period.start_date:
        return False
    if valid_from < period.end_date:
        return True
    return any(valid_during(m, period) for m in members)
