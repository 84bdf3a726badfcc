"""Pull adapters against recorded payloads in each provider's documented shape (`responses`):
paging to the end, signing, 429/5xx, malformed and partial pages, the watermark rule."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import responses

from exporter.errors import SourceError
from exporter.poller import Pipeline, Poller
from exporter.records import Page, SmsEvent
from exporter.sources.aliyun import AliyunPuller
from exporter.sources.client import SourceClient
from exporter.sources.pulling import PullContext, rfc2822_ms
from exporter.sources.square import SquarePuller
from exporter.sources.stripe import StripePuller
from exporter.sources.tencent import TencentPuller
from exporter.sources.twilio import TwilioPuller
from exporter.sources.vonage import VonagePuller
from exporter.store import Store
from exporter.timestamps import parse_rfc3339_ms

from harness import config_with

FIXTURES = Path(__file__).parent / "fixtures"
NOON = "Thu, 26 Nov 2026 12:05:00 GMT"  # the upstream's clock in these tests
NOON_MS = rfc2822_ms(NOON)
FRESH = PullContext("", -1, 1_800_000)


def fixture(provider: str, name: str) -> Any:
    return json.loads((FIXTURES / provider / name).read_text())


def client(source: Any, errors: list[str] | None = None) -> SourceClient:
    seen = errors if errors is not None else []
    return SourceClient(source, seen.append)


def recorded(method: str, url: str, provider: str, name: str) -> None:
    """`url` answers with a recorded payload, dated NOON by the upstream's clock."""
    responses.add(method, url, json=fixture(provider, name), headers={"Date": NOON})


def pull(
    puller: Any, source: Any, ctx: PullContext = FRESH, errors: list[str] | None = None
) -> list[Page[Any]]:
    """Every page of one poll of `puller` (failed attempts' error kinds go to `errors`)."""
    return list(puller.pages(client(source, errors), ctx, deadline=1e12))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    state = Store(str(tmp_path / "state.sqlite"))
    yield state
    state.close()


def poll_once(config: Any, source: Any, store: Store) -> Poller:
    """One poll of `source` through the real pipeline into `store`."""
    poller = Poller(source, Pipeline(config, store), threading.Event())
    poller.poll()
    return poller


# --------------------------------------------------------------------------- Twilio

TWILIO = {
    "provider": "twilio",
    "account_sid": "AC0123456789abcdef0123456789abcdef",
    "page_size": 3,
    "retries": 2,
    "backoff": "10ms",
    "auth": {
        "type": "basic",
        "username": "AC0123456789abcdef0123456789abcdef",
        "password": "${SECRET}",
    },
}
TWILIO_LIST = (
    "https://api.twilio.com/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages.json"
)


@responses.activate
def test_twilio_follows_next_page_uri_to_the_end() -> None:
    source = config_with(sms=TWILIO).sources[0]
    recorded(responses.GET, TWILIO_LIST, "twilio", "messages_page0.json")
    recorded(responses.GET, TWILIO_LIST, "twilio", "messages_page1.json")
    pages = pull(TwilioPuller(source), source)
    assert [p.has_more for p in pages] == [True, False]
    assert pages[0].watermark_ms == -1  # a window is complete only once fully read
    assert pages[1].watermark_ms == NOON_MS - 60_000  # its clock minus the list lag
    events: list[SmsEvent] = [e for p in pages for e in p.records]
    assert [(e.message_id[-1], e.status, e.error_code, e.txn_ref) for e in events] == [
        ("1", "delivered", "", "633012345678"),
        ("2", "undelivered", "30003", "633012345679"),  # the inbound message is skipped
        ("4", "enroute", "", "633012345680"),
        ("5", "failed", "21211", ""),  # no reference in the body
    ]
    assert events[0].phone == "138****5678"
    assert events[0].status_ms - events[0].submitted_ms == 4000  # RFC 2822 dates
    assert pages[1].invalid == 2  # an unknown status, a date that is not RFC 2822
    auth = responses.calls[0].request.headers["Authorization"]
    assert auth.startswith("Basic ")
    assert "PageToken=PASM" in responses.calls[1].request.url


