"""Retry policy: exponential backoff with full jitter, Retry-After honoured, no retry on auth."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from services.ingest.connectors.base import SourceError
from services.ingest.connectors.national import parse_retry_after, peek_cursor
from services.ingest.connectors.retry import RetryPolicy, call_with_retries


def test_backoff_grows_is_capped_and_jittered() -> None:
    policy = RetryPolicy(base_s=0.5, cap_s=4)
    rng = random.Random(1)
    err = SourceError("http_5xx", "503")
    for attempt, ceiling in [(1, 0.5), (2, 1), (3, 2), (4, 4), (9, 4)]:
        delays = [policy.delay(attempt, err, rng) for _ in range(200)]
        assert max(delays) <= ceiling and min(delays) >= 0
        assert max(delays) > ceiling * 0.8  # spread over the whole window (full jitter)


def test_retry_after_wins_when_longer_and_is_clipped() -> None:
    policy = RetryPolicy(base_s=0.01, cap_s=0.02, max_retry_after_s=60)
    rng = random.Random(2)
    assert policy.delay(1, SourceError("rate_limited", "429", retry_after=7), rng) == 7
    assert policy.delay(1, SourceError("rate_limited", "429", retry_after=900), rng) == 60


def test_parse_retry_after_seconds_and_http_date() -> None:
    assert parse_retry_after("3") == 3
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= (parse_retry_after(when) or 0) <= 31


async def test_call_with_retries_sleeps_as_told_and_stops_on_auth() -> None:
    slept: list[float] = []

    async def sleep(s: float) -> None:
        slept.append(s)

    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise SourceError("rate_limited", "429", retry_after=5)
        return "ok"

    policy = RetryPolicy(attempts=5, base_s=0.001, cap_s=0.001)
    assert await call_with_retries(flaky, policy, sleep=sleep) == "ok"
    assert slept == [5, 5]

    async def denied() -> str:
        raise SourceError("auth", "401")

    seen: list[str] = []
    with pytest.raises(SourceError):
        await call_with_retries(denied, policy, sleep=sleep,
                                on_error=lambda e, n: seen.append(e.kind))  # fmt: skip
    assert seen == ["auth"]

    async def down() -> str:
        raise SourceError("timeout", "hang")

    with pytest.raises(SourceError):
        await call_with_retries(down, RetryPolicy(attempts=3, base_s=0, cap_s=0), sleep=sleep)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"items":[{"next_cursor":"x"}],"next_cursor":"abc","count":1}', (True, "abc")),
        (b'{"items":[],"next_cursor":null}', (True, None)),
        (b'{"items":[],"next_cursor":"ab', (False, None)),  # truncated
        (b'{"items":[]}', (False, None)),
        (b'{"items":[],"next_cursor":5}', (False, None)),
    ],
)
def test_peek_cursor(body: bytes, expected: tuple[bool, str | None]) -> None:
    assert peek_cursor(body) == expected
