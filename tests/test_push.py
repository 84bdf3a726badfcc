"""Push receivers over real HTTP on the exporter's server: acknowledgements, duplicates counted
once, secrets, size limits, and a crash between commit and acknowledgement that loses nothing."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.app import Exporter
from exporter.config import parse_config, simulator_config_document
from exporter.errors import ConfigError
from exporter.push import CRASH_AFTER_COMMIT_ENV

from harness import (
    Process,
    free_port,
    http_get,
    parse_exposition,
    raw_exchange,
    scrape,
    wait_until,
)

FIXTURES = Path(__file__).parent / "fixtures"
SECRET = "s3cret"


def document(state: Path) -> dict[str, Any]:
    doc = simulator_config_document("http://127.0.0.1:9")  # the acquirer: unreachable, unused
    doc["state"]["path"] = str(state)
    push = {"secret": "${PUSH_SECRET}", "lag": "30s", "max_body": 4096}
    doc["sources"] = [
        {"name": n, "kind": "sms_gateway", "provider": n, "pull": False, "push": push}
        for n in ("aliyun", "tencent", "vonage", "jasmin", "kannel")
    ] + [doc["sources"][1]]
    return doc


@pytest.fixture
def exporter(tmp_path: Path) -> Iterator[Exporter]:
    config = parse_config(document(tmp_path / "state.sqlite"), env={"PUSH_SECRET": SECRET})
    app = Exporter(config, "127.0.0.1", 0)
    app.web.start()  # the receivers only: no polling in these tests
    yield app
    app.web.stop()
    app.store.close()


def post(
    url: str,
    body: bytes,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": content_type, **(headers or {})}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def metric(app: Exporter, name: str, **labels: str) -> float:
    exported = scrape(f"http://127.0.0.1:{app.port}/metrics")
    return sum(v for (n, ls), v in exported.items() if n == name and set(labels.items()) <= set(ls))


def base(app: Exporter, source: str) -> str:
    return f"http://127.0.0.1:{app.port}/push/{source}?secret={SECRET}"


def test_alibaba_sms_report_is_acknowledged_with_code_0_and_retries_count_once(
    exporter: Exporter,
) -> None:
    body = (FIXTURES / "aliyun" / "sms_report.json").read_bytes()
    for _ in range(2):  # the provider's retry of the same batch
        status, answer = post(base(exporter, "aliyun"), body)
        assert status == 200 and json.loads(answer)["code"] == 0
    assert metric(exporter, "smswatch_sms_submitted_total", gateway="aliyun") == 2
    assert metric(exporter, "smswatch_records_total", source="aliyun", result="accepted") == 2
    assert metric(exporter, "smswatch_records_total", source="aliyun", result="duplicate") == 2
    assert metric(exporter, "smswatch_records_total", source="aliyun", result="invalid") == 2
    assert (
        metric(exporter, "smswatch_sms_messages_total", gateway="aliyun", cause="unreachable") == 1
    )
    assert (
        metric(
            exporter, "smswatch_sms_ambiguous_total", gateway="aliyun", code="MOBILE_NOT_ON_SERVICE"
        )
        == 1
    )
    # Beijing times with a zone: latency from the provider's own clock (5 s → le=5).
    assert metric(exporter, "smswatch_sms_delivery_seconds_bucket", gateway="aliyun", le="5.0") == 1


def test_tencent_callback_and_its_answer(exporter: Exporter) -> None:
    body = (FIXTURES / "tencent" / "callback.json").read_bytes()
    status, answer = post(base(exporter, "tencent"), body)
    assert status == 200 and json.loads(answer) == {"result": 0, "errmsg": "OK"}
    assert metric(exporter, "smswatch_sms_messages_total", gateway="tencent", status="expired") == 1
    # No submit time in a Tencent report: no delivery latency is measured from it.
    assert metric(exporter, "smswatch_sms_delivery_seconds_count", gateway="tencent") == 0


def test_vonage_dlr_webhook_as_json_and_as_get(exporter: Exporter) -> None:
    dlr = {
        "msisdn": "8613812345678", "to": "BANKX", "network-code": "46000",
        "messageId": "0A0000001234ABCD", "price": "0.02", "status": "delivered",
        "scts": "2611261200", "err-code": "0", "client-ref": "633012345678",
        "message-timestamp": "2026-11-26 12:00:05",
    }  # fmt: skip
    assert post(base(exporter, "vonage"), json.dumps(dlr).encode())[0] == 200
    failed = {**dlr, "messageId": "0A0000001234ABCE", "status": "failed", "err-code": "6"}
    status, _ = http_get(base(exporter, "vonage") + "&" + urllib.parse.urlencode(failed))
    assert status == 200
    assert metric(exporter, "smswatch_sms_messages_total", gateway="vonage", cause="filtered") == 1
    assert (
        metric(exporter, "smswatch_sms_messages_total", gateway="vonage", status="delivered") == 1
    )


def test_jasmin_dlr_levels_and_the_ack_it_waits_for(exporter: Exporter) -> None:
    url = base(exporter, "jasmin") + "&ref=633012345678&carrier=china-mobile&area=east"
    level1 = {"id": "a5f8c2d2-1c1e-4d4b-9b0a-1", "message_status": "ESME_ROK", "level": "1"}
    level2 = {
        "id": "a5f8c2d2-1c1e-4d4b-9b0a-1", "id_smsc": "0A000001", "message_status": "UNDELIV",
        "level": "2", "subdate": "2611261200", "donedate": "2611261201", "sub": "001",
        "dlvrd": "000", "err": "MK:0001", "text": "",
    }  # fmt: skip
    for fields in (level1, level2, level2):  # Jasmin retries until it reads ACK/Jasmin
        status, answer = post(
            url, urllib.parse.urlencode(fields).encode(), "application/x-www-form-urlencoded"
        )
        assert (status, answer) == (200, b"ACK/Jasmin")
    assert (
        metric(exporter, "smswatch_sms_submitted_total", gateway="jasmin", carrier="china-mobile")
        == 1
    )
    assert (
        metric(exporter, "smswatch_sms_messages_total", gateway="jasmin", cause="invalid_number")
        == 1
    )
    assert metric(exporter, "smswatch_records_total", source="jasmin", result="duplicate") == 1


def test_kannel_dlr_url_reads_the_raw_smpp_receipt(exporter: Exporter) -> None:
    def dlr(kind: int, reply: str) -> int:
        params = {
            "type": str(kind),
            "reply": reply,
            "smsc": "fake1",
            "msg": "m-42",
            "ref": "633012345678",
        }
        return http_get(base(exporter, "kannel") + "&" + urllib.parse.urlencode(params))[0]

    assert dlr(8, "ACK/") == 200  # SMSC ACK: the submission
    receipt = (
        "id:0A1B sub:001 dlvrd:000 submit date:2611261200 done date:2611261210 "
        "stat:EXPIRED err:MK:0010 text:x"
    )
    assert dlr(2, receipt) == 200
    assert dlr(2, receipt) == 200  # Kannel repeats a callback: counted once
    assert (
        metric(
            exporter,
            "smswatch_sms_messages_total",
            gateway="kannel",
            status="expired",
            cause="unreachable",
        )
        == 1
    )
    assert metric(exporter, "smswatch_records_total", source="kannel", result="duplicate") == 1
    assert metric(exporter, "smswatch_sms_submitted_total", gateway="kannel") == 1


def test_secret_size_and_payload_are_checked_before_anything_is_stored(exporter: Exporter) -> None:
    body = (FIXTURES / "aliyun" / "sms_report.json").read_bytes()
    url = f"http://127.0.0.1:{exporter.port}/push/aliyun"
    assert post(url + "?secret=wrong", body)[0] == 403
    assert post(url, body, headers={"X-Smswatch-Secret": SECRET})[0] == 200  # header works too
    assert post(url + f"?secret={SECRET}", b"[" + b" " * 5000 + b"]")[0] == 413
    assert post(url + f"?secret={SECRET}", b"{not json")[0] == 400
    for result, count in (
        ("unauthorized", 1),
        ("too_large", 1),
        ("bad_payload", 1),
        ("accepted", 1),
    ):
        assert (
            metric(exporter, "smswatch_push_requests_total", source="aliyun", result=result)
            == count
        )
    assert metric(exporter, "smswatch_sms_submitted_total", gateway="aliyun") == 2


def test_a_crash_between_commit_and_acknowledgement_loses_nothing(tmp_path: Path) -> None:
    """The exporter dies after committing a push and before answering it; the provider, with
    no answer, retries; the retry is a duplicate and the report counts once."""
    config = tmp_path / "smswatch.yaml"
    config.write_text(yaml.safe_dump(document(tmp_path / "state.sqlite")))
    port = free_port()
    args = ["run", "--config.file", str(config), "--web.listen-address", f"127.0.0.1:{port}"]
    env = {"PUSH_SECRET": SECRET}
    url = f"http://127.0.0.1:{port}/push/aliyun?secret={SECRET}"
    body = (FIXTURES / "aliyun" / "sms_report.json").read_bytes()

    crashing = Process(args, tmp_path / "crash.log", env={**env, CRASH_AFTER_COMMIT_ENV: "1"})
    wait_until(lambda: http_get(f"http://127.0.0.1:{port}/healthz")[0] == 200, 20, "the exporter")
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        post(url, body)  # no acknowledgement: the process is gone
    crashing.proc.wait(timeout=10)
    assert crashing.proc.returncode == 70
    crashing.stop()

    exporter = Process(args, tmp_path / "exporter.log", env=env)
    try:
        wait_until(
            lambda: http_get(f"http://127.0.0.1:{port}/healthz")[0] == 200, 20, "the restart"
        )
        status, answer = post(url, body)  # the provider's retry
        assert status == 200 and json.loads(answer)["code"] == 0
        exported = parse_exposition(http_get(f"http://127.0.0.1:{port}/metrics")[1])

        def value(name: str, **labels: str) -> float:
            return sum(
                v for (n, ls), v in exported.items() if n == name and set(labels.items()) <= set(ls)
            )

        assert value("smswatch_sms_submitted_total", gateway="aliyun") == 2
        assert value("smswatch_sms_messages_total", gateway="aliyun") == 2
        assert value("smswatch_records_total", source="aliyun", result="accepted") == 2
        assert value("smswatch_records_total", source="aliyun", result="duplicate") == 2
    finally:
        assert exporter.stop() == 0


def test_the_exposition_with_push_sources_passes_promtool(
    exporter: Exporter, promtool: str
) -> None:
    import subprocess

    post(base(exporter, "aliyun"), (FIXTURES / "aliyun" / "sms_report.json").read_bytes())
    _, text = http_get(f"http://127.0.0.1:{exporter.port}/metrics")
    assert "smswatch_sms_ambiguous_total" in text and "smswatch_push_requests_total" in text
    check = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert check.returncode == 0 and not (check.stdout + check.stderr).strip(), check.stdout


def test_forged_pushes_are_refused_before_their_body_is_read_and_change_nothing(
    exporter: Exporter,
) -> None:
    """A wrong or missing secret is refused on the request head: the sender need not even send
    the body it announces. Refusals are counted `unauthorized`; no report reaches the state."""
    report = (FIXTURES / "aliyun" / "sms_report.json").read_bytes()
    for target, header in (
        ("/push/aliyun?secret=wrong", b""),
        ("/push/aliyun", b""),
        ("/push/aliyun", b"X-Smswatch-Secret: wrong\r\n"),
        (f"/push/aliyun?secret={SECRET[:-1]}", b""),
    ):
        head = (
            f"POST {target} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n".encode()
            + header
            + f"Content-Length: {len(report)}\r\n\r\n".encode()
        )
        status, headers, _ = raw_exchange(exporter.port, head)  # the body is never sent
        assert (status, headers["connection"]) == (403, "close")
    assert post(f"http://127.0.0.1:{exporter.port}/push/aliyun", report)[0] == 403  # whole, too
    assert (
        metric(exporter, "smswatch_push_requests_total", source="aliyun", result="unauthorized")
        == 5
    )
    assert metric(exporter, "smswatch_push_requests_total", source="aliyun", result="accepted") == 0
    assert metric(exporter, "smswatch_records_total", source="aliyun") == 0
    assert metric(exporter, "smswatch_sms_submitted_total", gateway="aliyun") == 0
    assert metric(exporter, "smswatch_sms_messages_total", gateway="aliyun") == 0


def receiver_config(tmp_path: Path, push: dict[str, Any]) -> Any:
    """A config with one Kannel push receiver set up as `push`."""
    doc = document(tmp_path / "state.sqlite")
    doc["sources"] = [
        {
            "name": "kannel",
            "kind": "sms_gateway",
            "provider": "kannel",
            "pull": False,
            "push": push,
        },
        doc["sources"][-1],
    ]
    return parse_config(doc, env={"PUSH_SECRET": SECRET})


def test_a_receiver_without_a_secret_needs_insecure_and_warns_at_every_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(ConfigError, match=r"sources\[0\]\.push\.secret: .*needs a secret"):
        receiver_config(tmp_path, {"lag": "30s"})
    config = receiver_config(tmp_path, {"lag": "30s", "insecure": True})
    for _ in range(2):  # two starts of the exporter
        app = Exporter(config, "127.0.0.1", 0)
        app.web.start()
        try:
            url = f"http://127.0.0.1:{app.port}/push/kannel?type=8&reply=ACK/&msg=m-1"
            assert http_get(url)[0] == 200  # anyone may push: that is what insecure means
        finally:
            app.web.stop()
            app.store.close()
    warnings = [r for r in caplog.records if r.levelname == "WARNING" and "insecure" in r.message]
    assert len(warnings) == 2 and all(getattr(r, "source", "") == "kannel" for r in warnings)


@pytest.mark.parametrize(
    ("allow_from", "status"), [(["10.0.0.0/8", "2001:db8::/32"], 403), (["127.0.0.1"], 200)]
)
def test_an_allow_list_of_provider_addresses_guards_a_receiver(
    tmp_path: Path, allow_from: list[str], status: int
) -> None:
    app = Exporter(receiver_config(tmp_path, {"allow_from": allow_from}), "127.0.0.1", 0)
    app.web.start()
    try:
        url = f"http://127.0.0.1:{app.port}/push/kannel?type=8&reply=ACK/&msg=m-1"
        assert http_get(url)[0] == status
        result = "accepted" if status == 200 else "unauthorized"
        assert metric(app, "smswatch_push_requests_total", source="kannel", result=result) == 1
        assert metric(app, "smswatch_sms_submitted_total", gateway="kannel") == (status == 200)
    finally:
        app.web.stop()
        app.store.close()


def test_push_only_sources_export_the_lag_they_have_by_design(exporter: Exporter) -> None:
    """An outcome-only provider's watermark trails by push.lag + give_up_after on a healthy day
    (the alerts judge lag beyond it), one that pushes statuses by push.lag; all push-only."""

    def samples(name: str) -> dict[str, float]:
        return {
            s.labels["source"]: s.value
            for family in exporter.registry.collect()
            for s in family.samples
            if s.name == name
        }

    expected = samples("smswatch_source_expected_lag_seconds")
    give_up_s = exporter.config.give_up_after_ms / 1000
    assert expected == {
        "aliyun": 30 + give_up_s,
        "tencent": 30 + give_up_s,
        "vonage": 30 + give_up_s,
        "jasmin": 30,
        "kannel": 30,
        "acquirer": 0,
    }
    assert samples("smswatch_source_push_only") == {
        "aliyun": 1,
        "tencent": 1,
        "vonage": 1,
        "jasmin": 1,
        "kannel": 1,
        "acquirer": 0,
    }
