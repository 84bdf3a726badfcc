"""Window re-read adapters checkpoint inside the window (issue 11 item 8).

After an outage the window to re-read (Twilio, Vonage, Stripe, Square) outgrows one poll's
deadline. Here each upstream request costs 100 s of the poll's 350 s deadline (an injected
clock), and the fake upstream refuses a fourth request in one poll as the deadline would. A
30-hour backlog must still drain: every record reaches the store and the source's watermark
gets back to the upstream's now − lag, poll after poll, through the real poller and store.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
import requests
import responses

from exporter.poller import Pipeline, Poller
from exporter.store import Store
from exporter.timestamps import parse_rfc3339_ms

from harness import config_with

STEP_MS = 600_000  # one record every 10 minutes
BACKLOG_MS = 30 * 3_600_000
PER_POLL = 3  # requests that fit in one poll's deadline


def _rfc3339(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Upstream:
    """A provider API holding one record every 10 minutes of the backlog; each request costs
    100 s of the poll's budget, and a request past the budget times out."""

    def __init__(self, end_ms: int) -> None:
        self.end_ms = end_ms
        self.times = list(range(end_ms - BACKLOG_MS, end_ms, STEP_MS))
        self.in_poll = 0
        self.base = 0.0

    def new_poll(self) -> None:
        self.in_poll = 0
        self.base = time.monotonic()

    def monotonic(self) -> float:
        return self.base + 100.0 * self.in_poll

    def answer(self, request: Any, body: dict[str, Any]) -> tuple[int, dict[str, str], str]:
        self.in_poll += 1
        if self.in_poll > PER_POLL:
            raise requests.exceptions.ConnectTimeout("the poll's deadline has passed")
        date = format_datetime(datetime.fromtimestamp(self.end_ms / 1000, UTC), usegmt=True)
        return 200, {"Date": date}, json.dumps(body)

    def between(self, low: int, high: int) -> list[int]:
        return [t for t in self.times if low <= t < high]


def _query(request: Any) -> dict[str, str]:
    return {
        k: v[-1] for k, v in urllib.parse.parse_qs(urllib.parse.urlsplit(request.url).query).items()
    }


def vonage(up: Upstream, request: Any) -> tuple[int, dict[str, str], str]:
    q = _query(request)
    found = up.between(parse_rfc3339_ms(q["date_start"]), parse_rfc3339_ms(q["date_end"]))
    at = int(q.get("cursor", 0))
    page, rest = found[at : at + 20], found[at + 20 :]
    links: dict[str, Any] = {}
    if rest:
        links["next"] = {"href": request.url.split("&cursor=")[0] + f"&cursor={at + 20}"}
    records = [
        {"message_id": f"v{t}", "client_ref": f"r{t}", "to": "8613812345678",
         "date_received": _rfc3339(t), "date_finalized": _rfc3339(t + 5000),
         "status": "delivered", "error_code": None}
        for t in page
    ]  # fmt: skip
    return up.answer(request, {"records": records, "_links": links})


def stripe(up: Upstream, request: Any) -> tuple[int, dict[str, str], str]:
    q = _query(request)
    found = up.between(int(q["created[gte]"]) * 1000, int(q["created[lt]"]) * 1000)[::-1]
    if "starting_after" in q:
        found = [t for t in found if t < int(q["starting_after"][3:])]
    limit = int(q["limit"])
    data = [
        {"id": f"pi_{t}", "status": "succeeded", "created": t // 1000, "amount": 100,
         "currency": "cny", "metadata": {"terminal_id": "T1"},
         "latest_charge": {"status": "succeeded", "payment_method_details": {"card_present": {
             "last4": "1234", "network_transaction_id": f"n{t}"}}}}
        for t in found[:limit]
    ]  # fmt: skip
    return up.answer(request, {"object": "list", "data": data, "has_more": len(found) > limit})


