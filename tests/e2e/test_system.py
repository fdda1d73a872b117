"""The whole system as it runs in production: real processes, real broker, real database.

The one-stop simulator and the three services run as separate processes (two scoring
instances sharing the partitions) on their own database and broker. A sync requested from
ingest commits dossiers with their outbox events; scoring turns them into snapshots and alerts;
tasks turns alerts into remediation items. Re-delivering every event afterwards changes nothing.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import Producer

from shared import migrate
from shared.devstack import Broker, Postgres, free_port, wait_for_port
from shared.events.payloads import (
    AlertCleared,
    AlertRaised,
    DossiersChanged,
    OfficialScoresPublished,
    PetitionsChanged,
    ProceduresChanged,
    SnapshotUpdated,
)
from shared.settings import to_async_url
from tests.support.kafka import eventually, read_topic
from tests.support.otlp import Collector, Span

ROOT = Path(__file__).resolve().parents[2]
# Event types a downstream consumer acts on (others on the topic are skipped, not deduplicated).
HANDLED = {
    t.event_type
    for t in (
        DossiersChanged,
        ProceduresChanged,
        PetitionsChanged,
        OfficialScoresPublished,  # scoring stores the portal's published scores
        AlertRaised,
        AlertCleared,
        SnapshotUpdated,  # tasks keeps each unit's latest score for the leaders' digest
    )
}


@dataclass
class System:
    urls: dict[str, str]
    broker: Broker
    processes: dict[str, subprocess.Popen[bytes]]
    logs: Path
    collector: Collector


def _spawn(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=log.open("ab"),
                            stderr=subprocess.STDOUT)  # fmt: skip


@pytest.fixture(scope="module")
async def system(pg_server: Postgres, subprocess_env: dict[str, str], tmp_path_factory: Any
                 ) -> AsyncIterator[System]:  # fmt: skip
    logs = tmp_path_factory.mktemp("e2e-logs")
    broker = Broker.start(free_port(), logs)
    collector = Collector()  # every process exports its spans here
    name = f"cchc_e2e_{uuid.uuid4().hex[:8]}"
    url = await pg_server.create_database(name)
    for service in migrate.SERVICES:
        await asyncio.to_thread(migrate.upgrade, service, url)
    env = {**subprocess_env, "DATABASE_URL": to_async_url(url),
           "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap, "PYTHONPATH": str(ROOT),
           "METRICS_SAMPLE_INTERVAL_S": "1", "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
           "OTEL_BSP_SCHEDULE_DELAY": "500"}  # fmt: skip
    processes: dict[str, subprocess.Popen[bytes]] = {}
    urls: dict[str, str] = {}
    sim_port = free_port()
    processes["simulator"] = _spawn(
        [sys.executable, "-m", "services.ingest.simulator", "--port", str(sim_port),
         "--dossiers", "4000"], env, logs / "simulator.log")  # fmt: skip
    urls["simulator"] = f"http://127.0.0.1:{sim_port}"
    for instance in ("ingest", "scoring", "scoring-2", "tasks"):
        service = instance.split("-")[0]
        port = free_port()
        processes[instance] = _spawn(
            [sys.executable, "-m", "uvicorn", f"services.{service}.main:app",
             "--host", "127.0.0.1", "--port", str(port)],
            {**env, "SERVICE_NAME": service}, logs / f"{instance}.log")  # fmt: skip
        urls[instance] = f"http://127.0.0.1:{port}"
    try:
        for u in urls.values():
            # generous: on a loaded 2-core machine four services take well over a minute to start
            wait_for_port("127.0.0.1", int(u.rsplit(":", 1)[1]), timeout=240)
        yield System(urls, broker, processes, logs, collector)
    finally:
        for proc in processes.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in processes.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        broker.stop()
        collector.stop()
        await pg_server.drop_database(name)


async def _ready(client: httpx.AsyncClient, url: str) -> bool:
    try:
        return (await client.get(f"{url}/readyz")).status_code == 200
    except httpx.HTTPError:
        return False


async def test_a_sync_flows_from_ingest_through_scoring_into_tasks_and_replays_change_nothing(
    system: System, auth: Callable[..., dict[str, str]]
) -> None:
    admin = auth("admin")
    async with httpx.AsyncClient(timeout=30, headers=admin) as client:
        for instance in ("ingest", "scoring", "scoring-2", "tasks"):
            url = system.urls[instance]
            assert await eventually(lambda u=url: _ready(client, u), timeout=60), instance

        ingest = system.urls["ingest"]
        created = await client.post(f"{ingest}/api/v1/sources", json={
            "id": "e2e-igate", "name": "Một cửa điện tử (mô phỏng)",
            "base_url": system.urls["simulator"], "auth": {"type": "api_key", "key": "demo-key"},
            "agencies_from_registry": "demo-igate", "schedule_s": 86400,
        })  # fmt: skip
        assert created.status_code == 201, created.text
        for feed in ("procedures", "petitions", "dossiers"):
            r = await client.post(f"{ingest}/api/v1/sources/e2e-igate/sync", json={"feed": feed})
            # 409: the scheduler already started this feed's first run, which is as good
            assert r.status_code in (200, 202) or "in progress" in r.text, r.text

        async def runs_done() -> list[dict[str, Any]]:
            runs = (await client.get(f"{ingest}/api/v1/runs")).json()
            done = [r for r in runs if r["status"] in ("succeeded", "partial", "failed")]
            return runs if len(done) == 3 else []

        runs = await eventually(runs_done, timeout=120)
        assert runs and all(r["status"] == "succeeded" for r in runs), runs
        stored = sum(r["stored"] for r in runs if r["feed"] == "dossiers")
        assert stored > 1000

        # Scoring: the departments of the demo province are ranked for the year.
        scoring = system.urls["scoring"]

        async def ranking() -> list[dict[str, Any]]:
            r = await client.get(
                f"{scoring}/api/v1/rankings", params={"period": "2026", "level": "department"}
            )
            rows = r.json() if r.status_code == 200 else []
            return rows if len(rows) >= 10 and all(x["total"] is not None for x in rows) else []

        rows = await eventually(ranking, timeout=120)
        assert rows, "no ranking for the demo province's departments"
        unit = rows[0]["unit_id"]
        card = (await client.get(f"{scoring}/api/v1/units/{unit}/scores/2026")).json()
        assert card["unit_id"] == unit and card["total"] is not None

        # An alert raised in scoring becomes one remediation item in tasks, linked to it.
        alerts = await eventually(
            lambda: _json(client, f"{scoring}/api/v1/alerts", {"status": "open"}), timeout=120
        )
        assert alerts, "the demo data raised no alert"
        tasks = system.urls["tasks"]

        async def alert_items() -> list[dict[str, Any]]:
            items = await _all_items(client, tasks)
            by_alert = [i for i in items if i["origin"] == "alert"]
            return by_alert if {a["alert_id"] for a in alerts} <= {
                i["alert_id"] for i in by_alert} else []  # fmt: skip

        items = await eventually(alert_items, timeout=120)
        assert items, "alerts did not reach tasks"
        assert len({i["alert_id"] for i in items}) == len(items)  # one item per alert

        # Once the system is quiet, replay every event ingest and scoring ever published.
        before = await _quiet_state(client, scoring, tasks, unit)
        consumers = [system.urls[i] for i in ("scoring", "scoring-2", "tasks")]
        duplicates_before = await _duplicates(client, consumers)
        replayed = handled = 0
        for topic in ("ingest.dossiers", "scoring.snapshots"):
            messages = await read_topic(system.broker.bootstrap, topic)
            producer = Producer({"bootstrap.servers": system.broker.bootstrap})
            for m in messages:
                producer.produce(topic, value=m.value, key=m.key, headers=list(m.headers.items()))
                replayed += 1
                handled += m.headers["ce_type"].decode() in HANDLED
            producer.flush(30)
        assert replayed > 100 and handled > 100
        after = await _quiet_state(client, scoring, tasks, unit)
        assert after == before

        # The replay really was delivered, and recognised as already processed (the state
        # reads the same before the consumers are through the replay: wait for the counters).
        async def recognised() -> float:
            n = await _duplicates(client, consumers) - duplicates_before
            return n if n >= handled else 0

        assert await eventually(recognised, timeout=120) == handled


async def _json(client: httpx.AsyncClient, url: str, params: dict[str, str]) -> Any:
    r = await client.get(url, params=params)
    return r.json() if r.status_code == 200 else None


async def _all_items(client: httpx.AsyncClient, tasks: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 500}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get(f"{tasks}/api/v1/items", params=params)).json()
        items.extend(page["items"])
        cursor = page.get("next_cursor")
        if not cursor:
            return items


async def _duplicates(client: httpx.AsyncClient, urls: list[str]) -> float:
    """Events the consumers skipped as already processed (from their /metrics)."""
    total = 0.0
    for url in urls:
        for line in (await client.get(f"{url}/metrics")).text.splitlines():
            if line.startswith("events_consumed_total{") and 'outcome="duplicate"' in line:
                total += float(line.rsplit(" ", 1)[1])
    return total


async def _quiet_state(client: httpx.AsyncClient, scoring: str, tasks: str, unit: str
                       ) -> dict[str, Any]:  # fmt: skip
    """The state once two reads five seconds apart agree (debounced workers have settled) and
    tasks is through what scoring published (every alert has its item: a consumer still
    catching up can leave the state unchanged for five seconds)."""
    previous = await _state(client, scoring, tasks, unit)
    for _ in range(36):
        await asyncio.sleep(5)
        current = await _state(client, scoring, tasks, unit)
        if current == previous and {a for a, _ in current["alerts"]} <= {
            alert for _, _, alert in current["items"]
        }:
            return current
        previous = current
    raise AssertionError("the system never settled")


async def _state(client: httpx.AsyncClient, scoring: str, tasks: str, unit: str
                 ) -> dict[str, Any]:  # fmt: skip
    """What a replay must not change: snapshot versions, alerts, remediation items."""
    card = (await client.get(f"{scoring}/api/v1/units/{unit}/scores/2026")).json()
    alerts = (await client.get(f"{scoring}/api/v1/alerts", params={"limit": 1000})).json()
    items = await _all_items(client, tasks)
    return {
        "version": card["version"],
        "total": card["total"],
        "alerts": sorted((a["alert_id"], a["status"]) for a in alerts),
        "items": sorted((i["id"], i["status"], i.get("alert_id")) for i in items),
    }


async def test_every_metric_the_operators_dashboards_and_alerts_use_is_exported(
    system: System,
) -> None:
    from tests.shared.test_operations import used_metrics

    exported: set[str] = set()
    async with httpx.AsyncClient(timeout=10) as client:
        for instance in ("ingest", "scoring", "tasks"):
            await eventually(lambda i=instance: _ready(client, system.urls[i]), timeout=60)

        async def lag_sampled() -> str | None:
            body = (await client.get(f"{system.urls['scoring']}/metrics")).text
            return body if 'kafka_consumer_lag{group="scoring.' in body else None

        assert await eventually(lag_sampled, timeout=60)
        for instance in ("ingest", "scoring", "tasks"):
            body = (await client.get(f"{system.urls[instance]}/metrics")).text
            exported |= {line.split()[2] for line in body.splitlines() if line.startswith("# TYPE")}
    # prometheus_client exports a counter `x` as `x_total`
    exported |= {n.removesuffix("_total") + "_total" for n in exported}
    assert used_metrics() - exported == set()


async def test_one_trace_follows_a_dossier_from_the_source_call_to_the_alert_it_raised(
    system: System,
) -> None:
    """After the sync above: one trace holds ingest's call to the source, the write of the
    page and scoring's handling of the DossiersChanged events; the recompute that changed the
    snapshots and raised alerts continues that trace — or, when one recompute served the
    pairs of several syncs at once (the procedure list, the petitions and the dossiers, synced
    side by side), continues one of them and links to the others (OpenTelemetry's fan-in) —
    and tasks' handling of its events (remediation items) is in the recompute's trace."""

    def traces() -> dict[str, list[Span]]:
        by_trace: dict[str, list[Span]] = {}
        for s in system.collector.snapshot():
            by_trace.setdefault(s.trace_id, []).append(s)
        return by_trace

    async def followed() -> tuple[list[Span], list[Span]] | None:
        all_traces = traces()
        for trace_id, spans in all_traces.items():
            names = {(s.service, s.name) for s in spans}
            if not {("cchc-ingest", "GET dossiers"), ("cchc-scoring", "ingest.dossiers process")
                    } <= names:  # fmt: skip
                continue
            for other in all_traces.values():
                for r in other:
                    if r.name != "scoring.recompute" or (
                        r.trace_id != trace_id and trace_id not in r.links
                    ):
                        continue
                    if any(s.name == "scoring.snapshots process" for s in other):
                        return spans, other
        return None

    found = await eventually(followed, timeout=120)
    # on failure: what each trace that fetched dossiers holds besides SQL statements
    assert found, [
        sorted({(s.service, s.name) for s in t if " " in s.name or "." in s.name})
        for t in traces().values()
        if any(s.name == "GET dossiers" for s in t)
    ]
    spans, recomputed = found
    by_id = {s.span_id: s for s in spans}
    # one root, in ingest: the request that started the sync (or the scheduler's run itself)
    roots = [s for s in spans if s.parent_id == ""]
    assert len(roots) == 1 and roots[0].service == "cchc-ingest", roots
    fetch = next(s for s in spans if s.name == "GET dossiers")
    assert by_id[fetch.parent_id].name == "ingest.sync"
    handled = next(s for s in recomputed if s.name == "scoring.snapshots process")
    assert handled.service == "cchc-tasks"
