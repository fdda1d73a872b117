"""Bad input is a 4xx problem in every service, never a 500 (issue 16, items 9, 10, 12, 13).

NUL characters, oversized bodies (declared or streamed), malformed UTF-8 and out-of-range
numbers are refused at the edge by shared pieces (shared.request_guard, shared.bounds), so the
checks below go through real endpoints of all three services.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from services.ingest.main import create_app as ingest_app
from services.scoring.main import create_app as scoring_app
from services.tasks.main import create_app as tasks_app
from shared.problems import PROBLEM_MEDIA_TYPE
from shared.settings import Settings
from tests.conftest import running

Auth = Callable[..., dict[str, str]]
APPS = {"ingest": ingest_app, "scoring": scoring_app, "tasks": tasks_app}


@pytest.fixture(scope="module")
async def clients(
    make_settings: Callable[..., Settings],
) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    out: dict[str, httpx.AsyncClient] = {}
    contexts = []
    for name, factory in APPS.items():
        settings = make_settings(service_name=name, workers_enabled=False, max_body_bytes=64 * 1024)
        ctx = running(factory(settings))
        out[name] = await ctx.__aenter__()
        contexts.append(ctx)
    yield out
    for ctx in reversed(contexts):
        await ctx.__aexit__(None, None, None)


def assert_problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
    body: dict[str, Any] = r.json()
    assert body["status"] == status
    return body


# (service, method, path, JSON body) with a text field where a NUL goes
NUL_CASES = [
    ("ingest", "GET", "/api/v1/dossiers/HS%00X", None),
    ("ingest", "GET", "/api/v1/runs?source_id=a%00b", None),
    ("ingest", "GET", "/api/v1/quarantine?reason=x%00", None),
    ("ingest", "POST", "/api/v1/sources",
     {"id": "nul-src", "name": "a\u0000b", "base_url": "http://x", "auth": {"type": "api_key",
                                                                           "key": "k"}}),
    ("scoring", "GET", "/api/v1/units/P21%00/scores/2026Q3", None),
    ("scoring", "GET", "/api/v1/alerts?unit_id=%00", None),
    ("scoring", "PUT", "/api/v1/units/P21.SNV/par/2019/entries/1.1",
     {"points": 0.5, "evidence": "Biên bản \u0000"}),
    ("tasks", "GET", "/api/v1/items?q=a%00", None),
    ("tasks", "GET", "/api/v1/items/itm%00", None),
    ("tasks", "POST", "/api/v1/conclusions/parse", {"text": "UBND tỉnh\u0000 yêu cầu"}),
    ("tasks", "POST", "/api/v1/conclusions",
     {"title": "t", "findings": [{"text": "x\u0000", "items": []}]}),
]  # fmt: skip


@pytest.mark.parametrize(("service", "method", "path", "body"), NUL_CASES)
async def test_nul_characters_are_422_everywhere(
    clients: dict[str, httpx.AsyncClient],
    auth: Auth,
    service: str,
    method: str,
    path: str,
    body: Any,
) -> None:
    r = await clients[service].request(method, path, json=body, headers=auth("admin"))
    problem = assert_problem(r, 422)
    assert "NUL" in problem["detail"]


async def test_nul_in_a_form_field_and_a_text_body(
    clients: dict[str, httpx.AsyncClient], auth: Auth
) -> None:
    form = await clients["tasks"].post(
        "/api/v1/conclusions/parse", content=b"text=a%00b",
        headers={**auth("inspector"), "content-type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    assert_problem(form, 422)
    csv = await clients["scoring"].post(
        "/api/v1/units/import", content=b"id,name,level,kind,valid_from\nX,a\x00,l,k,2020-01-01\n",
        headers={**auth("admin"), "content-type": "text/csv"},
    )  # fmt: skip
    assert_problem(csv, 422)


async def test_an_escaped_backslash_before_u0000_is_text_not_nul(
    clients: dict[str, httpx.AsyncClient], auth: Auth
) -> None:
    # "\\u0000" in JSON is a backslash then "u0000": storable text, not a NUL
    r = await clients["tasks"].post(
        "/api/v1/conclusions/parse",
        content='{"text": "UBND tỉnh yêu cầu \\\\u0000 Sở Nội vụ"}'.encode(),
        headers={**auth("inspector"), "content-type": "application/json"},
    )
    assert r.status_code != 422 or "NUL" not in r.text, r.text
    assert r.status_code < 500


async def test_bodies_over_the_limit_are_413_declared_or_streamed(
    clients: dict[str, httpx.AsyncClient], auth: Auth
) -> None:
    big = b'{"text": "' + b"x" * (100 * 1024) + b'"}'
    declared = await clients["tasks"].post(
        "/api/v1/conclusions/parse", content=big,
        headers={**auth("inspector"), "content-type": "application/json"},
    )  # fmt: skip
    assert_problem(declared, 413)
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(1000):  # 16 MB if it were all read
            sent += 1
            yield b"x" * 16 * 1024

    streamed = await clients["ingest"].post(
        "/api/v1/sources", content=chunks(),
        headers={**auth("admin"), "content-type": "application/json"},
    )  # fmt: skip
    assert_problem(streamed, 413)
    assert sent < 10, "the guard stopped reading right after the limit"
    # an upload has its own, larger limit: a 100 KB file passes the guard
    upload = await clients["tasks"].post(
        "/api/v1/conclusions/parse",
        files={"file": ("kl.txt", "UBND tỉnh yêu cầu:\n\n1. Sở Nội vụ\n".encode() * 2500)},
        headers=auth("inspector"),
    )
    assert upload.status_code != 413, upload.text


async def test_malformed_utf8_bodies_are_422(
    clients: dict[str, httpx.AsyncClient], auth: Auth
) -> None:
    for service, path in [("tasks", "/api/v1/conclusions/parse"), ("ingest", "/api/v1/sources")]:
        r = await clients[service].post(
            path, content=b'{"text": "S\xe1 N\xf4i v\xfa"}',
            headers={**auth("admin"), "content-type": "application/json"},
        )  # fmt: skip
        assert "UTF-8" in assert_problem(r, 422)["detail"]
    surrogate = await clients["tasks"].post(
        "/api/v1/conclusions/parse", content=b'{"text": "UBND \\ud800 t\\u1ec9nh"}',
        headers={**auth("inspector"), "content-type": "application/json"},
    )  # fmt: skip
    assert "surrogate" in assert_problem(surrogate, 422)["detail"]
    nan = await clients["scoring"].put(
        "/api/v1/units/P21.SNV/counters/202609/personal_data_uses", content=b'{"value": Infinity}',
        headers={**auth("admin"), "content-type": "application/json"},
    )  # fmt: skip
    assert_problem(nan, 422)


OUT_OF_RANGE = [
    ("ingest", "/api/v1/runs?limit=-1"),
    ("ingest", "/api/v1/quarantine?after_id=9223372036854775808"),
    ("ingest", "/api/v1/quarantine?after_id=-1"),
    ("scoring", "/api/v1/alerts?limit=-1"),
    ("scoring", "/api/v1/par-frameworks/29543426"),
    ("scoring", "/api/v1/units/P21.SNV/par/29543426"),
    ("scoring", "/api/v1/units/P21.SNV/scores/2026Q3?version=99999999999"),
    ("scoring", "/api/v1/units/P21.SNV/scores/2026Q3?as_of=0001-01-01T00:00:00Z"),
    ("scoring", "/api/v1/units?on=0001-01-01"),
    ("tasks", "/api/v1/items?limit=-1"),
    ("tasks", "/api/v1/items?deadline_from=0001-01-01"),
    ("tasks", "/api/v1/reports/agencies?deadline_to=9999-12-31"),
]


@pytest.mark.parametrize(("service", "path"), OUT_OF_RANGE)
async def test_out_of_range_numbers_and_dates_are_422(
    clients: dict[str, httpx.AsyncClient], auth: Auth, service: str, path: str
) -> None:
    assert_problem(await clients[service].get(path, headers=auth("admin")), 422)


async def test_out_of_range_body_numbers_are_422(
    clients: dict[str, httpx.AsyncClient], auth: Auth
) -> None:
    r = await clients["ingest"].post(
        "/api/v1/quarantine/reprocess",
        json={"source_id": "x", "ids": [2**64]},
        headers=auth("admin"),
    )
    assert_problem(r, 422)
    r = await clients["ingest"].post(
        "/api/v1/sources",
        json={"id": "big-sched", "name": "n", "base_url": "http://x",
              "auth": {"type": "api_key", "key": "k"}, "schedule_s": 2**40},
        headers=auth("admin"),
    )  # fmt: skip
    assert_problem(r, 422)


async def test_units_import_refuses_a_csv_without_level_or_not_utf8(
    clients: dict[str, httpx.AsyncClient], auth: Auth
) -> None:
    h = {**auth("admin"), "content-type": "text/csv"}
    client = clients["scoring"]
    no_level = await client.post(
        "/api/v1/units/import", content=b"id,name,kind,valid_from\nX1,A,k,2020-01-01\n", headers=h
    )
    assert "level" in assert_problem(no_level, 422)["detail"]
    short_row = await client.post(
        "/api/v1/units/import", content=b"id,name,level,kind,valid_from\nX1,A\n", headers=h
    )
    assert "line 2" in assert_problem(short_row, 422)["detail"]
    latin1 = await client.post(
        "/api/v1/units/import", content="id,name\nX,Sô\n".encode("cp1258"),
        headers={**auth("admin"), "content-type": "application/octet-stream"},
    )  # fmt: skip
    assert_problem(latin1, 422)
    bad_json = await client.post(
        "/api/v1/units/import", json={"units": [{"id": "X"}]}, headers=auth("admin")
    )
    assert_problem(bad_json, 422)
    # found by Schemathesis: lineage between units that do not exist (a foreign key refusal)
    dangling = await client.post(
        "/api/v1/units/import", headers=auth("admin"),
        json={"units": [], "lineage": [{"from_id": "", "to_id": "", "kind": "merged_into",
                                        "effective_on": "2020-01-01"}]},
    )  # fmt: skip
    assert "does not exist" in assert_problem(dangling, 422)["detail"]
    unit = {"id": "X2", "name": "n", "level": "commune", "kind": "xã", "valid_from": "2000-01-01"}
    twice = await client.post(
        "/api/v1/units/import", json={"units": [unit, unit]}, headers=auth("admin")
    )
    assert "twice" in assert_problem(twice, 422)["detail"]


async def test_conclusion_report_outside_the_officers_agency_is_404(
    clients: dict[str, httpx.AsyncClient], auth: Auth
) -> None:
    client = clients["tasks"]
    body = {
        "number": f"{uuid.uuid4().hex[:4]}/TB",
        "title": "Thông báo kết luận kiểm tra CCHC",
        "findings": [{"text": "Tồn tại", "items": [{"title": "Rà soát", "lead_unit_id": "P21.SNV"}]}],
    }  # fmt: skip
    created = await client.post("/api/v1/conclusions", json=body, headers=auth("inspector"))
    assert created.status_code == 201, created.text
    cid = created.json()["id"]
    own = await client.get(f"/api/v1/reports/conclusions/{cid}", headers=auth("officer", "P21.SNV"))
    assert own.status_code == 200 and own.json()["total"] == 1
    other = auth("officer", "P21.STC")
    assert_problem(await client.get(f"/api/v1/conclusions/{cid}", headers=other), 404)
    assert_problem(await client.get(f"/api/v1/reports/conclusions/{cid}", headers=other), 404)


async def test_openapi_documents_downloads_and_resolves_every_ref(
    clients: dict[str, httpx.AsyncClient],
) -> None:
    media: dict[str, set[str]] = {}
    for name, client in clients.items():
        spec = (await client.get("/openapi.json")).json()
        text = str(spec)
        assert "#/$defs/" not in text, name
        schemas = spec["components"]["schemas"]
        for ref in _refs(spec):
            assert ref.removeprefix("#/components/schemas/") in schemas, (name, ref)
        for path, ops in spec["paths"].items():
            for op in ops.values():
                content = op["responses"].get("200", {}).get("content", {})
                media[f"{name} {path}"] = set(content)
    assert media["scoring /api/v1/exports/rankings.csv"] == {"text/csv"}
    assert media["scoring /api/v1/exports/rankings.xlsx"] == {
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    }
    assert "text/csv" in media["tasks /api/v1/exports/items"]
    assert "application/json" not in media["tasks /api/v1/exports/items"]


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        out = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return out + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []
