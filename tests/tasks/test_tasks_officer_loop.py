"""The officer's loop on real PostgreSQL: roles on an item (lead, supporting, monitoring),
notes and evidence readable with the item, and timeliness that keeps lateness through a late
extension."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.tasks.domain import timeliness as tl
from services.tasks.main import create_app
from services.tasks.store.models import outbox_table
from shared.db import make_engine, make_sessionmaker
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


async def conclusion(
    client: httpx.AsyncClient, auth: Auth, items: list[dict[str, Any]], number: str | None = None
) -> dict[str, Any]:
    body = {
        "number": number or f"{uuid.uuid4().hex[:4]}/TB-ĐKT",
        "title": "Thông báo kết luận kiểm tra CCHC tại Sở Y tế",
        "findings": [{"unit_id": items[0]["lead_unit_id"], "text": "Tồn tại", "items": items}],
    }
    res = await client.post("/api/v1/conclusions", json=body, headers=auth("inspector"))
    assert res.status_code == 201, res.text
    return dict(res.json())


def task(lead: str, **kw: Any) -> dict[str, Any]:
    return {"title": f"Nhiệm vụ {uuid.uuid4().hex[:6]}", "lead_unit_id": lead, **kw}


# ----------------------------------------------------------------- roles


async def test_supporting_unit_reports_its_part_without_moving_the_item(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    number = f"{uuid.uuid4().hex[:4]}/TB-ĐKT"
    created = await conclusion(
        client, auth, [task("P21.SYT", supporting_unit_ids=["P21.VP"])], number=number
    )
    item_id = created["items"][0]["id"]
    url = f"/api/v1/items/{item_id}"
    lead, support = auth("officer", "P21.SYT"), auth("officer", "P21.VP")
    inspector = auth("inspector")
    # the inspector makes the inspection office a monitoring unit
    patched = await client.patch(
        url, json={"monitoring_unit_ids": ["P21.STTTT"]}, headers=inspector
    )
    assert patched.status_code == 200, patched.text
    monitor = auth("officer", "P21.STTTT")

    seen = (await client.get(url, headers=support)).json()
    assert seen["caller_role"] == "supporting"
    assert seen["conclusion_number"] == number
    assert seen["conclusion_title"] == "Thông báo kết luận kiểm tra CCHC tại Sở Y tế"
    assert seen["lead_unit_name"] == "Sở Y tế"
    roles = {u["id"]: (u["role"], u["name"]) for u in seen["units"]}
    assert roles["P21.SYT"][0] == "lead" and roles["P21.VP"] == ("supporting", roles["P21.VP"][1])
    assert roles["P21.VP"][1] and roles["P21.STTTT"][0] == "monitoring"
    assert (await client.get(url, headers=lead)).json()["caller_role"] == "lead"
    assert (await client.get(url, headers=monitor)).json()["caller_role"] == "monitoring"
    assert (await client.get(url, headers=inspector)).json()["caller_role"] is None

    part = await client.post(
        f"{url}/progress",
        json={"note": "VP đã gửi số liệu phần phối hợp", "percent": 60},
        headers=support,
    )
    assert part.status_code == 201, part.text
    after = part.json()
    # its own contribution: recorded on the item, the item's status and percent unchanged
    assert after["status"] == "not_started" and after["progress_percent"] == 0
    (contribution,) = after["contributions"]
    assert contribution["unit_id"] == "P21.VP" and contribution["percent"] == 60
    assert after["notes"][-1]["role"] == "supporting" and after["notes"][-1]["unit_id"] == "P21.VP"
    # it does not move the item: 403 with a reason (it may see the item), not 404
    moved = await client.post(f"{url}/transitions", json={"action": "report"}, headers=support)
    assert moved.status_code == 403
    ext = await client.post(
        f"{url}/extensions",
        json={"requested_deadline": "2030-01-01", "reason": "x"},
        headers=support,
    )
    assert ext.status_code == 403
    # a monitoring unit reads and does not report
    watch = await client.post(f"{url}/progress", json={"note": "x"}, headers=monitor)
    assert watch.status_code == 403
    # another agency still gets 404
    other = await client.post(
        f"{url}/progress", json={"note": "x"}, headers=auth("officer", "P21.SXD")
    )
    assert other.status_code == 404
    # the lead's own progress moves the item
    own = await client.post(
        f"{url}/progress", json={"note": "Bắt đầu", "percent": 20}, headers=lead
    )
    assert own.json()["status"] == "in_progress" and own.json()["progress_percent"] == 20
    # the supporting unit lists the item among its own
    mine = (await client.get("/api/v1/me/items", params={"limit": 500}, headers=support)).json()
    assert item_id in {i["id"] for i in mine["items"]}
    assert next(i for i in mine["items"] if i["id"] == item_id)["caller_role"] == "supporting"
    hist = (await client.get(f"{url}/history", headers=inspector)).json()
    assert [h["action"] for h in hist][-2:] == ["contribution", "progress"]
    assert hist[-2]["note"]["note"] == "VP đã gửi số liệu phần phối hợp"


async def test_notes_and_evidence_links_are_read_back(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    created = await conclusion(client, auth, [task("P21.SXD")])
    item_id = created["items"][0]["id"]
    officer = auth("officer", "P21.SXD")
    res = await client.post(
        f"/api/v1/items/{item_id}/progress",
        json={
            "note": "Đã niêm yết TTHC",
            "percent": 40,
            "evidence": [{"name": "anh-niem-yet.jpg", "url": "https://files.example/a.jpg"}],
        },
        headers=officer,
    )
    assert res.status_code == 201
    for who in (auth("inspector"), auth("viewer"), officer):
        got = (await client.get(f"/api/v1/items/{item_id}", headers=who)).json()
        (note,) = got["notes"]
        assert note["note"] == "Đã niêm yết TTHC" and note["percent"] == 40
        assert note["evidence"] == [
            {
                "id": None,
                "name": "anh-niem-yet.jpg",
                "url": "https://files.example/a.jpg",
                "download_url": None,
                "content_type": None,
                "size": None,
                "sha256": None,
                "uploaded_by": None,
                "created_at": None,
            }
        ]
    hist = (await client.get(f"/api/v1/items/{item_id}/history", headers=auth("viewer"))).json()
    assert hist[-1]["action"] == "progress" and hist[-1]["note"]["note"] == "Đã niêm yết TTHC"
    listed = await client.get(
        "/api/v1/items", params={"conclusion_id": created["id"]}, headers=auth("viewer")
    )
    assert listed.json()["items"][0]["conclusion_title"].startswith("Thông báo kết luận")


# ----------------------------------------------------------------- timeliness


async def accepted_event(sessions: async_sessionmaker[AsyncSession], item_id: str) -> Any:
    async with sessions() as s:
        payload = await s.scalar(
            select(outbox_table.c.payload).where(
                outbox_table.c.subject == item_id, outbox_table.c.type.like("%accepted%")
            )
        )
    assert payload is not None
    return json.loads(payload)


async def extend(client: httpx.AsyncClient, auth: Auth, item_id: str, unit: str, new: date) -> None:
    url = f"/api/v1/items/{item_id}/extensions"
    req = await client.post(
        url,
        json={"requested_deadline": str(new), "reason": "Chờ số liệu"},
        headers=auth("officer", unit),
    )
    assert req.status_code == 201, req.text
    ok = await client.post(
        f"{url}/{req.json()['id']}/decision", json={"approve": True}, headers=auth("inspector")
    )
    assert ok.status_code == 200, ok.text


async def test_an_extension_granted_after_the_deadline_keeps_the_lateness(
    client: httpx.AsyncClient, auth: Auth, sessions: async_sessionmaker[AsyncSession]
) -> None:
    unit = "P21.SLDTBXH"
    long_ago = TODAY - timedelta(days=1553)
    ahead = TODAY + timedelta(days=5)
    created = await conclusion(
        client, auth, [task(unit, deadline=str(long_ago)), task(unit, deadline=str(ahead))]
    )
    late_id, early_id = (i["id"] for i in created["items"])
    assert created["items"][0]["timeliness"] == "overdue"
    # late: overdue for 1,553 days, then extended; early: extended before its deadline
    await extend(client, auth, late_id, unit, TODAY + timedelta(days=30))
    await extend(client, auth, early_id, unit, TODAY + timedelta(days=30))
    viewer = auth("viewer")
    late = (await client.get(f"/api/v1/items/{late_id}", headers=viewer)).json()
    assert late["deadline"] == str(TODAY + timedelta(days=30))
    assert late["original_deadline"] == str(long_ago)
    assert late["timeliness"] == "in_progress_within_time" and late["past_original_deadline"]
    early = (await client.get(f"/api/v1/items/{early_id}", headers=viewer)).json()
    assert early["original_deadline"] == early["deadline"] == str(TODAY + timedelta(days=30))
    assert early["past_original_deadline"] is False

    officer, inspector = auth("officer", unit), auth("inspector")
    for item_id in (late_id, early_id):
        await client.post(
            f"/api/v1/items/{item_id}/transitions", json={"action": "report"}, headers=officer
        )
        acc = await client.post(
            f"/api/v1/items/{item_id}/transitions", json={"action": "accept"}, headers=inspector
        )
        assert acc.status_code == 200
    late = (await client.get(f"/api/v1/items/{late_id}", headers=viewer)).json()
    assert late["timeliness"] == "done_late_extended"
    assert late["timeliness_label"] == "Hoàn thành muộn (đã gia hạn) / done late (extended)"
    early = (await client.get(f"/api/v1/items/{early_id}", headers=viewer)).json()
    assert early["timeliness"] == "done_on_time"
    # scoring hears the truth: the late one was not on time
    assert (await accepted_event(sessions, late_id))["on_time"] is False
    assert (await accepted_event(sessions, early_id))["on_time"] is True
    # the list filter and the reports agree, both ways
    listed = await client.get(
        "/api/v1/items",
        params={"conclusion_id": created["id"], "timeliness": "done_late_extended"},
        headers=viewer,
    )
    assert [i["id"] for i in listed.json()["items"]] == [late_id]
    rep = (await client.get(f"/api/v1/reports/conclusions/{created['id']}", headers=viewer)).json()
    (agency,) = rep["agencies"]
    assert agency["by_timeliness"] == {"done_late_extended": 1, "done_on_time": 1}
    assert agency["on_time_rate"] == 0.5  # against the original deadlines
    assert agency["on_time_rate_extended"] == 1.0  # against the extended ones


def test_on_time_deadline_moves_only_before_it_passes() -> None:
    d = date(2022, 8, 4)
    before = datetime(2022, 8, 4, 23, 0, tzinfo=tl.VN_TZ)
    after = datetime(2022, 8, 5, 0, 0, tzinfo=tl.VN_TZ)
    new = date(2022, 9, 1)
    assert tl.on_time_deadline_after_change(on_time=d, new_deadline=new, at=before) == new
    assert tl.on_time_deadline_after_change(on_time=d, new_deadline=new, at=after) == d
    assert tl.on_time_deadline_after_change(on_time=None, new_deadline=new, at=after) == new
    done = datetime(2022, 8, 20, 10, 0, tzinfo=tl.VN_TZ)
    assert (
        tl.classify(deadline=new, now=done, completed_at=done, original_deadline=d)
        is tl.Timeliness.done_late_extended
    )
    assert (
        tl.classify(deadline=new, now=done, completed_at=done, original_deadline=new)
        is tl.Timeliness.done_on_time
    )
    late = datetime(2022, 9, 2, 10, 0, tzinfo=tl.VN_TZ)
    assert (
        tl.classify(deadline=new, now=late, completed_at=late, original_deadline=d)
        is tl.Timeliness.done_late
    )
