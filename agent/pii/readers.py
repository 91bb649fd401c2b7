"""The text of a file, as far as the PII detectors need it, within a byte budget.

Plain formats (text, CSV, TSV, HTML, XML, JSON, SQL dumps, logs) are read as bytes and decoded as UTF-8, or as
GB 18030 (what Chinese Windows tools write) when they are not UTF-8. Office files are zip archives of XML:
``.xlsx`` (shared strings and sheets) and ``.docx`` (the document body) are read from their members, with the
members' total uncompressed size bounded, so a zip bomb costs nothing. ``.pdf`` is read with poppler's
``pdftotext`` where it is installed (Debian/RHEL package poppler-utils), under a timeout and an output cap.
Other binary formats (``.xls``, images, PDFs without pdftotext) are not read: the scan says so rather than
pretending they were clean.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Optional

__all__ = ["TEXT_SUFFIXES", "OFFICE_SUFFIXES", "DUMP_SUFFIXES", "readable", "read_text", "is_dump"]

TEXT_SUFFIXES = frozenset(
    {".txt", ".csv", ".tsv", ".htm", ".html", ".xml", ".json", ".sql", ".log", ".md", ".js", ".php", ".jsp",
     ".asp", ".aspx", ".ini", ".conf", ".yml", ".yaml", ".dat"}
)
OFFICE_SUFFIXES = frozenset({".xlsx", ".docx", ".xlsm", ".pptx"})
# Database dumps and backups: in a served or shared folder a finding by themselves, whatever they hold.
DUMP_SUFFIXES = (".sql", ".sql.gz", ".sql.zip", ".bak", ".dump", ".dmp", ".mdb", ".accdb", ".sqlite", ".db",
                 ".frm", ".ibd", ".sql.bz2", ".sql.xz")
_TAG = re.compile(rb"<[^>]{0,4096}>")
_OFFICE_MEMBERS = re.compile(r"^(xl/sharedStrings\.xml|xl/worksheets/[^/]+\.xml|word/document\.xml|"
                             r"ppt/slides/[^/]+\.xml)$")


def _suffix(path: Path) -> str:
    return path.suffix.lower()


PDF_TIMEOUT = 20.0
PDF_MAX_PAGES = 200


def _pdftotext() -> Optional[str]:
    return shutil.which("pdftotext")


def readable(path: Path) -> bool:
    suffix = _suffix(path)
    return suffix in TEXT_SUFFIXES or suffix in OFFICE_SUFFIXES or (suffix == ".pdf" and _pdftotext() is not None)


def is_dump(path: Path) -> bool:
    return path.name.lower().endswith(DUMP_SUFFIXES)


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("gb18030", errors="replace")


def read_text(path: Path, max_bytes: int) -> tuple[Optional[str], int]:
    """(text, bytes read); text None when the file cannot be read in this format within ``max_bytes``."""
    if _suffix(path) in OFFICE_SUFFIXES:
        return _read_office(path, max_bytes)
    if _suffix(path) == ".pdf":
        return _read_pdf(path, max_bytes)
    with open(path, "rb") as fh:
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        return None, len(data)
    if _suffix(path) in (".htm", ".html", ".xml"):
        data = _TAG.sub(b" ", data)
    return _decode(data), len(data)


def _read_office(path: Path, max_bytes: int) -> tuple[Optional[str], int]:
    import zipfile  # with its compressors: loaded when the scan first meets an office file

    try:
        with zipfile.ZipFile(path) as archive:
            members = [i for i in archive.infolist() if _OFFICE_MEMBERS.match(i.filename)]
            if sum(i.file_size for i in members) > max_bytes:
                return None, 0  # declared sizes over the budget: not inflated at all
            parts: list[bytes] = []
            total = 0
            for info in members:
                with archive.open(info) as member:
                    chunk = member.read(max_bytes - total + 1)
                total += len(chunk)
                if total > max_bytes:  # the declared size lied
                    return None, total
                parts.append(_TAG.sub(b" ", chunk))
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError):
        return None, 0
    return _decode(b" ".join(parts)), total


def _read_pdf(path: Path, max_bytes: int) -> tuple[Optional[str], int]:
    tool = _pdftotext()
    if tool is None or path.stat().st_size > max_bytes:
        return None, 0
    try:
        out = subprocess.run(
            [tool, "-q", "-l", str(PDF_MAX_PAGES), "-enc", "UTF-8", str(path), "-"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=PDF_TIMEOUT, check=False, stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None, 0
    if out.returncode != 0:
        return None, 0
    return _decode(out.stdout[:max_bytes]), path.stat().st_size