@responses.activate
def test_twilio_stops_at_the_window_already_decided() -> None:
    source = config_with(sms=TWILIO).sources[0]
    recorded(responses.GET, TWILIO_LIST, "twilio", "messages_page0.json")
    # Everything created before watermark − give_up_after (12:11) is decided; the whole first
    # page (newest 12:00) is older than that by more than the 10 min order margin: no second page.
    ctx = PullContext("", rfc2822_ms("Thu, 26 Nov 2026 12:41:00 GMT"), 1_800_000)
    pages = pull(TwilioPuller(source), source, ctx)
    assert len(pages) == 1 and not pages[0].has_more and len(responses.calls) == 1


@responses.activate
def test_twilio_walk_reads_a_margin_past_the_horizon() -> None:
    """Issue 12: Twilio lists by SID, which is only close to creation order. One message
    created after the horizon but listed after an older one must still be read; the walk
    stopped at the first page whose oldest message was past the horizon."""
    source = config_with(sms=TWILIO).sources[0]
    recorded(responses.GET, TWILIO_LIST, "twilio", "messages_page0.json")  # oldest 11:58
    late = fixture("twilio", "messages_page1.json")
    late["messages"][0]["date_created"] = "Thu, 26 Nov 2026 12:01:00 +0000"  # out of order
    late["messages"][0]["date_updated"] = "Thu, 26 Nov 2026 12:01:30 +0000"
    responses.get(TWILIO_LIST, json=late, headers={"Date": NOON})
    ctx = PullContext("", rfc2822_ms("Thu, 26 Nov 2026 12:29:00 GMT"), 1_800_000)  # ≥ 11:59
    pages = pull(TwilioPuller(source), source, ctx)
    assert len(responses.calls) == 2
    ids = [e.message_id[-1] for p in pages for e in p.records]
    assert "4" in ids  # the out-of-order message of the second page


@responses.activate
def test_twilio_429_waits_retry_after_then_succeeds() -> None:
    source = config_with(sms=TWILIO).sources[0]
    errors: list[str] = []
    responses.get(TWILIO_LIST, status=429, json={"code": 20429}, headers={"Retry-After": "0"})
    responses.get(TWILIO_LIST, status=503)
    recorded(responses.GET, TWILIO_LIST, "twilio", "messages_page1.json")
    pages = pull(TwilioPuller(source), source, errors=errors)
    assert errors == ["throttled", "http_5xx"]
    assert len(pages) == 1 and len(pages[0].records) == 2


# --------------------------------------------------------------------------- Alibaba

ALIYUN = {
    "provider": "aliyun",
    "phone_numbers": ["13900001234"],
    "page_size": 2,
    "retries": 0,
    "auth": {"type": "aliyun", "access_key_id": "testid", "access_key_secret": "${SECRET}"},
}
ALIYUN_API = "https://dysmsapi.aliyuncs.com/"


@responses.activate
def test_aliyun_pages_one_number_by_current_page_with_signed_requests() -> None:
    source = config_with(sms=ALIYUN).sources[0]
    assert source.pull and source.page_size == 2
    recorded(responses.GET, ALIYUN_API, "aliyun", "query_send_details_page1.json")
    recorded(responses.GET, ALIYUN_API, "aliyun", "query_send_details_page2.json")
    puller = AliyunPuller(source, clock=lambda: NOON_MS / 1000)
    pages = pull(puller, source)
    events = [e for p in pages for e in p.records]
    assert [(e.status, e.error_code, e.txn_ref) for e in events] == [
        ("delivered", "", "633012345678"),
        ("undelivered", "MOBILE_NOT_ON_SERVICE", "633012345600"),
        ("enroute", "", "633012345699"),  # SendStatus 1: awaiting its receipt
    ]
    # Beijing-time dates: 20:00:00 +08:00 is 12:00:00Z.
    assert events[0].submitted_ms == parse_rfc3339_ms("2026-11-26T12:00:00Z")
    assert events[0].status_ms - events[0].submitted_ms == 5000
    assert events[0].phone == "139****1234" and "13900001234" not in events[0].message_id
    assert [p.has_more for p in pages] == [True, False]
    query = responses.calls[1].request.params
    assert query["Action"] == "QuerySendDetails" and query["CurrentPage"] == "2"
    assert query["PhoneNumber"] == "13900001234" and query["SendDate"] == "20261126"
    assert query["SignatureMethod"] == "HMAC-SHA1" and query["Signature"]


