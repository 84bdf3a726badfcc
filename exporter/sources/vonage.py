"""Vonage (Nexmo): the Reports API records (pull) and the SMS API DLR webhook (push)
(reference sms-providers.md §2).

Facts used:
- [V] sync `GET https://api.nexmo.com/v2/reports/records?account_id=…&product=SMS&direction=
  outbound&date_start=ISO&date_end=ISO`, window at most 24 h, Basic auth `api_key:api_secret`
  (developer.vonage.com reports tutorials); 10 requests/s synchronously
  (developer.vonage.com/api-errors/reports, `rate-limit`);
- [V] DLR webhook fields `err-code, message-timestamp, messageId, msisdn, network-code, price,
  scts, status, to` and its status words (developer.vonage.com/messaging/sms/guides/
  delivery-receipts); `msisdn` is the recipient, `to` the sender id the message was sent
  `from` — never read as a phone number;
- [V] the DLR err-code table, taken whole in exporter.classify.VONAGE (api.support.vonage.com
  204014733; 15 = the recipient's prepaid credit, not the submit-time "invalid sender");
- [V] the bank sets `client-ref` when it sends (Vonage/vonage-python-sdk sms/src/vonage_sms/
  requests.py: `client_ref` serialized as `client-ref`); [R] that the DLR echoes it;
- [R] the record field names (`message_id, client_ref, to, network, date_received,
  date_finalized, status, error_code`), ISO 8601 dates with an offset, the paging link at
  `_links.next.href` with the records under `records` (the Reports OpenAPI was not readable);
- [R] `scts` is a `YYMMDDhhmm` done time without a zone (not used: timed on receipt).

The window is read in time slices (`slice`, at most the API's 24 h), oldest first, each one
committed (issue 11 item 8, `exporter.sources.pulling.sliced_re_read`).

Latency honesty: a record's `date_received`/`date_finalized` carry a zone and are used as they
are. A DLR's `scts` has no zone and minute precision, and `message-timestamp` is when Vonage
pushed it: a pushed final status is timed when smswatch received it, and carries no submit time
(`submit_known=False`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from exporter.classify import VONAGE_STATUSES
from exporter.privacy import mask_phone
from exporter.records import SmsEvent
from exporter.sources.client import BadPayload, SourceClient
from exporter.sources.payloads import form_fields, json_body, read_each
from exporter.sources.pulling import (
    SlicedReRead,
    SlicePage,
    dotted,
    iso_ms,
    sms_key,
)

WINDOW_MS = 24 * 3_600_000  # the sync API answers at most 24 h per request [V]


def iso_text(ms: int) -> str:
    """Unix ms → `2026-11-26T12:00:00Z` (whole seconds, as the API takes them)."""
    return datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_records(payload: Any) -> tuple[list[SmsEvent], int, str | None]:
    """One Reports API answer → (events, invalid records, next page URL or None)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("records"), list):
        raise BadPayload("Reports answer without a 'records' list")
    events, invalid = read_each(payload["records"], _record_event)
    link = dotted(payload, "_links.next.href")
    return events, invalid, link if isinstance(link, str) and link else None


def _record_event(record: dict[str, Any]) -> SmsEvent:
    """One Reports API record → its event (ValueError when malformed)."""
    message_id = record.get("message_id")
    status = VONAGE_STATUSES.get(str(record.get("status") or "").lower())
    if not isinstance(message_id, str) or not message_id or status is None:
        raise ValueError("no message_id or unknown status")
    received = iso_ms(record.get("date_received"))
    finalized = record.get("date_finalized")
    done = iso_ms(finalized) if finalized else received
    code = record.get("error_code")
    return SmsEvent(
        message_id=message_id,
        txn_ref=str(record.get("client_ref") or ""),
        phone=mask_phone(str(record.get("to") or "")),
        carrier="unknown",
        area="unknown",
        status=status,
        error_code="" if code in (None, "0", 0) else str(code),
        submitted_ms=received,
        status_ms=max(received, done),
    )


class VonagePuller(SlicedReRead[SmsEvent]):
    """Re-reads the window of records that may still change, in time slices of at most 24 h,
    oldest first, with a checkpoint after each slice (`sliced_re_read`)."""

    key = staticmethod(sms_key)
    max_slice_ms = WINDOW_MS

    def read_slice(
        self, client: SourceClient, low: int, high: int, deadline: float
    ) -> Iterator[SlicePage[SmsEvent]]:
        path = self.source.path
        params: dict[str, str | int] = {
            "account_id": self.source.options["account_id"],
            "product": "SMS",
            "direction": "outbound",
            "date_start": iso_text(low),
            "date_end": iso_text(high),
        }
        for _ in range(self.source.max_pages):
            reply = client.request("GET", path, params, deadline)
            now = self.clock.observe(reply.date_ms)
            events, invalid, next_url = parse_records(reply.payload)
            yield events, invalid, now, next_url is None
            if next_url is None:
                return
            path, params = next_url, {}
        raise BadPayload(f"a {self.slice_ms // 1000} s slice exceeds max_pages")


# --------------------------------------------------------------------------- DLR webhook


def dlr_fields(body: bytes, query: Mapping[str, list[str]], content_type: str) -> dict[str, str]:
    """The DLR's fields from a GET query, a form body or a JSON body."""
    fields = {k: v[-1] for k, v in query.items() if v}
    if body:
        if "json" in content_type:
            data = json_body(body)
            if not isinstance(data, dict):
                raise BadPayload("DLR body is not a JSON object")
            fields.update({k: str(v) for k, v in data.items() if v is not None})
        else:
            fields.update(form_fields(body))
    return fields


def parse_dlr(fields: Mapping[str, str], received_ms: int) -> SmsEvent | None:
    """One DLR → an event timed when smswatch received it; None if it is not a DLR."""
    message_id = fields.get("messageId") or fields.get("message_id")
    status = VONAGE_STATUSES.get((fields.get("status") or "").lower())
    if not message_id or status is None:
        return None
    code = fields.get("err-code", "")
    return SmsEvent(
        message_id=message_id,
        txn_ref=fields.get("client-ref", ""),
        # `msisdn` is the recipient; `to` is the sender id the message was sent `from`
        # (developer.vonage.com/messaging/sms/guides/delivery-receipts): never a phone number.
        phone=mask_phone(fields.get("msisdn", "")),
        carrier="unknown",
        area="unknown",
        status=status,
        error_code="" if code in ("0", "") else code,
        submitted_ms=received_ms,
        status_ms=received_ms,
        submit_known=False,
    )
