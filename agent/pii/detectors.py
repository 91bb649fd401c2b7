"""Validated detectors for Chinese personal numbers in text. A match is a record only when it validates:

* resident ID, 18 digits (GB 11643-1999): a province code that exists, a real birth date not in the future,
  and the ISO 7064 MOD 11-2 check character;
* old resident ID, 15 digits: a province code and a real 19YY birth date (it has no check digit);
* mainland mobile number: 11 digits with a number-block prefix carriers issue (13x, 15x, 18x, 19x, ...);
* bank card, 16 to 19 digits: the Luhn check and an issuer range (UnionPay 62/81, Visa 4, Mastercard 51-55 and
  2221-2720, JCB 35).

Digits that are part of a longer digit run never match (an order number does not hide a phone number), an ID
that validates is not counted again as a card, and every sample leaves here masked (``110105********1234``,
``138****5678``, ``622202****1234``): the unmasked number is never stored, logged or returned.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

__all__ = ["KINDS", "Found", "scan_text", "id18_check", "luhn_ok", "mask"]

KINDS = ("id_card", "mobile", "bank_card")
MAX_SAMPLES = 3

# Province-level codes of GB/T 2260 (the first two digits of an ID number).
_PROVINCES = frozenset(
    {11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52, 53, 54,
     61, 62, 63, 64, 65, 71, 81, 82}
)
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"

_ID18 = re.compile(r"(?<![0-9])([1-9]\d{5})((?:18|19|20)\d{2})(\d{2})(\d{2})(\d{3})([0-9Xx])(?![0-9A-Za-z])")
_ID15 = re.compile(r"(?<![0-9])([1-9]\d{5})(\d{2})(\d{2})(\d{2})(\d{3})(?![0-9])")
_MOBILE = re.compile(r"(?<![0-9])(?:\+?86[- ]?)?(1[3-9]\d)[- ]?(\d{4})[- ]?(\d{4})(?![0-9])")
_CARD = re.compile(r"(?<![0-9])((?:\d[ -]?){15,18}\d)(?![0-9])")
_MOBILE_PREFIXES = frozenset(
    {*range(130, 140), *range(145, 150), 150, 151, 152, 153, 155, 156, 157, 158, 159, 162, 165, 166, 167,
     *range(170, 179), *range(180, 190), 190, 191, 192, 193, 195, 196, 197, 198, 199}
)


def id18_check(first17: str) -> str:
    """The check character of an 18-digit ID from its first 17 digits (ISO 7064 MOD 11-2)."""
    return _CHECK[sum(int(d) * w for d, w in zip(first17, _WEIGHTS)) % 11]


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _date_ok(year: int, month: int, day: int, today: dt.date) -> bool:
    try:
        born = dt.date(year, month, day)
    except ValueError:
        return False
    return dt.date(1900, 1, 1) <= born <= today


def _card_issuer_ok(digits: str) -> bool:
    if digits.startswith(("62", "81")):  # UnionPay
        return 16 <= len(digits) <= 19
    if digits.startswith("4"):
        return len(digits) in (16, 19)
    head2, head4 = int(digits[:2]), int(digits[:4])
    if 51 <= head2 <= 55 or 2221 <= head4 <= 2720:
        return len(digits) == 16
    if head2 == 35:
        return 16 <= len(digits) <= 19
    return False


def mask(kind: str, number: str) -> str:
    if kind == "id_card":
        return number[:6] + "*" * (len(number) - 10) + number[-4:]
    if kind == "mobile":
        return number[:3] + "****" + number[-4:]
    return number[:6] + "****" + number[-4:]


@dataclass
class Found:
    """Validated records by kind, and a few masked samples of each."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    samples: dict[str, list[str]] = field(default_factory=lambda: {k: [] for k in KINDS})

    def add(self, kind: str, number: str) -> None:
        self.counts[kind] += 1
        if len(self.samples[kind]) < MAX_SAMPLES:
            masked = mask(kind, number)
            if masked not in self.samples[kind]:
                self.samples[kind].append(masked)

    def merge(self, other: Found) -> None:
        for kind in KINDS:
            self.counts[kind] += other.counts[kind]
            for s in other.samples[kind]:
                if len(self.samples[kind]) < MAX_SAMPLES and s not in self.samples[kind]:
                    self.samples[kind].append(s)


def _ids(text: str, today: dt.date) -> Iterator[tuple[int, int, str]]:
    for m in _ID18.finditer(text):
        region, year, month, day = int(m.group(1)[:2]), int(m.group(2)), int(m.group(3)), int(m.group(4))
        number = m.group(0).upper()
        if region in _PROVINCES and _date_ok(year, month, day, today) and id18_check(number[:17]) == number[17]:
            yield m.start(), m.end(), number
    for m in _ID15.finditer(text):
        region, year, month, day = int(m.group(1)[:2]), 1900 + int(m.group(2)), int(m.group(3)), int(m.group(4))
        if region in _PROVINCES and _date_ok(year, month, day, today):
            yield m.start(), m.end(), m.group(0)


def scan_text(text: str, found: Found, today: dt.date | None = None) -> None:
    """Add every validated record in ``text`` to ``found``."""
    today = today or dt.date.today()
    spans: list[tuple[int, int]] = []
    for start, end, number in _ids(text, today):
        found.add("id_card", number)
        spans.append((start, end))
    if spans:  # an ID number is not a bank card too: blank the IDs before looking for cards
        chars = list(text)
        for start, end in spans:
            chars[start:end] = " " * (end - start)
        text = "".join(chars)
    for m in _MOBILE.finditer(text):
        if int(m.group(1)) in _MOBILE_PREFIXES:
            found.add("mobile", m.group(1) + m.group(2) + m.group(3))
    for m in _CARD.finditer(text):
        digits = re.sub(r"[ -]", "", m.group(1))
        if 16 <= len(digits) <= 19 and _card_issuer_ok(digits) and luhn_ok(digits):
            found.add("bank_card", digits)
