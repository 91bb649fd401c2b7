"""Keeping personal data out of logs: phone numbers are shown as 138****1234."""

from __future__ import annotations

__all__ = ["mask_phone"]


def mask_phone(phone: str) -> str:
    digits = phone[1:] if phone.startswith("+") else phone
    prefix = "+" if phone.startswith("+") else ""
    if digits.startswith("86") and len(digits) == 13:
        prefix, digits = prefix + "86", digits[2:]
    if len(digits) < 7:
        return prefix + "*" * len(digits)
    return f"{prefix}{digits[:3]}{'*' * (len(digits) - 7)}{digits[-4:]}"
