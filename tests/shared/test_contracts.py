"""Contracts and architecture are checked, not only reviewed."""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path

import asyncpg

from shared import migrate
from shared.devstack import Postgres
from shared.events import asyncapi
from shared.events.payloads import ALL_PAYLOADS, PAYLOADS_BY_TYPE

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("ingest", "scoring", "tasks")


def test_asyncapi_document_matches_the_payload_models() -> None:
    committed = (ROOT / "docs" / "asyncapi.yaml").read_text(encoding="utf-8")
    assert committed == asyncapi.render(), "docs/asyncapi.yaml drifted: run `make asyncapi`"
    doc = asyncapi.build()
    names = {m["name"] for m in doc["components"]["messages"].values()}
    assert names == set(PAYLOADS_BY_TYPE)
    assert all(t.endswith(".v1") for t in names)
    assert len(ALL_PAYLOADS) == len(PAYLOADS_BY_TYPE)  # one model per type


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_services_import_shared_never_each_other() -> None:
    offences = []
    for service in SERVICES:
        for path in (ROOT / "services" / service).rglob("*.py"):
            for module in _imports(path):
                parts = module.split(".")
                if parts[0] == "services" and len(parts) > 1 and parts[1] != service:
                    offences.append(f"{path.relative_to(ROOT)} imports {module}")
    for path in (ROOT / "shared").rglob("*.py"):
        for module in _imports(path):
            if module.split(".")[0] == "services":
                offences.append(f"{path.relative_to(ROOT)} imports {module}")
    assert offences == []


async def test_every_service_migrates_up_down_and_up_again(pg_server: Postgres) -> None:
    name = "cchc_migrations_check"
    url = await pg_server.create_database(name)
    try:
        for service in SERVICES:
            await asyncio.to_thread(migrate.upgrade, service, url)
            await asyncio.to_thread(migrate.downgrade, service, url)
            conn = await asyncpg.connect(url)
            try:
                left = await conn.fetchval(
                    "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1 "
                    "AND table_name <> 'alembic_version'",
                    service,
                )
            finally:
                await conn.close()
            assert left == 0, f"{service} downgrade left {left} tables"
            await asyncio.to_thread(migrate.upgrade, service, url)
    finally:
        await pg_server.drop_database(name)
