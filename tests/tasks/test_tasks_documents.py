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


# ------------------------------------------------ real .docx (Word numbering, tables) and .pdf

CORPUS = ROOT.parent / "shared" / "corpus"
DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")  # Debian fonts-dejavu-core


def corpus(prefix: str) -> str:
    (path,) = sorted(CORPUS.glob(f"{prefix}-*.txt"))
    return path.read_text(encoding="utf-8")


def key_extractions(text: str) -> list[tuple[tuple[str, ...], date | None]]:
    """(leads as written, folded; deadline) per item: what a format must not change."""
    from services.tasks.domain.units import fold

    out = []
    for i in parse_conclusion(text, issued_on=None, units=units()).items:
        leads = tuple(" ".join(fold(a.name).split()) for a in i.assignees if a.role == "lead")
        out.append((leads, i.deadline))
    return out


def _numbered_document() -> docx.document.Document:
    """A document with a real Word numbering definition: level 0 "1.", 1 "a)", 2 "-"."""
    from docx.oxml import parse_xml
    from docx.oxml.ns import nsdecls

    d = docx.Document()
    numbering = d.part.numbering_part.element
    numbering.insert(
        0,
        parse_xml(
            f'<w:abstractNum {nsdecls("w")} w:abstractNumId="90">'
            '<w:lvl w:ilvl="0"><w:start w:val="1"/><w:numFmt w:val="decimal"/>'
            '<w:lvlText w:val="%1."/></w:lvl>'
            '<w:lvl w:ilvl="1"><w:start w:val="1"/><w:numFmt w:val="lowerLetter"/>'
            '<w:lvlText w:val="%2)"/></w:lvl>'
            '<w:lvl w:ilvl="2"><w:start w:val="1"/><w:numFmt w:val="bullet"/>'
            '<w:lvlText w:val="-"/></w:lvl></w:abstractNum>'
        ),
    )
    numbering.append(
        parse_xml(f'<w:num {nsdecls("w")} w:numId="90"><w:abstractNumId w:val="90"/></w:num>')
    )
    return d


def _add(d: docx.document.Document, text: str, level: int | None) -> None:
    from docx.oxml import parse_xml
    from docx.oxml.ns import nsdecls

    p = d.add_paragraph(text)
    if level is not None:
        p._p.get_or_add_pPr().append(
            parse_xml(
                f'<w:numPr {nsdecls("w")}><w:ilvl w:val="{level}"/><w:numId w:val="90"/></w:numPr>'
            )
        )


def _docx_from_text(text: str) -> bytes:
    """The corpus text as Word would hold it: numbering as list levels (the digits are not
    in the paragraph text), "|" tables as real tables, in document order."""
    import re

    from services.tasks.domain.parsing.layout import split_tables, unwrap

    flowing, tables = split_tables(text)
    flat = unwrap(flowing)
    d = _numbered_document()
    events: list[tuple[int, object]] = [(t.start, t) for t in tables]
    pos = 0
    for line in flat.split("\n"):
        if line.strip():
            events.append((pos, line.strip()))
        pos += len(line) + 1
    for _, ev in sorted(events, key=lambda e: e[0]):
        if isinstance(ev, str):
            m = re.match(r"(\d+)\.\s+(.*)", ev) or None
            if m and "." not in m.group(1):
                _add(d, m.group(2), 0)
            elif (m2 := re.match(r"[a-zđ]\)\s+(.*)", ev)) is not None:
                _add(d, m2.group(1), 1)
            elif (m3 := re.match(r"-\s+(.*)", ev)) is not None:
                _add(d, m3.group(1), 2)
            else:
                _add(d, ev, None)
        else:
            rows = ev.rows  # type: ignore[attr-defined]
            width = max(len(r) for r in rows)
            table = d.add_table(rows=len(rows), cols=width)
            for r, row in enumerate(rows):
                for c, cell in enumerate(row):
                    table.rows[r].cells[c].text = cell.text
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


