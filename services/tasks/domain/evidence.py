"""Evidence files: what we accept and how we tell a file's type from its bytes (pure).

The name and the declared Content-Type are the sender's claims; the bytes decide. A small
table of signatures (magic numbers) covers what agencies send as minh chứng — PDF, images,
Office documents — and Office Open XML / OpenDocument files, which are zips, are told apart
by the entries inside (word/document.xml, xl/workbook.xml, ppt/presentation.xml, the ODF
`mimetype` entry). Legacy Office (OLE2) files share one signature, so the name's extension
picks among doc/xls/ppt.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from typing import IO

PDF = "application/pdf"
PNG = "image/png"
JPEG = "image/jpeg"
GIF = "image/gif"
WEBP = "image/webp"
HEIC = "image/heic"
TIFF = "image/tiff"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
DOC = "application/msword"
XLS = "application/vnd.ms-excel"
PPT = "application/vnd.ms-powerpoint"
ODT = "application/vnd.oasis.opendocument.text"
ODS = "application/vnd.oasis.opendocument.spreadsheet"
ODP = "application/vnd.oasis.opendocument.presentation"

ALLOWED: frozenset[str] = frozenset(
    {PDF, PNG, JPEG, GIF, WEBP, HEIC, TIFF, DOCX, XLSX, PPTX, DOC, XLS, PPT, ODT, ODS, ODP}
)

EXTENSIONS: dict[str, str] = {
    "pdf": PDF,
    "png": PNG,
    "jpg": JPEG,
    "jpeg": JPEG,
    "gif": GIF,
    "webp": WEBP,
    "heic": HEIC,
    "heif": HEIC,
    "tif": TIFF,
    "tiff": TIFF,
    "docx": DOCX,
    "xlsx": XLSX,
    "pptx": PPTX,
    "doc": DOC,
    "xls": XLS,
    "ppt": PPT,
    "odt": ODT,
    "ods": ODS,
    "odp": ODP,
}

_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP = b"PK\x03\x04"
_OOXML_ENTRIES = (
    ("word/document.xml", DOCX),
    ("xl/workbook.xml", XLSX),
    ("ppt/presentation.xml", PPTX),
)
_ODF = {ODT, ODS, ODP}


class EvidenceRejected(ValueError):
    """The file is not acceptable evidence (the message says why, for the 4xx answer)."""


@dataclass(frozen=True)
class Sniffed:
    content_type: str
    description: str


def extension_type(filename: str | None) -> str | None:
    if not filename or "." not in filename:
        return None
    return EXTENSIONS.get(filename.rsplit(".", 1)[1].lower())


def _zip_type(f: IO[bytes]) -> str | None:
    try:
        with zipfile.ZipFile(f) as z:
            names = set(z.namelist())
            for entry, kind in _OOXML_ENTRIES:
                if entry in names:
                    return kind
            if "mimetype" in names:
                declared = z.read("mimetype").decode("ascii", "replace").strip()
                if declared in _ODF:
                    return declared
    except (zipfile.BadZipFile, OSError, KeyError, ValueError):
        return None
    return None


def sniff(f: IO[bytes], filename: str | None) -> str | None:
    """The content type the bytes of `f` show (None: none we accept). Rewinds `f`."""
    f.seek(0)
    head = f.read(64)
    f.seek(0)
    kind: str | None = None
    if head.startswith(b"%PDF-"):
        kind = PDF
    elif head.startswith(b"\x89PNG\r\n\x1a\n"):
        kind = PNG
    elif head.startswith(b"\xff\xd8\xff"):
        kind = JPEG
    elif head[:6] in (b"GIF87a", b"GIF89a"):
        kind = GIF
    elif head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        kind = WEBP
    elif head[4:8] == b"ftyp" and head[8:12] in (b"heic", b"heix", b"mif1", b"heif"):
        kind = HEIC
    elif head[:4] in (b"II*\x00", b"MM\x00*"):
        kind = TIFF
    elif head.startswith(_OLE2):
        ext = extension_type(filename)
        kind = ext if ext in (DOC, XLS, PPT) else None
    elif head.startswith(_ZIP):
        kind = _zip_type(f)
    f.seek(0)
    return kind


_GENERIC = {"", "application/octet-stream", "binary/octet-stream", "application/zip"}


def check(
    f: IO[bytes], *, filename: str | None, declared: str | None, size: int, max_bytes: int
) -> str:
    """The file's content type, or EvidenceRejected with the reason."""
    if size == 0:
        raise EvidenceRejected(f"{filename or 'the file'} is empty")
    if size > max_bytes:
        raise EvidenceRejected(
            f"{filename or 'the file'} is {size} bytes; the limit is {max_bytes} bytes"
        )
    actual = sniff(f, filename)
    if actual is None:
        raise EvidenceRejected(
            f"{filename or 'the file'} is not a PDF, an Office document or an image"
        )
    claimed = [
        c
        for c in (extension_type(filename), (declared or "").split(";")[0].strip().lower())
        if c and c not in _GENERIC
    ]
    for c in claimed:
        if c != actual and not (c == "image/jpg" and actual == JPEG):
            raise EvidenceRejected(
                f"{filename or 'the file'} is declared {c} but its bytes are {actual}"
            )
    return actual
