"""The service factory: every service is this app plus its own routers, consumers and workers.

It owns what is the same everywhere — settings, logging, request ids, problem+json errors,
auth, metrics, health and readiness, the database engine, the Kafka producer, the outbox relay
and the consumers' lifecycle — so a service module only declares what is its own.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Annotated, Any, Protocol

from aiokafka import AIOKafkaProducer
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from sqlalchemy import Table, make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared import tracing
from shared.auth.principal import Principal
from shared.auth.security import AuthConfig, current_principal, install_auth
from shared.db import make_engine, make_sessionmaker
from shared.docs import bilingual_description, bilingual_tags, install_docs
from shared.events.consumer import IdempotentConsumer
from shared.events.dlq_api import dlq_router
from shared.events.kafka import broker_reachable, ensure_topics, make_producer
from shared.events.lag import ConsumerLagSampler, Group
from shared.events.outbox import Outbox, OutboxRelay
from shared.logging import configure_logging, install_request_id
from shared.metrics import install_metrics
from shared.problems import (
    PROBLEM_MEDIA_TYPE,
    ProblemDetail,
    install_problem_handlers,
    problem_responses,
)
from shared.request_guard import RequestGuard
from shared.settings import Settings

log = logging.getLogger("cchc.app")


class Worker(Protocol):
    """A background loop the app starts after boot and stops on shutdown."""

    async def run(self) -> None: ...
    def stop(self) -> None: ...


@dataclass
class Runtime:
    """Process-wide resources, created in the lifespan and reached through `app.state`."""

    service: str
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    outbox: Outbox
    producer: AIOKafkaProducer
    broker_ready: asyncio.Event = field(default_factory=asyncio.Event)
    consumers: list[IdempotentConsumer] = field(default_factory=list)
    workers: list[Worker] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)
    # service-specific readiness checks (name → coroutine answering "healthy?"), e.g. a
    # watchdog that notices a wedged engine; /readyz answers 503 when one says no
    readiness: dict[str, Callable[[], Awaitable[bool]]] = field(default_factory=dict)


@dataclass
class ServiceSpec:
    name: str  # also the PostgreSQL schema and the CloudEvents source suffix
    title: str
    description: str
    version: str
    routers: Sequence[APIRouter]
    outbox_table: Table
    processed_table: Table
    openapi_tags: list[dict[str, Any]] = field(default_factory=list)
    consumers: Callable[[Runtime], list[IdempotentConsumer]] = lambda rt: []
    workers: Callable[[Runtime], list[Worker]] = lambda rt: []
    on_startup: Callable[[Runtime], Any] | None = None
    # body size limits by path prefix, where a route needs other than the settings' defaults
    body_limits: dict[str, int] = field(default_factory=dict)
    # path prefixes whose JSON records the handler validates and quarantines one by one
    record_paths: tuple[str, ...] = ()

    @property
    def source(self) -> str:
        return f"/cchc-monitor/{self.name}"


class Health(BaseModel):
    status: str = Field(examples=["ok"])
    service: str = Field(examples=["tasks"])


class Readiness(BaseModel):
    status: str = Field(examples=["ready"])
    checks: dict[str, bool] = Field(examples=[{"database": True, "broker": True}])


def operation_id(route: APIRoute) -> str:
    """Stable `tag-route_name` operation ids, so generated clients don't churn."""
    return f"{route.tags[0]}-{route.name}" if route.tags else route.name


