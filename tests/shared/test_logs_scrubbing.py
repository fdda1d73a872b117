"""No secret in any log line (issue 16 item 8).

The services run at DEBUG (SQLAlchemy statements, httpx, everything) through flows that
handle secrets: sources with an API key and an OAuth client secret are created, changed,
synced (the connector sends the key and gets a token) and written where the database refuses
the write; requests carry bearer tokens. Every line the services would write (JsonFormatter)
is checked for those secrets. The suite-wide watch in tests/conftest.py checks the same for the
JWT key and every token of every test.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable

import asyncpg
import httpx
import pytest

from services.ingest.main import create_app as ingest_app
from services.ingest.simulator import build
from services.tasks.main import create_app as tasks_app
from shared.logging import JsonFormatter, scrub
from shared.settings import Settings, to_plain_url
from tests.conftest import TEST_JWT_SECRET, SecretWatch, running
from tests.ingest.conftest import serve_simulator


class Lines(logging.Handler):
    cchc_keep = True

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter("test"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await asyncpg.create_pool(to_plain_url(database_url), min_size=1, max_size=2)
    yield p
    await p.close()


async def test_secrets_of_sources_tokens_and_settings_never_reach_a_log_line(
    make_settings: Callable[..., Settings],
    auth: Callable[..., dict[str, str]],
    pool: asyncpg.Pool,
    secret_watch: SecretWatch,
) -> None:
    api_key = f"key-{uuid.uuid4().hex}"
    client_secret = f"cs-{uuid.uuid4().hex}"
    secret_watch.secrets.update({api_key, client_secret})
    sim = build(71, 120, api_key=api_key, client_secret=client_secret)
    lines = Lines()
    admin = auth("admin")
    tag = uuid.uuid4().hex[:6]
    # the database refuses a source write (a real server error, after the statement was sent
    # with the credentials as parameters)
    await pool.execute(f"""
        CREATE OR REPLACE FUNCTION ingest.refuse_{tag}() RETURNS trigger AS $$
        BEGIN RAISE EXCEPTION 'source writes refused (test)'; END $$ LANGUAGE plpgsql;
        CREATE TRIGGER refuse_{tag} BEFORE INSERT OR UPDATE ON ingest.sources FOR EACH ROW
        WHEN (NEW.name LIKE 'refused%') EXECUTE FUNCTION ingest.refuse_{tag}();""")
    try:
        with serve_simulator(sim) as url:
            app = ingest_app(make_settings(service_name="ingest", log_level="DEBUG"))
            logging.getLogger().addHandler(lines)
            async with running(app) as client:
                key_src, oauth_src = f"key-{tag}", f"oauth-{tag}"
                for sid, auth_in in [
                    (key_src, {"type": "api_key", "key": api_key}),
                    (oauth_src, {"type": "oauth2_client_credentials", "token_url": "/oauth/token",
                                 "client_id": "cchc-monitor", "client_secret": client_secret}),
                ]:  # fmt: skip
                    body = {"id": sid, "name": "Nguồn thử", "base_url": url, "auth": auth_in,
                            "agencies_from_registry": "demo-igate", "feeds": ["dossiers"]}  # fmt: skip
                    r = await client.post("/api/v1/sources", json=body, headers=admin)
                    assert r.status_code == 201, r.text
                    r = await client.post(f"/api/v1/sources/{sid}/sync", json={}, headers=admin)
                    assert r.status_code == 202, r.text
                for _ in range(200):  # both runs pulled with the credentials
                    runs = (await client.get("/api/v1/runs", headers=admin)).json()
                    mine = [x for x in runs if x["source_id"] in (key_src, oauth_src)]
                    if len(mine) == 2 and all(x["status"] != "running" for x in mine):
                        break
                    await asyncio.sleep(0.1)
                assert {x["status"] for x in mine} == {"succeeded"}, mine
                refused = {"id": f"refused-{tag}", "name": "refused source", "base_url": url,
                           "auth": {"type": "oauth2_client_credentials", "token_url": "/t",
                                    "client_id": "c", "client_secret": client_secret}}  # fmt: skip
                # answered as a 500, as uvicorn would (the in-process transport re-raises)
                transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
                raw = httpx.AsyncClient(transport=transport, base_url="http://testserver")
                r = await raw.post("/api/v1/sources", json=refused, headers=admin)
                assert r.status_code == 500  # the database refused: a real server error
                assert client_secret not in r.text
                r = await raw.patch(
                    f"/api/v1/sources/{key_src}", headers=admin,
                    json={"name": "refused rename", "auth": {"type": "api_key", "key": api_key}},
                )  # fmt: skip
                assert r.status_code == 500
                await raw.aclose()
            # the tasks service with tokens in the headers, at DEBUG too
            tasks = tasks_app(make_settings(service_name="tasks", log_level="DEBUG",
                                            workers_enabled=False))  # fmt: skip
            async with running(tasks) as client:
                assert (await client.get("/api/v1/me", headers=admin)).status_code == 200
                assert (await client.get("/api/v1/items", headers=admin)).status_code == 200
    finally:
        logging.getLogger().removeHandler(lines)
        logging.getLogger().setLevel("INFO")
        await pool.execute(f"DROP TRIGGER IF EXISTS refuse_{tag} ON ingest.sources")
        await pool.execute(f"DROP FUNCTION IF EXISTS ingest.refuse_{tag}()")
        await pool.execute("DELETE FROM ingest.sources WHERE id LIKE $1", f"%-{tag}")
    text = "\n".join(lines.lines)
    assert "source writes refused (test)" in text  # the failures were logged, with traceback
    assert "INSERT INTO ingest.sources" in text  # the statement was logged at DEBUG
    token = admin["Authorization"].removeprefix("Bearer ")
    for secret in (api_key, client_secret, TEST_JWT_SECRET, token):
        leaked = [line for line in lines.lines if secret in line]
        assert not leaked, leaked[0][:500]


def test_secret_shaped_text_is_redacted_without_being_registered() -> None:
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    line = scrub(
        f"Authorization: Bearer {token} client_secret=abc123&scope=x "
        "{'password': 'hunter2', 'api_key': \"k-1\"} the secretary arrived"
    )
    for secret in (token, "abc123", "hunter2", "k-1"):
        assert secret not in line
    assert "scope=x" in line and "the secretary arrived" in line
