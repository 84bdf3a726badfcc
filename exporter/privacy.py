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


# ------------------------------------------------------------------ scrubbing free text

#: Secret values the process holds (API keys, signing secrets, push secrets): never logged.
_SECRETS: set[str] = set()
_SECRET_MIN_LENGTH = 6
#: `name=value` pairs whose value is a credential or a signature (URL queries, form bodies,
#: header dumps).
_SECRET_PARAMS = re.compile(
    r"(?i)(\b(?:AccessKeyId|AccessKeySecret|Signature\w*|SecretId|SecretKey|secret|"
    r"\w*token|password|passwd|api_key|api_secret|apikey|sig|key|Credential|"
    r"X-TC-\w+|x-smswatch-secret)\b['\"]?\s*[=:]\s*['\"]?)([^&\s'\",;}]+)"
)
_AUTH_HEADER = re.compile(
    r"(?i)(\bauthorization['\"]?\s*[:=]\s*['\"]?(?:(?:Bearer|Basic|Token)\s+)?)[^\s'\",}]+"
)
#: Phone and card numbers: runs of 7+ digits, in clear or URL-encoded (`%2B86138…`),
#: `+86 138 1234 1234` and `138-1234-1234`.
_NUMBER_RUN = re.compile(
    r"\+\d(?: ?\d){6,}(?!\d)|(?<!\d)\d{7,}(?!\d)|(?<!\d)\d{3}-\d{4}-\d{4}(?!\d)"
)


def remember_secret(value: str) -> None:
    """Register a secret the process holds, so that `scrub` removes it from any text."""
    if value and len(value) >= _SECRET_MIN_LENGTH:
        from urllib.parse import quote, quote_plus

        _SECRETS.update({value, quote(value, safe=""), quote_plus(value)})


def _mask_run(match: re.Match[str]) -> str:
    digits = _DIGITS.findall(match.group(0))
    return "*" * (len(digits) - 4) + "".join(digits[-4:])


def scrub(text: str) -> str:
    """Text safe to log or keep: no known secret, credential parameter or phone/card number.

    The one place where free text (exception messages with URLs and query strings, upstream
    error bodies, quarantine reasons) is cleaned before anyone can read it.
    """
    if not text:
        return text
    for secret in sorted(_SECRETS, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, "***")
    text = _AUTH_HEADER.sub(r"\1***", text)
    text = _SECRET_PARAMS.sub(r"\1***", text)
    return _NUMBER_RUN.sub(_mask_run, text)
