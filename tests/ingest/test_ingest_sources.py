"""Registering sources: validation with the field named, credentials sealed at rest (AES-GCM,
key ids, rotation) and never shown, and errors reaching a source reported as source errors."""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest

from services.ingest.connectors.retry import RetryPolicy
from services.ingest.main import create_app
from services.ingest.simulator import build
from services.ingest.store.credentials import CredentialError, Keyring, reseal
from services.ingest.sync.engine import SyncEngine
from shared.settings import Settings, to_plain_url
from tests.conftest import running

from .conftest import serve_simulator
from .ingest_db import add_source

KEY_A = base64.b64encode(b"A" * 32).decode()
KEY_B = base64.b64encode(b"B" * 32).decode()
SECRETS = ("demo-secret", "demo-key")


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await asyncpg.create_pool(to_plain_url(database_url), min_size=1, max_size=4)
    yield p
    await p.close()


def _source(url: str, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": f"src-{uuid.uuid4().hex[:8]}", "name": "Hưng Yên", "base_url": url,
        "auth": {"type": "oauth2_client_credentials", "token_url": "/oauth/token",
                 "client_id": "cchc-monitor", "client_secret": "demo-secret"},
        "agencies_from_registry": "demo-igate", "feeds": ["dossiers"],
    }  # fmt: skip
    body.update(over)
    return body


async def test_invalid_sources_are_422_naming_the_field(
    make_settings: Callable[..., Settings], auth: Callable[..., dict[str, str]],
) -> None:  # fmt: skip
    admin = auth("admin")
    app = create_app(make_settings(service_name="ingest", workers_enabled=False))
    sim = build(3, 50)
    with serve_simulator(sim) as url:
        async with running(app) as client:
            cases: list[tuple[dict[str, Any], list[str]]] = [
                # the README's own example: a token URL with no real host
                (_source(url, auth={"type": "oauth2_client_credentials",
                                    "token_url": "https://…/token", "client_id": "c",
                                    "client_secret": "s"}),
                 ["body", "auth", "oauth2_client_credentials", "token_url"]),
                (_source("motcua.example.gov.vn"), ["body", "base_url"]),
                (_source("ftp://motcua.example.gov.vn"), ["body", "base_url"]),
                (_source("http://127.0.0.1:notaport"), ["body", "base_url"]),
                (_source(url, auth={"type": "kerberos", "ticket": "x"}), ["body", "auth"]),
                (_source(url, kind="viettel-xyz"), ["body", "kind"]),
                (_source("http://127.0.0.1:9"), ["body", "base_url"]),  # nothing listens there
            ]  # fmt: skip
            for body, loc in cases:
                r = await client.post("/api/v1/sources", json=body, headers=admin)
                assert r.status_code == 422, (body, r.text)
                assert r.headers["content-type"].startswith("application/problem+json")
                locs = [e["loc"][: len(loc)] for e in r.json().get("errors", [])]
                assert loc in locs, (loc, r.json())
                assert "s3cret" not in r.text
            r = await client.get("/api/v1/sources", headers=admin)
            registered = {s["id"] for s in r.json()}
            assert r.status_code == 200 and not registered & {b["id"] for b, _ in cases}


