"""Masking of phone and card numbers: nothing raw is ever stored, logged or exported."""

from __future__ import annotations

import re

_DIGITS = re.compile(r"\d")


def mask_phone(value: str) -> str:
    """Mask a phone number to its first 3 and last 4 digits: `13812341234` → `138****1234`.

    Already-masked input stays as it is; short or odd input is masked entirely.
    """
    text = (value or "").strip()
    if len(text) == 11 and text[3:7] == "****":
        return text  # already masked the usual way: the hot path
    if "*" in text:
        digits_visible = len(_DIGITS.findall(text))
        return text if digits_visible <= 7 else "*" * len(text)
    digits = "".join(_DIGITS.findall(text))
    if text.startswith("+") and len(digits) > 11:
        digits = digits[-11:]  # drop the country code: the national number is what agents see
    if len(digits) < 8:
        return "*" * len(digits) if digits else ""
    return f"{digits[:3]}****{digits[-4:]}"


def mask_pan(value: str) -> str:
    """Mask a card number to BIN (first 6, or 8 for 16+ digit PANs) + last 4, PCI DSS style.

    Already-masked input keeps at most that many visible digits.
    """
    text = (value or "").strip().replace(" ", "").replace("-", "")
    if not text:
        return ""
    length = len(text)
    digits_visible = len(_DIGITS.findall(text))
    bin_len = 8 if length >= 16 else 6
    if "*" in text:
        return text if digits_visible <= bin_len + 4 else "*" * length
    if length < 13:
        return "*" * length
    return text[:bin_len] + "*" * (length - bin_len - 4) + text[-4:]
