"""The dashboard in front of real scoring and tasks services, each a real HTTP server on a
loopback port (uvicorn in the test's loop), on the session's PostgreSQL; Chromium from
Debian's packages driven by Playwright."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import text

from services.dashboard.main import create_app as dashboard_app
from services.dashboard.settings import DashboardSettings
from services.scoring.domain.periods import Period
from services.scoring.main import create_app as scoring_app
from services.scoring.recompute import Scoring, recompute
from services.scoring.store.facts_store import upsert_facts
from services.scoring.store.models import outbox_table
from services.scoring.store.registry import UnitIn, import_units
from services.tasks.main import create_app as tasks_app
from shared.db import make_engine, make_sessionmaker, transaction
from shared.events.outbox import Outbox
from shared.settings import REPO_ROOT, Settings
from tests.scoring.test_scoring_store import TODAY, dossier, vn

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", REPO_ROOT / ".run" / "artifacts")) / "dashboard"
AS_OF = datetime(2026, 10, 1, tzinfo=UTC)
PERIODS = ("202608", "202609")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def serving(app: FastAPI, port: int | None = None) -> AsyncIterator[str]:
    """The app as a real HTTP server on a (free) loopback port, in this event loop."""
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="on"))  # fmt: skip
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def need_chromium() -> str:
    path = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: .ci/run installs Debian's chromium package")
        pytest.skip("chromium not installed (apt-get install chromium)")
    return path


@dataclass
class Province:
    id: str
    name: str
    departments: list[str]
    communes: list[str]
    neighbours: list[str]  # other provinces, with published official totals


@pytest.fixture(scope="module")
async def province(make_settings: Callable[..., Settings]) -> Province:
    """A province with departments and communes scored for August and September 2026, the
    departments also known to tasks (its registry replica) with remediation items."""
    settings = make_settings()
    p = "D" + uuid.uuid4().hex[:7].upper()
    deps = [f"{p}.S{i}" for i in range(4)]
    coms = [f"{p}.X{i}" for i in range(6)]
    dep_names = ["Sở Nội vụ", "Sở Tư pháp", "Sở Xây dựng", "Sở Y tế"]
    engine = make_engine(settings.async_database_url, schema="scoring", pool_size=2)
    try:
        async with transaction(make_sessionmaker(engine)) as s:
            await import_units(s, [
                UnitIn(id=p, name="Tỉnh Duyên Hải", level="province", kind="tỉnh",
                       valid_from=date(2000, 1, 1)),
                *[UnitIn(id=f"{p}N{i}", name=f"Tỉnh Láng Giềng {i}", level="province",
                         kind="tỉnh", valid_from=date(2000, 1, 1)) for i in (1, 2, 3)],
                *[UnitIn(id=u, name=n, level="department", kind="sở", parent_id=p,
                         valid_from=date(2000, 1, 1)) for u, n in zip(deps, dep_names, strict=True)],
                *[UnitIn(id=u, name=f"Xã Đông Hòa {i + 1}", level="commune", kind="xã",
                         parent_id=p, valid_from=date(2000, 1, 1)) for i, u in enumerate(coms)],
            ])  # fmt: skip
            facts = []
            for i, u in enumerate(deps + coms):
                for n in range(6):
                    for month in (8, 9):
                        # September differs from August, so changes and rank moves show
                        late = n < (i + (month == 9) * (i % 3)) % 5
                        facts.append(dossier(
                            u, n + 10 * month, procedure_code=f"1.00{n % 3}",
                            received_at=vn(2026, month, 1), due_at=vn(2026, month, 10),
                            finished_at=vn(2026, month, 15 if late else 9),
                            source_updated_at=vn(2026, month, 16),
                            channel=2 if (n + i + month) % 3 == 0 else 1,
                        ))  # fmt: skip
            await upsert_facts(s, facts, now=AS_OF)
            ctx = Scoring(outbox=Outbox(outbox_table, "/cchc-monitor/scoring"))
            await recompute(s, ctx, [p, *deps, *coms], [Period.parse(x) for x in PERIODS],
                            AS_OF, today=TODAY)  # fmt: skip
            await s.execute(
                text("""INSERT INTO tasks.units (id, name, level, kind, parent_id)
                        SELECT id, name, level, kind, parent_id FROM scoring.units
                        WHERE id = ANY(CAST(:ids AS text[])) ON CONFLICT (id) DO NOTHING"""),
                {"ids": [p, *deps]},
            )
    finally:
        await engine.dispose()
    return Province(p, "Tỉnh Duyên Hải", deps, coms, [f"{p}N{i}" for i in (1, 2, 3)])


@dataclass
class Stack:
    scoring: str
    tasks: str
    dashboard: str
    province: Province


@pytest.fixture(scope="module")
async def stack(make_settings: Callable[..., Settings], province: Province,
                auth: Callable[..., dict[str, str]]) -> AsyncIterator[Stack]:  # fmt: skip
    import httpx

    scoring = scoring_app(make_settings(service_name="scoring", workers_enabled=False))
    tasks = tasks_app(make_settings(service_name="tasks", workers_enabled=False))
    async with serving(scoring) as scoring_url, serving(tasks) as tasks_url:
        body: dict[str, Any] = {
            "number": f"{uuid.uuid4().hex[:3]}/TB-SNV",
            "title": "Thông báo kết luận kiểm tra công tác CCHC năm 2026",
            "issued_on": "2026-09-18",
            "findings": [{"unit_id": province.departments[0], "text": "Còn hồ sơ trễ hạn",
                          "items": [
                              {"title": "Rà soát hồ sơ trễ hạn", "deadline": "2026-09-30",
                               "lead_unit_id": province.departments[0]},
                              {"title": "Báo cáo kết quả khắc phục", "deadline": "2027-03-31",
                               "lead_unit_id": province.departments[0]},
                          ]}],
        }  # fmt: skip
        async with httpx.AsyncClient() as http:
            r = await http.post(f"{tasks_url}/api/v1/conclusions", json=body,
                                headers=auth("inspector"))  # fmt: skip
            assert r.status_code in (200, 201), r.text
            # Published totals of three neighbours: two above any score here, one below.
            official = {"source": "dichvucong 2026-10-05", "scores": [
                {"unit_id": u, "period": PERIODS[-1], "item": "total", "points": v}
                for u, v in zip(province.neighbours, (92.5, 88.0, 1.5), strict=True)]}  # fmt: skip
            r = await http.post(f"{scoring_url}/api/v1/official-scores", json=official,
                                headers=auth("inspector"))  # fmt: skip
            assert r.status_code == 200, r.text
        dash = dashboard_app(
            # no ingest here: its figure (last pull) is optional and left out
            DashboardSettings(scoring_url=scoring_url, tasks_url=tasks_url,
                              ingest_url=f"http://127.0.0.1:{free_port()}",
                              province=province.id, period=PERIODS[-1], dev_login=True),
            make_settings(service_name="dashboard"),
        )  # fmt: skip
        async with serving(dash) as dash_url:
            yield Stack(scoring_url, tasks_url, dash_url, province)
