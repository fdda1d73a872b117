"""Idempotency-Key on every write of the tasks service: the same key and request replay the
first answer (status, body, ETag) without doing the write again; the same key with another
request is a 422 problem; keys expire and the scheduler purges them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.tasks.domain import timeliness as tl
from services.tasks.events.scheduler import DeadlineScheduler
from services.tasks.main import SPEC, create_app
from services.tasks.store.models import IdempotencyKey, ItemHistory, ProgressNote, outbox_table
from shared.db import make_engine, make_sessionmaker
from shared.events.outbox import Outbox
from shared.settings import Settings
from tests.conftest import running

Auth = Callable[..., dict[str, str]]
TODAY = tl.local_date(datetime.now(tl.VN_TZ))


@pytest.fixture(scope="module")
async def client(make_settings: Callable[..., Settings]) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(service_name="tasks", workers_enabled=False))
    async with running(app) as c:
        yield c


@pytest.fixture(scope="module")
async def sessions(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(settings.async_database_url, schema="tasks")
    yield make_sessionmaker(engine)
    await engine.dispose()


async def new_item(client: httpx.AsyncClient, auth: Auth, unit: str, **kw: Any) -> str:
    body = {
        "title": "Thông báo kết luận kiểm tra CCHC",
        "findings": [
            {
                "unit_id": unit,
                "text": "Tồn tại",
                "items": [
                    {"title": f"Nhiệm vụ {uuid.uuid4().hex[:6]}", "lead_unit_id": unit, **kw}
                ],
            }
        ],
    }
    res = await client.post("/api/v1/conclusions", json=body, headers=auth("inspector"))
    assert res.status_code == 201, res.text
    return str(res.json()["items"][0]["id"])


async def history_count(sessions: async_sessionmaker[AsyncSession], item_id: str) -> int:
    async with sessions() as s:
        return int(
            await s.scalar(
                select(func.count()).select_from(ItemHistory).where(ItemHistory.item_id == item_id)
            )
            or 0
        )


async def events_count(sessions: async_sessionmaker[AsyncSession], item_id: str) -> int:
    async with sessions() as s:
        return int(
            await s.scalar(
                select(func.count())
                .select_from(outbox_table)
                .where(outbox_table.c.subject == item_id)
            )
            or 0
        )


async def check_replay_and_mismatch(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    item_id: str,
    method: str,
    url: str,
    headers: dict[str, str],
    body: dict[str, Any],
    other: dict[str, Any],
    status: int,
) -> httpx.Response:
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = await client.request(method, url, json=body, headers={**headers, **key})
    assert first.status_code == status, first.text
    hist, events = await history_count(sessions, item_id), await events_count(sessions, item_id)
    again = await client.request(method, url, json=body, headers={**headers, **key})
    assert again.status_code == status
    assert again.json() == first.json()
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.headers.get("etag") == first.headers.get("etag")
    # nothing was done twice: no second history row, no second event
    assert await history_count(sessions, item_id) == hist
    assert await events_count(sessions, item_id) == events
    mismatch = await client.request(method, url, json=other, headers={**headers, **key})
    assert mismatch.status_code == 422
    assert mismatch.headers["content-type"].startswith("application/problem+json")
    assert "Idempotency-Key" in mismatch.json()["detail"]
    assert await history_count(sessions, item_id) == hist
    return first


async def test_progress_with_the_same_key_is_written_once(
    client: httpx.AsyncClient, auth: Auth, sessions: async_sessionmaker[AsyncSession]
) -> None:
    item_id = await new_item(client, auth, "P21.SNV")
    officer = auth("officer", "P21.SNV")
    url = f"/api/v1/items/{item_id}/progress"
    first = await check_replay_and_mismatch(
        client,
        sessions,
        item_id,
        "POST",
        url,
        officer,
        {"note": "Đã rà soát 120/415 TTHC", "percent": 30},
        {"note": "Đã rà soát 200/415 TTHC", "percent": 50},
        201,
    )
    assert first.json()["progress_percent"] == 30
    async with sessions() as s:
        notes = await s.scalar(
            select(func.count()).select_from(ProgressNote).where(ProgressNote.item_id == item_id)
        )
    assert notes == 1
    # the same key on another item is another request: refused, not replayed
    other_item = await new_item(client, auth, "P21.SNV")
    key = {"Idempotency-Key": uuid.uuid4().hex}
    body = {"note": "x"}
    assert (await client.post(url, json=body, headers={**officer, **key})).status_code == 201
    cross = await client.post(
        f"/api/v1/items/{other_item}/progress", json=body, headers={**officer, **key}
    )
    assert cross.status_code == 422
    # another user's identical key is theirs alone
    theirs = await client.post(url, json=body, headers={**auth("inspector"), **key})
    assert theirs.status_code == 201 and theirs.headers.get("idempotent-replayed") is None


async def test_transition_replays_even_after_the_etag_moved(
    client: httpx.AsyncClient, auth: Auth, sessions: async_sessionmaker[AsyncSession]
) -> None:
    item_id = await new_item(client, auth, "P21.SCT")
    officer = auth("officer", "P21.SCT")
    url = f"/api/v1/items/{item_id}"
    etag = (await client.get(url, headers=officer)).headers["etag"]
    headers = {**officer, "If-Match": etag}
    first = await check_replay_and_mismatch(
        client,
        sessions,
        item_id,
        "POST",
        f"{url}/transitions",
        headers,
        {"action": "start"},
        {"action": "report"},
        200,
    )
    assert first.json()["status"] == "in_progress"


async def test_patch_extension_and_decision_replay(
    client: httpx.AsyncClient, auth: Auth, sessions: async_sessionmaker[AsyncSession]
) -> None:
    deadline = TODAY + timedelta(days=5)
    item_id = await new_item(client, auth, "P21.SGDDT", deadline=str(deadline))
    officer, inspector = auth("officer", "P21.SGDDT"), auth("inspector")
    url = f"/api/v1/items/{item_id}"
    patched = await check_replay_and_mismatch(
        client,
        sessions,
        item_id,
        "PATCH",
        url,
        inspector,
        {"priority": "high", "responsible_person": "Trần B"},
        {"priority": "low"},
        200,
    )
    assert patched.json()["priority"] == "high"
    new = str(deadline + timedelta(days=30))
    ext = await check_replay_and_mismatch(
        client,
        sessions,
        item_id,
        "POST",
        f"{url}/extensions",
        officer,
        {"requested_deadline": new, "reason": "Chờ số liệu"},
        {"requested_deadline": new, "reason": "Khác"},
        201,
    )
    decided = await check_replay_and_mismatch(
        client,
        sessions,
        item_id,
        "POST",
        f"{url}/extensions/{ext.json()['id']}/decision",
        inspector,
        {"approve": True, "reason": "Đồng ý"},
        {"approve": False, "reason": "Không"},
        200,
    )
    assert decided.json()["status"] == "approved"


async def test_a_failed_write_keeps_no_key_and_keys_expire(
    client: httpx.AsyncClient, auth: Auth, sessions: async_sessionmaker[AsyncSession]
) -> None:
    item_id = await new_item(client, auth, "P21.STP")
    officer = auth("officer", "P21.STP")
    key = {"Idempotency-Key": uuid.uuid4().hex}
    url = f"/api/v1/items/{item_id}/transitions"
    refused = await client.post(
        url, json={"action": "accept"}, headers={**auth("inspector"), **key}
    )
    assert refused.status_code == 422  # not reported yet; the key is not spent on a failure
    async with sessions() as s:
        assert (
            await s.get(
                IdempotencyKey, ("dev-inspector", "transition_item", key["Idempotency-Key"])
            )
            is None
        )
    ok = await client.post(url, json={"action": "start"}, headers={**officer, **key})
    assert ok.status_code == 200
    # once expired, the key is free again and the scheduler purges it
    async with sessions() as s, s.begin():
        await s.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.key == key["Idempotency-Key"])
            .values(expires_at=datetime.now(tl.VN_TZ) - timedelta(seconds=1))
        )
    scheduler = DeadlineScheduler(sessions, Outbox(outbox_table, SPEC.source), interval=60)
    result = await scheduler.run_once(datetime.now(tl.VN_TZ))
    assert result.idempotency_keys_purged >= 1
    async with sessions() as s:
        left = await s.scalar(
            select(func.count())
            .select_from(IdempotencyKey)
            .where(IdempotencyKey.key == key["Idempotency-Key"])
        )
    assert left == 0
    fresh = await client.post(url, json={"action": "report"}, headers={**officer, **key})
    assert fresh.status_code == 200 and fresh.json()["status"] == "reported"


def test_every_write_documents_the_header(make_settings: Callable[..., Settings]) -> None:
    schema = create_app(make_settings(service_name="tasks", workers_enabled=False)).openapi()
    writes = [
        (path, method, op)
        for path, ops in schema["paths"].items()
        for method, op in ops.items()
        if method in ("post", "patch", "put") and path.startswith(("/api/v1/items", "/api/v1/me"))
    ]
    assert len(writes) >= 8
    for path, method, op in writes:
        names = [p["name"] for p in op.get("parameters", []) if p["in"] == "header"]
        assert "Idempotency-Key" in names, (method, path)


async def test_notification_writes_replay_and_refuse_a_reused_key(
    client: httpx.AsyncClient, auth: Auth, sessions: async_sessionmaker[AsyncSession]
) -> None:
    inspector, officer = auth("inspector"), auth("officer", "P21.SNV")
    cases = [
        (
            "/api/v1/notification-targets",
            inspector,
            {"audience": "unit:P21.SNV", "channel": "email", "address": f"{uuid.uuid4().hex}@x.vn"},
            {"audience": "unit:P21.SNV", "channel": "email", "address": "khac@x.vn"},
            201,
        ),
        (
            "/api/v1/me/push-subscriptions",
            officer,
            {
                "endpoint": f"https://push.example/{uuid.uuid4().hex}",
                "keys": {"p256dh": "a", "auth": "b"},
            },
            {"endpoint": "https://push.example/other", "keys": {"p256dh": "a", "auth": "b"}},
            201,
        ),
        ("/api/v1/me/notifications/read", officer, {"ids": None}, {"ids": [1]}, 200),
    ]
    for url, who, body, other, status in cases:
        key = {"Idempotency-Key": uuid.uuid4().hex}
        first = await client.post(url, json=body, headers={**who, **key})
        assert first.status_code == status, (url, first.text)
        again = await client.post(url, json=body, headers={**who, **key})
        assert again.status_code == status and again.json() == first.json(), url
        assert again.headers.get("idempotent-replayed") == "true"
        mismatch = await client.post(url, json=other, headers={**who, **key})
        assert mismatch.status_code == 422, url


async def test_concurrent_retries_with_one_key_write_once(
    client: httpx.AsyncClient, auth: Auth, sessions: async_sessionmaker[AsyncSession]
) -> None:
    import asyncio

    item_id = await new_item(client, auth, "P21.SVHTTDL")
    officer = {**auth("officer", "P21.SVHTTDL"), "Idempotency-Key": uuid.uuid4().hex}
    body = {"note": "Gửi lại khi mạng chập chờn", "percent": 10}
    url = f"/api/v1/items/{item_id}/progress"
    answers = await asyncio.gather(
        *(client.post(url, json=body, headers=officer) for _ in range(4))
    )
    assert {a.status_code for a in answers} == {201}
    assert len({a.content for a in answers}) == 1  # every retry got the first answer
    assert sum(a.headers.get("idempotent-replayed") == "true" for a in answers) == 3
    async with sessions() as s:
        notes = await s.scalar(
            select(func.count()).select_from(ProgressNote).where(ProgressNote.item_id == item_id)
        )
    assert notes == 1
