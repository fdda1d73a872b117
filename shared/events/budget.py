"""How much one event may carry.

The broker's default message limit is 1 MB, and so is the producer's `max_request_size`. An event
over it can never be published: the outbox relay retries it forever, and every event written
after it waits behind it. A province's portal publication in one event (1.8 MB) did exactly that.
Writers that put many records into one event split them into parts within this budget; consumers
handle each record on its own, so the parts need nothing to join them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

EVENT_BUDGET_BYTES = 512 * 1024
"""Half the 1 MB limit: room for the envelope, the headers and records measured in characters."""

T = TypeVar("T")


def in_parts(
    items: Sequence[T], size: Callable[[T], int], budget: int = EVENT_BUDGET_BYTES
) -> list[list[T]]:
    """`items` in order, in consecutive parts whose sizes add up to at most `budget` (an item
    larger than the budget goes alone). No items, no parts."""
    parts: list[list[T]] = []
    used = budget
    for item in items:
        n = size(item)
        if used + n > budget:
            parts.append([])
            used = 0
        parts[-1].append(item)
        used += n
    return parts
