"""Import that cannot create wrong work: the draft's plan, its warnings, and a confirmation
that creates exactly that plan (real PostgreSQL, the service's own registry and lineage)."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from services.tasks.main import create_app
from shared.settings import Settings
from tests.conftest import running
from tests.tasks._samples import sample, samples_dir

Auth = Callable[..., dict[str, str]]
AS_OF = "2026-06-10"  # a fixed confirmation date, after the 2025 restructuring


@pytest.fixture(scope="module")
async def client(make_settings: Callable[..., Settings]) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(service_name="tasks", workers_enabled=False))
    async with running(app) as c:
        yield c


async def parse(client: httpx.AsyncClient, auth: Auth, text: str, **kw: Any) -> dict[str, Any]:
    res = await client.post(
        "/api/v1/conclusions/parse",
        json={"text": text, "as_of": AS_OF, **kw},
        headers=auth("inspector"),
    )
    assert res.status_code == 201, res.text
    return dict(res.json())


def codes(draft: dict[str, Any]) -> Counter[str]:
    return Counter(w["code"] for w in draft["warnings"])


async def test_hung_yen_preview_shows_warnings_and_expansions_and_confirm_creates_exactly_it(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    draft = await parse(client, auth, sample("hung-yen-2023-cong-van"))
    # a 2023 draft of the old Hưng Yên province, confirmed in 2026: the province is now P21
    assert draft["province_id"] == "P21" and draft["number"] is None
    c = codes(draft)
    for code in ("no_number", "no_date", "province_successor", "group_expanded", "successor"):
        assert c[code] >= 1, (code, c)
    assert c["group_empty"] >= 1  # "UBND các huyện, thị xã, thành phố": no district in 2026
    shown: Counter[tuple[str, str]] = Counter()
    for item in draft["items"]:
        leads = [t for t in item["targets"] if t["role"] == "lead"]
        assert item["creates"] == len(leads)
        for t in leads:
            shown[(t["unit_id"], item["action"])] += 1
            # nothing outside the issuing province, nothing abolished by the confirmation date
            assert t["unit_id"].startswith("P21"), t
            if t["via"] == "successor":
                assert t["original_unit_id"] and t["original_unit_id"] != t["unit_id"]
    assert sum(shown.values()) == draft["total_items"] > 0
    # Sở Kế hoạch và Đầu tư (merged 2025) shows as Sở Tài chính, the addressee kept
    first = draft["items"][0]
    mapped = {(t["original_unit_id"], t["unit_id"]) for t in first["targets"]}
    assert ("P21.SKHDT", "P21.STC") in mapped
    conf = await client.post(
        f"/api/v1/drafts/{draft['id']}/confirm",
        json={"title": "Khắc phục tồn tại CCHC"},
        headers=auth("inspector"),
    )
    assert conf.status_code == 201, conf.text
    created = Counter((i["lead_unit_id"], i["title"]) for i in conf.json()["items"])
    assert created == shown


async def test_same_number_from_same_issuer_is_409_unless_a_revision(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    number = f"{uuid.uuid4().int % 9000 + 1000}/UBND-NC"
    text = (
        f"UỶ BAN NHÂN DÂN TỈNH HƯNG YÊN\n|\nSố: {number}\n|\nHưng Yên, ngày 02 tháng 6 năm 2026\n\n"
        "UBND tỉnh yêu cầu:\n\n1. Sở Nội vụ\n\n- Tổng hợp kết quả, báo cáo trước ngày 30/6/2026.\n"
    )
    first = await parse(client, auth, text)
    assert first["number"] == number and first["province_id"] == "P21"
    ok = await client.post(
        f"/api/v1/drafts/{first['id']}/confirm", json={"title": "x"}, headers=auth("inspector")
    )
    assert ok.status_code == 201, ok.text
    # the same document again (spelled "Ủy" this time): the draft warns, confirming is a 409
    second = await parse(client, auth, text.replace("UỶ", "ỦY"))
    assert codes(second)["duplicate_number"] == 1
    dup = await client.post(
        f"/api/v1/drafts/{second['id']}/confirm", json={"title": "x"}, headers=auth("inspector")
    )
    assert dup.status_code == 409 and dup.headers["content-type"].startswith(
        "application/problem+json"
    )
    rev = await client.post(
        f"/api/v1/drafts/{second['id']}/confirm",
        json={"title": "x (sửa đổi)", "revision": True},
        headers=auth("inspector"),
    )
    assert rev.status_code == 201, rev.text


async def test_no_directive_section_cannot_be_confirmed(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    draft = await parse(client, auth, sample("tin-tuc"))
    assert draft["items"] == [] and codes(draft)["no_directive"] == 1
    res = await client.post(
        f"/api/v1/drafts/{draft['id']}/confirm", json={"title": "x"}, headers=auth("inspector")
    )
    assert res.status_code == 422


def _shown(draft: dict[str, Any]) -> Counter[tuple[Any, ...]]:
    """What the draft says confirming creates: per item, one entry per lead target, with its
    supporting targets (the lead itself left out), deadline and planned recurrence."""
    out: Counter[tuple[Any, ...]] = Counter()
    for item in draft["items"]:
        leads = [t["unit_id"] for t in item["targets"] if t["role"] == "lead"]
        sups = [t["unit_id"] for t in item["targets"] if t["role"] == "support"]
        assert item["creates"] == len(leads) == len(set(leads))
        for lead in leads:
            out[
                (
                    lead,
                    item["action"],
                    item["deadline"],
                    item["planned_recurrence"],
                    tuple(sorted(set(sups) - {lead})),
                )
            ] += 1
    return out


@pytest.mark.parametrize("prefix", ["21", "23"])
async def test_confirming_a_real_plan_creates_exactly_the_items_the_draft_shows(
    client: httpx.AsyncClient, auth: Auth, prefix: str
) -> None:
    # provincial plans with sections, field blocks, a task table and groups expanded to the
    # province's communes: every created item is one the draft listed, with the same lead,
    # supporting units, deadline and recurrence, and nothing else is created
    (path,) = sorted((samples_dir().parent / "corpus").glob(f"{prefix}-*.txt"))
    draft = await parse(client, auth, path.read_text(encoding="utf-8"))
    shown = _shown(draft)
    assert sum(shown.values()) == draft["total_items"] > 10
    conf = await client.post(
        f"/api/v1/drafts/{draft['id']}/confirm",
        # a number of our own: the corpus number may have been confirmed by an earlier run
        json={"title": "Kế hoạch", "number": f"{uuid.uuid4().hex[:8]}/KH-UBND"},
        headers=auth("inspector"),
    )
    assert conf.status_code == 201, conf.text
    created = Counter(
        (
            i["lead_unit_id"],
            i["title"],
            i["deadline"],
            i["recurrence"],
            tuple(sorted(i["supporting_unit_ids"])),
        )
        for i in conf.json()["items"]
    )
    assert created == shown
    # and the draft cannot be confirmed a second time into more items
    again = await client.post(
        f"/api/v1/drafts/{draft['id']}/confirm", json={"title": "x"}, headers=auth("inspector")
    )
    assert again.status_code == 409


@pytest.mark.parametrize(
    "text",
    [
        # only an evaluation: results and shortcomings, no task
        "UBND TỈNH HƯNG YÊN\n|\nHưng Yên, ngày 02 tháng 6 năm 2026\n\nI. KẾT QUẢ ĐẠT ĐƯỢC\n\n"
        "- Sở Nội vụ đã hoàn thành rà soát thủ tục hành chính.\n\nII. TỒN TẠI, HẠN CHẾ\n\n"
        "- Một số thủ tục còn giải quyết quá hạn.\n",
        # a directive whose tasks name nobody the registry knows: nothing to create
        "Hưng Yên, ngày 02 tháng 6 năm 2026\n\nUBND tỉnh yêu cầu:\n\n1. Tổ công tác liên ngành\n\n"
        "- Tổng hợp kết quả, báo cáo trước ngày 30/6/2026.\n",
    ],
    ids=["evaluation-only", "no-lead"],
)
async def test_a_draft_that_would_create_nothing_cannot_be_confirmed_as_an_empty_conclusion(
    client: httpx.AsyncClient, auth: Auth, text: str
) -> None:
    draft = await parse(client, auth, text)
    assert draft["total_items"] == 0
    res = await client.post(
        f"/api/v1/drafts/{draft['id']}/confirm", json={"title": "x"}, headers=auth("inspector")
    )
    assert res.status_code == 422 and res.headers["content-type"].startswith(
        "application/problem+json"
    )
    # the draft stays pending: nothing was created from it
    res2 = await client.post(
        f"/api/v1/drafts/{draft['id']}/confirm", json={"title": "x"}, headers=auth("inspector")
    )
    assert res2.status_code == 422


async def test_recurring_duty_is_bounded_and_starts_at_the_conclusion(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    text = (
        "Hưng Yên, ngày 05 tháng 3 năm 2026\n\nUBND tỉnh yêu cầu:\n\n1. Sở Tư pháp\n\n"
        "- Báo cáo kết quả kiểm soát thủ tục hành chính trước ngày 20 hằng tháng.\n"
    )
    draft = await parse(client, auth, text)
    item = draft["items"][0]
    assert item["recurrence"] == "monthly:by=20"
    assert item["planned_recurrence"] == "monthly:by=20|from=2026-03-05|until=2026-12-31"
    conf = await client.post(
        f"/api/v1/drafts/{draft['id']}/confirm", json={"title": "x"}, headers=auth("inspector")
    )
    assert conf.status_code == 201, conf.text
    assert [i["recurrence"] for i in conf.json()["items"]] == [item["planned_recurrence"]]


async def test_abolished_unit_without_successor_is_a_warning_not_a_silent_drop(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    # Thái Bình's districts ended on 30/6/2025; a 2024 task for one of them, confirmed in
    # 2026, goes to the communes it was split into, or is flagged when it has none
    text = (
        "Hưng Yên, ngày 05 tháng 10 năm 2024\n\nUBND tỉnh yêu cầu:\n\n"
        "1. UBND huyện Văn Giang\n\n- Rà soát thủ tục hành chính trước ngày 30/11/2024.\n"
    )
    draft = await parse(client, auth, text)
    item = draft["items"][0]
    leads = [t for t in item["targets"] if t["role"] == "lead"]
    assert leads and all(
        t["via"] == "successor" and t["original_unit_id"] == "HYC.D02" for t in leads
    )
    assert codes(draft)["successor"] == 1


async def test_units_an_inspector_names_instead_of_the_plan_obey_the_plan_s_rules(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    """The inspector may re-assign an item, but not to a unit abolished by the confirmation
    date (the refusal names its successors) or to another province's unit."""
    text = (
        "Hưng Yên, ngày 05 tháng 3 năm 2026\n\nUBND tỉnh yêu cầu:\n\n1. Sở Tư pháp\n\n"
        "- Rà soát thủ tục hành chính trước ngày 30/4/2026.\n"
    )
    draft = await parse(client, auth, text)
    url = f"/api/v1/drafts/{draft['id']}/confirm"

    async def confirm(**choice: Any) -> httpx.Response:
        return await client.post(
            url, json={"title": "x", "choices": [{"index": 0, **choice}]},
            headers=auth("inspector"),
        )  # fmt: skip

    abolished = await confirm(lead_unit_ids=["HYC.D02"])
    assert abolished.status_code == 422
    detail = abolished.json()["detail"]
    assert "HYC.D02" in detail and "đơn vị kế thừa: P21." in detail, detail
    elsewhere = await confirm(lead_unit_ids=["P21.SNV"], supporting_unit_ids=["P01.SCT"])
    assert elsewhere.status_code == 422 and "P01.SCT" in elsewhere.json()["detail"]
    # nothing was created by the refusals: the draft is still pending and confirms once; a
    # phone's retry with the same Idempotency-Key gets the same answer, not a 409
    retry = {"Idempotency-Key": uuid.uuid4().hex}
    choice = {"index": 0, "lead_unit_ids": ["P21.SNV"], "supporting_unit_ids": ["P21.SCT"]}
    answers = [
        await client.post(url, json={"title": "x", "choices": [choice]},
                          headers={**auth("inspector"), **retry})
        for _ in range(2)
    ]  # fmt: skip
    assert [a.status_code for a in answers] == [201, 201], answers[0].text
    assert answers[0].json() == answers[1].json()
    assert answers[1].headers.get("idempotent-replayed") == "true"
    (item,) = answers[0].json()["items"]
    assert item["lead_unit_id"] == "P21.SNV" and item["supporting_unit_ids"] == ["P21.SCT"]
    other = await client.post(url, json={"title": "y", "choices": [choice]},
                              headers={**auth("inspector"), **retry})  # fmt: skip
    assert other.status_code == 422  # the same key for another request


