"""The tasks service on real PostgreSQL: API, workflow, access control, extensions, ETags,
idempotency, reports, exports, parse → drafts → items, and the deadline scheduler."""

from __future__ import annotations

import csv
import io
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import docx
import httpx
import openpyxl
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.tasks.domain import timeliness as tl
from services.tasks.events.scheduler import DeadlineScheduler, sample_items
from services.tasks.main import SPEC, create_app
from services.tasks.store import repo
from services.tasks.store.models import Item, NotificationSent, outbox_table
from shared.db import make_engine, make_sessionmaker
from shared.events.outbox import Outbox
from shared.settings import Settings
from tests.conftest import running
from tests.tasks._samples import sample

Auth = Callable[..., dict[str, str]]
# A fixed calendar, never today's (issue 16 item 14): the service runs on a clock that starts at
# 09:00 on 10 June 2026 (Vietnam) and moves with real time, so deadlines, timeliness and the
# scheduler's passes agree whatever day and hour the suite runs.
START = datetime(2026, 6, 10, 9, 0, tzinfo=tl.VN_TZ)
TODAY = START.date()


def fixed_calendar() -> datetime:
    return (START + timedelta(seconds=time.monotonic() - _STARTED)).astimezone(UTC)


_STARTED = time.monotonic()


@pytest.fixture(scope="module")
async def client(make_settings: Callable[..., Settings]) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(service_name="tasks", workers_enabled=False))
    repo.set_clock(fixed_calendar)
    try:
        async with running(app) as c:
            yield c
    finally:
        repo.set_clock(None)