@responses.activate
def test_aliyun_reads_the_days_of_alibabas_clock_not_of_ours() -> None:
    # Our clock is 4 days ahead: the day planned on it (2026-11-30) holds nothing at Alibaba,
    # whose clock (its Date header) says 2026-11-26 and gives the watermark. Reading the 30th
    # only would declare the 26th complete without one record of it read.
    source = config_with(sms=ALIYUN).sources[0]

    def answer(request: Any) -> tuple[int, dict[str, str], str]:
        day = request.params["SendDate"]
        page = request.params["CurrentPage"]
        name = f"query_send_details_page{page}.json"
        empty = {"Code": "OK", "TotalCount": 0, "SmsSendDetailDTOs": {"SmsSendDetailDTO": []}}
        body = fixture("aliyun", name) if day == "20261126" else empty
        return 200, {"Date": NOON}, json.dumps(body)

    responses.add_callback(responses.GET, ALIYUN_API, callback=answer)
    puller = AliyunPuller(source, clock=lambda: NOON_MS / 1000 + 4 * 86_400)
    pages = pull(puller, source)
    assert pages[-1].watermark_ms == NOON_MS - 60_000
    assert len([e for p in pages for e in p.records]) == 3
    assert responses.calls[-1].request.params["SendDate"] == "20261126"


def test_aliyun_signature_matches_the_official_sdk_for_a_known_key_and_time() -> None:
    from exporter.sources.aliyun import signed_params

    query = signed_params(
        "QuerySendDetails",
        {
            "PhoneNumber": "13900001234",
            "SendDate": "20261126",
            "PageSize": "50",
            "CurrentPage": "1",
        },
        "testid",
        "testsecret",
        now=1795694400,
        nonce="3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
    )
    assert query["Timestamp"] == "2026-11-26T12:00:00Z"
    # Computed with aliyun-python-sdk-core 2.16 (rpc_signature_composer) for these parameters.
    assert query["Signature"] == "BY+OLpkikT7+bpXOoinMAdnFzMw="


@responses.activate
def test_aliyun_flow_control_is_counted_as_throttled() -> None:
    source = config_with(sms=ALIYUN).sources[0]
    errors: list[str] = []
    responses.get(ALIYUN_API, json=fixture("aliyun", "throttled.json"))
    with pytest.raises(SourceError) as info:
        pull(AliyunPuller(source), source, errors=errors)
    assert info.value.kind == "throttled" and errors == ["throttled"]


# --------------------------------------------------------------------------- Tencent

TENCENT = {
    "provider": "tencent",
    "sms_sdk_app_id": "1400006666",
    "page_size": 2,
    "retries": 2,
    "backoff": "10ms",
    "auth": {"type": "tc3", "secret_id": "AKIDEXAMPLE", "secret_key": "${SECRET}"},
}
TENCENT_API = "https://sms.tencentcloudapi.com/"


