"""Connector + pull loop against the simulator over real HTTP, with every fault knob on."""

from __future__ import annotations

from datetime import datetime, timedelta

from services.ingest.connectors import (
    ApiKeyAuth,
    ConnectorConfig,
    OAuth2ClientCredentials,
    SourceError,
    create_connector,
)
from services.ingest.connectors.retry import RetryPolicy
from services.ingest.domain.agencies import mapping_from_registry
from services.ingest.domain.normalise import Rejection, normalise
from services.ingest.domain.pull import iterate_pages, newest_wins, since_with_lookback
from services.ingest.simulator import Faults, Simulator, build
from services.ingest.simulator.data import DAY, VN

from .conftest import serve_simulator

AGENCIES = mapping_from_registry("demo-igate")
FAST = RetryPolicy(attempts=30, base_s=0.005, cap_s=0.05, max_retry_after_s=0.05)


def _now(sim: Simulator) -> datetime:
    return datetime.fromtimestamp(sim.clock, VN)


def _expected(sim: Simulator) -> tuple[dict, set[str]]:
    good, bad = {}, set()
    for code, raw in sim.truth("dossiers").items():
        out = normalise("dossiers", raw, source_id="demo", agencies=AGENCIES, now=_now(sim))
        if isinstance(out, Rejection):
            bad.add(code)
        else:
            good[out.code] = out
    return good, bad


async def _pull(connector, sim: Simulator, since: datetime | None, limit: int, errors: list):
    stored: dict = {}
    rejected: list[Rejection] = []
    pages = 0
    async for fetched in iterate_pages(
        connector,
        "dossiers",
        updated_since=since,
        limit=limit,
        policy=FAST,
        on_error=lambda e, n: errors.append(e.kind),
    ):
        pages += 1
        recs = []
        for raw in fetched.page.records:
            out = normalise("dossiers", raw, source_id="demo", agencies=AGENCIES, now=_now(sim))
            (rejected.append(out) if isinstance(out, Rejection) else recs.append(out))
        for code, rec in newest_wins(recs).items():
            old = stored.get(code)
            if old is None or rec.source_updated_at > old.source_updated_at:
                stored[code] = rec
    return stored, rejected, pages


async def test_pull_under_all_faults_matches_the_source_exactly() -> None:
    sim = build(11, 4_000, malformed_rate=0.01)
    sim.faults = Faults(
        latency_ms=1,
        latency_jitter_ms=3,
        error_rate=0.1,
        rate_limit_rate=0.1,
        retry_after_s=0.01,
        hang_rate=0.08,
        hang_s=1.5,
        garble_rate=0.05,
        duplicate_rate=0.5,
        advance_per_page_s=1800,
    )
    with serve_simulator(sim) as url:
        connector = create_connector(
            ConnectorConfig(base_url=url, auth=ApiKeyAuth(key="demo-key"), timeout_s=1.0)
        )
        errors: list[str] = []
        try:
            stored, rejected, pages = await _pull(connector, sim, None, 97, errors)
            good, bad = _expected(sim)
            assert pages > 30
            assert {"timeout", "http_5xx", "rate_limited", "protocol"} <= set(errors)
            assert stored == good  # record by record, at the source's final clock
            # Every malformed record was rejected (by its code, or codeless) with its reasons.
            malformed = sim.malformed_codes()
            assert set(malformed) == bad
            named = {c for c, kind in malformed.items() if kind != "missing_code"}
            assert {r.code for r in rejected} - {None} == named
            assert {r.kinds[0] for r in rejected if r.code is None} == {"missing_code"}
            assert all(r.reasons for r in rejected)

            # Incremental: the clock moves two days; pull from the watermark minus look-back.
            watermark = max(r.source_updated_at for r in stored.values())
            sim.advance(2 * DAY)
            since = since_with_lookback(watermark, timedelta(hours=1))
            more, _, _ = await _pull(connector, sim, since, 97, errors)
            assert more
            for code, rec in more.items():
                if code not in stored or rec.source_updated_at > stored[code].source_updated_at:
                    stored[code] = rec
            good, _ = _expected(sim)
            assert stored == good
        finally:
            await connector.aclose()


async def test_oauth2_connector_and_non_retryable_auth_error() -> None:
    sim = build(2, 300)
    with serve_simulator(sim) as url:
        connector = create_connector(
            ConnectorConfig(
                base_url=url,
                auth=OAuth2ClientCredentials(
                    token_url="/oauth/token", client_id="cchc-monitor", client_secret="demo-secret"
                ),
            )
        )
        try:
            page = await connector.fetch_page(
                "procedures", updated_since=None, cursor=None, limit=10
            )
            assert len(page.records) == 10 and page.next_cursor
        finally:
            await connector.aclose()
        wrong = create_connector(ConnectorConfig(base_url=url, auth=ApiKeyAuth(key="nope")))
        try:
            errors: list[str] = []
            try:
                async for _ in iterate_pages(
                    wrong,
                    "dossiers",
                    updated_since=None,
                    policy=FAST,
                    on_error=lambda e, n: errors.append(e.kind),
                ):
                    pass
            except SourceError as exc:
                assert exc.kind == "auth"
            assert errors == ["auth"]  # not retried
        finally:
            await wrong.aclose()


