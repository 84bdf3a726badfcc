"""Square: ListPayments (reference acquirers-and-compliance.md §1.3).

Facts used [V developer.squareup.com ListPayments, square-java-sdk models]: `GET /v2/payments`
with `begin_time` (RFC 3339, inclusive), `end_time`, `sort_order`, `cursor`, `location_id`,
at most 100 per page, answering `payments[]` and `cursor` (absent on the last page); Payment
`id, created_at, updated_at, amount_money, status (APPROVED, PENDING, COMPLETED, CANCELED,
FAILED), location_id, reference_id, card_details{status, auth_result_code, card{bin, last_4}},
device_details{device_id}`; card-present payments on Square hardware carry `device_details`
[V changelog 2019-12-11]; data usually available within a few minutes [V v1 docs], hence the
default `list_lag` of 60 s (raise it if Square lags more). Confirmed since [V
square-python-sdk src/square/types/card_payment_details.py, src/square/payments/client.py]:
`card_details.status` is one of AUTHORIZED, CAPTURED, VOIDED, FAILED (VOIDED: a canceled
authorization); `limit` is the page size, at most 100; `end_time` defaults to now and
`begin_time` is inclusive; results are eventually consistent ("might take several seconds to
appear"). Still [R]: whether `end_time` is exclusive (a payment on a slice boundary read twice
is dropped as a duplicate, never counted twice).

Results: APPROVED/COMPLETED → approved; FAILED → declined; CANCELED after an authorization
(`card_details.status` VOIDED) → approved plus a reversal (`<id>:void`, at `updated_at`);
PENDING waits. Square has no RRN: the join key comes from `join_field` (default
`reference_id`, the seller's own reference, the same for every card brand); a payment without
it cannot be joined to an SMS and is counted in `smswatch_transactions_unjoinable_total`
instead of opening a receipt. The terminal is `device_details.device_id`.

Locations [V square-python-sdk src/square/payments/client.py `list`, `location_id`: "By
default, results are returned for the default (main) location associated with the seller"]:
ListPayments without `location_id` reads the main location only. smswatch reads every
location: those configured (`location_id`, `location_ids`), else every location ListLocations
returns (`GET /v2/locations`, inactive ones included), each slice of each location in turn.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from exporter.records import Page, Transaction
from exporter.sources.client import BadPayload, SourceClient
from exporter.sources.payloads import read_each
from exporter.sources.pulling import (
    PullContext,
    SlicedReRead,
    SlicePage,
    dotted,
    iso_ms,
    transaction_key,
)


def payment_records(payment: Any, join_field: str) -> list[Transaction]:
    """One Payment → 0, 1 or 2 transaction records (ValueError when malformed)."""
    if not isinstance(payment, dict) or not isinstance(payment.get("id"), str):
        raise ValueError("not a Payment")
    status = payment.get("status")
    card: dict[str, Any] = (
        payment["card_details"] if isinstance(payment.get("card_details"), dict) else {}
    )
    voided = status == "CANCELED" and card.get("status") == "VOIDED"
    if status in ("APPROVED", "COMPLETED") or voided:
        result = "approved"
    elif status == "FAILED":
        result = "declined"
    else:
        return []
    created = iso_ms(payment.get("created_at"))
    money: dict[str, Any] = (
        payment["amount_money"] if isinstance(payment.get("amount_money"), dict) else {}
    )
    bin_, last4 = str(dotted(card, "card.bin") or ""), str(dotted(card, "card.last_4") or "")
    device = str(dotted(payment, "device_details.device_id") or "")
    base = Transaction(
        txn_id=payment["id"],
        rrn=str(dotted(payment, join_field) or ""),
        terminal_id=device,
        merchant_id=str(payment.get("location_id") or ""),
        acquirer="",
        amount=int(money.get("amount") or 0),
        currency=str(money.get("currency") or ""),
        pan=f"{bin_}******{last4}" if bin_ and last4 else "",
        result=result,
        response_code="00" if result == "approved" else "05",
        txn_ms=created,
        sms_expected=result == "approved" and bool(card) and bool(device),
        original_txn_id="",
    )
    if not voided:
        return [base]
    updated = payment.get("updated_at")
    at = iso_ms(updated) if updated else created
    reversal = Transaction(
        txn_id=f"{base.txn_id}:void",
        rrn=base.rrn,
        terminal_id=base.terminal_id,
        merchant_id=base.merchant_id,
        acquirer="",
        amount=base.amount,
        currency=base.currency,
        pan=base.pan,
        result="reversed",
        response_code="00",
        txn_ms=max(at, created),
        sms_expected=False,
        original_txn_id=base.txn_id,
    )
    return [base, reversal]


def parse_payments(payload: Any, join_field: str) -> tuple[list[Transaction], int, str]:
    """A ListPayments answer → (records, invalid, next cursor or "")."""
    if not isinstance(payload, dict):
        raise BadPayload("not a JSON object")
    if isinstance(payload.get("errors"), list) and payload["errors"]:
        raise BadPayload(f"Square errors: {payload['errors'][0]}")
    payments = payload.get("payments", [])
    if not isinstance(payments, list):
        raise BadPayload("'payments' is not a list")
    batches, invalid = read_each(payments, lambda payment: payment_records(payment, join_field))
    records = [record for batch in batches for record in batch]
    cursor = payload.get("cursor")
    return records, invalid, cursor if isinstance(cursor, str) else ""


class SquarePuller(SlicedReRead[Transaction]):
    """Re-reads the payments created in the window that may still change, in time slices
    oldest first, with a checkpoint after each slice (`sliced_re_read`)."""

    key = staticmethod(transaction_key)
    locations: tuple[str, ...] = ()

    def pages(
        self, client: SourceClient, ctx: PullContext, deadline: float
    ) -> Iterator[Page[Transaction]]:
        configured = [self.source.options["location_id"], *self.source.options["location_ids"]]
        self.locations = tuple(x for x in configured if x) or self.all_locations(client, deadline)
        yield from super().pages(client, ctx, deadline)

    def all_locations(self, client: SourceClient, deadline: float) -> tuple[str, ...]:
        """Every location of the seller, inactive ones included (ListLocations)."""
        reply = client.request("GET", LOCATIONS_PATH, {}, deadline)
        self.clock.observe(reply.date_ms)
        return tuple(parse_locations(reply.payload))

    def read_slice(
        self, client: SourceClient, low: int, high: int, deadline: float
    ) -> Iterator[SlicePage[Transaction]]:
        for index, location in enumerate(self.locations):
            params: dict[str, str | int] = {
                "begin_time": rfc3339(low),
                "end_time": rfc3339(high),
                "sort_order": "ASC",
                "limit": self.source.page_size,
                "location_id": location,
            }
            last_location = index == len(self.locations) - 1
            for _ in range(self.source.max_pages):
                reply = client.request("GET", self.source.path, params, deadline)
                now = self.clock.observe(reply.date_ms)
                records, invalid, cursor = parse_payments(
                    reply.payload, self.source.options["join_field"]
                )
                yield records, invalid, now, last_location and not cursor
                if not cursor:
                    break
                params = {**params, "cursor": cursor}
            else:
                raise BadPayload(f"a {self.slice_ms // 1000} s slice exceeds max_pages")


#: ListLocations (square-python-sdk src/square/locations/raw_client.py: `v2/locations`) [V].
LOCATIONS_PATH = "/v2/locations"


def parse_locations(payload: Any) -> list[str]:
    """The location ids of a ListLocations answer (every status: inactive ones still list
    their past payments)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("locations"), list):
        raise BadPayload("ListLocations answer without a 'locations' list")
    ids = [str(x["id"]) for x in payload["locations"] if isinstance(x, dict) and x.get("id")]
    if not ids:
        raise BadPayload("the seller has no locations")
    return ids


def rfc3339(ms: int) -> str:
    """Unix ms → `2026-11-26T12:00:00Z` (whole seconds, as the slices are)."""
    return datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
