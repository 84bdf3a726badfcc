"""Stripe (Terminal): PaymentIntents with their latest charge, and terminal readers
(reference acquirers-and-compliance.md §1.1).

Facts used [V docs.stripe.com, SDK OpenAPI text]: `GET /v1/payment_intents` with `created`
range filters and cursor paging (`limit` 1–100, `starting_after`), answering
`{object: "list", has_more, data[]}`; PaymentIntent `id, amount, amount_received, currency,
status, created (unix), latest_charge, metadata`; the charge's
`payment_method_details.card_present{iin, last4, network_transaction_id, receipt{
authorization_response_code}}`; `GET /v1/terminal/readers` with `device_sw_version`,
`last_seen_at`, `serial_number`, `metadata`. Relied on, unconfirmed [R]: lists are newest first;
`expand[]=data.latest_charge` expands the charge in a list; `last_seen_at` in milliseconds (Unix
seconds are accepted too); `canceled_at` on a canceled PaymentIntent.

Stripe exposes no ISO RRN or TID (reference, inference). The join key, per card brand:
- Visa, Mastercard, American Express: `join_field`, by default the charge's
  `payment_method_details.card_present.network_transaction_id` [V issue 12, Stripe API
  reference: only these three networks' transaction ids are supported; null for the others];
- every other brand (`brand` is one of amex, cartes_bancaires, diners, discover, eftpos_au,
  interac, jcb, link, mastercard, unionpay, visa, unknown [V Stripe API reference, card_present
  `brand`]): `fallback_join_field` (for example `metadata.rrn`, set by the bank's integration),
  default none.
A transaction with neither cannot be joined to an SMS: it is counted in
`smswatch_transactions_unjoinable_total{acquirer}` (and warned about once) instead of opening a
receipt that could never match. `card_present.iin` is documented as internal and usually
absent [V issue 12]: the masked PAN is `iin******last4` only when Stripe gave the iin.

The terminal comes from `terminal_field` (default `metadata.terminal_id`, which the bank's
integration sets). Stripe has no "SMS notice" setting: a reader's `metadata.sms_notice` = `off`
says it is off.

Results: `succeeded`/`requires_capture` → approved; `requires_payment_method` with a
`last_payment_error` → declined; `canceled` after an authorization → approved plus a reversal
(`<id>:void`); anything else is not decided yet and waits for a later read. Each poll re-reads
the window that may still change; the pipeline drops records it has seen.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from exporter.records import Terminal, Transaction
from exporter.sources.client import BadPayload, SourceClient
from exporter.sources.payloads import read_each
from exporter.sources.pulling import (
    SlicedReRead,
    SlicePage,
    dotted,
    transaction_key,
)


def _pan(card: Any) -> str:
    if not isinstance(card, dict):
        return ""
    iin, last4 = str(card.get("iin") or ""), str(card.get("last4") or "")
    return f"{iin}******{last4}" if iin and last4 else ""


def payment_intent_records(
    pi: Any, join_field: str, terminal_field: str, fallback_join_field: str = ""
) -> list[Transaction]:
    """One PaymentIntent → 0, 1 or 2 transaction records (ValueError when malformed).

    The join key is `join_field`, else `fallback_join_field`; "" when neither is set (the
    pipeline then counts the transaction unjoinable)."""
    if not isinstance(pi, dict) or not isinstance(pi.get("id"), str):
        raise ValueError("not a PaymentIntent")
    status = pi.get("status")
    created = pi.get("created")
    if isinstance(created, bool) or not isinstance(created, int):
        raise ValueError("created is not a Unix time")
    charge: dict[str, Any] = (
        pi["latest_charge"] if isinstance(pi.get("latest_charge"), dict) else {}
    )
    card = dotted(charge, "payment_method_details.card_present") or {}
    authorized = status in ("succeeded", "requires_capture") or (
        status == "canceled" and charge.get("status") == "succeeded"
    )
    if authorized:
        result = "approved"
    elif status == "requires_payment_method" and pi.get("last_payment_error"):
        result = "declined"
    else:
        return []  # not decided yet (or canceled before any authorization)
    code = dotted(card, "receipt.authorization_response_code")
    base = Transaction(
        txn_id=pi["id"],
        rrn=str(
            dotted(pi, join_field)
            or (dotted(pi, fallback_join_field) if fallback_join_field else "")
            or ""
        ),
        terminal_id=str(dotted(pi, terminal_field) or ""),
        merchant_id=str(dotted(pi, "on_behalf_of") or ""),
        acquirer="",
        amount=int(pi.get("amount_received") or pi.get("amount") or 0),
        currency=str(pi.get("currency") or "").upper(),
        pan=_pan(card),
        result=result,
        response_code=str(code or ("00" if result == "approved" else "05")),
        txn_ms=created * 1000,
        sms_expected=result == "approved" and bool(card),
        original_txn_id="",
    )
    records = [base]
    if status == "canceled" and authorized:
        canceled = pi.get("canceled_at")
        at = canceled * 1000 if isinstance(canceled, int) and not isinstance(canceled, bool) else 0
        records.append(
            base._replace(
                txn_id=f"{base.txn_id}:void",
                result="reversed",
                sms_expected=False,
                txn_ms=max(at, base.txn_ms),
                original_txn_id=base.txn_id,
            )
        )
    return records


def parse_payment_intents(
    payload: Any, join_field: str, terminal_field: str, fallback_join_field: str = ""
) -> tuple[list[Transaction], int, bool, str, int]:
    """A list answer → (records, invalid, has_more, last id, oldest created ms or -1)."""
    intents = _data(payload)
    batches, invalid = read_each(
        intents,
        lambda pi: payment_intent_records(pi, join_field, terminal_field, fallback_join_field),
    )
    records = [record for batch in batches for record in batch]
    created = [
        pi["created"] * 1000 for pi in _identified(intents) if isinstance(pi.get("created"), int)
    ]
    oldest = min(created, default=-1)
    return records, invalid, payload.get("has_more") is True, _last_id(intents), oldest


def parse_readers(payload: Any, now_ms: int) -> tuple[list[Terminal], int, bool, str]:
    """A readers list answer → (terminals, invalid, has_more, last id)."""
    readers = _data(payload)
    terminals, invalid = read_each(readers, lambda reader: _reader_terminal(reader, now_ms))
    return terminals, invalid, payload.get("has_more") is True, _last_id(readers)


def _data(payload: Any) -> list[Any]:
    """The `data` list of a Stripe list answer."""
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
        raise BadPayload("Stripe answer without a 'data' list")
    data: list[Any] = payload["data"]
    return data


def _identified(items: list[Any]) -> list[dict[str, Any]]:
    """The objects of a list answer that have an id."""
    return [item for item in items if isinstance(item, dict) and isinstance(item.get("id"), str)]


def _last_id(items: list[Any]) -> str:
    """The id of the last object with one: where the next page starts (`starting_after`)."""
    identified = _identified(items)
    return str(identified[-1]["id"]) if identified else ""


def _reader_terminal(reader: dict[str, Any], now_ms: int) -> Terminal:
    """One terminal reader → its terminal record (ValueError when malformed)."""
    if not isinstance(reader.get("id"), str):
        raise ValueError("not a reader")
    seen = reader.get("last_seen_at")
    seen_ms = 0
    if isinstance(seen, int) and not isinstance(seen, bool):
        seen_ms = seen if seen > 100_000_000_000 else seen * 1000
    notice = str(dotted(reader, "metadata.sms_notice") or "on").lower()
    return Terminal(
        terminal_id=reader["id"],
        merchant_id="",
        acquirer="",
        area=str(reader.get("location") or ""),
        software_version=str(reader.get("device_sw_version") or ""),
        sms_notice_enabled=notice not in ("off", "false", "disabled"),
        changed_ms=now_ms,
        last_seen_ms=seen_ms,
    )


class StripePuller(SlicedReRead[Transaction]):
    """Re-reads the PaymentIntents created in the window that may still change, in time slices
    oldest first, with a checkpoint after each slice (`sliced_re_read`)."""

    key = staticmethod(transaction_key)

    def read_slice(
        self, client: SourceClient, low: int, high: int, deadline: float
    ) -> Iterator[SlicePage[Transaction]]:
        params: dict[str, str | int] = {
            "limit": self.source.page_size,
            "created[gte]": low // 1000,
            "created[lt]": high // 1000,
            "expand[]": "data.latest_charge",
        }
        for _ in range(self.source.max_pages):
            reply = client.request("GET", self.source.path, params, deadline)
            now = self.clock.observe(reply.date_ms)
            options = self.source.options
            records, invalid, more, last_id, _ = parse_payment_intents(
                reply.payload,
                options["join_field"],
                options["terminal_field"],
                options["fallback_join_field"],
            )
            done = not more or not last_id
            yield records, invalid, now, done
            if done:
                return
            params = {**params, "starting_after": last_id}
        raise BadPayload(f"a {self.slice_ms // 1000} s slice exceeds max_pages")

    def terminals(self, client: SourceClient, deadline: float) -> tuple[list[Terminal], int, int]:
        params: dict[str, str | int] = {"limit": self.source.page_size}
        terminals: list[Terminal] = []
        invalid = 0
        started: int | None = None
        for _ in range(self.source.max_pages):
            reply = client.request("GET", self.source.terminals_path, params, deadline)
            now = self.clock.observe(reply.date_ms)
            started = now if started is None else started
            page, bad, more, last_id = parse_readers(reply.payload, started)
            terminals.extend(page)
            invalid += bad
            if not more or not last_id:
                return terminals, invalid, started
            params = {**params, "starting_after": last_id}
        raise BadPayload("terminal readers exceed max_pages")
