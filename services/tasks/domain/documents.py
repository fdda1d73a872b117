"""Conversion stage: uploaded conclusion documents (.txt, .docx, text-layer .pdf) to text.

All output is NFC-normalised with ``\\r\\n`` turned into ``\\n`` and has the shape the layout
stage reads (``parsing/layout.py``): paragraphs on their own lines, list numbering written
out ("1.", "a)", "-"), and tables as one cell per line between lines holding only "|" (two
"|" lines end a row) — so a .docx, a .pdf and a crawled page become the same document.

* .docx is read with docx2python, which keeps Word's automatic list numbering and puts
  tables where they are in the document (python-docx's ``paragraphs`` loses both);
* .pdf is read from its text layer with pypdf, task tables rebuilt from where their text sits
  (``pdflayout.py``); a PDF without a text layer (a scan) is refused with a clear message
  rather than parsed into nothing; an encrypted PDF is refused;
* bounds: the compressed and decompressed size of a .docx (zip bombs), its paragraph count,
  the page count of a PDF. Over a bound → :class:`DocumentTooLarge`; unreadable →
  :class:`UnsupportedDocument`.
"""

from __future__ import annotations

import io
import re
import unicodedata
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

MAX_DOCX_UNZIPPED = 40 * 1024 * 1024  # all parts of the package, decompressed
MAX_ZIP_RATIO = 200  # a 10 MB upload may not unpack to more than that many times its size
MAX_PARAGRAPHS = 20_000
MAX_PDF_PAGES = 400
MAX_TEXT_CHARS = 3_000_000


class UnsupportedDocument(ValueError):
    """The bytes are not a supported document type (or cannot be read)."""


class DocumentTooLarge(UnsupportedDocument):
    """The document is over one of the bounds (size, decompressed size, paragraphs, pages)."""


class NoTextLayer(UnsupportedDocument):
    """A PDF whose pages carry no text (a scanned image): it needs OCR first."""


def _normalise(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\ufeff", "")
    text = unicodedata.normalize("NFC", text)
    if len(text) > MAX_TEXT_CHARS:
        raise DocumentTooLarge(f"document text over {MAX_TEXT_CHARS} characters")
    return text


def text_from_plain(data: bytes) -> str:
    for encoding in ("utf-8-sig", "utf-16"):
        try:
            return _normalise(data.decode(encoding))
        except UnicodeDecodeError:
            continue
    raise UnsupportedDocument("plain text must be UTF-8 (or UTF-16 with a BOM)")


# ----------------------------------------------------------------------------- .docx

_NUMBER = re.compile(r"^\t*(?:(\d+)\)|([IVXLC]+)\)|([a-zđ])\)|(--))\t")


def _numbering(par: str) -> str:
    """docx2python writes Word's numbering as "1)\\t", "a)\\t", "--\\t" with a tab per level;
    Vietnamese documents number sections "1." / "I." and items "a)" / "-"."""
    m = _NUMBER.match(par)
    if not m:
        return par.strip()
    rest = par[m.end() :].strip()
    if m.group(1):
        return f"{m.group(1)}. {rest}"
    if m.group(2):
        return f"{m.group(2)}. {rest}"
    if m.group(3):
        return f"{m.group(3)}) {rest}"
    return f"- {rest}"


def _check_zip(data: bytes) -> None:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise UnsupportedDocument("not a .docx: the file is not a zip package") from exc
    with archive:
        names = archive.namelist()
        if "word/document.xml" not in names:
            raise UnsupportedDocument("not a .docx: no word/document.xml in the package")
        total = sum(max(i.file_size, 0) for i in archive.infolist())
        if total > MAX_DOCX_UNZIPPED or total > MAX_ZIP_RATIO * max(len(data), 1):
            raise DocumentTooLarge(
                f".docx unpacks to {total} bytes (limit {MAX_DOCX_UNZIPPED}): refused as a "
                "possible zip bomb"
            )


def _cells(cell: Any) -> str:
    pars = [_numbering(p) for p in cell if isinstance(p, str)]
    return "\n".join(p for p in pars if p)


def _table_lines(table: list[Any]) -> Iterator[str]:
    """A Word table in the layout stage's "|" form: one cell per line between "|" lines,
    a row ends at two "|" lines."""
    yield "|"
    for k, row in enumerate(table):
        if k:
            yield "|"
        for cell in row:
            yield _cells(cell) or " "
            yield "|"


def text_from_docx(data: bytes) -> str:
    _check_zip(data)
    from docx2python import docx2python

    try:
        with docx2python(io.BytesIO(data)) as content:
            body = content.document
    except Exception as exc:  # docx2python raises several unrelated types on bad XML
        raise UnsupportedDocument(f"cannot read .docx: {type(exc).__name__}") from exc
    lines: list[str] = []
    count = 0
    for table in body:
        count += sum(len(cell) for row in table for cell in row)
        if count > MAX_PARAGRAPHS:
            raise DocumentTooLarge(f".docx has more than {MAX_PARAGRAPHS} paragraphs")
        if len(table) == 1 and len(table[0]) == 1:  # plain paragraphs
            lines.extend(p for p in (_numbering(p) for p in table[0][0]) if p)
        else:
            lines.extend(_table_lines(table))
    return _normalise("\n".join(lines))


# ----------------------------------------------------------------------------- .pdf


def text_from_pdf(data: bytes) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    from services.tasks.domain.pdflayout import PdfTables, page_fragments

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:
                # "owner-password only" PDFs open without a password
                opened = bool(reader.decrypt(""))
            except Exception:
                opened = False
            if not opened:
                raise UnsupportedDocument("the PDF is encrypted (password protected)")
        if len(reader.pages) > MAX_PDF_PAGES:
            raise DocumentTooLarge(f"PDF has more than {MAX_PDF_PAGES} pages")
        tables = PdfTables()
        pages = [tables.page_text(*page_fragments(page)) for page in reader.pages]
        pages.append(tables.finish())
    except UnsupportedDocument:
        raise
    except (PdfReadError, ValueError, TypeError, KeyError, OSError) as exc:
        raise UnsupportedDocument(f"cannot read .pdf: {type(exc).__name__}") from exc
    text = "\n\n".join(pages)
    if not text.strip():
        raise NoTextLayer(
            "Tệp PDF không có lớp văn bản (bản quét?): cần nhận dạng ký tự (OCR) trước khi "
            "nhập (the PDF has no text layer: a scanned image needs OCR first)"
        )
    return _normalise(text)


def sniff_kind(data: bytes, filename: str | None = None) -> str:
    """'pdf', 'docx' or 'text' from magic bytes, falling back to the file suffix."""
    if data.startswith(b"%PDF"):
        return "pdf"
    if data.startswith(b"PK\x03\x04"):
        return "docx"
    suffix = Path(filename or "").suffix.lower()
    if suffix == ".pdf":
        return "pdf"
    if suffix == ".docx":
        return "docx"
    return "text"


def extract_text(data: bytes, filename: str | None = None) -> str:
    kind = sniff_kind(data, filename)
    if kind == "pdf":
        return text_from_pdf(data)
    if kind == "docx":
        return text_from_docx(data)
    return text_from_plain(data)


def read_document(path: str | Path) -> str:
    p = Path(path)
    return extract_text(p.read_bytes(), p.name)