def create_service_app(spec: ServiceSpec, settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings(service_name=spec.name)
    configure_logging(
        spec.name, settings.log_level, secrets=(settings.jwt_secret, _password(settings))
    )
    tracing.configure_tracing(spec.name, settings.otel_exporter_otlp_endpoint)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(
            settings.async_database_url, pool_size=settings.db_pool_size, schema=spec.name
        )
        runtime = Runtime(
            service=spec.name,
            settings=settings,
            engine=engine,
            sessions=make_sessionmaker(engine),
            outbox=Outbox(spec.outbox_table, spec.source),
            producer=make_producer(settings, f"{spec.name}-producer"),
        )
        app.state.runtime = runtime
        if spec.on_startup:
            result = spec.on_startup(runtime)
            if asyncio.iscoroutine(result):
                await result
        tasks: list[asyncio.Task[None]] = []
        if settings.workers_enabled:
            tasks.append(asyncio.create_task(_start_background(spec, runtime, tasks)))
        # Everything allocated so far (modules, profiles, the app) lives as long as the process:
        # move it out of the cyclic collector's generations, so a full collection during a
        # request does not rescan it (it showed as the p95 of big responses).
        gc.collect()
        gc.freeze()
        log.info("service started", extra={"service": spec.name})
        try:
            yield
        finally:
            await _shutdown(runtime, tasks)

    app = FastAPI(
        title=spec.title,
        description=bilingual_description(spec.name, spec.description),
        version=spec.version,
        lifespan=lifespan,
        docs_url=None,  # served from local assets by install_docs (no CDN)
        redoc_url=None,
        openapi_tags=bilingual_tags(
            [
                *spec.openapi_tags,
                {"name": "health", "description": "Liveness, readiness and metrics (no token)."},
                {"name": "session", "description": "The caller's identity as the token states it."},
                {
                    "name": "dead-letters",
                    "description": "Dead-lettered events: list, replay (admin).",
                },
            ]
        ),
        generate_unique_id_function=operation_id,
        responses={},
    )
    app.state.settings = settings
    app.state.spec = spec
    install_auth(app, AuthConfig.from_settings(settings))
    install_problem_handlers(app)
    app.add_middleware(
        RequestGuard,
        max_body_bytes=settings.max_body_bytes,
        max_upload_bytes=settings.max_upload_bytes,
        limits=spec.body_limits,
        record_paths=spec.record_paths,
    )
    install_request_id(app, settings.access_log_sample)
    install_metrics(app)
    install_docs(app)
    app.include_router(_health_router(spec.name))
    app.include_router(_session_router())
    app.include_router(dlq_router(settings))
    for router in spec.routers:
        app.include_router(router)
    _register_problem_schema(app)
    tracing.instrument_app(app)
    return app


def _password(settings: Settings) -> str | None:
    """The database password, if the URL carries one (never to be logged)."""
    try:
        return make_url(settings.async_database_url).password
    except Exception:
        return None


async def _start_background(
    spec: ServiceSpec, runtime: Runtime, tasks: list[asyncio.Task[None]]
) -> None:
    """Connect to the broker (retrying while it is down), then start relay and consumers."""
    delay = 0.5
    while True:
        try:
            await ensure_topics(runtime.settings)
            await runtime.producer.start()
            break
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("broker not reachable yet", extra={"error": repr(exc)})
            with suppress(Exception):
                await runtime.producer.stop()
            runtime.producer = make_producer(runtime.settings, f"{spec.name}-producer")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10)
    runtime.broker_ready.set()
    relay = OutboxRelay(
        runtime.engine,
        spec.outbox_table,
        lambda: make_producer(runtime.settings, f"{spec.name}-outbox-relay"),
        service=spec.name,
        poll_interval=runtime.settings.outbox_poll_interval_s,
        batch_size=runtime.settings.outbox_batch_size,
        retention_hours=runtime.settings.outbox_retention_hours,
        settings=runtime.settings,
    )
    runtime.workers.append(relay)
    runtime.consumers.extend(spec.consumers(runtime))
    runtime.workers.extend(spec.workers(runtime))
    groups = [
        Group(c.group_id, c.topics) for c in runtime.consumers if isinstance(c, IdempotentConsumer)
    ]
    if groups and runtime.settings.metrics_sample_interval_s > 0:
        runtime.workers.append(
            ConsumerLagSampler(runtime.settings, groups, runtime.settings.metrics_sample_interval_s)
        )
    for worker in [*runtime.consumers, *runtime.workers]:
        tasks.append(asyncio.create_task(worker.run()))


async def _shutdown(runtime: Runtime, tasks: list[asyncio.Task[None]]) -> None:
    # Consumers first: each finishes the batch in hand and commits before leaving the group.
    for worker in [*runtime.consumers, *runtime.workers]:
        worker.stop()
    if tasks:
        _, pending = await asyncio.wait(tasks, timeout=25)
        for task in pending:
            task.cancel()
        with suppress(Exception):
            await asyncio.gather(*pending, return_exceptions=True)
    with suppress(Exception):
        await runtime.producer.stop()
    await runtime.engine.dispose()
    tracing.shutdown()
    log.info("service stopped", extra={"service": runtime.service})


