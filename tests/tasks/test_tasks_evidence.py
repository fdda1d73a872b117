"""Evidence files end to end on real PostgreSQL: multipart upload on progress and remediation
reports, size and type checks from the bytes, SHA-256, the virus-scan hook, chunked storage,
downloads authorised like the item, and Idempotency-Key replays of multipart writes."""

from __future__ import annotations

import hashlib
import io
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import docx
import httpx
import openpyxl
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.tasks.config import TasksSettings
from services.tasks.domain import evidence as ev
from services.tasks.main import create_app
from services.tasks.store.models import EvidenceChunk, EvidenceFile, ProgressNote
from shared.db import make_engine, make_sessionmaker
from shared.settings import Settings
from tests.conftest import running

Auth = Callable[..., dict[str, str]]
MAX_BYTES = 300_000
CHUNK = 64 * 1024
# a stand-in virus scanner: flags any file containing the EICAR marker (exit 1)
SCAN = "sh -c 'if grep -q EICAR-STANDARD \"$0\"; then exit 1; else exit 0; fi'"


def pdf_bytes(extra: bytes = b"") -> bytes:
    return (
        b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
        b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\n"
        + extra
        + b"\ntrailer << /Root 1 0 R >>\n%%EOF\n"
    )


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def docx_bytes() -> bytes:
    d = docx.Document()
    d.add_paragraph("Báo cáo kết quả khắc phục")
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


def xlsx_bytes() -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["Mã TTHC", "Đã niêm yết"])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


@pytest.fixture(scope="module")
async def client(make_settings: Callable[..., Settings]) -> AsyncIterator[httpx.AsyncClient]:
    tasks = TasksSettings(
        evidence_max_bytes=MAX_BYTES, evidence_chunk_bytes=CHUNK, evidence_scan_command=SCAN
    )
    app = create_app(make_settings(service_name="tasks", workers_enabled=False), tasks)
    async with running(app) as c:
        yield c