def test_tc3_signature_matches_the_official_sdk_for_a_known_key_and_time() -> None:
    from exporter.sources.tencent import tc3_authorization

    header = tc3_authorization(
        "AKIDEXAMPLE",
        "secretExampleKey",
        host="sms.tencentcloudapi.com",
        service="sms",
        payload=b'{"SmsSdkAppId": "1400006666", "Limit": 100}',
        timestamp=1764158400,
    )
    # Computed with tencentcloud-sdk-python-common 3.1 (AbstractClient) for this request.
    assert header == (
        "TC3-HMAC-SHA256 Credential=AKIDEXAMPLE/2025-11-26/sms/tc3_request, "
        "SignedHeaders=content-type;host, "
        "Signature=4f88e8499644703925756890dd591e32670710bdfd5f4868c2adf64ca7b3e9fb"
    )


@responses.activate
def test_tencent_consuming_pull_commits_each_answer_before_the_next_request(
    store: Store,
) -> None:
    config = config_with(sms=TENCENT)
    seen_before_second: list[int] = []

    def second(request: Any) -> tuple[int, dict[str, str], str]:
        seen_before_second.append(len(store.messages("bank-sms", ["5000:104571059915310823281"])))
        return 200, {"Date": NOON}, (FIXTURES / "tencent" / "pull_page2.json").read_text()

    recorded(responses.POST, TENCENT_API, "tencent", "pull_page1.json")
    responses.add_callback(responses.POST, TENCENT_API, callback=second)
    empty = {"Response": {"PullSmsSendStatusSet": [], "RequestId": "d0"}}
    responses.post(TENCENT_API, json=empty, headers={"Date": NOON})
    poller = poll_once(config, config.sources[0], store)
    assert poller.health.up, poller.health.last_error
    assert seen_before_second == [1]  # the first answer was in the store before the second ask
    request = responses.calls[0].request
    assert request.headers["X-TC-Action"] == "PullSmsSendStatus"
    assert request.headers["Authorization"].startswith("TC3-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert json.loads(request.body) == {"SmsSdkAppId": "1400006666", "Limit": 2}
    messages = store.messages(
        "bank-sms",
        ["5000:104571059915310823281", "5000:104571059915310823282", "5000:104571059915310823283"],
    )
    assert {m.final_status for m in messages.values()} == {"delivered", "undelivered", "rejected"}
    assert len(responses.calls) == 3  # a short (here empty) answer: the queue is drained
    # Outcomes only: complete up to its clock − report_lag − give_up_after.
    assert store.source_state("sms").watermark_ms == NOON_MS - 60_000 - 1_800_000


@responses.activate
def test_tencent_error_in_a_200_answer_is_counted_and_a_timeout_is_not_retried() -> None:
    source = config_with(sms=TENCENT).sources[0]
    errors: list[str] = []
    responses.post(TENCENT_API, json=fixture("tencent", "error_limit.json"))
    with pytest.raises(SourceError) as info:
        pull(TencentPuller(source), source, errors=errors)
    assert info.value.kind == "throttled"
    import requests

    responses.replace(
        responses.POST,
        TENCENT_API,
        body=requests.exceptions.ReadTimeout("slow"),
    )
    errors.clear()
    with pytest.raises(SourceError):
        pull(TencentPuller(source), source, errors=errors)
    assert errors == ["timeout"]  # one attempt: a retry could hide consumed reports


@responses.activate
def test_tencent_unreadable_consumed_answer_fails_loudly() -> None:
    source = config_with(sms=TENCENT).sources[0]
    errors: list[str] = []
    responses.post(TENCENT_API, body='{"Response": {"PullSmsSendStatusSet": ')
    with pytest.raises(SourceError):
        pull(TencentPuller(source), source, errors=errors)
    assert errors[0] == "bad_payload"


# --------------------------------------------------------------------------- Vonage

VONAGE = {
    "provider": "vonage",
    "account_id": "abcd1234",
    "retries": 0,
    "auth": {"type": "basic", "username": "abcd1234", "password": "${SECRET}"},
}
RECORDS = "https://api.nexmo.com/v2/reports/records"


@responses.activate
def test_vonage_reports_follow_the_next_link_and_read_iso_dates() -> None:
    source = config_with(sms=VONAGE).sources[0]
    recorded(responses.GET, RECORDS, "vonage", "records_page1.json")
    recorded(responses.GET, RECORDS, "vonage", "records_page2.json")
    puller = VonagePuller(source, clock=lambda: NOON_MS / 1000)
    ctx = PullContext("", NOON_MS - 600_000, 1_800_000)
    pages = pull(puller, source, ctx)
    events = [e for p in pages for e in p.records]
    assert [(e.status, e.error_code, e.txn_ref) for e in events] == [
        ("delivered", "", "633012345678"),
        ("failed", "2", "633012345679"),
        ("enroute", "", "633012345680"),
    ]
    assert events[0].status_ms - events[0].submitted_ms == 4000
    assert pages[-1].invalid == 1 and pages[-1].watermark_ms == NOON_MS - 60_000
    first = responses.calls[0].request.params
    assert first["product"] == "SMS" and first["direction"] == "outbound"
    assert first["date_start"] == "2026-11-26T11:25:00Z"  # watermark − give_up_after
    assert first["date_end"] == "2026-11-26T12:05:00Z"
    assert "cursor=2" in responses.calls[1].request.url


def test_vonage_windows_are_at_most_24_hours() -> None:
    # A configured slice above the API's 24 h window is capped at it.
    source = config_with(sms={**VONAGE, "lookback": "50h", "slice": "30h"}).sources[0]
    puller = VonagePuller(source, clock=lambda: NOON_MS / 1000)
    with responses.RequestsMock() as mock:
        for _ in range(3):
            mock.get(RECORDS, json={"records": []}, headers={"Date": NOON})
        pages = pull(puller, source)
        spans = [
            parse_rfc3339_ms(c.request.params["date_end"])
            - parse_rfc3339_ms(c.request.params["date_start"])
            for c in mock.calls
        ]
    assert len(pages) == 3 and max(spans) <= 24 * 3_600_000


# --------------------------------------------------------------------------- acquirers

STRIPE = {
    "provider": "stripe",
    "auth": {"type": "bearer", "token": "${SECRET}"},
    "acquirers": ["stripe"],
}
STRIPE_INTENTS = "https://api.stripe.com/v1/payment_intents"
STRIPE_READERS = "https://api.stripe.com/v1/terminal/readers"


@responses.activate
def test_stripe_payment_intents_and_readers() -> None:
    source = config_with(acquirer=STRIPE).sources[1]
    assert source.terminals_path == "/v1/terminal/readers"
    recorded(responses.GET, STRIPE_INTENTS, "stripe", "payment_intents.json")
    recorded(responses.GET, STRIPE_READERS, "stripe", "readers.json")
    puller = StripePuller(source, clock=lambda: NOON_MS / 1000)
    pages = pull(puller, source)
    records = pages[0].records
    assert [(t.txn_id, t.result, t.rrn, t.terminal_id, t.sms_expected) for t in records] == [
        ("pi_3Ok1", "approved", "633012345678", "tmr_FDOt2wlRZEdpd7", True),
        ("pi_3Ok2", "declined", "", "tmr_FDOt2wlRZEdpd7", False),
        ("pi_3Ok3", "approved", "633012345690", "tmr_X", True),
        ("pi_3Ok3:void", "reversed", "633012345690", "tmr_X", False),  # authorization voided
    ]
    assert records[0].pan == "622588******1234" and records[0].amount == 8800
    assert records[3].original_txn_id == "pi_3Ok3"
    assert pages[0].invalid == 1  # `created` not a Unix time; `processing` waits, not invalid
    assert responses.calls[0].request.headers["Authorization"] == "Bearer s3cret"
    assert responses.calls[0].request.params["expand[]"] == "data.latest_charge"
    terminals, invalid, watermark = puller.terminals(client(source), deadline=1e12)
    assert [(t.terminal_id, t.software_version, t.sms_notice_enabled) for t in terminals] == [
        ("tmr_FDOt2wlRZEdpd7", "2.37.2.0", True),
        ("tmr_X", "1.0.0", False),
    ]
    assert terminals[0].last_seen_ms == 1795694400000 and terminals[1].last_seen_ms == 1795690000000
    assert invalid == 0 and watermark == NOON_MS


SQUARE = {
    "provider": "square",
    "auth": {"type": "bearer", "token": "${SECRET}"},
    "acquirers": ["square"],
}


@responses.activate
def test_square_payments_by_cursor_with_device_details() -> None:
    source = config_with(acquirer={**SQUARE, "slice": "24h", "location_id": "L1"}).sources[1]
    url = "https://connect.squareup.com/v2/payments"
    recorded(responses.GET, url, "square", "payments_page1.json")
    recorded(responses.GET, url, "square", "payments_page2.json")
    pages = pull(SquarePuller(source, clock=lambda: NOON_MS / 1000), source)
    records = [t for p in pages for t in p.records]
    assert [(t.txn_id, t.result, t.rrn, t.terminal_id) for t in records] == [
        ("bP9mAsEMYPUGjjGNaNO5ZDVyLhSZY", "approved", "633012345678", "121CS145A5000029"),
        ("dZ7jhMkd1", "approved", "633012345679", "121CS145A5000029"),
        ("dZ7jhMkd1:void", "reversed", "633012345679", "121CS145A5000029"),
        ("fA1", "declined", "633012345681", "121CS145A5000029"),
    ]
    assert records[0].txn_ms == parse_rfc3339_ms("2026-11-26T12:00:00.123Z")
    assert records[2].txn_ms == parse_rfc3339_ms("2026-11-26T12:03:00Z")
    assert records[0].pan == "411111******1234"
    assert pages[-1].invalid == 1 and pages[-1].watermark_ms == NOON_MS - 60_000
    assert responses.calls[1].request.params["cursor"] == "bP9mAsEMYPUGjjGNaNO5ZDVyLhSZY"
    assert responses.calls[0].request.params["sort_order"] == "ASC"


@responses.activate
def test_a_re_read_hands_over_only_what_changed_since_the_last_commit() -> None:
    source = config_with(sms=TWILIO).sources[0]
    page = fixture("twilio", "messages_page1.json")
    for _ in range(2):
        responses.get(TWILIO_LIST, json=page, headers={"Date": NOON})
    puller = TwilioPuller(source)
    first = pull(puller, source)
    again = pull(puller, source)
    assert len(first[0].records) == 2 and again[0].records == []  # nothing changed
    changed = json.loads(json.dumps(page))
    changed["messages"][0].update(
        status="delivered", date_updated="Thu, 26 Nov 2026 11:57:09 +0000"
    )
    responses.get(TWILIO_LIST, json=changed, headers={"Date": NOON})
    third = pull(puller, source)
    assert [(e.message_id[-1], e.status) for e in third[0].records] == [("4", "delivered")]


@responses.activate
def test_a_malformed_provider_page_is_counted_and_moves_nothing(store: Store) -> None:
    config = config_with(sms=TWILIO)
    responses.get(TWILIO_LIST, json={"unexpected": True}, headers={"Date": NOON})
    poller = poll_once(config, config.sources[0], store)
    assert not poller.health.up and poller.health.last_error == "bad_payload"
    assert store.source_state("sms").watermark_ms == -1
    counters, _, _ = store.snapshot()
    assert ("smswatch_source_errors_total", "sms\x1fbad_payload", 1.0) in counters


@responses.activate
def test_stripe_through_the_poller_commits_transactions_and_the_terminal_inventory(
    store: Store,
) -> None:
    config = config_with(acquirer=STRIPE)
    recorded(responses.GET, STRIPE_READERS, "stripe", "readers.json")
    recorded(responses.GET, STRIPE_INTENTS, "stripe", "payment_intents.json")
    poller = poll_once(config, config.sources[1], store)
    assert poller.health.up, poller.health.last_error
    _, gauges, sources = store.snapshot()
    assert ("smswatch_pos_terminals", "stripe\x1fdisabled\x1foutdated", 1.0) in gauges  # < 5.0.0
    ids = ["pi_3Ok1", "pi_3Ok2", "pi_3Ok3", "pi_3Ok3:void"]
    assert store.known_transactions("acquirer", ids) == set(ids)
    assert store.receipts("acquirer", ["pi_3Ok3"])["pi_3Ok3"].reversed_ms is not None
    state = next(s for s in sources if s.name == "acquirer")
    assert state.watermark_ms == NOON_MS - 30_000 and state.terminals_watermark_ms == NOON_MS


@responses.activate
def test_square_reads_every_location_not_only_the_main_one() -> None:
    """square-python-sdk src/square/payments/client.py (`location_id`): "By default, results
    are returned for the default (main) location associated with the seller". Without a
    configured location smswatch lists them (GET /v2/locations) and reads each."""
    source = config_with(acquirer={**SQUARE, "slice": "24h"}).sources[1]
    locations = {
        "locations": [{"id": "MAIN", "status": "ACTIVE"}, {"id": "KIOSK", "status": "INACTIVE"}]
    }
    responses.get(
        "https://connect.squareup.com/v2/locations", json=locations, headers={"Date": NOON}
    )
    page = fixture("square", "payments_page2.json")
    page.pop("cursor", None)
    responses.get("https://connect.squareup.com/v2/payments", json=page, headers={"Date": NOON})
    pages = pull(SquarePuller(source, clock=lambda: NOON_MS / 1000), source)
    asked = [c.request.params.get("location_id") for c in responses.calls[1:]]
    assert asked == ["MAIN", "KIOSK"]
    assert pages[-1].watermark_ms == NOON_MS - 60_000 and pages[0].watermark_ms == -1


def _unionpay_intent(metadata: dict[str, str]) -> dict[str, Any]:
    """A UnionPay card-present PaymentIntent as Stripe documents it: no network transaction
    id (supported for Visa, Mastercard and American Express only) and no iin (internal)."""
    return {
        "id": "pi_up1", "object": "payment_intent", "amount": 100, "currency": "cny",
        "status": "succeeded", "created": NOON_MS // 1000 - 60, "metadata": metadata,
        "latest_charge": {"id": "ch_up1", "status": "succeeded", "payment_method_details": {
            "type": "card_present", "card_present": {
                "brand": "unionpay", "last4": "1234", "network_transaction_id": None}}},
    }  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "unjoinable", "receipts"),
    [({}, 1, 0), ({"fallback_join_field": "metadata.rrn"}, 0, 1)],
)
@responses.activate
def test_stripe_transactions_without_a_join_key_are_counted_not_opened(
    store: Store, extra: dict[str, str], unjoinable: int, receipts: int
) -> None:
    """Issue 12: Stripe's network_transaction_id is null for brands other than Visa,
    Mastercard and Amex. Such a receipt could never match an SMS: it is counted
    (smswatch_transactions_unjoinable_total) unless a fallback join field gives a key."""
    config = config_with(acquirer={**STRIPE, "terminals": False, **extra})
    body = {"object": "list", "has_more": False, "data": [_unionpay_intent({"rrn": "633099"})]}
    responses.get(STRIPE_INTENTS, json=body, headers={"Date": NOON})
    poller = poll_once(config, config.sources[1], store)
    assert poller.health.up, poller.health.last_error
    counters = store.snapshot()[0]
    count = sum(v for m, _, v in counters if m == "smswatch_transactions_unjoinable_total")
    assert count == unjoinable
    assert len(store.receipts(config.sources[1].name, ["pi_up1"])) == receipts
