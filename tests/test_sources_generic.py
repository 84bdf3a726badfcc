"""The generic REST source: parsing recorded pages, and polling over HTTP with `responses`."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import responses

from exporter.config import parse_config, simulator_config_document
from exporter.errors import SourceError
from exporter.sources.client import SourceClient, retry_after_seconds
from exporter.sources.generic import fetch_page, parse_sms_page, parse_transaction_page
from exporter.timestamps import parse_rfc3339_ms

FIXTURES = Path(__file__).parent / "fixtures" / "generic"
BASE = "http://sms.bank.test"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def config(**overrides: Any) -> Any:
    raw = simulator_config_document(BASE)
    raw["sources"][0].update(overrides)
    return parse_config(raw, state_path=":memory:")


def test_sms_page_is_parsed_masked_and_bad_items_counted() -> None:
    source = config().sources[0]
    page = parse_sms_page(load("sms_page.json"), source)
    assert [(e.message_id, e.status, e.error_code) for e in page.records] == [
        ("m-1", "submitted", "000"),
        ("m-1", "delivered", "000"),
        ("m-2", "undelivered", "MK:0001"),
    ]
    assert page.invalid == 3  # unknown status, missing fields, not an object
    assert page.records[0].phone == "138****1234"  # a raw number is masked on the way in
    assert page.records[1].status_ms - page.records[1].submitted_ms == 4250
    assert (page.next_cursor, page.has_more) == ("6", True)
    assert page.watermark_ms == parse_rfc3339_ms("2026-11-26T12:00:09Z")


def test_transaction_page_masks_the_card_and_keeps_reversals() -> None:
    source = config().sources[1]
    page = parse_transaction_page(load("transactions_page.json"), source)
    assert [(t.txn_id, t.result, t.sms_expected) for t in page.records] == [
        ("t-1", "approved", True),
        ("t-2", "declined", False),
        ("t-3", "reversed", False),
    ]
    assert page.records[0].pan == "62258800****1234"
    assert page.records[2].original_txn_id == "t-1"
    assert page.invalid == 1


def test_field_mapping_reads_an_api_with_other_names() -> None:
    raw = simulator_config_document(BASE)
    raw["sources"][0]["fields"] = {"message_id": "id", "txn_ref": "meta.rrn", "status": "stat"}
    raw["sources"][0]["feed"] = {"items": "data", "next_cursor": "next", "watermark": "complete_to"}
    source = parse_config(raw, state_path=":memory:").sources[0]
    payload = {
        "data": [
            {
                "id": "x1",
                "meta": {"rrn": "r1"},
                "stat": "DELIVRD",
                "submitted_at": "2026-11-26T12:00:00Z",
                "status_at": "2026-11-26T12:00:01Z",
            }
        ],
        "next": 17,
        "complete_to": "2026-11-26T12:00:05Z",
    }
    page = parse_sms_page(payload, source)
    assert page.records[0].message_id == "x1"
    assert page.records[0].txn_ref == "r1"
    assert page.next_cursor == "17"


@pytest.mark.parametrize(
    "payload",
    [
        [],
        {"messages": "x", "next_cursor": "1", "watermark": "2026-11-26T12:00:00Z"},
        {"messages": []},
    ],
)
def test_page_without_its_envelope_is_a_bad_payload(payload: Any) -> None:
    source = config(retries=0).sources[0]
    errors: list[str] = []
    client = SourceClient(source, errors.append)
    with responses.RequestsMock() as mock:
        mock.get(f"{BASE}/sms/v1/messages", json=payload)
        with pytest.raises(SourceError) as caught:
            fetch_page(
                client,
                source.path,
                source.feed,
                "",
                10,
                lambda p: parse_sms_page(p, source),
                time.monotonic() + 5,
            )
    assert caught.value.kind == "bad_payload"
    assert errors == ["bad_payload"]


def _poll(source: Any, errors: list[str]) -> Any:
    client = SourceClient(source, errors.append)
    return fetch_page(
        client,
        source.path,
        source.feed,
        "42",
        100,
        lambda p: parse_sms_page(p, source),
        time.monotonic() + 10,
    )


@responses.activate
def test_retries_5xx_and_malformed_pages_then_succeeds_counting_each_failure() -> None:
    source = config(retries=3, backoff="10ms").sources[0]
    url = f"{BASE}/sms/v1/messages"
    responses.get(url, status=500)
    responses.get(url, body="{not json")
    responses.get(url, json=load("sms_page.json"))
    errors: list[str] = []
    page = _poll(source, errors)
    assert len(page.records) == 3
    assert errors == ["http_5xx", "bad_payload"]
    sent = responses.calls[-1].request
    assert "cursor=42" in sent.url and "limit=100" in sent.url


@responses.activate
def test_honours_retry_after_on_429() -> None:
    source = config(retries=1, backoff="10ms").sources[0]
    url = f"{BASE}/sms/v1/messages"
    responses.get(url, status=429, headers={"Retry-After": "1"})
    responses.get(url, json=load("sms_page.json"))
    errors: list[str] = []
    started = time.monotonic()
    _poll(source, errors)
    assert time.monotonic() - started >= 1.0
    assert errors == ["throttled"]


@responses.activate
def test_4xx_is_not_retried() -> None:
    source = config(retries=3, backoff="10ms").sources[0]
    responses.get(f"{BASE}/sms/v1/messages", status=401)
    errors: list[str] = []
    with pytest.raises(SourceError) as caught:
        _poll(source, errors)
    assert caught.value.kind == "http_4xx"
    assert len(responses.calls) == 1


@responses.activate
def test_timeouts_and_refused_connections_are_counted_by_kind() -> None:
    source = config(retries=1, backoff="10ms").sources[0]
    url = f"{BASE}/sms/v1/messages"
    responses.get(url, body=requests.exceptions.ReadTimeout("read timed out"))
    responses.get(url, body=requests.exceptions.ConnectionError("refused"))
    errors: list[str] = []
    with pytest.raises(SourceError) as caught:
        _poll(source, errors)
    assert errors == ["timeout", "connection"]
    assert caught.value.kind == "connection"


@responses.activate
def test_auth_headers_are_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMS_TOKEN", "s3cret-token")
    source = config(auth={"type": "bearer", "token": "${SMS_TOKEN}"}).sources[0]
    responses.get(f"{BASE}/sms/v1/messages", json=load("sms_page.json"))
    _poll(source, [])
    assert responses.calls[0].request.headers["Authorization"] == "Bearer s3cret-token"
    assert "s3cret" not in repr(source)


def test_stop_interrupts_backoff() -> None:
    source = config(retries=5, backoff="30s").sources[0]
    stop = threading.Event()
    client = SourceClient(source, lambda kind: stop.set(), stop)
    with responses.RequestsMock() as mock:
        mock.get(f"{BASE}/sms/v1/messages", status=503)
        started = time.monotonic()
        with pytest.raises(SourceError):
            client.get_json(source.path, {}, time.monotonic() + 120)
    assert time.monotonic() - started < 5


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    assert retry_after_seconds("7") == 7
    assert (
        retry_after_seconds(
            "Thu, 26 Nov 2026 12:00:10 GMT", now=parse_rfc3339_ms("2026-11-26T12:00:00Z") / 1000
        )
        == 10
    )
    assert retry_after_seconds("soon") is None
