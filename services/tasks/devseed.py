"""`make run` seed: parse a small demo dispatch and confirm its drafts into items, and give
the demo officer (`make token ROLE=officer UNIT=P21.STC`) an item due in three days, so the
scheduler's first pass puts a due-soon reminder in that officer's notification feed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from services.tasks.domain import timeliness as tl

DUE_SOON_UNIT = "P21.STC"

DEMO_DISPATCH = """Hưng Yên, ngày 05 tháng 10 năm 2024

UBND tỉnh yêu cầu:

1. Sở Nội vụ

- Chủ trì, phối hợp với Văn phòng UBND tỉnh tổng hợp kết quả khắc phục tồn tại, hạn chế theo các Thông báo kết luận kiểm tra, báo cáo UBND tỉnh trước ngày 15/11/2024.

- Nâng cao điểm số các TCTP: 3.2.5; 3.4.1, hoàn thành trong tháng 12/2024.

2. Văn phòng UBND tỉnh

- Định kỳ từ ngày 01 đến ngày 05 hằng tháng tổng hợp tình hình giải quyết TTHC.

3. Sở Tư pháp

- Rà soát văn bản quy phạm pháp luật, gửi báo cáo quý I, 6 tháng, 9 tháng và năm về Sở Nội vụ.
"""


async def seed(ctx: Any) -> None:
    base = ctx.urls["tasks"]
    headers = {"Authorization": f"Bearer {ctx.admin_token}"}
    transport = getattr(ctx, "transport", None)  # tests pass an in-process ASGI transport
    async with httpx.AsyncClient(
        base_url=base, headers=headers, timeout=30, transport=transport
    ) as client:
        draft = await client.post("/api/v1/conclusions/parse", json={"text": DEMO_DISPATCH})
        draft.raise_for_status()
        confirm = await client.post(
            f"/api/v1/drafts/{draft.json()['id']}/confirm",
            json={"number": "DEMO/UBND-NC", "title": "Công văn demo khắc phục tồn tại CCHC"},
            headers={"Idempotency-Key": "devseed-tasks-demo"},
        )
        if confirm.status_code not in (409, 422):  # 409/422: seeded before (same key)
            confirm.raise_for_status()
        # the clock the service runs on (a test's fixed calendar), else the wall clock
        await seed_due_soon(client, getattr(ctx, "now", None) or datetime.now(UTC))


async def seed_due_soon(client: httpx.AsyncClient, now: datetime) -> None:
    """One item due in 3 days for the demo officer's agency, once per day (Idempotency-Key)."""
    today = tl.local_date(now)
    res = await client.post(
        "/api/v1/conclusions",
        json={
            "number": f"DEMO-{today:%d%m%Y}/TB-ĐKT",
            "title": "Thông báo kết luận kiểm tra CCHC (demo)",
            "issued_on": str(today),
            "findings": [
                {
                    "unit_id": DUE_SOON_UNIT,
                    "text": "Chưa cập nhật đầy đủ minh chứng kết quả giải quyết TTHC",
                    "items": [
                        {
                            "title": "Bổ sung minh chứng kết quả giải quyết TTHC quý này",
                            "lead_unit_id": DUE_SOON_UNIT,
                            "supporting_unit_ids": ["P21.VP"],
                            "deadline": str(today + timedelta(days=3)),
                        }
                    ],
                }
            ],
        },
        headers={"Idempotency-Key": f"devseed-tasks-due-soon-{today}"},
    )
    if res.status_code != 422:  # 422: the same key with an older body — seeded before
        res.raise_for_status()
