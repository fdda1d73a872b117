"""Retries with exponential backoff and full jitter, honouring a source's Retry-After."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from services.ingest.connectors.base import SourceError

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 6  # total tries, including the first
    base_s: float = 0.5
    cap_s: float = 30.0
    max_retry_after_s: float = 120.0  # a Retry-After above this is clipped

    def delay(self, attempt: int, error: SourceError, rng: random.Random) -> float:
        """Delay before try `attempt + 1` (attempt counts from 1)."""
        backoff = rng.uniform(0, min(self.cap_s, self.base_s * 2 ** (attempt - 1)))
        if error.retry_after is not None:
            return max(min(error.retry_after, self.max_retry_after_s), backoff)
        return backoff


async def call_with_retries(
    fn: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    on_error: Callable[[SourceError, int], None] | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    rng: random.Random | None = None,
) -> T:
    """Call `fn` until it succeeds, a non-retryable `SourceError` occurs, or tries run out.
    `on_error(error, attempt)` sees every failure (for metrics and run error counts)."""
    rng = rng or random.Random()
    attempt = 0
    while True:
        attempt += 1
        try:
            return await fn()
        except SourceError as error:
            if on_error is not None:
                on_error(error, attempt)
            if not error.retryable or attempt >= policy.attempts:
                raise
            await sleep(policy.delay(attempt, error, rng))
