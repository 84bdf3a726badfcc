"""The HTTP server, with real requests to 127.0.0.1 on a free port."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest

from exporter.simulator.scenario import ACCOUNT_KINDS, CANARY_KINDS, KINDS, SECOND_SOURCE_KINDS
from exporter.simulator.server import SimulatorServer
from exporter.simulator.settings import SimulatorSettings
from exporter.simulator.simulation import Simulation

from .conftest import MINUTE, run_to_completion, settings, wait_for
from .reference import expected_metrics

Serve = Callable[[SimulatorSettings], SimulatorServer]


def request(
    server: SimulatorServer, path: str, method: str = "GET", body: Any = None, timeout: float = 10
) -> tuple[int, dict[str, str], bytes]:
    url = urlsplit(server.url)
    connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=timeout)
    try:
        payload = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
        connection.request(method, path, body=payload)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def get_json(server: SimulatorServer, path: str) -> Any:
    status, _, body = request(server, path)
    assert status == 200, body
    return json.loads(body)


def read_feed(server: SimulatorServer, path: str, name: str) -> list[dict[str, Any]]:
    """A whole feed, as a consumer reads it: a spoiled answer (`api_errors`) is asked again,
    an answer without `next_cursor` (`cursor_reset`) is asked again from the same cursor."""
    out: list[dict[str, Any]] = []
    cursor = ""

    def page_at(cursor: str) -> Any:
        status, _, body = request(server, f"{path}?limit=5000&cursor={cursor}")
        try:
            page = json.loads(body) if status == 200 else None
        except ValueError:
            return None
        return page if page and page["next_cursor"] else None

    while True:
        page = wait_for(lambda at=cursor: page_at(at), timeout=30)
        out.extend(page[name])
        cursor = page["next_cursor"]
        if not page["has_more"]:
            return out


def test_every_endpoint_answers(serve: Serve) -> None:
    server = serve(settings(speed=60.0, traffic_for_ms=None, scenario=None))
    assert server.url == f"http://127.0.0.1:{server.port}"
    status, headers, body = request(server, "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert b"/sim/v1/truth" in body and b"sim_time" in body
    assert request(server, "/healthz")[0] == 200
    for path, name in (
        ("/sms/v1/messages", "messages"),
        ("/acquirer/v1/transactions", "transactions"),
        ("/acquirer/v1/terminals", "terminals"),
    ):
        page = get_json(server, f"{path}?limit=3")
        assert set(page) == {name, "next_cursor", "has_more", "watermark"}
    truth = get_json(server, "/sim/v1/truth")
    assert truth["complete"] is False
    assert truth["parameters"] == {
        "missing_after": "5m",
        "give_up_after": "30m",
        "seed": 7,
        "gateway": "bank-sms",
    }
    faults = get_json(server, "/sim/v1/faults")["faults"]
    # every kind once but id_collision (it needs a second gateway and acquirer source), the
    # account kinds (started at run time) and the kinds only canaries can see
    assert len(faults) == len(
        set(KINDS) - set(SECOND_SOURCE_KINDS) - set(ACCOUNT_KINDS) - set(CANARY_KINDS)
    )
    assert {f["state"] for f in faults} == {"scheduled"}


@pytest.mark.parametrize(
    ("method", "path", "status", "message"),
    [
        ("GET", "/nowhere", 404, "no such endpoint"),
        ("GET", "/sms/v1/messages?limit=0", 400, "limit"),
        ("GET", "/sms/v1/messages?limit=many", 400, "limit"),
        ("GET", "/sms/v1/messages?cursor=%00%ff", 400, "cursor"),
        ("GET", "/acquirer/v1/transactions?cursor=m00000000-1", 400, "cursor"),
        ("GET", "/acquirer/v1/terminals?cursor=i-x", 400, "cursor"),
        ("POST", "/sms/v1/messages", 405, "not allowed"),
        ("DELETE", "/sim/v1/faults", 405, "not allowed"),
    ],
)
def test_bad_requests_get_json_errors(
    serve: Serve, method: str, path: str, status: int, message: str
) -> None:
    server = serve(settings(speed=1.0))
    got, headers, body = request(server, path, method)
    assert got == status
    assert headers["Content-Type"] == "application/json"
    assert message in json.loads(body)["error"]


def test_posting_a_fault_starts_it_now(serve: Serve) -> None:
    server = serve(settings(speed=1.0))
    status, _, body = request(
        server,
        "/sim/v1/faults",
        "POST",
        {"kind": "throttling", "start": "3h", "duration": "10m", "share": 0.5},
    )
    assert status == 201
    fault = json.loads(body)
    assert fault["kind"] == "throttling" and fault["state"] == "active"
    assert fault["start"].startswith("2026-11-26T04:00:0")  # now, not in 3 h
    assert fault["duration"] == "10m" and fault["share"] == 0.5
    (listed,) = get_json(server, "/sim/v1/faults")["faults"]
    assert listed["id"] == fault["id"] and listed["start"] == fault["start"]

    status, _, body = request(
        server, "/sim/v1/faults", "POST", {"kind": "throttling", "duration": "1m", "share": 9}
    )
    assert status == 400
    assert "share" in json.loads(body)["error"]
    status, _, body = request(server, "/sim/v1/faults", "POST", b"not json")
    assert status == 400 and "not JSON" in json.loads(body)["error"]


def start_api_fault(server: SimulatorServer, **fault: Any) -> None:
    body = {"kind": "api_errors", "duration": "1h", "share": 1.0, **fault}
    status, _, answer = request(server, "/sim/v1/faults", "POST", body)
    assert status == 201, answer
    # It starts at the next simulated millisecond.
    wait_for(lambda: get_json(server, "/sim/v1/faults")["faults"][-1]["state"] == "active")


def test_api_errors_answer_500_on_the_target_only(serve: Serve) -> None:
    server = serve(settings(speed=1.0))
    start_api_fault(server, target="sms", mode="500")
    assert request(server, "/sms/v1/messages")[0] == 500
    assert request(server, "/acquirer/v1/transactions")[0] == 200
    assert request(server, "/sim/v1/truth")[0] == 200


def test_api_errors_429_carries_retry_after(serve: Serve) -> None:
    server = serve(settings(speed=1.0))
    start_api_fault(server, target="acquirer", mode=["429"], retry_after="7s")
    status, headers, _ = request(server, "/acquirer/v1/terminals")
    assert (status, headers["Retry-After"]) == (429, "7")
    assert request(server, "/sms/v1/messages")[0] == 200


@pytest.mark.parametrize("mode", ["malformed", "truncated"])
def test_api_errors_spoil_the_body(serve: Serve, mode: str) -> None:
    server = serve(settings(speed=1.0))
    start_api_fault(server, target="both", mode=mode)
    status, headers, body = request(server, "/acquirer/v1/transactions")
    assert status == 200
    assert int(headers["Content-Length"]) == len(body)
    with pytest.raises(ValueError):
        json.loads(body)


def test_api_errors_slow_answers_exceed_a_short_read_timeout(serve: Serve) -> None:
    server = serve(settings(speed=1.0))
    start_api_fault(server, target="sms", mode="slow", slow="800ms")
    with pytest.raises(TimeoutError):
        request(server, "/sms/v1/messages", timeout=0.2)
    began = time.monotonic()
    status, _, body = request(server, "/sms/v1/messages", timeout=10)
    assert time.monotonic() - began >= 0.75
    assert status == 200 and "messages" in json.loads(body)


def test_a_fast_run_completes_and_its_truth_matches_the_feeds(serve: Serve) -> None:
    run = settings(speed=7200.0, traffic_for_ms=30 * MINUTE, scenario=None)
    server = serve(run)
    truth = wait_for(
        lambda: (doc := get_json(server, "/sim/v1/truth"))["complete"] and doc, timeout=30
    )
    messages = read_feed(server, "/sms/v1/messages", "messages")
    transactions = read_feed(server, "/acquirer/v1/transactions", "transactions")
    terminals = read_feed(server, "/acquirer/v1/terminals", "terminals")
    assert truth["metrics"] == expected_metrics(
        messages,
        transactions,
        terminals,
        gateway="bank-sms",
        missing_after_ms=run.missing_after_ms,
        give_up_after_ms=run.give_up_after_ms,
    )
    # Wall-clock polling and explicit simulated steps give the very same feed.
    offline = Simulation(run)
    run_to_completion(offline)
    assert messages == [json.loads(i) for i in offline.messages.items(0, len(offline.messages))]


def test_stop_is_idempotent_and_frees_the_port(serve: Serve) -> None:
    server = serve(settings(speed=1.0))
    port = server.port
    server.stop()
    server.stop()
    with pytest.raises(OSError):
        http.client.HTTPConnection("127.0.0.1", port, timeout=1).request("GET", "/healthz")


def test_a_bug_in_a_handler_answers_500_and_the_server_keeps_serving(
    serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = serve(settings(speed=1.0))

    def broken() -> dict[str, Any]:
        raise RuntimeError("boom")

    monkeypatch.setattr(server.simulation, "truth_document", broken)
    status, _, body = request(server, "/sim/v1/truth")
    assert status == 500 and "internal error" in json.loads(body)["error"]
    assert request(server, "/healthz")[0] == 200