def test_secrets_are_not_printed() -> None:
    cfg = ConnectorConfig(base_url="http://x", auth=ApiKeyAuth(key="s3cret"))
    assert "s3cret" not in repr(cfg) and "s3cret" not in cfg.model_dump_json()


async def test_blocking_fetch_matches_httpx_and_keeps_the_connection() -> None:
    """An API-key source's pages are read by the standard library's client in a thread: same
    body as httpx, same error kinds, one kept-alive connection; OAuth2 sources too, with the
    token fetched once and sent as a Bearer header."""
    import httpx

    from services.ingest.connectors.national import NationalJsonConnector

    sim = build(4, 300)
    with serve_simulator(sim) as url:
        cfg = ConnectorConfig(base_url=url, auth=ApiKeyAuth(key="demo-key"))
        connector = NationalJsonConnector(cfg)
        reference = NationalJsonConnector(cfg, transport=httpx.AsyncHTTPTransport())
        try:
            request = await connector.raw_request("/api/v1/dossiers", {"limit": 50})
            assert "demo-key" not in repr(request)
            cursor = None
            for _ in range(3):
                got = await connector.fetch_body(
                    "dossiers", updated_since=None, cursor=cursor, limit=50
                )
                want = await reference.fetch_body(
                    "dossiers", updated_since=None, cursor=cursor, limit=50
                )
                assert isinstance(got, bytes) and got == want
                cursor = connector_page_cursor(got)
            assert len(connector._idle) == 1  # one connection, reused
            # A sink takes the body in place (its length comes back), or declines it.
            buf = bytearray(1 << 20)
            asked: list[int] = []

            def sink(size: int) -> memoryview | None:
                asked.append(size)
                return memoryview(buf)[:size] if size <= len(buf) else None

            n = await connector.fetch_body(
                "dossiers", updated_since=None, cursor=None, limit=50, sink=sink
            )
            want = await reference.fetch_body("dossiers", updated_since=None, cursor=None, limit=50)
            assert isinstance(n, int) and bytes(buf[:n]) == want and asked == [n]
            got = await connector.fetch_body(
                "dossiers", updated_since=None, cursor=None, limit=50, sink=lambda size: None
            )
            assert got == want
            wrong = NationalJsonConnector(ConnectorConfig(base_url=url, auth=ApiKeyAuth(key="x")))
            try:
                await wrong.fetch_body(
                    "dossiers", updated_since=None, cursor=None, limit=5, sink=sink
                )
            except SourceError as exc:
                assert exc.kind == "auth" and exc.status == 401
                assert len(asked) == 1  # an error body never goes to the sink
            else:
                raise AssertionError("expected an auth error")
            finally:
                await wrong.aclose()
        finally:
            await connector.aclose()
            await reference.aclose()
        oauth = NationalJsonConnector(
            ConnectorConfig(
                base_url=url,
                auth=OAuth2ClientCredentials(
                    token_url="/oauth/token", client_id="cchc-monitor", client_secret="demo-secret"
                ),
            )
        )
        try:
            request = await oauth.raw_request("/api/v1/dossiers", {"limit": 5})
            assert request.headers[-1][0] == "Authorization"
            assert request.headers[-1][1].startswith("Bearer ")
            assert request.headers[-1][1] not in repr(request)
            tokens = len(sim.tokens)
            for _ in range(2):
                body = await oauth.fetch_body("dossiers", updated_since=None, cursor=None, limit=5)
                assert isinstance(body, bytes) and b'"items"' in body
            assert len(sim.tokens) == tokens  # the cached token, not a new one per page
            sim.tokens.clear()  # revoked: one refresh, then the page
            body = await oauth.fetch_body("dossiers", updated_since=None, cursor=None, limit=5)
            assert isinstance(body, bytes) and len(sim.tokens) == 1
        finally:
            await oauth.aclose()
    closed = NationalJsonConnector(ConnectorConfig(base_url=url, auth=ApiKeyAuth(key="k")))
    try:
        await closed.fetch_body("dossiers", updated_since=None, cursor=None, limit=5)
    except SourceError as connect_exc:
        assert connect_exc.kind == "connect"
    else:
        raise AssertionError("expected a connect error")
    finally:
        await closed.aclose()


def connector_page_cursor(body: bytes) -> str | None:
    import json

    cursor: str | None = json.loads(body)["next_cursor"]
    return cursor