def _health_router(service: str) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz", summary="Liveness: the process is up", response_model=Health)
    async def healthz() -> Health:
        return Health(status="ok", service=service)

    @router.get(
        "/readyz",
        summary="Readiness: database and broker reachable, the service's own checks pass",
        response_model=Readiness,
        responses={503: {"model": Readiness, "description": "A dependency is unreachable"}},
    )
    async def readyz(request: Request) -> JSONResponse:
        runtime: Runtime = request.app.state.runtime
        database = await _database_reachable(runtime.engine)
        broker = runtime.broker_ready.is_set() and await broker_reachable(runtime.settings)
        checks = {"database": database, "broker": broker}
        for name, check in runtime.readiness.items():
            try:
                async with asyncio.timeout(5):
                    checks[name] = bool(await check())
            except Exception:
                checks[name] = False
        ready = all(checks.values())
        body = Readiness(status="ready" if ready else "not ready", checks=checks)
        return JSONResponse(body.model_dump(), status_code=200 if ready else 503)

    return router


def _session_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["session"])

    @router.get(
        "/me",
        summary="Who the bearer token says you are (role and agency)",
        response_model=Principal,
        responses=problem_responses(401),
    )
    async def me(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        return principal

    return router


async def _database_reachable(engine: AsyncEngine) -> bool:
    try:
        async with asyncio.timeout(3):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False


def _register_problem_schema(app: FastAPI) -> None:
    """Add ProblemDetail to components and a Bearer scheme, once, when the schema is built."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        components = schema.setdefault("components", {})
        schemas = components.setdefault("schemas", {})
        schemas["ProblemDetail"] = ProblemDetail.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
        # FastAPI documents validation errors as its own HTTPValidationError; ours leave as
        # problem+json (see shared.problems), so the document says so.
        problem = {"schema": {"$ref": "#/components/schemas/ProblemDetail"}}
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                if "requestBody" in operation:  # shared.request_guard, on every body
                    responses.setdefault(
                        "400",
                        {"description": "The body cannot be read (a malformed multipart body "
                         "or Content-Length), or its fields contradict each other",
                         "content": {PROBLEM_MEDIA_TYPE: problem}},
                    )  # fmt: skip
                    responses.setdefault(
                        "413",
                        {"description": "The body is larger than the limit",
                         "content": {PROBLEM_MEDIA_TYPE: problem}},
                    )  # fmt: skip
                    responses.setdefault(
                        "422", {"description": "", "content": {PROBLEM_MEDIA_TYPE: problem}}
                    )
                response = responses.get("422")
                if response is not None:
                    response["description"] = "The request does not match the schema"
                    response["content"] = {PROBLEM_MEDIA_TYPE: problem}
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        _hoist_defs(schema.get("paths", {}), schemas)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _hoist_defs(node: Any, components: dict[str, Any]) -> None:
    """A model schema pasted into `openapi_extra` (`Model.model_json_schema()`) carries its own
    `$defs` and `#/$defs/X` refs, which do not resolve in an OpenAPI document: move them to
    `components/schemas` and point the refs there."""
    if isinstance(node, dict):
        defs = node.pop("$defs", None)
        if isinstance(defs, dict):
            for name, definition in defs.items():
                _hoist_defs(definition, components)
                components.setdefault(name, definition)
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            node["$ref"] = "#/components/schemas/" + ref.removeprefix("#/$defs/")
        for value in node.values():
            _hoist_defs(value, components)
    elif isinstance(node, list):
        for value in node:
            _hoist_defs(value, components)


CSV_MEDIA_TYPE = "text/csv"


def download_responses(*media_types: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entry of a file download (use with `response_class=Response`), so
    the document states the real media types instead of FastAPI's default application/json."""
    binary = {"schema": {"type": "string", "format": "binary"}}
    return {200: {"description": "The file", "content": {m: binary for m in media_types}}}


# --- request dependencies ------------------------------------------------------------------------


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's unit of work: commits when the handler returns, rolls back if it raises.

    Declared with scope="function" (below): FastAPI's default for a dependency with yield ends
    it after the response is sent, so a client could read its 200 before the commit, and get a
    200 for a commit that then failed."""
    runtime = get_runtime(request)
    async with runtime.sessions() as session, session.begin():
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
