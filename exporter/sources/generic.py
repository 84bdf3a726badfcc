"""The generic REST source: paged JSON change feeds with a cursor and a watermark.

The field names of the upstream are configured (`fields:`), not coded, so a bank's own API
whose fields are named differently is read by configuration. Pure `parse_*` functions turn a
decoded page into records; `fetch_page` is the thin I/O around them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any, TypeVar

from exporter.classify import STATUS_WORDS, normalize_status
from exporter.config import FeedShape, SourceConfig
from exporter.privacy import mask_pan, mask_phone
from exporter.records import Page, SmsEvent, Terminal, Transaction, unstorable_reason
from exporter.sources.client import BadPayload, SourceClient
from exporter.timestamps import parse_rfc3339_ms

T = TypeVar("T")

_MISSING = object()


def _get(item: Mapping[str, Any], parts: tuple[str, ...]) -> Any:
    if len(parts) == 1:
        return item.get(parts[0], _MISSING)
    value: Any = item
    for part in parts:
        if not isinstance(value, Mapping) or part not in value:
            return _MISSING
        value = value[part]
    return value


class _Fields:
    """Reads normalized fields out of one upstream item through the configured mapping."""

    __slots__ = ("item", "mapping", "parts")

    def __init__(self, parts: Mapping[str, tuple[str, ...]]) -> None:
        self.parts = parts
        self.mapping = {key: ".".join(value) for key, value in parts.items()}
        self.item: Mapping[str, Any] = {}

    def text(self, key: str, *, required: bool = True) -> str:
        value = _get(self.item, self.parts[key])
        kind = type(value)
        if kind is str and value:
            return value  # type: ignore[no-any-return]
        if value is _MISSING or value is None or value == "":
            if required:
                raise ValueError(f"missing field {self.mapping[key]}")
            return ""
        if kind is bool or not isinstance(value, str | int):
            raise ValueError(f"field {self.mapping[key]} is not text")
        return str(value)

    def time_ms(self, key: str) -> int:
        value = _get(self.item, self.parts[key])
        if type(value) is str:
            return _parse_time(value)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return int(value * 1000) if value < 1e11 else int(value)  # Unix s or ms
        raise ValueError(f"missing field {self.mapping[key]}")

    def flag(self, key: str) -> bool:
        value = _get(self.item, self.parts[key])
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        if isinstance(value, int):
            return value != 0
        raise ValueError(f"field {self.mapping[key]} is not a boolean")


@lru_cache(maxsize=65_536)
def _parse_time(text: str) -> int:
    """RFC 3339 → Unix ms; cached, since a message repeats its submit time on every event."""
    return parse_rfc3339_ms(text)


def _envelope(payload: Any, shape: FeedShape) -> tuple[list[Any], str, bool, int]:
    if not isinstance(payload, dict):
        raise BadPayload("page is not a JSON object")
    items = payload.get(shape.items)
    if not isinstance(items, list):
        raise BadPayload(f"page has no list {shape.items!r}")
    cursor = payload.get(shape.next_cursor)
    if cursor is None or isinstance(cursor, bool) or not isinstance(cursor, str | int):
        raise BadPayload(f"page has no {shape.next_cursor!r}")
    if isinstance(cursor, str) and unstorable_reason((cursor,)):
        raise BadPayload(f"{shape.next_cursor!r} is not valid Unicode")
    has_more = payload.get(shape.has_more, False)
    if not isinstance(has_more, bool):
        raise BadPayload(f"{shape.has_more!r} is not a boolean")
    watermark = payload.get(shape.watermark)
    try:
        watermark_ms = parse_rfc3339_ms(watermark) if isinstance(watermark, str) else -1
    except ValueError as exc:
        raise BadPayload(f"bad {shape.watermark!r}: {exc}") from exc
    if watermark_ms < 0:
        raise BadPayload(f"page has no {shape.watermark!r}")
    return items, str(cursor), has_more, watermark_ms


def _parse_items(
    payload: Any, shape: FeedShape, build: Callable[[_Fields], T], mapping: Mapping[str, str]
) -> Page[T]:
    items, cursor, has_more, watermark_ms = _envelope(payload, shape)
    records: list[T] = []
    invalid = 0
    fields = _Fields({key: tuple(value.split(".")) for key, value in mapping.items()})
    for item in items:
        if type(item) is not dict:
            invalid += 1
            continue
        fields.item = item
        try:
            records.append(build(fields))
        except (ValueError, KeyError, TypeError, OverflowError):
            invalid += 1
    return Page(records, invalid, cursor, has_more, watermark_ms)


def _sms_event(f: _Fields) -> SmsEvent:
    status = normalize_status(f.text("status"))
    if status is None:
        raise ValueError("unknown status")
    submitted_ms = f.time_ms("submitted_at")
    status_ms = f.time_ms("status_at")
    if status_ms < submitted_ms:
        raise ValueError("status before submission")
    return SmsEvent(
        message_id=f.text("message_id"),
        txn_ref=f.text("txn_ref", required=False),
        phone=mask_phone(f.text("phone", required=False)),
        carrier=f.text("carrier", required=False) or "unknown",
        area=f.text("area", required=False) or "unknown",
        status=status,
        error_code=f.text("error_code", required=False),
        submitted_ms=submitted_ms,
        status_ms=status_ms,
        acquirer=f.text("acquirer", required=False),
    )


_RESULTS = {"approved", "declined", "reversed"}


def _transaction(f: _Fields) -> Transaction:
    result = f.text("result").lower()
    if result not in _RESULTS:
        raise ValueError("unknown result")
    amount_text = f.text("amount", required=False) or "0"
    original = f.text("original_txn_id", required=False)
    if result == "reversed" and not original:
        raise ValueError("reversal without original transaction")
    return Transaction(
        txn_id=f.text("txn_id"),
        rrn=f.text("rrn", required=False),
        terminal_id=f.text("terminal_id", required=False),
        merchant_id=f.text("merchant_id", required=False),
        acquirer=f.text("acquirer", required=False),
        amount=int(amount_text),
        currency=f.text("currency", required=False),
        pan=mask_pan(f.text("pan", required=False)),
        result=result,
        response_code=f.text("response_code", required=False),
        txn_ms=f.time_ms("txn_time"),
        sms_expected=result == "approved" and f.flag("sms_expected"),
        original_txn_id=original,
    )


def _terminal(f: _Fields) -> Terminal:
    return Terminal(
        terminal_id=f.text("terminal_id"),
        merchant_id=f.text("merchant_id", required=False),
        acquirer=f.text("acquirer", required=False),
        area=f.text("area", required=False),
        software_version=f.text("software_version", required=False),
        sms_notice_enabled=f.flag("sms_notice_enabled"),
        changed_ms=f.time_ms("changed_at"),
        last_seen_ms=f.time_ms("last_seen") if f.text("last_seen", required=False) else 0,
        history=_flips(_get(f.item, f.parts["history"])),
    )


def _flips(value: Any) -> tuple[tuple[int, bool], ...]:
    """A terminal's reported history of SMS notice flips, oldest first."""
    if value is _MISSING or value is None:
        return ()
    if not isinstance(value, list):
        raise ValueError("history is not a list")
    flips = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("sms_notice_enabled"), bool):
            raise ValueError("history item without sms_notice_enabled")
        at = item.get("at")
        if not isinstance(at, str):
            raise ValueError("history item without a time")
        flips.append((_parse_time(at), item["sms_notice_enabled"]))
    return tuple(sorted(flips))


