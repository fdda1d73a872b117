"""The leaders' morning digest: scores arrive only as scoring.snapshots events through the
real broker; at the configured time one digest per day goes to the leaders' audience with the
province's total and change, its rank, the three biggest issues, the units that fell and the
overdue items by agency, and is delivered through the same channels (e-mail to aiosmtpd)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from sqlalchemy import select

from services.tasks.config import TasksSettings
from services.tasks.domain import timeliness as tl
from services.tasks.events.scheduler import send_digest
from services.tasks.main import create_app
from services.tasks.notify.worker import DeliveryWorker
from services.tasks.store.models import Notification, UnitScore
from shared.db import make_engine, make_sessionmaker
from shared.events.envelope import CloudEvent
from shared.events.kafka import ensure_topics, make_producer
from shared.events.payloads import SnapshotUpdated
from shared.settings import Settings
from tests.conftest import running
from tests.support.kafka import eventually, skip_backlog
from tests.tasks._standins import smtp_server

Auth = Callable[..., dict[str, str]]
SCORING = "/cchc-monitor/scoring"
PERIOD = "2031"  # a year no other test scores
DAY = date(2031, 3, 2)
UNIT = "P21.SNNPTNT"  # an agency no other test gives items
FELL = "P21.SVHTTDL"


def at(day: int, hour: int) -> datetime:
    return datetime(2031, 3, day, hour, 0, tzinfo=tl.VN_TZ)


def snapshot(unit: str, version: int, total: float, rank: int, when: datetime) -> CloudEvent:
    payload = SnapshotUpdated(
        unit_id=unit,
        period=PERIOD,
        profile="pci-766",
        version=version,
        total=total,
        max_total=100,
        rank=rank,
    )
    return dataclasses.replace(CloudEvent.of(payload, source=SCORING, subject=unit), time=when)


async def test_morning_digest_content_and_delivery(
    make_settings: Callable[..., Settings], auth: Auth
) -> None:
    settings = make_settings(service_name="tasks")
    await ensure_topics(settings)
    await skip_backlog(settings.kafka_bootstrap_servers, "tasks.alerts", ["scoring.snapshots"])
    engine = make_engine(settings.async_database_url, schema="tasks")
    sessions = make_sessionmaker(engine)
    audience = f"user:leader-{uuid.uuid4().hex[:6]}"
    events = [
        # yesterday's last values, then this morning's
        snapshot("P21", 1, 70.0, 15, at(1, 10)),
        snapshot(UNIT, 1, 80.0, 3, at(1, 10)),
        snapshot(FELL, 1, 75.0, 5, at(1, 10)),
        snapshot("P21", 2, 71.0, 14, at(1, 18)),  # same day: still "yesterday"
        snapshot("P21", 3, 72.5, 12, at(2, 6)),
        snapshot(UNIT, 2, 82.0, 2, at(2, 6)),
        snapshot(FELL, 2, 71.25, 9, at(2, 6)),
        snapshot(FELL, 1, 10.0, 30, at(2, 6)),  # an older version replayed late: ignored
    ]
    producer = make_producer(settings, "test-scoring-digest")
    await producer.start()
    try:
        with smtp_server() as mailbox:
            tasks = TasksSettings(
                digest_time="07:00",
                digest_audience=audience,
                smtp_host="127.0.0.1",
                smtp_port=mailbox.port,
            )
            async with running(create_app(settings, tasks)) as client:
                inspector = auth("inspector")
                body = {
                    "title": "Thông báo kết luận kiểm tra CCHC",
                    "findings": [
                        {
                            "unit_id": UNIT,
                            "text": "Tồn tại",
                            "items": [
                                {
                                    "title": f"Vấn đề {n} {uuid.uuid4().hex[:4]}",
                                    "lead_unit_id": UNIT,
                                    "deadline": f"2015-01-0{n}",
                                }
                                for n in range(1, 5)
                            ],
                        }
                    ],
                }
                res = await client.post("/api/v1/conclusions", json=body, headers=inspector)
                assert res.status_code == 201, res.text
                ids = [i["id"] for i in res.json()["items"]]
                # the three most urgent; the fourth (the oldest) is done, so not an issue
                for item_id in ids[1:]:
                    patched = await client.patch(
                        f"/api/v1/items/{item_id}", json={"priority": "urgent"}, headers=inspector
                    )
                    assert patched.status_code == 200
                await client.post(
                    f"/api/v1/items/{ids[0]}/transitions",
                    json={"action": "report"},
                    headers=auth("officer", UNIT),
                )
                target = await client.post(
                    "/api/v1/notification-targets",
                    json={
                        "audience": audience,
                        "channel": "email",
                        "address": "ct@hungyen.example",
                    },
                    headers=inspector,
                )
                assert target.status_code == 201
                for ev in events:
                    await producer.send_and_wait(
                        "scoring.snapshots",
                        value=ev.value(),
                        key=(ev.subject or "").encode(),
                        headers=ev.headers(),
                    )

                async def stored() -> bool:
                    async with sessions() as s:
                        row = await s.get(UnitScore, (FELL, PERIOD, "pci-766"))
                        p21 = await s.get(UnitScore, ("P21", PERIOD, "pci-766"))
                    return bool(row and row.version == 2 and p21 and p21.version == 3)

                # behind whatever the session's scoring tests published on the topic
                assert await eventually(stored, timeout=180), "the snapshot events were not stored"

                async with sessions() as s, s.begin():
                    assert await send_digest(s, at(2, 6), tasks) == 0  # before 07:00
                async with sessions() as s, s.begin():
                    assert await send_digest(s, at(2, 7), tasks) == 1
                async with sessions() as s, s.begin():
                    assert await send_digest(s, at(2, 12), tasks) == 0  # once a day
                async with sessions() as s:
                    (digest,) = (
                        (
                            await s.execute(
                                select(Notification).where(
                                    Notification.dedup_key == f"digest:{DAY}:{audience}"
                                )
                            )
                        )
                        .scalars()
                        .all()
                    )
                data = digest.data
                assert digest.kind == "digest" and digest.title.startswith(
                    "Bản tin sáng 02/03/2031"
                )
                assert data["period"] == PERIOD
                assert data["province"] == {
                    "unit_id": "P21",
                    "total": 72.5,
                    "change": 1.5,  # since yesterday's last value (71.0)
                    "rank": 12,
                    "previous_rank": 14,
                }
                assert [i["item_id"] for i in data["biggest_issues"]] == ids[1:]
                assert data["biggest_issues"][0]["days_overdue"] == (DAY - date(2015, 1, 2)).days
                fell = {u["unit_id"]: u for u in data["units_fell"]}
                assert fell[FELL] == {
                    "unit_id": FELL,
                    "rank": 9,
                    "previous_rank": 5,
                    "change": -3.75,
                }
                assert UNIT not in fell  # it rose
                overdue = {a["unit_id"]: a["overdue"] for a in data["overdue_by_agency"]}
                assert overdue[UNIT] == 3
                assert "Ba vấn đề lớn nhất" in digest.body and "72.5 (+1.5" in digest.body
                # delivered through the same channels, once (the app's own delivery worker
                # may take it first: either way, one message)
                worker = DeliveryWorker(sessions, tasks)
                await worker.run_once(at(2, 7))
                await worker.run_once(at(2, 8))

                def ours() -> list[Any]:
                    return [
                        m
                        for m in mailbox.messages
                        if m["To"] == "ct@hungyen.example" and "02/03/2031" in str(m["Subject"])
                    ]

                async def mailed() -> bool:
                    return bool(ours())

                await eventually(mailed, timeout=30)
                await worker.run_once(at(2, 9))
                mails = ours()
                assert len(mails) == 1
                assert str(mails[0]["Subject"]).startswith("Bản tin sáng 02/03/2031")
                assert "Đơn vị giảm hạng" in mails[0].get_content()
    finally:
        await producer.stop()
        await engine.dispose()
