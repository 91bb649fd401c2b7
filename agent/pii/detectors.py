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

# A quick pass finds runs of digits (with the separators numbers are written with) of 11 characters or more;
# the pattern starts with a character class, so the regex engine skips everything else in C. Only inside those
# runs is the exact candidate pattern applied. Candidates: a plain run of 11-20 digits (an ID may end in X), a
# phone number written 3-4-4 with separators, or a card in groups of four; an optional +86 may lead.
_CANDIDATE = re.compile(
    r"(?<![0-9])(?:"
    r"(?:\+?86[- ]?)?1[3-9][0-9][ -][0-9]{4}[ -][0-9]{4}"
    r"|[0-9]{4}(?:[ -][0-9]{4}){3}(?:[ -]?[0-9]{1,3})?"
    r"|(?:\+?86[- ]?)?[0-9]{11,19}[0-9Xx]?"
    r")(?![0-9])"
)
_RUN = re.compile(r"[+0-9][0-9 -]{9,}[0-9Xx]")
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


def _id_ok(number: str, today: dt.date) -> bool:
    if int(number[:2]) not in _PROVINCES:
        return False
    if len(number) == 18:
        year, month, day = int(number[6:10]), int(number[10:12]), int(number[12:14])
        return _date_ok(year, month, day, today) and id18_check(number[:17]) == number[17]
    year, month, day = 1900 + int(number[6:8]), int(number[8:10]), int(number[10:12])
    return _date_ok(year, month, day, today)


def classify(candidate: str, today: dt.date) -> tuple[str, str] | None:
    """(kind, number) for a candidate that validates, else None. IDs first: a valid ID is never a card."""
    plain = candidate.isdigit() or (candidate[:-1].isdigit() and candidate[-1] in "Xx")
    if plain and len(candidate) in (15, 18) and candidate[0] != "0":
        number = candidate.upper()
        if (len(number) == 15 and number.isdigit() or len(number) == 18) and _id_ok(number, today):
            return "id_card", number
    digits = re.sub(r"[^0-9]", "", candidate)
    if candidate.startswith(("+86", "86")) and len(digits) == 13:
        digits = digits[2:]
    if len(digits) == 11 and digits[0] == "1" and int(digits[:3]) in _MOBILE_PREFIXES:
        return "mobile", digits
    if candidate[-1] not in "Xx" and 16 <= len(digits) <= 19 and _card_issuer_ok(digits) and luhn_ok(digits):
        return "bank_card", digits
    return None


def scan_text(text: str, found: Found, today: dt.date | None = None) -> None:
    """Add every validated record in ``text`` to ``found``."""
    today = today or dt.date.today()
    for run in _RUN.finditer(text):
        for m in _CANDIDATE.finditer(run.group(0)):
            hit = classify(m.group(0), today)
            if hit is not None:
                found.add(*hit)
