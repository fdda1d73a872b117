"""Notifications that reach people, on real PostgreSQL and real local stand-ins: every kind
lands in the agency's feed (delta sync, read/unread, ETag) and is delivered once through each
channel — Web Push to a local HTTP push service (payload decrypted here with the device's
keys), e-mail to an aiosmtpd server, a signed webhook to a recording HTTP server; a webhook
that is down is retried with backoff, then marked failed, never blocking the item's write."""

from __future__ import annotations

import base64
import hmac
import json
import os
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime, timedelta
from hashlib import sha256
from typing import Any

import http_ece
import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from prometheus_client import REGISTRY
from py_vapid import Vapid02
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.tasks.config import TasksSettings
from services.tasks.domain import timeliness as tl
from services.tasks.events.scheduler import DeadlineScheduler
from services.tasks.main import SPEC, create_app
from services.tasks.notify.worker import DeliveryWorker
from services.tasks.store.models import (
    Notification,
    NotificationDelivery,
    NotificationTarget,
    outbox_table,
)
from shared.db import make_engine, make_sessionmaker
from shared.events.outbox import Outbox
from shared.settings import Settings
from tests.conftest import running
from tests.tasks._standins import Mailbox, Recorder, free_port, http_recorder, smtp_server

Auth = Callable[..., dict[str, str]]
# the workers' passes run an hour ahead of the service's (wall) clock: everything the service
# wrote is due then, at whatever time of day the suite runs (a fixed 09:00 was not, after 09:00)
NOW = datetime.now(tl.VN_TZ).replace(microsecond=0) + timedelta(hours=1)
TODAY = tl.local_date(NOW)
UNIT = "P21.SDTTG"
DOWN_UNIT = "P21.SGTVT"
SECRET = "webhook-secret-for-tests"
ALL_KINDS = {
    "item_assigned",
    "reminder",
    "overdue",
    "escalation",
    "extension_decided",
    "report_reopened",
    "report_accepted",
}