@pytest.fixture(scope="module")
async def sessions(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(settings.async_database_url, schema="tasks")
    yield make_sessionmaker(engine)
    await engine.dispose()


def item(lead: str, title: str | None = None, **kw: Any) -> dict[str, Any]:
    return {"title": title or f"Nhiệm vụ {uuid.uuid4().hex[:6]}", "lead_unit_id": lead, **kw}


async def create(
    client: httpx.AsyncClient, auth: Auth, items: list[dict[str, Any]], **headers: str
) -> httpx.Response:
    body = {
        "number": f"{uuid.uuid4().hex[:4]}/TB-ĐKT",
        "title": "Thông báo kết luận kiểm tra CCHC",
        "issued_on": "2023-09-18",
        "findings": [{"unit_id": items[0]["lead_unit_id"], "text": "Tồn tại", "items": items}],
    }
    return await client.post(
        "/api/v1/conclusions", json=body, headers={**auth("inspector"), **headers}
    )


async def events_for(sessions: async_sessionmaker[AsyncSession], item_id: str) -> list[str]:
    async with sessions() as s:
        rows = await s.execute(
            select(outbox_table.c.type)
            .where(outbox_table.c.subject == item_id)
            .order_by(outbox_table.c.id)
        )
        return [r[0].split(".")[-2] for r in rows]


# ----------------------------------------------------------------- create + idempotency


async def test_create_conclusion_writes_items_history_and_events(
    client: httpx.AsyncClient, auth: Auth, sessions: async_sessionmaker[AsyncSession]
) -> None:
    res = await create(
        client,
        auth,
        [
            item(
                "P21.SNV", deadline=str(TODAY + timedelta(days=20)), supporting_unit_ids=["P21.VP"]
            ),
            item("P21.VP", recurrence="quarterly", criteria=["3.2.5"]),
        ],
    )
    assert res.status_code == 201, res.text
    items = res.json()["items"]
    assert [i["lead_unit_id"] for i in items] == ["P21.SNV", "P21.VP"]
    assert items[0]["supporting_unit_ids"] == ["P21.VP"]
    assert items[0]["timeliness"] == "in_progress_within_time"
    assert items[1]["timeliness"] == "no_deadline" and items[1]["criteria"] == ["3.2.5"]
    for i in items:
        assert await events_for(sessions, i["id"]) == ["created"]
    hist = await client.get(f"/api/v1/items/{items[0]['id']}/history", headers=auth("viewer"))
    assert [h["action"] for h in hist.json()] == ["created"]


async def test_create_rejects_unknown_units_and_roles(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    res = await create(client, auth, [item("P99.NOPE")])
    assert res.status_code == 422
    assert res.headers["content-type"].startswith("application/problem+json")
    bad_rec = await create(client, auth, [item("P21.SNV", recurrence="fortnightly")])
    assert bad_rec.status_code == 422 and "recurrence" in bad_rec.json()["detail"]
    body = {"title": "x", "findings": [{"text": "t", "items": [item("P21.SNV")]}]}
    forbidden = await client.post(
        "/api/v1/conclusions", json=body, headers=auth("officer", "P21.SNV")
    )
    assert forbidden.status_code == 403
    assert (await client.post("/api/v1/conclusions", json=body)).status_code == 401


async def test_idempotency_key_replays_and_detects_reuse(
    client: httpx.AsyncClient, auth: Auth, sessions: async_sessionmaker[AsyncSession]
) -> None:
    key = uuid.uuid4().hex
    items = [item("P21.STP", title=f"Idem {key}")]
    first = await create(client, auth, items, **{"Idempotency-Key": key})
    assert first.status_code == 201
    # same key, same body: the stored response, no second conclusion
    body = {
        "number": "1/TB",
        "title": "t",
        "findings": [{"text": "x", "items": items}],
    }
    a = await client.post(
        "/api/v1/conclusions",
        json=body,
        headers={**auth("inspector"), "Idempotency-Key": key + "b"},
    )
    b = await client.post(
        "/api/v1/conclusions",
        json=body,
        headers={**auth("inspector"), "Idempotency-Key": key + "b"},
    )
    assert a.status_code == b.status_code == 201
    assert a.json() == b.json() and b.headers.get("idempotent-replayed") == "true"
    async with sessions() as s:
        n = await s.scalar(
            select(func.count()).select_from(Item).where(Item.title == f"Idem {key}")
        )
    assert n == 2  # one from `first`, one from a/b together
    changed = {**body, "title": "other"}
    c = await client.post(
        "/api/v1/conclusions",
        json=changed,
        headers={**auth("inspector"), "Idempotency-Key": key + "b"},
    )
    assert c.status_code == 422  # the same key for another request: refused


# ----------------------------------------------------------------- access control


async def test_officer_sees_and_changes_only_own_agency(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    res = await create(client, auth, [item("P21.SYT"), item("P21.SXD")])
    own, other = (i["id"] for i in res.json()["items"])
    officer = auth("officer", "P21.SYT")
    assert (await client.get(f"/api/v1/items/{own}", headers=officer)).status_code == 200
    missing = await client.get(f"/api/v1/items/{other}", headers=officer)
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    t = await client.post(
        f"/api/v1/items/{other}/transitions", json={"action": "start"}, headers=officer
    )
    assert t.status_code == 404
    ext = await client.post(
        f"/api/v1/items/{other}/extensions",
        json={"requested_deadline": "2030-01-01", "reason": "x"},
        headers=officer,
    )
    assert ext.status_code == 404
    listed = await client.get("/api/v1/items", params={"limit": 500}, headers=officer)
    assert {i["lead_unit_id"] for i in listed.json()["items"]} == {"P21.SYT"}
    # an officer cannot accept their own work
    acc = await client.post(
        f"/api/v1/items/{own}/transitions", json={"action": "accept"}, headers=officer
    )
    assert acc.status_code == 403
    viewer = auth("viewer")
    assert (await client.get(f"/api/v1/items/{other}", headers=viewer)).status_code == 200
    no_write = await client.post(
        f"/api/v1/items/{other}/transitions", json={"action": "start"}, headers=viewer
    )
    assert no_write.status_code == 403


# ----------------------------------------------------------------- workflow + ETags


async def test_workflow_transitions_events_and_etags(
    client: httpx.AsyncClient, auth: Auth, sessions: async_sessionmaker[AsyncSession]
) -> None:
    deadline = TODAY + timedelta(days=10)
    res = await create(client, auth, [item("P21.SCT", deadline=str(deadline))])
    item_id = res.json()["items"][0]["id"]
    officer, inspector = auth("officer", "P21.SCT"), auth("inspector")
    url = f"/api/v1/items/{item_id}"

    got = await client.get(url, headers=officer)
    etag = got.headers["etag"]
    assert (await client.get(url, headers={**officer, "If-None-Match": etag})).status_code == 304

    bad = await client.post(f"{url}/transitions", json={"action": "accept"}, headers=inspector)
    assert bad.status_code == 422 and "not_started" in bad.json()["detail"]

    start = await client.post(
        f"{url}/transitions", json={"action": "start"}, headers={**officer, "If-Match": etag}
    )
    assert start.status_code == 200 and start.json()["status"] == "in_progress"
    stale = await client.post(
        f"{url}/transitions", json={"action": "report"}, headers={**officer, "If-Match": etag}
    )
    assert stale.status_code == 412
    assert (await client.get(url, headers={**officer, "If-None-Match": etag})).status_code == 200

    prog = await client.post(
        f"{url}/progress",
        json={"note": "Đã rà soát 50%", "percent": 50, "evidence": [{"name": "bc.pdf"}]},
        headers=officer,
    )
    assert prog.status_code == 201 and prog.json()["progress_percent"] == 50
    rep = await client.post(f"{url}/transitions", json={"action": "report"}, headers=officer)
    assert rep.json()["status"] == "reported" and rep.json()["timeliness"] == "done_on_time"
    no_reason = await client.post(
        f"{url}/transitions", json={"action": "reopen"}, headers=inspector
    )
    assert no_reason.status_code == 422
    reopen = await client.post(
        f"{url}/transitions",
        json={"action": "reopen", "reason": "Thiếu minh chứng"},
        headers=inspector,
    )
    assert reopen.json()["status"] == "in_progress" and reopen.json()["completed_at"] is None
    await client.post(f"{url}/transitions", json={"action": "report"}, headers=officer)
    acc = await client.post(f"{url}/transitions", json={"action": "accept"}, headers=inspector)
    assert acc.json()["status"] == "accepted"
    final = await client.post(
        f"{url}/transitions", json={"action": "cancel", "reason": "x"}, headers=inspector
    )
    assert final.status_code == 422

    hist = (await client.get(f"{url}/history", headers=officer)).json()
    assert [h["action"] for h in hist] == [
        "created",
        "start",
        "progress",
        "report",
        "reopen",
        "report",
        "accept",
    ]
    assert hist[4]["reason"] == "Thiếu minh chứng"
    assert await events_for(sessions, item_id) == [
        "created",
        "status_changed",
        "status_changed",
        "status_changed",
        "status_changed",
        "status_changed",
        "accepted",
    ]
    async with sessions() as s:
        payload = await s.scalar(
            select(outbox_table.c.payload).where(
                outbox_table.c.subject == item_id, outbox_table.c.type.like("%accepted%")
            )
        )
    assert payload is not None
    accepted = json.loads(payload)  # the outbox holds the published JSON as text
    assert accepted["on_time"] is True and accepted["unit_id"] == "P21.SCT"


async def test_cancel_needs_reason(client: httpx.AsyncClient, auth: Auth) -> None:
    res = await create(client, auth, [item("P21.SCT")])
    url = f"/api/v1/items/{res.json()['items'][0]['id']}/transitions"
    assert (
        await client.post(url, json={"action": "cancel"}, headers=auth("inspector"))
    ).status_code == 422
    ok = await client.post(
        url, json={"action": "cancel", "reason": "Trùng"}, headers=auth("inspector")
    )
    assert ok.json()["status"] == "cancelled" and ok.json()["timeliness"] == "cancelled"


# ----------------------------------------------------------------- extensions


async def test_extension_request_approve_and_reject(
    client: httpx.AsyncClient, auth: Auth, sessions: async_sessionmaker[AsyncSession]
) -> None:
    deadline = TODAY + timedelta(days=5)
    res = await create(client, auth, [item("P21.SGDDT", deadline=str(deadline))])
    item_id = res.json()["items"][0]["id"]
    officer, inspector = auth("officer", "P21.SGDDT"), auth("inspector")
    url = f"/api/v1/items/{item_id}/extensions"
    earlier = await client.post(
        url, json={"requested_deadline": str(deadline), "reason": "x"}, headers=officer
    )
    assert earlier.status_code == 422
    new = deadline + timedelta(days=30)
    key = {"Idempotency-Key": uuid.uuid4().hex}
    req = await client.post(
        url,
        json={"requested_deadline": str(new), "reason": "Chờ số liệu"},
        headers={**officer, **key},
    )
    assert req.status_code == 201 and req.json()["status"] == "pending"
    retry = await client.post(
        url,
        json={"requested_deadline": str(new), "reason": "Chờ số liệu"},
        headers={**officer, **key},
    )
    assert retry.status_code == 201 and retry.json() == req.json()  # replayed, not a 409
    dup = await client.post(
        url, json={"requested_deadline": str(new), "reason": "again"}, headers=officer
    )
    assert dup.status_code == 409
    ext_id = req.json()["id"]
    by_officer = await client.post(
        f"{url}/{ext_id}/decision", json={"approve": True}, headers=officer
    )
    assert by_officer.status_code == 403
    ok = await client.post(f"{url}/{ext_id}/decision", json={"approve": True}, headers=inspector)
    assert ok.json()["status"] == "approved"
    got = (await client.get(f"/api/v1/items/{item_id}", headers=officer)).json()
    assert got["deadline"] == str(new)
    assert "deadline_changed" in await events_for(sessions, item_id)
    again = await client.post(
        f"{url}/{ext_id}/decision", json={"approve": False, "reason": "x"}, headers=inspector
    )
    assert again.status_code == 422
    # a second request can now be made and rejected (with a reason)
    req2 = await client.post(
        url,
        json={"requested_deadline": str(new + timedelta(days=1)), "reason": "r"},
        headers=officer,
    )
    rej_no_reason = await client.post(
        f"{url}/{req2.json()['id']}/decision", json={"approve": False}, headers=inspector
    )
    assert rej_no_reason.status_code == 422
    rej = await client.post(
        f"{url}/{req2.json()['id']}/decision",
        json={"approve": False, "reason": "Không đủ căn cứ"},
        headers=inspector,
    )
    assert rej.json()["status"] == "rejected"
    got = (await client.get(f"/api/v1/items/{item_id}", headers=officer)).json()
    assert got["deadline"] == str(new)


# ----------------------------------------------------------------- my items


async def test_my_items_cursor_updated_since_and_etag(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    unit = "P21.SKHCN"
    officer = auth("officer", unit)
    before = (await client.get("/api/v1/me/items", params={"limit": 500}, headers=officer)).json()
    res = await create(client, auth, [item(unit), item(unit), item(unit)])
    mine = {i["id"] for i in res.json()["items"]}
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/api/v1/me/items", params=params, headers=officer)).json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == len(before["items"]) + 3
    assert mine <= set(seen)
    last_seen = max(i["updated_at"] for i in res.json()["items"])
    first = await client.get(
        "/api/v1/me/items", params={"updated_since": last_seen}, headers=officer
    )
    assert first.json()["items"] == []
    etag = first.headers["etag"]
    cached = await client.get(
        "/api/v1/me/items",
        params={"updated_since": last_seen},
        headers={**officer, "If-None-Match": etag},
    )
    assert cached.status_code == 304
    one = sorted(mine)[0]
    await client.post(f"/api/v1/items/{one}/transitions", json={"action": "start"}, headers=officer)
    changed = await client.get(
        "/api/v1/me/items",
        params={"updated_since": last_seen},
        headers={**officer, "If-None-Match": etag},
    )
    assert changed.status_code == 200 and [i["id"] for i in changed.json()["items"]] == [one]
    assert (await client.get("/api/v1/me/items", headers=auth("viewer"))).status_code == 403


# ----------------------------------------------------------------- filters, reports, exports


async def test_timeliness_filter_reports_and_exports(
    client: httpx.AsyncClient, auth: Auth, sessions: async_sessionmaker[AsyncSession]
) -> None:
    unit = "P21.TTPVHCC"
    res = await create(
        client,
        auth,
        [
            item(
                unit, title="quá hạn", deadline=str(TODAY - timedelta(days=3)), criteria=["6.1.2"]
            ),
            item(unit, title="hạn hôm nay", deadline=str(TODAY)),
            item(unit, title="còn hạn", deadline=str(TODAY + timedelta(days=30))),
            item(unit, title="xong", deadline=str(TODAY + timedelta(days=30))),
        ],
    )
    ids = [i["id"] for i in res.json()["items"]]
    conclusion_id = res.json()["id"]
    assert [i["timeliness"] for i in res.json()["items"]] == [
        "overdue",
        "due_soon",
        "in_progress_within_time",
        "in_progress_within_time",
    ]
    officer = auth("officer", unit)
    await client.post(
        f"/api/v1/items/{ids[3]}/transitions", json={"action": "report"}, headers=officer
    )
    await client.post(
        f"/api/v1/items/{ids[3]}/transitions", json={"action": "accept"}, headers=auth("inspector")
    )
    viewer = auth("viewer")

    async def filtered(**params: Any) -> list[str]:
        r = await client.get(
            "/api/v1/items", params={"conclusion_id": conclusion_id, **params}, headers=viewer
        )
        return [i["id"] for i in r.json()["items"]]

    assert await filtered(timeliness="overdue") == [ids[0]]
    assert await filtered(timeliness="due_soon") == [ids[1]]
    assert await filtered(timeliness="done_on_time") == [ids[3]]
    assert await filtered(criterion="6.1.2") == [ids[0]]
    assert await filtered(status="accepted") == [ids[3]]
    assert set(await filtered(deadline_to=str(TODAY))) == {ids[0], ids[1]}

    rep = (await client.get(f"/api/v1/reports/conclusions/{conclusion_id}", headers=viewer)).json()
    assert rep["total"] == 4 and rep["by_status"]["accepted"] == 1 and rep["percent_done"] == 25.0
    (agency,) = rep["agencies"]
    assert agency["unit_id"] == unit and agency["unit_name"]
    assert agency["by_timeliness"] == {
        "overdue": 1,
        "due_soon": 1,
        "in_progress_within_time": 1,
        "done_on_time": 1,
    }
    assert agency["on_time_rate"] == 0.5  # 1 on time ÷ (1 on time + 1 overdue)
    assert [o["item_id"] for o in agency["overdue"]] == [ids[0]]
    assert agency["overdue"][0]["days_overdue"] == 3
    agencies = (
        await client.get(
            "/api/v1/reports/agencies", params={"conclusion_id": conclusion_id}, headers=viewer
        )
    ).json()
    assert [a["unit_id"] for a in agencies] == [unit]
    prov = (await client.get("/api/v1/reports/province", headers=viewer)).json()
    assert prov["total"] >= 4 and any(a["unit_id"] == unit for a in prov["agencies"])

    csv_res = await client.get(
        "/api/v1/exports/items",
        params={"conclusion_id": conclusion_id, "format": "csv"},
        headers=viewer,
    )
    assert csv_res.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(csv_res.content.decode("utf-8-sig"))))
    assert rows[0][:3] == ["STT", "Nội dung nhiệm vụ", "Đơn vị chủ trì"]
    assert len(rows) == 5 and any("Quá hạn" in r for r in rows)
    xlsx = await client.get(
        "/api/v1/exports/items",
        params={"conclusion_id": conclusion_id, "format": "xlsx"},
        headers=viewer,
    )
    wb = openpyxl.load_workbook(io.BytesIO(xlsx.content))
    ws = wb.active
    assert ws is not None
    values = list(ws.iter_rows(values_only=True))
    header = next(i for i, v in enumerate(values) if v[0] == "STT")
    assert {v[1] for v in values[header + 1 : header + 5]} == {
        "quá hạn", "hạn hôm nay", "còn hạn", "xong"
    }  # fmt: skip


# ----------------------------------------------------------------- parse → drafts → items


async def test_parse_text_and_confirm_drafts(client: httpx.AsyncClient, auth: Auth) -> None:
    text_body = sample("quang-nam-2022")
    # confirmed the day after (fixed date), for a province the inspector names: the header
    # does not say which one (see test_tasks_drafts_api for the restructuring cases)
    res = await client.post(
        "/api/v1/conclusions/parse",
        json={"text": text_body, "as_of": "2022-07-26", "province_id": "HYC"},
        headers=auth("inspector"),
    )
    assert res.status_code == 201, res.text
    draft = res.json()
    assert draft["issued_on"] == "2022-07-25" and draft["is_directive"]
    deadlines = {d["deadline"] for d in draft["items"]} - {None}
    assert deadlines == {"2022-08-04", "2022-10-01", "2022-09-01"}
    stttt = next(d for d in draft["items"] if d["deadline"] == "2022-08-04")
    narrower = next(d for d in draft["items"] if "kiện toàn" in d["action"])
    conf = await client.post(
        f"/api/v1/drafts/{draft['id']}/confirm",
        json={
            "title": "Kết luận của Phó Chủ tịch UBND tỉnh",
            "choices": [{"index": stttt["index"]}, {"index": narrower["index"]}],
        },
        headers=auth("inspector"),
    )
    assert conf.status_code == 201, conf.text
    items = conf.json()["items"]
    first = items[0]
    assert first["lead_unit_id"] == "P21.STTTT" and first["deadline"] == "2022-08-04"
    assert first["supporting_unit_ids"] == ["P21.VP"]  # related_units expands to no unit
    # the district group expands to one item per district of the province valid on as_of,
    # exactly the targets the draft showed
    district_items = items[1:]
    assert len(district_items) == narrower["creates"] == 10
    assert {i["lead_unit_id"] for i in district_items} == {
        t["unit_id"] for t in narrower["targets"] if t["role"] == "lead"
    }
    again = await client.post(
        f"/api/v1/drafts/{draft['id']}/confirm", json={"title": "x"}, headers=auth("inspector")
    )
    assert again.status_code == 409


async def test_parse_uploaded_docx_and_bad_input(client: httpx.AsyncClient, auth: Auth) -> None:
    document = docx.Document()
    for para in sample("quang-nam-2022").split("\n\n"):
        document.add_paragraph(para.strip())
    buf = io.BytesIO()
    document.save(buf)
    res = await client.post(
        "/api/v1/conclusions/parse",
        files={"file": ("ket-luan.docx", buf.getvalue(), "application/octet-stream")},
        data={"issued_on": "2022-07-25"},
        headers=auth("inspector"),
    )
    assert res.status_code == 201, res.text
    assert {d["deadline"] for d in res.json()["items"]} - {None} == {
        "2022-08-04",
        "2022-10-01",
        "2022-09-01",
    }
    news = await client.post(
        "/api/v1/conclusions/parse",
        json={"text": sample("tin-tuc")},
        headers=auth("inspector"),
    )
    assert news.json()["items"] == [] and news.json()["is_directive"] is False
    bad = await client.post(
        "/api/v1/conclusions/parse",
        content=b"not json",
        headers={**auth("inspector"), "content-type": "application/json"},
    )
    assert bad.status_code == 422
    pdf = await client.post(
        "/api/v1/conclusions/parse",
        files={"file": ("x.pdf", b"%PDF-1.4 broken", "application/pdf")},
        headers=auth("inspector"),
    )
    assert pdf.status_code == 422


# ----------------------------------------------------------------- scheduler


async def test_reminders_and_overdue_sent_once_per_threshold(
    client: httpx.AsyncClient, auth: Auth, sessions: async_sessionmaker[AsyncSession]
) -> None:
    unit = "P21.STC"
    # the scheduler's pass on the service's fixed calendar
    now = fixed_calendar()
    day = TODAY
    offsets = [7, 3, 1, 0, 8, -1, -20]
    res = await create(
        client, auth, [item(unit, deadline=str(day + timedelta(days=d))) for d in offsets]
    )
    ids = [i["id"] for i in res.json()["items"]]
    by_offset = dict(zip(offsets, ids, strict=True))
    # a reported item is not chased
    extra = await create(client, auth, [item(unit, deadline=str(day + timedelta(days=1)))])
    reported = extra.json()["items"][0]["id"]
    await client.post(
        f"/api/v1/items/{reported}/transitions",
        json={"action": "report"},
        headers=auth("officer", unit),
    )

    def notices(kind: str) -> float:
        return REGISTRY.get_sample_value("tasks_deadline_notices_total", {"kind": kind}) or 0

    before = {k: notices(k) for k in ("reminder", "overdue", "escalation")}
    scheduler = DeadlineScheduler(sessions, Outbox(outbox_table, SPEC.source), interval=60)
    await scheduler.run_once(now)
    await scheduler.run_once(now)  # a second pass sends nothing new
    async with sessions() as s:
        sent = (
            await s.execute(
                select(
                    NotificationSent.item_id, NotificationSent.kind, NotificationSent.threshold
                ).where(NotificationSent.item_id.in_([*ids, reported]))
            )
        ).all()
        payloads = (
            await s.execute(
                select(outbox_table.c.subject, outbox_table.c.type, outbox_table.c.payload)
                .where(outbox_table.c.subject.in_([*ids, reported]))
                .where(
                    outbox_table.c.type.like("%reminder_due%")
                    | outbox_table.c.type.like("%overdue%")
                )
            )
        ).all()
    got = sorted((ids.index(i), k, t) for i, k, t in sent)
    assert got == sorted(
        [
            (ids.index(by_offset[7]), "reminder", 7),
            (ids.index(by_offset[3]), "reminder", 3),
            (ids.index(by_offset[1]), "reminder", 1),
            (ids.index(by_offset[0]), "reminder", 1),
            (ids.index(by_offset[-1]), "overdue", 1),
            (ids.index(by_offset[-20]), "overdue", 1),
            (ids.index(by_offset[-20]), "escalation", 14),
        ]
    )
    events = {(subj, t.split(".")[-2]): json.loads(p) for subj, t, p in payloads}
    assert len(payloads) == 6  # one event per item: 4 reminders + 2 overdue (one escalated)
    assert events[(by_offset[3], "reminder_due")]["days_before"] == 3
    assert events[(by_offset[-20], "overdue")]["escalated"] is True
    assert events[(by_offset[-20], "overdue")]["days_overdue"] == 20
    assert events[(by_offset[-1], "overdue")]["escalated"] is False
    escalated = (await client.get(f"/api/v1/items/{by_offset[-20]}", headers=auth("viewer"))).json()
    assert escalated["priority"] == "urgent"
    hist = await client.get(f"/api/v1/items/{by_offset[-20]}/history", headers=auth("viewer"))
    assert hist.json()[-1]["action"] == "escalated"
    # moving a deadline re-arms the reminders for the new date (once again)
    patched = await client.patch(
        f"/api/v1/items/{by_offset[8]}",
        json={"deadline": str(day + timedelta(days=2)), "reason": "Đẩy nhanh tiến độ"},
        headers=auth("inspector"),
    )
    assert patched.status_code == 200
    await scheduler.run_once(now)
    await scheduler.run_once(now)
    async with sessions() as s:
        rearmed = (
            await s.execute(
                select(NotificationSent.threshold, NotificationSent.deadline).where(
                    NotificationSent.item_id == by_offset[8]
                )
            )
        ).all()
    assert rearmed == [(3, day + timedelta(days=2))]
    # /metrics counted what was sent: 4 reminders + 1 re-armed, 2 overdue, 1 escalation (other
    # tests' items share the database, so at least these)
    sent_now = {k: notices(k) - before[k] for k in before}
    assert sent_now["reminder"] >= 5 and sent_now["overdue"] >= 2 and sent_now["escalation"] >= 1
    async with sessions() as s:
        counts = await sample_items(s, now)
    assert sum(n for (status, _), n in counts.items() if status == "reported") >= 1
    for (status, timeliness), n in counts.items():
        labels = {"status": status, "timeliness": timeliness}
        assert REGISTRY.get_sample_value("tasks_items", labels) == n


async def test_patch_item_deadline_needs_reason_and_is_recorded(
    client: httpx.AsyncClient, auth: Auth, sessions: async_sessionmaker[AsyncSession]
) -> None:
    res = await create(client, auth, [item("P21.SNV", deadline=str(TODAY + timedelta(days=9)))])
    item_id = res.json()["items"][0]["id"]
    url = f"/api/v1/items/{item_id}"
    new = str(TODAY + timedelta(days=40))
    no_reason = await client.patch(url, json={"deadline": new}, headers=auth("inspector"))
    assert no_reason.status_code == 422
    officer = await client.patch(
        url, json={"deadline": new, "reason": "x"}, headers=auth("officer", "P21.SNV")
    )
    assert officer.status_code == 403
    etag = (await client.get(url, headers=auth("viewer"))).headers["etag"]
    ok = await client.patch(
        url,
        json={"deadline": new, "reason": "Theo chỉ đạo", "responsible_person": "Trần B"},
        headers={**auth("inspector"), "If-Match": etag},
    )
    assert ok.status_code == 200 and ok.json()["deadline"] == new
    assert ok.json()["responsible_person"] == "Trần B"
    stale = await client.patch(
        url, json={"priority": "high"}, headers={**auth("inspector"), "If-Match": etag}
    )
    assert stale.status_code == 412
    assert await events_for(sessions, item_id) == ["created", "deadline_changed"]
    async with sessions() as s:
        payload = await s.scalar(
            select(outbox_table.c.payload).where(
                outbox_table.c.subject == item_id, outbox_table.c.type.like("%deadline%")
            )
        )
    assert payload is not None
    changed = json.loads(payload)
    assert changed["previous_deadline"] == str(TODAY + timedelta(days=9))
    assert changed["deadline"] == new and changed["reason"] == "Theo chỉ đạo"


async def test_recurring_duty_creates_one_item_per_period(
    client: httpx.AsyncClient, auth: Auth, sessions: async_sessionmaker[AsyncSession]
) -> None:
    res = await create(client, auth, [item("P21.VP", recurrence="monthly:days=1-5")])
    parent = res.json()["items"][0]["id"]
    scheduler = DeadlineScheduler(sessions, Outbox(outbox_table, SPEC.source), interval=60)
    # A fixed clock, never today's: on the 10th the next child is due on the 5th of next month,
    # outside the 7-day reminder window, so its only event is `created` whatever day CI runs.
    now = datetime(2026, 6, 10, 9, 0, tzinfo=tl.VN_TZ)
    await scheduler.run_once(now)
    await scheduler.run_once(now)
    async with sessions() as s:
        children = (
            (
                await s.execute(
                    select(Item).where(Item.parent_item_id == parent).order_by(Item.deadline)
                )
            )
            .scalars()
            .all()
        )
    assert [c.period_key for c in children] == ["2026-07"]
    assert len({c.period_key for c in children}) == len(children)
    for c in children:
        assert c.deadline is not None and c.deadline.day == 5 and c.origin == "recurrence"
        assert await events_for(sessions, c.id) == ["created"]


async def test_devseed_creates_the_demo_items(
    make_settings: Callable[..., Settings], token: Callable[..., str]
) -> None:
    from types import SimpleNamespace

    from services.tasks import devseed

    app = create_app(make_settings(service_name="tasks", workers_enabled=False))
    async with running(app) as c:
        ctx = SimpleNamespace(
            urls={"tasks": "http://testserver"},
            admin_token=token("admin"),
            transport=httpx.ASGITransport(app=app),
            now=fixed_calendar(),  # the module's service clock
        )
        await devseed.seed(ctx)
        await devseed.seed(ctx)  # a second run does not duplicate the demo items
        listed = await c.get(
            "/api/v1/items",
            params={"criterion": "3.4.1", "limit": 500},
            headers={"Authorization": f"Bearer {token('viewer')}"},
        )
        demo = [i for i in listed.json()["items"] if "TCTP: 3.2.5; 3.4.1" in i["title"]]
        assert len(demo) == 1 and demo[0]["deadline"] == "2024-12-31"
        # the demo officer's agency has one item due soon (seeded once, whatever the runs)
        officer = {"Authorization": f"Bearer {token('officer', devseed.DUE_SOON_UNIT)}"}
        mine = await c.get("/api/v1/me/items", params={"limit": 500}, headers=officer)
        due = [
            i
            for i in mine.json()["items"]
            if i["title"] == "Bổ sung minh chứng kết quả giải quyết TTHC quý này"
        ]
        assert len(due) == 1 and due[0]["timeliness"] == "due_soon"
        # the scheduler's pass turns it into a reminder in that officer's feed
        engine = make_engine(app.state.settings.async_database_url, schema="tasks")
        try:
            scheduler = DeadlineScheduler(
                make_sessionmaker(engine), Outbox(outbox_table, SPEC.source), interval=60
            )
            await scheduler.run_once(fixed_calendar())
        finally:
            await engine.dispose()
        feed = await c.get("/api/v1/me/notifications", params={"limit": 500}, headers=officer)
        kinds = {(n["item_id"], n["kind"]) for n in feed.json()["items"]}
        assert (due[0]["id"], "reminder") in kinds and (due[0]["id"], "item_assigned") in kinds


async def test_sql_and_python_timeliness_agree_at_the_local_midnight_boundary(
    client: httpx.AsyncClient, auth: Auth, sessions: async_sessionmaker[AsyncSession]
) -> None:
    from datetime import UTC

    from sqlalchemy import update

    deadline = TODAY - timedelta(days=10)
    res = await create(client, auth, [item("P21.SXD", deadline=str(deadline))])
    item_id, conclusion_id = res.json()["items"][0]["id"], res.json()["id"]
    await client.post(
        f"/api/v1/items/{item_id}/transitions",
        json={"action": "report"},
        headers=auth("officer", "P21.SXD"),
    )
    viewer = auth("viewer")
    # 23:59:59 in Hà Nội on the deadline day is 16:59:59 UTC: on time; one second later: late
    for instant, expected in (
        (
            datetime(deadline.year, deadline.month, deadline.day, 16, 59, 59, tzinfo=UTC),
            "done_on_time",
        ),
        (datetime(deadline.year, deadline.month, deadline.day, 17, 0, 0, tzinfo=UTC), "done_late"),
    ):
        async with sessions() as s, s.begin():
            await s.execute(update(Item).where(Item.id == item_id).values(completed_at=instant))
        one = (await client.get(f"/api/v1/items/{item_id}", headers=viewer)).json()
        assert one["timeliness"] == expected
        listed = await client.get(
            "/api/v1/items",
            params={"conclusion_id": conclusion_id, "timeliness": expected},
            headers=viewer,
        )
        assert [i["id"] for i in listed.json()["items"]] == [item_id]
