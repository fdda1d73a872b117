"""What an operator sees of a request: its id on every response, 500s included, counted in
`/metrics`, and one JSON access-log line carrying the same id."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from fastapi import APIRouter

from services.tasks.store.models import outbox_table, processed_events_table
from shared.app import ServiceSpec, create_service_app
from shared.settings import Settings
from tests.conftest import running

router = APIRouter(tags=["probe"])


@router.get("/api/v1/probe/boom")
async def boom() -> dict[str, str]:
    raise RuntimeError("a bug nobody caught")


def probe_app(settings: Settings):
    spec = ServiceSpec(
        name="tasks",
        title="probe",
        description="probe",
        version="0",
        routers=[router],
        outbox_table=outbox_table,
        processed_table=processed_events_table,
    )
    return create_service_app(spec, settings)


async def test_an_unhandled_error_is_a_counted_problem_with_a_request_id(
    make_settings: Callable[..., Settings],
    auth: Callable[..., dict[str, str]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    app = probe_app(make_settings(service_name="tasks", workers_enabled=False))
    async with running(app) as client:
        res = await client.get(
            "/api/v1/probe/boom", headers={**auth("admin"), "X-Request-ID": "req-500-probe"}
        )
        assert res.status_code == 500
        assert res.headers["content-type"].startswith("application/problem+json")
        assert res.headers["x-request-id"] == "req-500-probe"
        assert "a bug nobody caught" not in res.text  # no internals in the answer
        metrics = (await client.get("/metrics")).text
        assert (
            'http_requests_total{method="GET",route="/api/v1/probe/boom",status="500"}' in metrics
        )
        fresh = await client.get("/healthz")
        assert len(fresh.headers["x-request-id"]) == 32  # a new id when the caller sent none

    # the service logs one JSON object per line on stdout
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    mine = [x for x in lines if x.get("request_id") == "req-500-probe"]
    access = [x for x in mine if x["logger"] == "cchc.access"]
    assert [(x["method"], x["path"], x["status"]) for x in access] == [
        ("GET", "/api/v1/probe/boom", 500)
    ]
    assert any(x["logger"] == "cchc.problems" and "RuntimeError" in x["exc"] for x in mine)


async def test_a_request_id_that_is_not_printable_is_replaced(
    make_settings: Callable[..., Settings],
) -> None:
    app = probe_app(make_settings(service_name="tasks", workers_enabled=False))
    async with running(app) as client:
        res = await client.get("/healthz", headers={"X-Request-ID": "evil\tid"})
        assert res.headers["x-request-id"] != "evil\tid"
