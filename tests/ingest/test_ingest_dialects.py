"""Every vendor connector through the whole sync engine, against the simulator's dialect of the
same generated data: faults on, the run ends with the source's exact dossier set stored once."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from services.ingest.connectors import ConnectorConfig, create_connector, kinds
from services.ingest.connectors.base import BasicAuth, OAuth2ClientCredentials
from services.ingest.connectors.retry import RetryPolicy
from services.ingest.simulator import Faults, build
from services.ingest.sync.engine import SyncEngine
from shared.settings import to_plain_url

from .conftest import serve_simulator
from .ingest_db import add_source, event_records, expected, stored

FAST = RetryPolicy(attempts=40, base_s=0.005, cap_s=0.05, max_retry_after_s=0.05)
FAULTS = Faults(
    latency_ms=1, latency_jitter_ms=3, error_rate=0.1, rate_limit_rate=0.1, retry_after_s=0.01,
    hang_rate=0.03, hang_s=1.6, garble_rate=0.05, duplicate_rate=0.5, advance_per_page_s=1800,
)  # fmt: skip

SOURCES: dict[str, dict[str, Any]] = {
    "vnpt-igate": {
        "kind": "vnpt-igate",
        "auth": {
            "type": "oauth2_client_credentials",
            "token_url": "/oauth/token",
            "client_id": "cchc-monitor",
            "client_secret": "demo-secret",
        },
        "options": {},
    },
    "opencps": {
        "kind": "opencps",
        "auth": {"type": "basic", "username": "cchc-monitor", "password": "demo-secret"},
        "options": {"group_id": "35417"},
    },
}


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await asyncpg.create_pool(to_plain_url(database_url), min_size=1, max_size=6)
    yield p
    await p.close()


async def _add(pool: asyncpg.Pool, url: str, dialect: str) -> str:
    cfg = SOURCES[dialect]
    sid = await add_source(pool, url, kind=cfg["kind"], auth=json.dumps(cfg["auth"]))
    await pool.execute(
        "UPDATE ingest.sources SET options = $2::jsonb WHERE id = $1", sid,
        json.dumps(cfg["options"]),
    )  # fmt: skip
    return sid


async def _assert_exact(pool: asyncpg.Pool, sim: Any, sid: str) -> None:
    good, bad = expected(sim, sid)
    assert await stored(pool, sid) == good  # record by record, each once (primary key)
    events = await event_records(pool, sid)
    assert len(events) == len(set(events)), "a change was announced twice"
    versions = await pool.fetchval(
        "SELECT sum(version) FROM ingest.dossiers WHERE source_id = $1", sid
    )
    assert len(events) == versions
    quarantined = await pool.fetch(
        "SELECT DISTINCT code FROM ingest.quarantine WHERE source_id = $1 AND status = 'open'",
        sid,
    )
    named = {c for c, k in sim.malformed_codes().items() if k != "missing_code"}
    assert {r["code"] for r in quarantined} - {None} == named & bad


def test_every_connector_kind_is_registered() -> None:
    assert {"national-json", "vnpt-igate", "opencps"} <= set(kinds())


@pytest.mark.parametrize("workers", [0, 1], ids=["in-process", "worker-process"])
@pytest.mark.parametrize("dialect", ["vnpt-igate", "opencps"])
async def test_dialect_pull_with_faults_ends_with_the_exact_source_set(
    pool: asyncpg.Pool, dialect: str, workers: int
) -> None:
    sim = build(23, 1_500, malformed_rate=0.02, faults=FAULTS)
    with serve_simulator(sim) as url:
        sid = await _add(pool, url, dialect)
        engine = SyncEngine(pool, policy=FAST, workers=workers)
        try:
            first = await engine.run(sid, "dossiers")
            assert first.status == "partial", first  # complete walk, some quarantined
            assert {"http_5xx", "rate_limited", "protocol"} <= set(first.errors)
            if dialect == "opencps":
                # Newest first: a record changed while the walk is behind it is read in its
                # new version by the next (incremental) run, not this one.
                sim.faults = FAULTS.model_copy(update={"advance_per_page_s": 0})
                again = await engine.run(sid, "dossiers")
                assert again.status in ("partial", "succeeded"), again
            await _assert_exact(pool, sim, sid)

            # Incremental: the source moves on a day; the next run reads from the watermark
            # minus the look-back window and ends exact again.
            sim.faults = FAULTS.model_copy(update={"advance_per_page_s": 0})
            sim.advance(86_400)
            later = await engine.run(sid, "dossiers")
            assert later.status in ("partial", "succeeded"), later
            assert later.pulled < first.pulled  # not a full pull again
            await _assert_exact(pool, sim, sid)
        finally:
            await engine.stop()


async def test_dialect_filters_and_wrong_credentials() -> None:
    """The connectors send what each vendor expects (iGate's page metadata and filters,
    OpenCPS's groupId header), and a wrong secret is an `auth` error, not a crash."""
    sim = build(5, 400)
    with serve_simulator(sim) as url:
        igate = create_connector(
            ConnectorConfig(
                kind="vnpt-igate", base_url=url,
                auth=OAuth2ClientCredentials(token_url="/oauth/token", client_id="cchc-monitor",
                                             client_secret="demo-secret"),
                options={"extra_params": {"dossier-status": "6"}},
            )
        )  # fmt: skip
        try:
            page = await igate.fetch_page("dossiers", updated_since=None, cursor=None, limit=50)
            assert page.records and all(r["TrangThaiHoSo"] == 10 for r in page.records)
        finally:
            await igate.aclose()
        opencps = create_connector(
            ConnectorConfig(
                kind="opencps", base_url=url,
                auth=BasicAuth(username="cchc-monitor", password="demo-secret"),
                options={"group_id": "35417"},
            )
        )  # fmt: skip
        try:
            page = await opencps.fetch_page("dossiers", updated_since=None, cursor=None, limit=30)
            stamps = [r["NgayCapNhat"] for r in page.records]
            assert len(stamps) == 30 and stamps == sorted(stamps, reverse=True)
            assert page.next_cursor == "30"
        finally:
            await opencps.aclose()
        for cfg in (
            ConnectorConfig(kind="opencps", base_url=url,
                            auth=BasicAuth(username="cchc-monitor", password="wrong"),
                            options={"group_id": "35417"}),
            ConnectorConfig(kind="vnpt-igate", base_url=url,
                            auth=OAuth2ClientCredentials(token_url="/oauth/token",
                                                         client_id="cchc-monitor",
                                                         client_secret="wrong")),
        ):  # fmt: skip
            wrong = create_connector(cfg)
            try:
                with pytest.raises(Exception) as err:
                    await wrong.fetch_body("dossiers", updated_since=None, cursor=None, limit=5)
                assert getattr(err.value, "kind", None) == "auth"
            finally:
                await wrong.aclose()


@pytest.mark.parametrize("dialect", ["vnpt-igate", "opencps"])
def test_typed_and_plain_decoding_agree(dialect: str) -> None:
    """The typed decode (msgspec, fields skipped in C) gives what the record-by-record path
    gives, malformed records and the processing steps included."""
    import orjson

    from services.ingest.connectors import igate, opencps
    from services.ingest.connectors.wire import PageContext

    sim = build(9, 400, malformed_rate=0.05)
    body = sim.dialect_page(dialect, offset=0, size=400)
    ctx = PageContext(cursor=None, limit=400, since=None, options={})
    module: Any = igate if dialect == "vnpt-igate" else opencps
    typed = orjson.loads(module.to_national(body, "dossiers", ctx))["items"]
    raw = orjson.loads(body)["content" if dialect == "vnpt-igate" else "data"]
    if dialect == "vnpt-igate":
        plain = [igate.dossier_to_national(r, igate.STATUS_MAP, igate.CHANNEL_MAP, "code")
                 for r in raw]  # fmt: skip
    else:
        plain = [opencps.dossier_to_national(r, opencps.STATUS_MAP) for r in raw]
    assert all(p["QuaTrinhXuLy"] for p in plain)
    assert typed == plain and len(typed) == len(raw) > 300
    # and both are the simulator's national records, field for field where the normaliser reads
    national = {r["MaHoSo"]: r for r in orjson.loads(sim.page(
        "dossiers", updated_since=None, cursor=None, limit=400, agency=None))["items"]}  # fmt: skip
    for rec in typed:
        want = national.get(rec["MaHoSo"]) if rec["MaHoSo"] else None
        if want is not None:
            assert {k: want[k] for k in rec} == rec


@pytest.mark.parametrize("dialect", ["vnpt-igate", "opencps"])
def test_one_pass_typed_decode_prepares_what_the_national_translation_does(dialect: str) -> None:
    """The dialect's one-pass decode into the fast path's records gives the very page (rows,
    events, rejections with their raw national records) that translating to the national
    envelope and preparing that gives — malformed records and a NUL included."""
    from datetime import datetime

    import orjson

    from services.ingest.api.routes import steps_translator
    from services.ingest.connectors import WIRE_FORMATS
    from services.ingest.connectors.wire import PageContext
    from services.ingest.domain.details import read_details
    from services.ingest.domain.names import status_name
    from services.ingest.simulator.data import VN
    from services.ingest.store.pages import COPY_COLUMNS
    from services.ingest.sync.prepare import decode_body, prepare_body

    from .ingest_db import AGENCIES
    from .test_ingest_fastpath import copy_fields

    sim = build(13, 500, malformed_rate=0.08)
    now = datetime.fromtimestamp(sim.clock, VN)
    body = sim.dialect_page(dialect, offset=0, size=450)
    ctx = PageContext(cursor=None, limit=450, since=None, options={})
    wire = WIRE_FORMATS[dialect]
    assert wire.to_typed is not None and wire.to_national is not None
    assert b"\\u0000" in body  # a NUL-byte malformation is on the page
    one_pass = decode_body(body, dialect, "dossiers", "s1", AGENCIES, now, ctx, "run-1")
    national = wire.to_national(body, "dossiers", ctx)
    reference = prepare_body(national, "dossiers", "s1", AGENCIES, now, run_id="run-1")
    assert isinstance(one_pass, tuple) and isinstance(reference, tuple)
    (page, rejected), (want, want_rejected) = one_pass, reference
    assert rejected == want_rejected > 0 and page.codes
    # Rejections carry the same codes and reasons; their raw record is the vendor's record
    # in the national field set, processing steps included, and beside it the record as the
    # vendor sent it (for re-processing with a corrected mapping).
    assert [r[:2] for r in page.rejections] == [r[:2] for r in want.rejections]
    assert all('"QuaTrinhXuLy"' in r[2] for r in page.rejections)
    sent = orjson.loads(body)["content" if dialect == "vnpt-igate" else "data"]
    assert all(r[4] is not None and orjson.loads(r[4]) in sent for r in page.rejections)
    assert [r[:4] for r in page.rejections] == [r[:4] for r in want.rejections]
    page.rejections = want.rejections
    # The details: the one pass keeps the vendor's steps as sent, translated when shown; the
    # national translation carries them translated. Shown, they are the same.
    at = COPY_COLUMNS.index("details")

    def shown(p: Any) -> list[Any]:
        rows = copy_fields(p.copy_data) or []
        for row in rows:
            row[at] = read_details(json.dumps(row[at]), status_name, steps_translator(ctx.options))
        return rows

    assert shown(page) == shown(want) and shown(page)
    rows = shown(page)
    assert all(r[at].steps for r in rows) and any(r[at].fees for r in rows)
    assert any(r[at].supplements for r in rows)
    page.copy_data, page.row_starts = want.copy_data, want.row_starts
    assert page == want


async def test_a_page_connector_of_the_earlier_seam_still_runs(pool: asyncpg.Pool) -> None:
    """A module written for the earlier seam (only `fetch_page`, no declared capabilities) is
    registered as it is and runs through the whole engine: adapted to the national wire."""
    from services.ingest import connectors
    from services.ingest.connectors.national import NationalJsonConnector

    class PageOnly:
        def __init__(self, config: ConnectorConfig) -> None:
            self._inner = NationalJsonConnector(config.model_copy(update={"kind": "national-json"}))

        async def fetch_page(self, feed: Any, **kw: Any) -> Any:
            return await self._inner.fetch_page(feed, **kw)

        async def aclose(self) -> None:
            await self._inner.aclose()

    kind = "page-only-test"
    connectors.register(kind, PageOnly)
    try:
        sim = build(29, 600, malformed_rate=0.02, faults=Faults(error_rate=0.1, garble_rate=0.05))
        with serve_simulator(sim) as url:
            sid = await add_source(pool, url, kind=kind)
            engine = SyncEngine(pool, policy=FAST, workers=1)
            try:
                result = await engine.run(sid, "dossiers")
                assert result.status == "partial", result
                good, _ = expected(sim, sid)
                assert await stored(pool, sid) == good
            finally:
                await engine.stop()
    finally:
        connectors._REGISTRY.pop(kind, None)
        connectors._CAPABILITIES.pop(kind, None)