def parse_sms_page(payload: Any, source: SourceConfig) -> Page[SmsEvent]:
    """Parse one page of an SMS status feed; malformed items count as invalid."""
    if any("." in path for path in source.fields.values()):
        return _parse_items(payload, source.feed, _sms_event, source.fields)
    return _parse_sms_flat(payload, source)


def _parse_sms_flat(payload: Any, source: SourceConfig) -> Page[SmsEvent]:
    """The hot path: the same rules as `_sms_event`, for fields that are plain keys."""
    items, cursor, has_more, watermark_ms = _envelope(payload, source.feed)
    f = source.fields
    k_id, k_ref, k_phone = f["message_id"], f["txn_ref"], f["phone"]
    k_carrier, k_area, k_status = f["carrier"], f["area"], f["status"]
    k_code, k_sub, k_at = f["error_code"], f["submitted_at"], f["status_at"]
    k_acquirer = f["acquirer"]
    statuses = STATUS_WORDS
    records: list[SmsEvent] = []
    invalid = 0
    for item in items:
        try:
            get = item.get
            message_id = get(k_id)
            status = statuses.get(get(k_status))
            if status is None:
                word = get(k_status)
                status = normalize_status(word) if type(word) is str else None
            submitted, at = get(k_sub), get(k_at)
            if (
                type(message_id) is not str
                or not message_id
                or status is None
                or type(submitted) is not str
                or type(at) is not str
            ):
                raise ValueError("missing or malformed field")
            submitted_ms, status_ms = _parse_time(submitted), _parse_time(at)
            if status_ms < submitted_ms:
                raise ValueError("status before submission")
            ref, phone, code = get(k_ref) or "", get(k_phone) or "", get(k_code) or ""
            carrier, area = get(k_carrier) or "unknown", get(k_area) or "unknown"
            acquirer = get(k_acquirer) or ""
            if (
                type(ref) is not str
                or type(phone) is not str
                or type(code) is not str
                or type(carrier) is not str
                or type(area) is not str
                or type(acquirer) is not str
            ):
                raise ValueError("field is not text")
            records.append(
                SmsEvent(
                    message_id,
                    ref,
                    mask_phone(phone),
                    carrier,
                    area,
                    status,
                    code,
                    submitted_ms,
                    status_ms,
                    True,
                    acquirer,
                )
            )
        except (AttributeError, ValueError, TypeError, OverflowError):
            invalid += 1
    return Page(records, invalid, cursor, has_more, watermark_ms)