async def test_bad_files_are_problems_not_drafts(client: httpx.AsyncClient, auth: Auth) -> None:
    import io
    import zipfile

    from pypdf import PdfWriter

    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("word/document.xml", b"\0" * (60 * 1024 * 1024))
    writer = PdfWriter()
    writer.add_blank_page(200, 200)
    scanned = io.BytesIO()
    writer.write(scanned)
    writer.encrypt(user_password="secret", owner_password="owner")
    locked = io.BytesIO()
    writer.write(locked)
    cases = [
        ("bomb.docx", bomb.getvalue(), 413),
        ("x.docx", b"not a zip at all", 422),
        ("scan.pdf", scanned.getvalue(), 422),
        ("locked.pdf", locked.getvalue(), 422),
    ]
    for name, data, status in cases:
        res = await client.post(
            "/api/v1/conclusions/parse",
            files={"file": (name, data, "application/octet-stream")},
            headers=auth("inspector"),
        )
        assert res.status_code == status, (name, res.text)
        assert res.headers["content-type"].startswith("application/problem+json")
    scan = await client.post(
        "/api/v1/conclusions/parse",
        files={"file": ("scan.pdf", scanned.getvalue(), "application/pdf")},
        headers=auth("inspector"),
    )
    assert "OCR" in scan.json()["detail"]