@pytest.mark.parametrize("prefix", ["03", "08", "21"])
def test_docx_with_word_numbering_and_tables_parses_like_the_text(prefix: str) -> None:
    text = corpus(prefix)
    data = _docx_from_text(text)
    extracted = extract_text(data, "van-ban.docx")
    from_text = key_extractions(text)
    from_docx = key_extractions(extracted)
    assert from_text and sorted(from_docx, key=str) == sorted(from_text, key=str)


def test_docx_table_lands_where_it_is_not_after_noi_nhan() -> None:
    d = _numbered_document()
    _add(d, "UBND tỉnh yêu cầu:", None)
    table = d.add_table(rows=2, cols=3)
    for c, v in enumerate(["Nhiệm vụ", "Cơ quan chủ trì", "Thời hạn"]):
        table.rows[0].cells[c].text = v
    for c, v in enumerate(["Rà soát thủ tục", "Sở Tư pháp", "15/12/2025"]):
        table.rows[1].cells[c].text = v
    _add(d, "Nơi nhận:", None)
    buf = io.BytesIO()
    d.save(buf)
    text = extract_text(buf.getvalue(), "x.docx")
    assert text.index("Sở Tư pháp") < text.index("Nơi nhận")
    (item,) = parse_conclusion(text, issued_on=date(2025, 11, 1), units=units()).items
    assert item.deadline == date(2025, 12, 15)
    assert [(a.unit_id, a.role) for a in item.assignees] == [("P21.STP", "lead")]


def _pdf_from_text(text: str) -> bytes:
    """A text-layer PDF of the corpus text in a Vietnamese-capable font (wrapped lines)."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont
    from reportlab.pdfgen import canvas

    from services.tasks.domain.parsing.layout import unwrap

    pdfmetrics.registerFont(TTFont("DejaVu", str(DEJAVU)))
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4)
    c.setFont("DejaVu", 9)
    y = 800.0
    for para in unwrap(text).split("\n"):
        words, line = para.split(), ""
        chunks = []
        for w in words:
            if len(line) + len(w) > 95:
                chunks.append(line)
                line = w
            else:
                line = f"{line} {w}".strip()
        chunks.append(line)
        for chunk in chunks:
            if y < 40:
                c.showPage()
                c.setFont("DejaVu", 9)
                y = 800.0
            c.drawString(30, y, chunk)
            y -= 12
    c.save()
    return buf.getvalue()


@pytest.mark.parametrize("prefix", ["09", "19"])
def test_vietnamese_text_layer_pdf_parses_like_the_text(prefix: str) -> None:
    text = corpus(prefix)
    extracted = extract_text(_pdf_from_text(text), "van-ban.pdf")
    assert "Thời gian" in extracted or "Bộ Tư pháp" in extracted  # diacritics survive
    want = {d for _, d in key_extractions(text)} - {None}
    got = {d for _, d in key_extractions(extracted)} - {None}
    assert want and got == want


def _pdf_with_table(rows_per_page: int) -> bytes:
    """A text-layer PDF (DejaVu, Vietnamese) with a paragraph, then a task table drawn cell by
    cell at column positions, wrapped cell text and a two-line header, running onto a second
    page, then a closing paragraph and "Nơi nhận"."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(TTFont("DejaVu", str(DEJAVU)))
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4)
    c.setFont("DejaVu", 9)
    cols = [40, 70, 270, 370, 480]
    c.drawString(40, 800, "Hưng Yên, ngày 02 tháng 6 năm 2025")
    c.drawString(40, 780, "UBND tỉnh yêu cầu các cơ quan thực hiện các nhiệm vụ sau:")
    y = 750.0
    head = ["STT", "Nhiệm vụ", "Cơ quan chủ trì", "Cơ quan phối hợp", "Thời hạn"]
    for x, t in zip(cols, head, strict=True):
        c.drawString(x, y, t)
    c.drawString(cols[2], y - 11, "thực hiện")  # the header wraps
    y -= 30
    rows = [
        (
            "1",
            ["Rà soát, công bố danh mục", "thủ tục hành chính"],
            "Sở Tư pháp",
            "Sở Nội vụ",
            "15/12/2025",
        ),
        (
            "2",
            ["Số hóa hồ sơ, kết quả giải quyết"],
            "Sở Khoa học và Công nghệ",
            "Sở Tài chính",
            "Quý IV/2025",
        ),
        (
            "3",
            ["Tập huấn kỹ năng số cho", "công chức cấp xã"],
            "Sở Nội vụ",
            "UBND các xã, phường",
            "Năm 2026",
        ),
        ("4", ["Báo cáo kết quả thực hiện"], "Sở Tư pháp", "Sở Nội vụ", "Thường xuyên, hằng năm"),
    ]
    for n, (stt, task, lead, sup, when) in enumerate(rows):
        if n == rows_per_page:
            c.showPage()
            c.setFont("DejaVu", 9)
            y = 800.0
        c.drawString(cols[0], y, stt)
        for k, part in enumerate(task):
            c.drawString(cols[1], y - 11 * k, part)
        c.drawString(cols[2], y, lead)
        c.drawString(cols[3], y, sup)
        c.drawString(cols[4], y, when)
        y -= 11 * len(task) + 8
    c.drawString(40, y - 10, "Các cơ quan triển khai thực hiện nghiêm túc Kế hoạch này./.")
    c.drawString(40, y - 30, "Nơi nhận:")
    c.drawString(40, y - 41, "- Như trên;")
    c.save()
    return buf.getvalue()