def parse_transaction_page(payload: Any, source: SourceConfig) -> Page[Transaction]:
    """Parse one page of an acquirer's transaction feed."""
    return _parse_items(payload, source.feed, _transaction, source.fields)


def parse_terminal_page(payload: Any, source: SourceConfig) -> Page[Terminal]:
    """Parse one page of an acquirer's terminal inventory."""
    mapping = source.terminal_fields
    build: Callable[[_Fields], Terminal] = _terminal
    if not any("." in path for path in mapping.values()):
        build = _flat_terminal(mapping)
    return _parse_items(payload, source.terminals_feed, build, mapping)


def _flat_terminal(mapping: Mapping[str, str]) -> Callable[[_Fields], Terminal]:
    """The hot path of a full inventory read on every poll, for fields that are plain keys:
    an item whose fields all have their usual types (text, a boolean, RFC 3339 times) is read
    directly; any other goes through `_terminal`, whose rules decide."""
    k_id, k_merchant, k_acquirer = (
        mapping["terminal_id"],
        mapping["merchant_id"],
        mapping["acquirer"],
    )
    k_area, k_version = mapping["area"], mapping["software_version"]
    k_enabled, k_changed = mapping["sms_notice_enabled"], mapping["changed_at"]
    k_seen, k_history = mapping["last_seen"], mapping["history"]

    def build(f: _Fields) -> Terminal:
        get = f.item.get
        terminal_id, enabled = get(k_id), get(k_enabled)
        merchant, acquirer, area = get(k_merchant), get(k_acquirer), get(k_area)
        version, changed, seen = get(k_version), get(k_changed), get(k_seen)
        if (
            type(terminal_id) is not str
            or not terminal_id
            or type(enabled) is not bool
            or type(changed) is not str
            or type(seen) is not str
            or not seen
            or type(merchant) is not str
            or type(acquirer) is not str
            or type(area) is not str
            or type(version) is not str
        ):
            return _terminal(f)
        return Terminal(
            terminal_id,
            merchant,
            acquirer,
            area,
            version,
            enabled,
            _parse_time(changed),
            _parse_time(seen),
            _flips(get(k_history, _MISSING)),
        )

    return build


def fetch_page(
    client: SourceClient,
    path: str,
    shape: FeedShape,
    cursor: str,
    limit: int,
    parse: Callable[[Any], Page[T]],
    deadline: float,
) -> Page[T]:
    """Fetch and parse one page; a page that does not parse is retried like a failed request."""
    params: dict[str, str | int] = {shape.limit_param: limit}
    if cursor:
        params[shape.cursor_param] = cursor
    attempts = client.source.retries + 1
    for attempt in range(attempts):
        payload = client.get_json(path, params, deadline)
        try:
            return parse(payload)
        except BadPayload as exc:
            error = client.fail("bad_payload", str(exc))
            if attempt + 1 >= attempts or time.monotonic() >= deadline:
                raise error from exc
            if client.stop.wait(client.source.backoff_ms / 1000):
                raise error from exc
    raise AssertionError("unreachable")
