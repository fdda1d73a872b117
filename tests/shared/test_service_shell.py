"""Every service answers health, readiness, metrics and OpenAPI, and guards the rest with JWTs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from services.ingest.main import create_app as ingest_app
from services.scoring.main import create_app as scoring_app
from services.tasks.main import create_app as tasks_app
from shared.settings import Settings
from tests.conftest import TEST_JWT_SECRET, running

APPS = {"ingest": ingest_app, "scoring": scoring_app, "tasks": tasks_app}


@pytest.mark.parametrize("service", sorted(APPS))
async def test_health_ready_metrics_and_openapi(
    service: str, make_settings: Callable[..., Settings]
) -> None:
    app = APPS[service](make_settings(service_name=service))
    async with running(app) as client:
        health = await client.get("/healthz")
        assert health.status_code == 200 and health.json()["service"] == service
        assert health.headers["x-request-id"]

        ready = await client.get("/readyz")
        for _ in range(50):
            if ready.status_code == 200:
                break
            import asyncio

            await asyncio.sleep(0.2)
            ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text
        own = {"ingest": {"sync_engine": True}}.get(service, {})
        assert ready.json()["checks"] == {"database": True, "broker": True, **own}

        metrics = await client.get("/metrics")
        assert metrics.status_code == 200 and "http_requests_total" in metrics.text

        spec = (await client.get("/openapi.json")).json()
        ids = [op["operationId"] for path in spec["paths"].values() for op in path.values()]
        assert "health-healthz" in ids and len(ids) == len(set(ids))
        assert "ProblemDetail" in spec["components"]["schemas"]


def _forge(secret: str = TEST_JWT_SECRET, **claims: object) -> str:
    now = datetime.now(UTC)
    base: dict[str, object] = {
        "sub": "x",
        "role": "admin",
        "iss": "cchc-monitor",
        "aud": "cchc-monitor",
        "iat": now,
        "exp": now + timedelta(hours=1),
    }
    base.update(claims)
    return jwt.encode({k: v for k, v in base.items() if v is not None}, secret, algorithm="HS256")


async def test_protected_endpoints_refuse_bad_tokens_as_problem_json(
    make_settings: Callable[..., Settings], auth: Callable[..., dict[str, str]]
) -> None:
    app = tasks_app(make_settings(service_name="tasks", workers_enabled=False))
    # Pick any operation outside the health tag: it must demand a token.
    async with running(app) as client:
        spec = (await client.get("/openapi.json")).json()
        guarded = [
            p
            for p, ops in spec["paths"].items()
            if any("health" not in op.get("tags", []) for op in ops.values())
            and "get" in ops
            and "{" not in p
        ]
        if not guarded:
            pytest.fail("the tasks service exposes no guarded GET endpoint to check")
        path = guarded[0]
        bad_tokens = {
            "missing": None,
            "wrong secret": _forge(secret="another-secret-entirely-0123456789abcdef"),
            "wrong audience": _forge(aud="someone-else"),
            "wrong issuer": _forge(iss="evil"),
            "expired": _forge(exp=datetime.now(UTC) - timedelta(minutes=5)),
            "unknown role": _forge(role="superuser"),
            "officer without unit": _forge(role="officer"),
            # PyJWT's "none" algorithm takes "" as no key (its annotations refuse None)
            "alg none": jwt.encode({"sub": "x", "role": "admin"}, "", algorithm="none"),
        }
        for label, tok in bad_tokens.items():
            headers = {"Authorization": f"Bearer {tok}"} if tok else {}
            r = await client.get(path, headers=headers)
            assert r.status_code == 401, (label, r.status_code, r.text)
            assert r.headers["content-type"].startswith("application/problem+json"), label
            assert r.json()["status"] == 401
        ok = await client.get(path, headers=auth("admin"))
        assert ok.status_code not in (401, 403), ok.text


def test_production_refuses_development_keys() -> None:
    with pytest.raises(ValueError, match="refused"):
        Settings(env="production", jwt_secret="dev-" + "x" * 40)
    with pytest.raises(ValueError):
        Settings(env="production")
    assert Settings(env="production", jwt_secret="p" * 40).jwt_secret