@pytest.mark.parametrize("rows_per_page", [4, 2], ids=["one-page", "over-two-pages"])
def test_task_table_in_a_text_layer_pdf_becomes_items_like_a_word_table(rows_per_page: int) -> None:
    text = extract_text(_pdf_with_table(rows_per_page), "ke-hoach.pdf")
    # the table is in the layout stage's "|" form, before what follows it
    assert "|" in text.split("\n") and text.index("Sở Tư pháp") < text.index("Nơi nhận")
    items = parse_conclusion(text, issued_on=None, units=units()).items
    got = [
        (
            " ".join(i.action.split()),
            [(a.unit_id, a.role) for a in i.assignees],
            i.deadline,
            i.recurrence,
        )
        for i in items
    ]
    assert got == [
        (
            "Rà soát, công bố danh mục thủ tục hành chính",
            [("P21.STP", "lead"), ("P21.SNV", "support")],
            date(2025, 12, 15),
            None,
        ),
        (
            "Số hóa hồ sơ, kết quả giải quyết",
            [("P21.SKHCN", "lead"), ("P21.STC", "support")],
            date(2025, 12, 31),
            None,
        ),
        (
            "Tập huấn kỹ năng số cho công chức cấp xã",
            [("P21.SNV", "lead"), (None, "support")],
            date(2026, 12, 31),
            None,
        ),
        (
            "Báo cáo kết quả thực hiện",
            [("P21.STP", "lead"), ("P21.SNV", "support")],
            None,
            "yearly",
        ),
    ]


def test_encrypted_pdf_and_zip_bomb_and_not_a_zip_are_refused() -> None:
    import zipfile

    from pypdf import PdfWriter

    from services.tasks.domain.documents import DocumentTooLarge

    writer = PdfWriter()
    writer.add_blank_page(200, 200)
    writer.encrypt(user_password="secret", owner_password="owner")
    buf = io.BytesIO()
    writer.write(buf)
    with pytest.raises(UnsupportedDocument, match="encrypted"):
        extract_text(buf.getvalue(), "x.pdf")
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", b"\0" * (60 * 1024 * 1024))
    assert len(bomb.getvalue()) < 200_000
    with pytest.raises(DocumentTooLarge):
        extract_text(bomb.getvalue(), "bomb.docx")
    with pytest.raises(UnsupportedDocument, match="not a zip"):
        extract_text(b"this is not a zip", "x.docx")