def square(up: Upstream, request: Any) -> tuple[int, dict[str, str], str]:
    q = _query(request)
    found = up.between(parse_rfc3339_ms(q["begin_time"]), parse_rfc3339_ms(q["end_time"]))
    at = int(q.get("cursor", 0))
    limit = int(q["limit"])
    payments = [
        {"id": f"sq{t}", "status": "COMPLETED", "created_at": _rfc3339(t), "location_id": "L1",
         "reference_id": f"r{t}", "amount_money": {"amount": 100, "currency": "CNY"},
         "card_details": {"status": "CAPTURED", "card": {"bin": "411111", "last_4": "1234"}},
         "device_details": {"device_id": "D1"}}
        for t in found[at : at + limit]
    ]  # fmt: skip
    body: dict[str, Any] = {"payments": payments}
    if at + limit < len(found):
        body["cursor"] = str(at + limit)
    return up.answer(request, body)


def twilio(up: Upstream, request: Any) -> tuple[int, dict[str, str], str]:
    q = _query(request)
    newest_first = up.times[::-1]
    at = int(q.get("PageToken", "PA0")[2:])
    size = int(q.get("PageSize", 20))
    page = newest_first[at : at + size]
    base = request.url.split("?")[0]
    messages = [
        {"sid": f"SM{t}", "to": "+8613812345678", "body": f"RRN r{t}", "status": "delivered",
         "direction": "outbound-api", "error_code": None,
         "date_created": format_datetime(datetime.fromtimestamp(t / 1000, UTC)),
         "date_updated": format_datetime(datetime.fromtimestamp(t / 1000 + 5, UTC))}
        for t in page
    ]  # fmt: skip
    more = at + size < len(newest_first)
    nxt = f"{base}?PageSize={size}&PageToken=PA{at + size}" if more else None
    return up.answer(request, {"messages": messages, "next_page_uri": nxt})


AUTH = {"type": "basic", "username": "u", "password": "${SECRET}"}
PROVIDERS: dict[str, tuple[str, dict[str, Any], str, Callable[..., Any]]] = {
    "vonage": ("sms", {"provider": "vonage", "account_id": "k", "auth": AUTH},
               "https://api.nexmo.com/v2/reports/records", vonage),
    "twilio": ("sms", {"provider": "twilio", "account_sid": "AC1", "auth": AUTH, "page_size": 20},
               "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json", twilio),
    "stripe": ("acquirer", {"provider": "stripe", "terminals": False, "page_size": 20,
                            "auth": {"type": "bearer", "token": "${SECRET}"}, "acquirers": ["s"]},
               "https://api.stripe.com/v1/payment_intents", stripe),
    "square": ("acquirer", {"provider": "square", "page_size": 20, "acquirers": ["q"],
                            "location_ids": ["L1"],
                            "auth": {"type": "bearer", "token": "${SECRET}"}},
               "https://connect.squareup.com/v2/payments", square),
}  # fmt: skip


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    state = Store(str(tmp_path / "state.sqlite"))
    yield state
    state.close()


@pytest.mark.parametrize("provider", list(PROVIDERS))
def test_a_backlog_longer_than_a_poll_drains_slice_by_slice(provider: str, store: Store) -> None:
    kind, options, url, serve = PROVIDERS[provider]
    common = {"retries": 0, "deadline": "350s", **options}
    config = config_with(**{kind: common})
    source = config.sources[0 if kind == "sms" else 1]
    end_ms = int(time.time()) * 1000
    up = Upstream(end_ms)
    lag = source.options["list_lag"]
    # The exporter was down: its committed watermark is 30 hours old.
    store.advance_source(source.name, "", end_ms - BACKLOG_MS + config.give_up_after_ms)
    poller = Poller(source, Pipeline(config, store), threading.Event())
    poller.adapter.monotonic = up.monotonic
    watermarks = []
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_callback(responses.GET, url, callback=lambda r: serve(up, r))
        for _ in range(30):
            up.new_poll()
            poller.poll()
            watermarks.append(store.source_state(source.name).watermark_ms)
            if watermarks[-1] >= end_ms - lag:
                break
    assert watermarks[-1] == end_ms - lag, (provider, watermarks)
    assert poller.health.up, poller.health.last_error
    assert all(b >= a for a, b in itertools.pairwise(watermarks))
    if kind == "sms":
        ids = [f"v{t}" for t in up.times] if provider == "vonage" else [f"SM{t}" for t in up.times]
        assert len(store.messages(source.gateway, ids)) == len(up.times)
    else:
        prefix = "pi_" if provider == "stripe" else "sq"
        assert store.known_transactions(source.name, [f"{prefix}{t}" for t in up.times]) == {
            f"{prefix}{t}" for t in up.times
        }