async def test_credentials_sealed_at_rest_never_shown_and_rotated(
    make_settings: Callable[..., Settings], auth: Callable[..., dict[str, str]],
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    monkeypatch.setenv("INGEST_CREDENTIAL_KEYS", f"a:{KEY_A}")
    admin = auth("admin")
    sim = build(7, 300)
    with serve_simulator(sim) as url:
        app = create_app(make_settings(service_name="ingest", workers_enabled=False))
        async with running(app) as client:
            body = _source(url)
            r = await client.post("/api/v1/sources", json=body, headers=admin)
            assert r.status_code == 201, r.text
            sid = body["id"]
            basic = _source(url, kind="opencps", options={"group_id": "35417"},
                            auth={"type": "basic", "username": "cchc-monitor",
                                  "password": "demo-secret"})  # fmt: skip
            assert (
                await client.post("/api/v1/sources", json=basic, headers=admin)
            ).status_code == 201
            for path in (f"/api/v1/sources/{sid}", "/api/v1/sources"):
                text = (await client.get(path, headers=admin)).text
                assert not any(s in text for s in SECRETS) and "sealed" not in text
        # The database holds no plaintext secret: not in the sources, nor anywhere in the schema.
        stored = {r["id"]: json.loads(r["auth"]) for r in await pool.fetch(
            "SELECT id, auth FROM ingest.sources WHERE id = ANY($1)", [sid, basic["id"]])}  # fmt: skip
        for auth_row in stored.values():
            assert auth_row["sealed"]["kid"] == "a"
            assert not any(s in json.dumps(auth_row) for s in SECRETS)
            assert not {"client_secret", "password", "key"} & set(auth_row)
        dump = await pool.fetchval(
            "SELECT string_agg(t::text, ' ') FROM ingest.sources t WHERE id = ANY($1)",
            [sid, basic["id"]],
        )
        assert "demo-secret" not in dump
        # A sealed value does not open for another source (the id is the associated data).
        ring_a = Keyring.parse(f"a:{KEY_A}")
        with pytest.raises(CredentialError):
            ring_a.open(stored[sid], basic["id"])

        # The engine opens them and pulls; nothing secret is logged.
        engine = SyncEngine(pool, policy=RetryPolicy(attempts=3, base_s=0.01), keyring=ring_a)
        try:
            with caplog.at_level("DEBUG"):
                for source_id in (sid, basic["id"]):
                    result = await engine.run(source_id, "dossiers")
                    assert result.status == "succeeded" and result.stored > 0, result
            assert "demo-secret" not in caplog.text
        finally:
            await engine.stop()

        # Rotation: b first, a still listed → everything resealed with b; then a can go.
        ring_ba = Keyring.parse(f"b:{KEY_B},a:{KEY_A}")
        ours = [sid, basic["id"]]
        assert await reseal(pool, ring_ba, ours) == 2
        assert await reseal(pool, ring_ba, ours) == 0
        rows = await pool.fetch("SELECT auth FROM ingest.sources WHERE id = ANY($1)",
                                [sid, basic["id"]])  # fmt: skip
        assert {json.loads(r["auth"])["sealed"]["kid"] for r in rows} == {"b"}
        engine = SyncEngine(pool, policy=RetryPolicy(attempts=3, base_s=0.01),
                            keyring=Keyring.parse(f"b:{KEY_B}"))  # fmt: skip
        try:
            assert (await engine.run(sid, "dossiers")).status == "succeeded"
        finally:
            await engine.stop()
        # With only the old key the credentials do not open: a source error, not a crash.
        engine = SyncEngine(pool, policy=RetryPolicy(attempts=1), keyring=ring_a)
        try:
            failed = await engine.run(sid, "dossiers")
            assert failed.status == "failed" and failed.error and failed.error.startswith("auth")
        finally:
            await engine.stop()
    assert os.environ["INGEST_CREDENTIAL_KEYS"] == f"a:{KEY_A}"


async def test_errors_reaching_a_source_are_source_errors(pool: asyncpg.Pool) -> None:
    """URLs that cannot be used (stored before validation, or gone bad) end the run `failed`
    with a source error kind, never "internal"."""
    ring = Keyring.parse(f"a:{KEY_A}")
    engine = SyncEngine(pool, policy=RetryPolicy(attempts=2, base_s=0.01), keyring=ring)
    try:
        for url, auth in (
            ("http://127.0.0.1:9", {"type": "api_key", "key": "k"}),
            ("http://xn--bad-.invalid…:80", {"type": "api_key", "key": "k"}),
            ("http://127.0.0.1:9", {"type": "oauth2_client_credentials",
                                    "token_url": "https://…/token", "client_id": "c",
                                    "client_secret": "s"}),
        ):  # fmt: skip
            sid = await add_source(pool, url, auth=json.dumps(auth))
            result = await engine.run(sid, "dossiers")
            assert result.status == "failed", result
            assert result.error and not result.error.startswith("internal"), result.error
    finally:
        await engine.stop()
