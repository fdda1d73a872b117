"""Extract plain text from uploaded conclusion documents (.txt, .docx, text-layer .pdf).

All output is NFC-normalised with ``\\r\\n`` turned into ``\\n``; paragraphs are separated by
blank lines so the parser sees the same structure as in a plain-text dispatch.
"""

from __future__ import annotations

import io
import unicodedata
from pathlib import Path


class UnsupportedDocument(ValueError):
    """The bytes are not a supported document type (or cannot be read)."""


def _normalise(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\ufeff", "")
    return unicodedata.normalize("NFC", text)


def text_from_plain(data: bytes) -> str:
    for encoding in ("utf-8-sig", "utf-16"):
        try:
            return _normalise(data.decode(encoding))
        except UnicodeDecodeError:
            continue
    raise UnsupportedDocument("plain text must be UTF-8 (or UTF-16 with a BOM)")


def text_from_docx(data: bytes) -> str:
    import docx  # python-docx

    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as exc:  # python-docx raises several unrelated types
        raise UnsupportedDocument(f"cannot read .docx: {exc}") from exc
    parts: list[str] = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            parts.append(" | ".join(cell.text for cell in row.cells))
    return _normalise("\n\n".join(p for p in parts if p.strip()))


def text_from_pdf(data: bytes) -> str:
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
    except Exception as exc:
        raise UnsupportedDocument(f"cannot read .pdf: {exc}") from exc
    text = "\n\n".join(pages)
    if not text.strip():
        raise UnsupportedDocument("the PDF has no text layer (scanned image?)")
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
