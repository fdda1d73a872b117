"""Text extraction (.txt, .docx, .pdf) and the parse CLI."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import unicodedata
import zlib
from datetime import date
from pathlib import Path

import docx
import pytest

from services.tasks.domain.documents import UnsupportedDocument, extract_text
from services.tasks.domain.parser import parse_conclusion
from tests.tasks._samples import sample, samples_dir, units

ROOT = Path(__file__).resolve().parents[2]
QN = "quang-nam-2022"


def deadlines(text: str) -> set[date]:
    return {
        i.deadline
        for i in parse_conclusion(text, issued_on=None, units=units()).items
        if i.deadline
    }


def test_plain_text_is_normalised_to_nfc() -> None:
    raw = unicodedata.normalize("NFD", "Sở Nội vụ\r\nhoàn thành").encode("utf-8")
    assert extract_text(raw, "a.txt") == "Sở Nội vụ\nhoàn thành"
    with pytest.raises(UnsupportedDocument):
        extract_text(b"\xff\xfe\x00\xd8", "bad.txt")


def test_docx_generated_from_sample_parses_like_the_text() -> None:
    text = sample(QN)
    document = docx.Document()
    for para in text.split("\n\n"):
        document.add_paragraph(para.strip())
    buf = io.BytesIO()
    document.save(buf)
    extracted = extract_text(buf.getvalue(), "ket-luan.docx")
    assert "Sở Thông tin và Truyền thông" in extracted
    assert deadlines(extracted) == {date(2022, 8, 4), date(2022, 10, 1), date(2022, 9, 1)}


def _minimal_pdf(lines: list[str]) -> bytes:
    """A one-page PDF with a text layer (Helvetica, ASCII only: no Unicode font writer here)."""

    def esc(s: str) -> str:
        return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    ops = ["BT", "/F1 10 Tf", "14 TL", "40 800 Td"]
    for line in lines:
        ops.append(f"({esc(line)}) Tj T*")
    ops.append("ET")
    stream = zlib.compress("\n".join(ops).encode("ascii"))
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objs, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return bytes(out)


def test_pdf_text_layer_is_extracted_and_parsed() -> None:
    # ASCII (diacritics-free) Vietnamese: the parser folds accents, so this is a real test
    pdf = _minimal_pdf(
        [
            "UBND tinh yeu cau:",
            "1. So Noi vu",
            "- Chu tri, phoi hop voi Van phong UBND tinh hoan thanh truoc ngay 01/10/2022.",
        ]
    )
    text = extract_text(pdf, "scan.pdf")
    assert "So Noi vu" in text
    items = parse_conclusion(text, issued_on=date(2022, 7, 25), units=units()).items
    assert [(i.deadline, [(a.unit_id, a.role) for a in i.assignees]) for i in items] == [
        (date(2022, 10, 1), [("P21.SNV", "lead"), ("P21.VP", "support")])
    ]


def test_pdf_without_text_layer_is_refused() -> None:
    with pytest.raises(UnsupportedDocument):
        extract_text(_minimal_pdf([]), "empty.pdf")


def test_cli_prints_one_json_object(tmp_path: Path) -> None:
    src = samples_dir() / next(p.name for p in samples_dir().glob("*.txt") if QN in p.name)
    proc = subprocess.run(
        [sys.executable, "-m", "services.tasks.parse", str(src)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    data = json.loads(proc.stdout)
    assert list(data) == ["items"]
    text = src.read_text(encoding="utf-8")
    for item in data["items"]:
        assert set(item) == {"assignees", "action", "deadline", "recurrence", "criteria", "span"}
        for a in item["assignees"]:
            assert set(a) == {"name", "role", "unit_id"}
        s, e = item["span"]
        assert " ".join(text[s:e].split()) == item["action"]
    assert {i["deadline"] for i in data["items"]} - {None} == {
        "2022-08-04",
        "2022-10-01",
        "2022-09-01",
    }
    proc2 = subprocess.run(
        [sys.executable, "-m", "services.tasks.parse", str(src), "--issued-on", "2022-07-25"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(proc2.stdout) == data


def test_cli_reads_stdin_and_reports_missing_files() -> None:
    text = "UBND tỉnh yêu cầu:\n\n1. Sở Nội vụ\n\n- Gửi báo cáo trước ngày 15/3/2024.\n"
    proc = subprocess.run(
        [sys.executable, "-m", "services.tasks.parse", "-"],
        cwd=ROOT,
        input=text.encode(),
        capture_output=True,
        check=True,
    )
    (item,) = json.loads(proc.stdout)["items"]
    assert item["deadline"] == "2024-03-15"
    assert item["assignees"] == [{"name": "Sở Nội vụ", "role": "lead", "unit_id": "P21.SNV"}]
    missing = subprocess.run(
        [sys.executable, "-m", "services.tasks.parse", "/nonexistent.txt"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2 and missing.stdout == ""