def b64u(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.fixture(scope="module")
def recorder() -> Iterator[Recorder]:
    with http_recorder() as rec:
        yield rec


@pytest.fixture(scope="module")
def mailbox() -> Iterator[Mailbox]:
    with smtp_server() as box:
        yield box


@pytest.fixture(scope="module")
def device() -> dict[str, Any]:
    """A browser's push subscription keys (what PushManager.subscribe() makes)."""
    private = ec.generate_private_key(ec.SECP256R1())
    public = private.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return {"private": private, "p256dh": b64u(public), "auth": b64u(os.urandom(16))}


@pytest.fixture(scope="module")
def tasks_settings(mailbox: Mailbox) -> TasksSettings:
    vapid = Vapid02()
    vapid.generate_keys()
    return TasksSettings(
        smtp_host="127.0.0.1",
        smtp_port=mailbox.port,
        smtp_sender="cchc@snv.example",
        vapid_private_key=vapid.private_pem().decode(),
        vapid_subject="mailto:cchc@snv.example",
        delivery_backoff_s=10,
        delivery_max_attempts=3,
        # a loaded CI machine answers slowly; no test here waits on a timeout
        delivery_timeout_s=30,
        public_base_url="http://tasks.example",
    )


@pytest.fixture(scope="module")
async def client(
    make_settings: Callable[..., Settings], tasks_settings: TasksSettings
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(service_name="tasks", workers_enabled=False), tasks_settings)
    async with running(app) as c:
        yield c


@pytest.fixture(scope="module")
async def sessions(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(settings.async_database_url, schema="tasks")
    yield make_sessionmaker(engine)
    await engine.dispose()


async def create(client: httpx.AsyncClient, auth: Auth, items: list[dict[str, Any]]) -> list[str]:
    body = {
        "title": "Thông báo kết luận kiểm tra CCHC",
        "findings": [{"unit_id": items[0]["lead_unit_id"], "text": "Tồn tại", "items": items}],
    }
    res = await client.post("/api/v1/conclusions", json=body, headers=auth("inspector"))
    assert res.status_code == 201, res.text
    return [i["id"] for i in res.json()["items"]]


def task(lead: str, days: int | None, **kw: Any) -> dict[str, Any]:
    deadline = str(TODAY + timedelta(days=days)) if days is not None else None
    return {
        "title": f"Nhiệm vụ {uuid.uuid4().hex[:6]}",
        "lead_unit_id": lead,
        "deadline": deadline,
        **kw,
    }


async def test_every_kind_reaches_the_feed_and_each_channel_once(
    client: httpx.AsyncClient,
    auth: Auth,
    sessions: async_sessionmaker[AsyncSession],
    recorder: Recorder,
    mailbox: Mailbox,
    device: dict[str, Any],
    tasks_settings: TasksSettings,
) -> None:
    officer, inspector = auth("officer", UNIT), auth("inspector")
    # the agency's channels: its office's mailbox, the province's SMART app, an officer's phone
    for target in (
        {"audience": f"unit:{UNIT}", "channel": "email", "address": "vanphong@sdttg.example"},
        {
            "audience": f"unit:{UNIT}",
            "channel": "webhook",
            "address": f"{recorder.base_url}/smart",
            "secret": SECRET,
        },
    ):
        res = await client.post("/api/v1/notification-targets", json=target, headers=inspector)
        assert res.status_code == 201, res.text
        assert "secret" not in res.json()
    sub = await client.post(
        "/api/v1/me/push-subscriptions",
        json={
            "endpoint": f"{recorder.base_url}/push/device-1",
            "keys": {"p256dh": device["p256dh"], "auth": device["auth"]},
        },
        headers=officer,
    )
    assert sub.status_code == 201, sub.text
    key = await client.get("/api/v1/push/vapid-public-key", headers=officer)
    assert key.status_code == 200 and len(key.json()["public_key"]) > 80

    due3, late1, late20, extend, reopen, accept = await create(
        client,
        auth,
        [
            task(UNIT, 3),
            task(UNIT, -1),
            task(UNIT, -20),
            task(UNIT, 10),
            task(UNIT, 10),
            task(UNIT, 10),
        ],
    )
    url = "/api/v1/items/{}"
    req = await client.post(
        url.format(extend) + "/extensions",
        json={"requested_deadline": str(TODAY + timedelta(days=40)), "reason": "Chờ số liệu"},
        headers=officer,
    )
    dec = await client.post(
        url.format(extend) + f"/extensions/{req.json()['id']}/decision",
        json={"approve": True, "reason": "Đồng ý"},
        headers=inspector,
    )
    assert dec.status_code == 200
    for item_id in (reopen, accept):
        r = await client.post(
            url.format(item_id) + "/transitions", json={"action": "report"}, headers=officer
        )
        assert r.status_code == 200
    await client.post(
        url.format(reopen) + "/transitions",
        json={"action": "reopen", "reason": "Thiếu minh chứng"},
        headers=inspector,
    )
    await client.post(
        url.format(accept) + "/transitions", json={"action": "accept"}, headers=inspector
    )
    scheduler = DeadlineScheduler(sessions, Outbox(outbox_table, SPEC.source), interval=60)
    await scheduler.run_once(NOW)
    await scheduler.run_once(NOW)  # noticed again: notified once

    def delivered(channel: str) -> float:
        return (
            REGISTRY.get_sample_value(
                "tasks_notification_deliveries_total", {"channel": channel, "outcome": "delivered"}
            )
            or 0
        )

    before = {c: delivered(c) for c in ("webhook", "email", "webpush")}
    worker = DeliveryWorker(sessions, tasks_settings, batch=10_000)  # all that is due, at once
    # the worker serves every pending delivery in the database, other tests' too (to
    # addresses gone with their servers): what this test owns is checked on its own rows
    first = await worker.run_once(NOW)
    # /metrics counts each delivery by channel
    assert sum(delivered(c) - before[c] for c in before) == first.delivered
    await worker.run_once(NOW + timedelta(hours=1))

    ours = {due3, late1, late20, extend, reopen, accept}
    async with sessions() as s:
        notes = (
            (
                await s.execute(
                    select(Notification).where(
                        Notification.item_id.in_(ours), Notification.audience == f"unit:{UNIT}"
                    )
                )
            )
            .scalars()
            .all()
        )
        deliveries = (
            (
                await s.execute(
                    select(NotificationDelivery).where(
                        NotificationDelivery.notification_id.in_([n.id for n in notes])
                    )
                )
            )
            .scalars()
            .all()
        )
    kinds = {n.kind for n in notes}
    assert kinds == ALL_KINDS
    by_kind = Counter(n.kind for n in notes)
    assert by_kind["item_assigned"] == 6 and by_kind["reminder"] == 1
    assert by_kind["overdue"] == 2 and by_kind["escalation"] == 1
    # one delivery per notification per channel, all delivered
    per = Counter((d.notification_id, d.channel) for d in deliveries)
    assert set(per.values()) == {1} and len(per) == 3 * len(notes)
    # each sent at the first attempt, and not again by the second pass
    assert {(d.status, d.attempts) for d in deliveries} == {("delivered", 1)}

    # webhook: each notification once, signed over "<timestamp>.<body>"
    hooks = recorder.at("/smart")
    hooked = Counter(json.loads(c.body)["id"] for c in hooks)
    assert set(hooked) >= {n.id for n in notes} and set(hooked.values()) == {1}
    call = hooks[0]
    expected = (
        "sha256="
        + hmac.new(
            SECRET.encode(), call.headers["x-cchc-timestamp"].encode() + b"." + call.body, sha256
        ).hexdigest()
    )
    assert call.headers["x-cchc-signature"] == expected
    assert call.headers["x-cchc-delivery"] and call.headers["x-cchc-event"]
    # e-mail: one message per notification, to the office, Vietnamese subject
    mails = [
        m
        for m, to in zip(mailbox.messages, mailbox.recipients, strict=True)
        if to == ["vanphong@sdttg.example"]
    ]
    assert len(mails) == len(notes)
    assert len({m["Message-ID"] for m in mails}) == len(mails)
    subjects = {str(m["Subject"]) for m in mails}
    assert any(s.startswith("Sắp đến hạn (còn 3 ngày)") for s in subjects), subjects
    # Web Push: one encrypted message per notification that the device can decrypt
    pushes = recorder.at("/push/device-1")
    assert len(pushes) == len(notes)
    assert pushes[0].headers["authorization"].startswith("vapid t=")
    plain = http_ece.decrypt(
        pushes[0].body,
        private_key=device["private"],
        auth_secret=base64.urlsafe_b64decode(device["auth"] + "=="),
        version="aes128gcm",
    )
    doc = json.loads(plain)
    assert doc["kind"] in ALL_KINDS and doc["url"].startswith("http://tasks.example/api/v1/items/")

    # the feed: delta sync, unread, ETag, read
    feed = await client.get("/api/v1/me/notifications", params={"limit": 500}, headers=officer)
    assert feed.status_code == 200
    mine = [n for n in feed.json()["items"] if n["item_id"] in ours]
    assert {n["kind"] for n in mine} == ALL_KINDS
    reminder = next(n for n in mine if n["kind"] == "reminder")
    assert reminder["item_id"] == due3 and reminder["data"]["days_before"] == 3
    assert {d["channel"] for d in reminder["deliveries"]} == {"email", "webhook", "webpush"}
    assert all(not n["read"] for n in mine)
    etag = feed.headers["etag"]
    cached = await client.get(
        "/api/v1/me/notifications",
        params={"limit": 500},
        headers={**officer, "If-None-Match": etag},
    )
    assert cached.status_code == 304
    last = max(n["updated_at"] for n in feed.json()["items"])
    nothing_new = await client.get(
        "/api/v1/me/notifications", params={"updated_since": last}, headers=officer
    )
    assert nothing_new.json()["items"] == []
    unread_before = feed.json()["unread"]
    read = await client.post(
        "/api/v1/me/notifications/read", json={"ids": [reminder["id"]]}, headers=officer
    )
    assert read.json() == {"marked": 1, "unread": unread_before - 1}
    delta = await client.get(
        "/api/v1/me/notifications", params={"updated_since": last}, headers=officer
    )
    assert [n["id"] for n in delta.json()["items"]] == [reminder["id"]]
    assert delta.json()["items"][0]["read"] is True
    unread = await client.get(
        "/api/v1/me/notifications", params={"unread": True, "limit": 500}, headers=officer
    )
    assert reminder["id"] not in {n["id"] for n in unread.json()["items"]}
    # another agency's officer sees none of them; inspectors see the escalation
    other = await client.get(
        "/api/v1/me/notifications", params={"limit": 500}, headers=auth("officer", "P21.SXD")
    )
    assert not {n["item_id"] for n in other.json()["items"]} & ours
    insp = await client.get("/api/v1/me/notifications", params={"limit": 500}, headers=inspector)
    insp_kinds = Counter(n["kind"] for n in insp.json()["items"] if n["item_id"] in ours)
    # the inspectors hear what waits for them: reports, extension requests, escalations
    assert insp_kinds == {"report_submitted": 2, "extension_requested": 1, "escalation": 1}


async def test_a_webhook_that_is_down_is_retried_then_failed_never_blocking(
    client: httpx.AsyncClient,
    auth: Auth,
    sessions: async_sessionmaker[AsyncSession],
    recorder: Recorder,
    tasks_settings: TasksSettings,
) -> None:
    inspector = auth("inspector")
    dead = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    recorder.status["/flaky"] = 503
    for address in (dead, f"{recorder.base_url}/flaky"):
        res = await client.post(
            "/api/v1/notification-targets",
            json={"audience": f"unit:{DOWN_UNIT}", "channel": "webhook", "address": address},
            headers=inspector,
        )
        assert res.status_code == 201
    # the item's write does not wait for any channel
    (item_id,) = await create(client, auth, [task(DOWN_UNIT, 30)])
    worker = DeliveryWorker(sessions, tasks_settings, batch=10_000)  # all that is due, at once
    clock = NOW

    async def states() -> list[tuple[str, int, str | None]]:
        async with sessions() as s:
            rows = await s.execute(
                select(
                    NotificationDelivery.status,
                    NotificationDelivery.attempts,
                    NotificationDelivery.last_error,
                )
                .join(Notification, Notification.id == NotificationDelivery.notification_id)
                .join(NotificationTarget, NotificationTarget.id == NotificationDelivery.target_id)
                .where(Notification.item_id == item_id)
                # the dead address first, then the flaky one: the deliveries' own order is not
                # the order the targets were registered in
                .order_by(NotificationTarget.address != dead)
            )
            return [(a, b, c) for a, b, c in rows]

    await worker.run_once(clock)
    assert [(s, n) for s, n, _ in await states()] == [("pending", 1), ("pending", 1)]
    # not due again before its backoff (10 s, then 20 s)
    await worker.run_once(clock + timedelta(seconds=5))
    assert [n for _, n, _ in await states()] == [1, 1]
    clock += timedelta(seconds=11)
    await worker.run_once(clock)
    assert [(s, n) for s, n, _ in await states()] == [("pending", 2), ("pending", 2)]
    clock += timedelta(seconds=21)
    result = await worker.run_once(clock)
    final = await states()
    assert [(s, n) for s, n, _ in final] == [("failed", 3), ("failed", 3)]
    assert result.failed >= 2
    assert final[1][2] == "HTTP 503" and final[0][2]
    assert len(recorder.at("/flaky")) == 3
    await worker.run_once(clock + timedelta(days=1))
    assert len(recorder.at("/flaky")) == 3  # failed for good: not tried again
    failed = await client.get(
        "/api/v1/notification-deliveries", params={"status": "failed"}, headers=inspector
    )
    assert len([d for d in failed.json() if d["channel"] == "webhook"]) >= 2
    # the feed still has it: the people who open the app are told
    feed = await client.get(
        "/api/v1/me/notifications", params={"limit": 500}, headers=auth("officer", DOWN_UNIT)
    )
    (note,) = [n for n in feed.json()["items"] if n["item_id"] == item_id]
    assert note["kind"] == "item_assigned"
    assert {d["status"] for d in note["deliveries"]} == {"failed"}


async def test_an_item_from_a_scoring_alert_is_announced_to_its_agency(
    client: httpx.AsyncClient, auth: Auth, sessions: async_sessionmaker[AsyncSession]
) -> None:
    from services.tasks.events.handlers import make_handlers
    from shared.events.envelope import CloudEvent
    from shared.events.payloads import AlertRaised

    alert_id = f"alert-{uuid.uuid4().hex[:8]}"
    payload = AlertRaised(
        alert_id=alert_id,
        rule="ontime_below",
        unit_id=UNIT,
        indicator="progress.ontime",
        period="2026Q3",
        message="Tỉ lệ hồ sơ đúng hạn dưới 90%",
        value=0.8,
        threshold=0.9,
    )
    handler = make_handlers(Outbox(outbox_table, SPEC.source))[AlertRaised.event_type]
    async with sessions() as s, s.begin():
        await handler(s, CloudEvent.of(payload, source="/cchc-monitor/scoring"), payload)
    feed = await client.get(
        "/api/v1/me/notifications", params={"limit": 500}, headers=auth("officer", UNIT)
    )
    assigned = [
        n
        for n in feed.json()["items"]
        if n["kind"] == "item_assigned" and "progress.ontime" in n["body"]
    ]
    assert len(assigned) >= 1 and assigned[-1]["data"]["role"] == "lead"
