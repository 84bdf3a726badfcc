"""Facts that stay unconfirmed, or that a provider could break, are options with the documented
default and are checked at run time (issue 12, "Unconfirmed facts").

- Alibaba's `yyyy-MM-dd HH:mm:ss` dates: Beijing time by default (`time_zone`).
- SMPP done dates: the SMSC's zone is unknown by default (`smsc_utc_offset`): timed on receipt.
- Tencent PullSmsSendStatus: a consuming queue [V tencentcloud-sdk-python sms_client.py]; a
  report returned twice contradicts it and is logged.
"""

from __future__ import annotations

from typing import Any

import pytest
import responses

from exporter.config import parse_config, simulator_config_document
from exporter.errors import ConfigError
from exporter.sources import aliyun, jasmin, kannel
from exporter.sources.client import SourceClient
from exporter.sources.pulling import PullContext
from exporter.sources.tencent import TencentPuller
from exporter.timestamps import parse_rfc3339_ms

from harness import config_with

ENV = {"SECRET": "s"}
REPORT = (
    b'[{"phone_number": "13900001234", "send_time": "2026-11-26 20:00:00", '
    b'"report_time": "2026-11-26 20:00:05", "success": true, "err_code": "DELIVERED", '
    b'"biz_id": "9327^0", "out_id": "633012345678"}]'
)


def sms(**keys: Any) -> dict[str, Any]:
    doc = simulator_config_document("http://127.0.0.1:8480")
    doc["sources"][0] = {"name": "sms", "kind": "sms_gateway", "pull": False, **keys}
    return doc


def test_alibaba_dates_are_beijing_time_unless_configured() -> None:
    source = parse_config(sms(provider="aliyun", push={"secret": "${SECRET}"}), env=ENV).sources[0]
    assert source.options["time_zone"] == 480  # +08:00, the documented zone
    events, _ = aliyun.parse_sms_report(REPORT, aliyun.zone_of(source.options["time_zone"]))
    assert events[0].submitted_ms == parse_rfc3339_ms("2026-11-26T12:00:00Z")
    utc = parse_config(
        sms(provider="aliyun", time_zone="+00:00", push={"secret": "${SECRET}"}), env=ENV
    )
    zone = aliyun.zone_of(utc.sources[0].options["time_zone"])
    assert aliyun.parse_sms_report(REPORT, zone)[0][0].submitted_ms == parse_rfc3339_ms(
        "2026-11-26T20:00:00Z"
    )


def test_a_report_timed_after_it_arrived_says_the_zone_is_wrong(
    caplog: pytest.LogCaptureFixture,
) -> None:
    aliyun._zone_warned.clear()
    arrived = parse_rfc3339_ms("2026-11-26T12:00:06Z")
    zone = aliyun.zone_of(0)  # a wrong zone: the Beijing dates read as UTC, 8 h ahead
    with caplog.at_level("WARNING"):
        aliyun.parse_sms_report(REPORT, zone, arrived)
        aliyun.parse_sms_report(REPORT, zone, arrived)
    assert caplog.text.count("check time_zone") == 1
    caplog.clear()
    aliyun.parse_sms_report(REPORT, aliyun.zone_of(480), arrived)
    assert "check time_zone" not in caplog.text


@pytest.mark.parametrize("bad", ["8", "+8", "+25:00", "UTC+8"])
def test_a_zone_that_is_not_an_offset_is_refused_with_its_field(bad: str) -> None:
    with pytest.raises(ConfigError, match=r"sources\[0\]\.time_zone"):
        parse_config(sms(provider="aliyun", time_zone=bad, push={"secret": "${SECRET}"}), env=ENV)


def test_smpp_done_dates_are_used_only_with_the_smsc_zone() -> None:
    received = parse_rfc3339_ms("2026-11-26T12:10:40Z")
    reply = "id:1 sub:001 dlvrd:001 done date:2611262010 stat:DELIVRD err:000"
    params = {"type": "1", "reply": reply, "msg": "k-1"}
    unknown = kannel.parse_dlr(params, received)
    assert unknown is not None and unknown.status_ms == received  # the default: on receipt
    beijing = kannel.parse_dlr(params, received, smsc_utc_offset=480)
    assert beijing is not None and beijing.status_ms == parse_rfc3339_ms("2026-11-26T12:10:00Z")
    wrong = kannel.parse_dlr(params, received, smsc_utc_offset=0)  # 8 h after it arrived
    assert wrong is not None and wrong.status_ms == received
    level2 = {"id": "j-1", "message_status": "DELIVRD", "level": "2", "donedate": "2611262010"}
    event = jasmin.parse_dlr(level2, received, smsc_utc_offset=480)
    assert event is not None and event.status_ms == parse_rfc3339_ms("2026-11-26T12:10:00Z")
    source = parse_config(sms(provider="kannel", push={"secret": "${SECRET}"}), env=ENV).sources[0]
    assert source.options["smsc_utc_offset"] is None


TENCENT = {
    "provider": "tencent",
    "sms_sdk_app_id": "1400006666",
    "auth": {"type": "tc3", "secret_id": "AKID", "secret_key": "${SECRET}"},
    "page_size": 2,
}
API = "https://sms.tencentcloudapi.com/"


def _answer(*serials: str) -> dict[str, Any]:
    return {
        "Response": {
            "PullSmsSendStatusSet": [
                {"UserReceiveTime": 1795694400, "PhoneNumber": "+8613800000000",
                 "SerialNo": s, "ReportStatus": "SUCCESS", "Description": "DELIVRD"}
                for s in serials
            ],
            "RequestId": "r",
        }
    }  # fmt: skip


@responses.activate
def test_a_tencent_report_returned_twice_is_noticed(caplog: pytest.LogCaptureFixture) -> None:
    source = config_with(sms=TENCENT).sources[0]
    responses.post(API, json=_answer("5000:1"))
    responses.post(API, json=_answer("5000:1"))
    puller = TencentPuller(source)
    client = SourceClient(source, lambda kind: None)
    ctx = PullContext("", -1, 1_800_000)
    with caplog.at_level("WARNING"):
        first = list(puller.pages(client, ctx, deadline=1e12))
        assert "consuming" not in caplog.text
        second = list(puller.pages(client, ctx, deadline=1e12))
    assert len(first[0].records) == len(second[0].records) == 1
    assert "may not be a consuming queue" in caplog.text
    assert "13800000000" not in caplog.text