@pytest.fixture(scope="module")
async def sessions(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(settings.async_database_url, schema="tasks")
    yield make_sessionmaker(engine)
    await engine.dispose()


async def new_item(client: httpx.AsyncClient, auth: Auth, unit: str) -> str:
    body = {
        "title": "Thông báo kết luận kiểm tra CCHC",
        "findings": [
            {
                "unit_id": unit,
                "text": "Tồn tại",
                "items": [{"title": f"Nhiệm vụ {uuid.uuid4().hex[:6]}", "lead_unit_id": unit}],
            }
        ],
    }
    res = await client.post("/api/v1/conclusions", json=body, headers=auth("inspector"))
    assert res.status_code == 201, res.text
    return str(res.json()["items"][0]["id"])


async def count(sessions: async_sessionmaker[AsyncSession], model: Any, item_id: str) -> int:
    async with sessions() as s:
        return int(
            await s.scalar(select(func.count()).select_from(model).where(model.item_id == item_id))
            or 0
        )


async def test_officer_uploads_a_pdf_the_inspector_downloads_it(
    client: httpx.AsyncClient, auth: Auth, sessions: async_sessionmaker[AsyncSession]
) -> None:
    unit = "P21.SNV"
    item_id = await new_item(client, auth, unit)
    officer = auth("officer", unit)
    # big enough to span several chunks of storage
    pdf = pdf_bytes(b"%" + b"x" * (CHUNK * 3 + 123))
    res = await client.post(
        f"/api/v1/items/{item_id}/progress",
        data={"note": "Đã ban hành kế hoạch khắc phục", "percent": "40"},
        files=[
            ("files", ("ke-hoach-khac-phuc.pdf", pdf, "application/pdf")),
            ("files", ("bang-ra-soat.xlsx", xlsx_bytes(), "application/octet-stream")),
        ],
        headers=officer,
    )
    assert res.status_code == 201, res.text
    assert res.json()["progress_percent"] == 40 and res.json()["status"] == "in_progress"
    inspector = auth("inspector")
    detail = (await client.get(f"/api/v1/items/{item_id}", headers=inspector)).json()
    (note,) = detail["notes"]
    assert note["note"] == "Đã ban hành kế hoạch khắc phục"
    by_name = {e["name"]: e for e in note["evidence"]}
    got = by_name["ke-hoach-khac-phuc.pdf"]
    assert got["content_type"] == ev.PDF and got["size"] == len(pdf)
    assert got["sha256"] == hashlib.sha256(pdf).hexdigest()
    assert by_name["bang-ra-soat.xlsx"]["content_type"] == ev.XLSX  # told from the zip's entries
    download = await client.get(got["download_url"], headers=inspector)
    assert download.status_code == 200
    assert download.content == pdf
    assert download.headers["content-type"] == ev.PDF
    assert "ke-hoach-khac-phuc.pdf" in download.headers["content-disposition"]
    async with sessions() as s:
        chunks = await s.scalar(
            select(func.count())
            .select_from(EvidenceChunk)
            .where(EvidenceChunk.storage_key == f"{item_id}/{got['id']}")
        )
    assert chunks == 4  # stored in 64 KiB chunks, never as one value
    # another agency's officer: 404 for the item's evidence, like for the item
    other = await client.get(got["download_url"], headers=auth("officer", "P21.SYT"))
    assert other.status_code == 404
    assert (await client.get(got["download_url"], headers=officer)).status_code == 200
    # the evidence id under another item is not found either
    elsewhere = await new_item(client, auth, unit)
    wrong = await client.get(f"/api/v1/items/{elsewhere}/evidence/{got['id']}", headers=inspector)
    assert wrong.status_code == 404
    assert (await client.get(got["download_url"])).status_code == 401


@pytest.mark.parametrize(
    ("name", "content", "declared", "status", "reason"),
    [
        ("rong.pdf", b"", "application/pdf", 422, "empty"),
        ("qua-lon.pdf", pdf_bytes(b"%" + b"x" * MAX_BYTES), "application/pdf", 413, "limit"),
        ("anh.pdf", PNG, "application/pdf", 415, "image/png"),
        ("bao-cao.pdf", pdf_bytes(), "image/png", 415, "declared image/png"),
        ("ghi-chu.txt", "Chỉ là văn bản".encode(), "text/plain", 415, "not a PDF"),
        (
            "virus.pdf",
            pdf_bytes(b"%EICAR-STANDARD-ANTIVIRUS-TEST-FILE"),
            "application/pdf",
            422,
            "virus",
        ),
    ],
)
async def test_bad_uploads_are_refused_and_change_nothing(
    client: httpx.AsyncClient,
    auth: Auth,
    sessions: async_sessionmaker[AsyncSession],
    name: str,
    content: bytes,
    declared: str,
    status: int,
    reason: str,
) -> None:
    unit = "P21.STP"
    item_id = await new_item(client, auth, unit)
    res = await client.post(
        f"/api/v1/items/{item_id}/progress",
        data={"note": "Minh chứng"},
        files={"files": (name, content, declared)},
        headers=auth("officer", unit),
    )
    assert res.status_code == status, res.text
    assert res.headers["content-type"].startswith("application/problem+json")
    assert reason in res.json()["detail"]
    assert await count(sessions, ProgressNote, item_id) == 0
    assert await count(sessions, EvidenceFile, item_id) == 0


async def test_oversized_request_refused_before_reading(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    item_id = await new_item(client, auth, "P21.STP")
    res = await client.post(
        f"/api/v1/items/{item_id}/progress",
        content=b"x",
        headers={
            **auth("officer", "P21.STP"),
            "content-type": "multipart/form-data; boundary=zz",
            "content-length": str(MAX_BYTES * 100),
        },
    )
    assert res.status_code == 413


async def test_remediation_report_with_files_replays_by_key(
    client: httpx.AsyncClient, auth: Auth, sessions: async_sessionmaker[AsyncSession]
) -> None:
    unit = "P21.SCT"
    item_id = await new_item(client, auth, unit)
    officer = auth("officer", unit)
    key = {"Idempotency-Key": uuid.uuid4().hex}
    url = f"/api/v1/items/{item_id}/report"
    files = {"files": ("bao-cao-ket-qua.docx", docx_bytes(), "application/octet-stream")}
    data = {"note": "Đã khắc phục xong"}
    first = await client.post(url, data=data, files=files, headers={**officer, **key})
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "reported" and first.json()["timeliness"] == "no_deadline"
    note = first.json()["notes"][-1]
    assert note["kind"] == "report" and note["evidence"][0]["content_type"] == ev.DOCX
    # the phone retries: a new multipart boundary, the same fields and file → the same answer
    again = await client.post(url, data=data, files=files, headers={**officer, **key})
    assert again.status_code == 200 and again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert await count(sessions, EvidenceFile, item_id) == 1
    other = {"files": ("bao-cao-ket-qua.pdf", pdf_bytes(), "application/pdf")}
    mismatch = await client.post(url, data=data, files=other, headers={**officer, **key})
    assert mismatch.status_code == 422
    hist = (await client.get(f"/api/v1/items/{item_id}/history", headers=auth("inspector"))).json()
    assert hist[-1]["action"] == "report" and hist[-1]["note"]["note"] == "Đã khắc phục xong"
    # a supporting or other unit cannot submit the report; JSON without files works too
    item2 = await new_item(client, auth, unit)
    nope = await client.post(
        f"/api/v1/items/{item2}/report", json={"note": "x"}, headers=auth("officer", "P21.SXD")
    )
    assert nope.status_code == 404
    ok = await client.post(
        f"/api/v1/items/{item2}/report",
        json={"note": "Xong", "evidence": [{"name": "link", "url": "https://x.example/a"}]},
        headers=officer,
    )
    assert ok.status_code == 200 and ok.json()["status"] == "reported"


def test_sniffing_tells_office_files_apart() -> None:
    assert ev.sniff(io.BytesIO(docx_bytes()), "a.bin") == ev.DOCX
    assert ev.sniff(io.BytesIO(xlsx_bytes()), None) == ev.XLSX
    assert ev.sniff(io.BytesIO(b"PK\x03\x04not really a zip"), "a.docx") is None
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100
    assert ev.sniff(io.BytesIO(ole), "bao-cao.doc") == ev.DOC
    assert ev.sniff(io.BytesIO(ole), "bao-cao.exe") is None
    assert ev.sniff(io.BytesIO(b"\xff\xd8\xff\xe0" + b"\x00" * 20), "anh.jpg") == ev.JPEG


# ----------------------------------------------------------------- S3-compatible store


@pytest.fixture(scope="module")
def s3_server() -> Iterator[str]:
    """moto's S3-compatible server, as a real process on a free port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if httpx.get(url, timeout=0.5).status_code < 500:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise RuntimeError("the S3 stand-in did not start")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def test_files_go_to_the_s3_store_when_configured(
    make_settings: Callable[..., Settings],
    auth: Auth,
    sessions: async_sessionmaker[AsyncSession],
    s3_server: str,
) -> None:
    import boto3

    creds = {"aws_access_key_id": "cchc", "aws_secret_access_key": "cchc-secret"}
    s3 = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1", **creds)
    s3.create_bucket(Bucket="cchc-evidence")
    tasks = TasksSettings(
        evidence_max_bytes=MAX_BYTES,
        evidence_chunk_bytes=CHUNK,
        s3_endpoint_url=s3_server,
        s3_bucket="cchc-evidence",
        s3_access_key="cchc",
        s3_secret_key="cchc-secret",
    )
    app = create_app(make_settings(service_name="tasks", workers_enabled=False), tasks)
    async with running(app) as c:
        item_id = await new_item(c, auth, "P21.SYT")
        pdf = pdf_bytes(b"%" + b"s" * (CHUNK * 2))
        res = await c.post(
            f"/api/v1/items/{item_id}/progress",
            data={"note": "Minh chứng lưu trên S3"},
            files={"files": ("bien-ban.pdf", pdf, "application/pdf")},
            headers=auth("officer", "P21.SYT"),
        )
        assert res.status_code == 201, res.text
        evidence = res.json()["notes"][-1]["evidence"][0]
        async with sessions() as s:
            row = await s.get(EvidenceFile, evidence["id"])
            assert row is not None and row.storage == "s3"
            chunks = await s.scalar(
                select(func.count())
                .select_from(EvidenceChunk)
                .where(EvidenceChunk.storage_key == row.storage_key)
            )
        assert chunks == 0
        stored = s3.get_object(Bucket="cchc-evidence", Key=row.storage_key)
        assert stored["Body"].read() == pdf and stored["ContentType"] == ev.PDF
        down = await c.get(evidence["download_url"], headers=auth("inspector"))
        assert down.status_code == 200 and down.content == pdf
        assert (
            await c.get(evidence["download_url"], headers=auth("officer", "P21.SNV"))
        ).status_code == 404


async def test_supporting_unit_uploads_evidence_of_its_part(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    body = {
        "title": "Thông báo kết luận kiểm tra CCHC",
        "findings": [
            {
                "unit_id": "P21.SNV",
                "text": "Tồn tại",
                "items": [
                    {
                        "title": f"Nhiệm vụ {uuid.uuid4().hex[:6]}",
                        "lead_unit_id": "P21.SNV",
                        "supporting_unit_ids": ["P21.VP"],
                    }
                ],
            }
        ],
    }
    res = await client.post("/api/v1/conclusions", json=body, headers=auth("inspector"))
    item_id = res.json()["items"][0]["id"]
    part = await client.post(
        f"/api/v1/items/{item_id}/progress",
        data={"note": "Phần phối hợp của Văn phòng", "percent": "100"},
        files={"files": ("../../etc/anh-chup.png", PNG, "image/png")},
        headers=auth("officer", "P21.VP"),
    )
    assert part.status_code == 201, part.text
    assert part.json()["status"] == "not_started"  # a contribution never moves the item
    evidence = part.json()["notes"][-1]["evidence"][0]
    assert evidence["name"] == "anh-chup.png" and evidence["content_type"] == ev.PNG
    for who in (auth("officer", "P21.SNV"), auth("officer", "P21.VP"), auth("inspector")):
        down = await client.get(evidence["download_url"], headers=who)
        assert down.status_code == 200 and down.content == PNG
    other = await client.get(evidence["download_url"], headers=auth("officer", "P21.SCT"))
    assert other.status_code == 404


def test_names_lose_paths_and_control_characters() -> None:
    from services.tasks.api.evidence import safe_name

    assert safe_name("bao\r\ncao.pdf", "evd_1") == "baocao.pdf"
    assert safe_name("C:\\Users\\can bo\\bien ban.pdf", "evd_1") == "bien ban.pdf"
    assert safe_name("\x00\x07", "evd_1") == "evd_1"
