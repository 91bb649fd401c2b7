"""The end-of-life facts file (``agent/data/eol.csv``) and its local overlay, read into a lookup table.

Format: CSV with the header ``product,cycle,release_date,eol_date,source``; ``#`` lines are comments, and a
``# data_date: YYYY-MM-DD`` comment says when the facts were gathered (exported, so stale data is visible).
``eol_date`` is a day (``2024-06-30``), a year when the source gives no more (``2029``, read as the first day
of that year: the earliest moment the source allows, so an alert is early rather than late), or ``not-set``
(the project has announced no end: still supported). A row without a source is refused: a date nobody can
check is a guess.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

__all__ = ["EolFact", "EolData", "EolDataError", "load_eol_data", "DEFAULT_EOL_FILE", "DEFAULT_OVERLAY_FILE"]

_DATA_DIR = Path(__file__).resolve().parent.parent / "data"
DEFAULT_EOL_FILE = _DATA_DIR / "eol.csv"
DEFAULT_OVERLAY_FILE = _DATA_DIR / "eol_overlay.csv"

_COLUMNS = ("product", "cycle", "release_date", "eol_date", "source")
_DATA_DATE = re.compile(r"^#\s*data_date:\s*(\d{4}-\d{2}-\d{2})\s*$")


class EolDataError(ValueError):
    """The EOL data file is unreadable or malformed; the message names the file and line."""


@dataclass(frozen=True)
class EolFact:
    product: str
    cycle: str
    eol: Optional[float]  # unix time; None = no end announced ("not-set")
    precision: str  # "day", "year" or "none"
    source: str


@dataclass
class EolData:
    facts: dict[tuple[str, str], EolFact] = field(default_factory=dict)
    data_timestamp: float = 0.0  # data_date of the main file (or its mtime)
    files: list[str] = field(default_factory=list)

    def lookup(self, product: str, cycle: str) -> Optional[EolFact]:
        """The fact for a cycle; for a cycle older than every listed cycle of its product, when even the oldest
        listed one had ended by the data date, a derived fact: ended no later than that one (precision
        ``"before"``; nginx 1.16 is past its end because 1.20 is). Anything else unlisted stays unknown."""
        fact = self.facts.get((product, cycle))
        if fact is not None:
            return fact
        key = _cycle_key(cycle)
        listed = [f for (p, _), f in self.facts.items() if p == product]
        keys = [_cycle_key(f.cycle) for f in listed]
        if key is None or not listed or any(k is None for k in keys):
            return None
        oldest_key, oldest = min(zip(keys, listed), key=lambda kf: kf[0] or ())
        assert oldest_key is not None
        if key < oldest_key and oldest.eol is not None and oldest.eol <= self.data_timestamp:
            return EolFact(product, cycle, oldest.eol, "before",
                           f"older than the oldest listed cycle {oldest.cycle} (ended {oldest.source})")
        return None


def _cycle_key(cycle: str) -> Optional[tuple[int, ...]]:
    """``1.16`` -> (1, 16); None for cycles that are not plain numbers (``V10``, ``20.03-LTS``)."""
    if not re.fullmatch(r"\d+(\.\d+)*", cycle):
        return None
    return tuple(int(n) for n in cycle.split("."))


def _day(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=timezone.utc).timestamp()


def _parse_eol(value: str, where: str) -> tuple[Optional[float], str]:
    value = value.strip()
    if value == "not-set":
        return None, "none"
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            return _day(value), "day"
        except ValueError:
            raise EolDataError(f"{where}: eol_date {value!r} is not a valid date") from None
    if re.fullmatch(r"\d{4}", value):
        return _day(f"{value}-01-01"), "year"
    raise EolDataError(f"{where}: eol_date {value!r} must be YYYY-MM-DD, YYYY or not-set")


def _parse_file(path: Path, data: EolData) -> float:
    """Read one file into ``data``; return its data date (the ``data_date`` comment, else its mtime)."""
    try:
        text = path.read_text(encoding="utf-8")
        mtime = path.stat().st_mtime
    except (OSError, UnicodeDecodeError) as exc:
        raise EolDataError(f"{path}: cannot read EOL data: {exc}") from None
    data_date: Optional[float] = None
    body: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        match = _DATA_DATE.match(line.strip())
        if match:
            data_date = _day(match.group(1))
        if line.strip() and not line.lstrip().startswith("#"):
            body.append((number, line))
    if not body:
        raise EolDataError(f"{path}: no header line {','.join(_COLUMNS)}")
    header_line, header = body[0]
    columns = tuple(c.strip() for c in next(csv.reader([header])))
    if columns[: len(_COLUMNS)] != _COLUMNS:
        raise EolDataError(f"{path}:{header_line}: header must start with {','.join(_COLUMNS)}, got {header!r}")
    for number, line in body[1:]:
        where = f"{path}:{number}"
        row = next(csv.reader(io.StringIO(line)))
        if len(row) < len(_COLUMNS):
            raise EolDataError(f"{where}: expected {len(_COLUMNS)} columns, got {len(row)}")
        product, cycle, _release, eol_text, source = (c.strip() for c in row[: len(_COLUMNS)])
        if not product or not cycle:
            raise EolDataError(f"{where}: product and cycle must not be empty")
        if not source:
            raise EolDataError(f"{where}: {product} {cycle} has no source; a row needs a citable source")
        eol, precision = _parse_eol(eol_text, where)
        data.facts[(product, cycle)] = EolFact(product, cycle, eol, precision, source)
    data.files.append(str(path))
    return data_date if data_date is not None else mtime


def load_eol_data(path: Optional[Path] = None, overlay: Optional[Path] = None) -> EolData:
    """The facts file then the overlay (its rows win); a missing overlay file is simply no overlay."""
    data = EolData()
    # The main file's date is the one exported: it holds nearly all facts, and its age is what goes stale.
    data.data_timestamp = _parse_file(path or DEFAULT_EOL_FILE, data)
    overlay_path = overlay or DEFAULT_OVERLAY_FILE
    if overlay_path.exists():
        _parse_file(overlay_path, data)
    return data
