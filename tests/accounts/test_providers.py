"""Provider account checks against answers recorded from each provider's documentation
(`responses`): a normal answer, an error answer, and a signature or template that is not
approved, read through the real checker and exported by the real collector."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from exporter.accounts.checker import AccountChecker
from exporter.collector import SmswatchCollector
from exporter.config import Config
from exporter.errors import ConfigError
from exporter.store import Store

from harness import config_with

FIXTURES = Path(__file__).parent.parent / "fixtures"
NOW = 1_795_694_700.0  # Thu, 26 Nov 2026 12:05:00 GMT
SECRET = "s3cret"  # what config_with's ${SECRET} expands to


def fixture(provider: str, name: str) -> Any:
    return json.loads((FIXTURES / provider / name).read_text())


def source_config(provider: dict[str, Any], account: dict[str, Any] | None = None) -> Config:
    return config_with(sms={**provider, "retries": 0, "account": account or {}})


def checked(config: Config, tmp_path: Path) -> tuple[AccountChecker, dict[tuple[str, ...], float]]:
    """One check of the gateway's account, then the exported account series by (name, labels)."""
    checker = AccountChecker(config.sources[0], clock=lambda: NOW)
    checker.check()
    registry = CollectorRegistry()
    store = Store(str(tmp_path / "state.sqlite"))
    try:
        registry.register(
            SmswatchCollector(
                config, store, {}, clock=lambda: NOW, accounts={"bank-sms": checker.health}
            )
        )
        text = generate_latest(registry).decode()
    finally:
        store.close()
    series: dict[tuple[str, ...], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if "account" in sample.name or "sender" in sample.name:
                labels = tuple(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                series[(sample.name, *labels)] = sample.value
    return checker, series


TWILIO = {
    "provider": "twilio",
    "account_sid": "AC0123456789abcdef0123456789abcdef",
    "auth": {
        "type": "basic",
        "username": "AC0123456789abcdef0123456789abcdef",
        "password": "${SECRET}",
    },
}
TWILIO_BALANCE = (
    "https://api.twilio.com/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Balance.json"
)


@responses.activate
def test_twilio_balance_is_exported_with_its_currency(tmp_path: Path) -> None:
    responses.get(TWILIO_BALANCE, json=fixture("twilio", "account_balance.json"))
    _, series = checked(source_config(TWILIO), tmp_path)
    assert series[("smswatch_account_balance", "currency=USD", "gateway=bank-sms")] == 0.05
    assert series[("smswatch_account_up", "gateway=bank-sms")] == 1
    assert series[("smswatch_account_last_success_timestamp_seconds", "gateway=bank-sms")] == NOW
    assert responses.calls[0].request.headers["Authorization"].startswith("Basic ")


@responses.activate
def test_twilio_error_answer_is_counted_logged_without_secrets_and_exports_no_balance(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    responses.get(TWILIO_BALANCE, json=fixture("twilio", "account_error_401.json"), status=401)
    with caplog.at_level(logging.INFO):
        _, series = checked(source_config(TWILIO), tmp_path)
    assert series[("smswatch_account_up", "gateway=bank-sms")] == 0
    errors = ("smswatch_account_check_errors_total", "error=http_4xx", "gateway=bank-sms")
    assert series[errors] == 1
    assert not any(name == "smswatch_account_balance" for name, *_ in series)
    failure = [r for r in caplog.records if r.getMessage() == "account check failed"]
    assert failure and failure[0].__dict__["gateway"] == "bank-sms"
    assert SECRET not in caplog.text


VONAGE = {
    "provider": "vonage",
    "account_id": "abcd1234",
    "auth": {"type": "basic", "username": "abcd1234", "password": "${SECRET}"},
}
VONAGE_BALANCE = "https://rest.nexmo.com/account/get-balance"


@responses.activate
def test_vonage_balance_is_read_from_the_rest_host_in_euros(tmp_path: Path) -> None:
    responses.get(VONAGE_BALANCE, json=fixture("vonage", "account_balance.json"))
    _, series = checked(source_config(VONAGE), tmp_path)
    key = ("smswatch_account_balance", "currency=EUR", "gateway=bank-sms")
    assert series[key] == 29.18202293


@responses.activate
def test_vonage_error_answer_fails_the_check(tmp_path: Path) -> None:
    responses.get(VONAGE_BALANCE, json=fixture("vonage", "account_error_401.json"), status=401)
    _, series = checked(source_config(VONAGE), tmp_path)
    assert series[("smswatch_account_up", "gateway=bank-sms")] == 0
    errors = ("smswatch_account_check_errors_total", "error=http_4xx", "gateway=bank-sms")
    assert series[errors] == 1


TENCENT = {
    "provider": "tencent",
    "sms_sdk_app_id": "1400006666",
    "auth": {"type": "tc3", "secret_id": "AKIDEXAMPLE", "secret_key": "${SECRET}"},
}
TENCENT_API = "https://sms.tencentcloudapi.com/"


def tencent_answers(signs: str = "account_sign_list.json") -> None:
    """Answer each action with its recorded answer, whatever the order of the calls."""
    answers = {
        "SmsPackagesStatistics": fixture("tencent", "account_packages.json"),
        "DescribeSmsSignList": fixture("tencent", signs),
        "DescribeSmsTemplateList": fixture("tencent", "account_template_list.json"),
    }

    def answer(request: Any) -> tuple[int, dict[str, str], str]:
        return 200, {}, json.dumps(answers[request.headers["X-TC-Action"]])

    responses.add_callback(responses.POST, TENCENT_API, callback=answer)


@responses.activate
def test_tencent_quota_sums_the_packages_in_effect_and_states_are_read(tmp_path: Path) -> None:
    tencent_answers()
    _, series = checked(source_config(TENCENT), tmp_path)
    # 100000 − 96550 and 1000 − 200 left; the package that expired in January does not count.
    assert series[("smswatch_account_quota_remaining", "gateway=bank-sms")] == 4250
    assert series[("smswatch_account_quota_limit", "gateway=bank-sms")] == 101_000
    approved = "smswatch_sms_sender_approved"
    assert series[(approved, "gateway=bank-sms", "kind=signature", "name=某银行")] == 1
    assert series[(approved, "gateway=bank-sms", "kind=signature", "name=某银行信用卡")] == 0
    assert series[(approved, "gateway=bank-sms", "kind=template", "name=1110")] == 1
    assert series[(approved, "gateway=bank-sms", "kind=template", "name=1111")] == 0
    state = "smswatch_sms_sender_state"
    rejected = (state, "gateway=bank-sms", "kind=signature", "name=某银行信用卡", "state=rejected")
    assert series[rejected] == 1
    pending = (state, "gateway=bank-sms", "kind=template", "name=1111", "state=pending")
    assert series[pending] == 1
    calls = {c.request.headers["X-TC-Action"]: c.request for c in responses.calls}
    packages = json.loads(calls["SmsPackagesStatistics"].body)
    assert packages["SmsSdkAppId"] == "1400006666" and packages["EndTime"] == "2026112620"
    assert (
        calls["DescribeSmsSignList"]
        .headers["Authorization"]
        .startswith("TC3-HMAC-SHA256 Credential=AKIDEXAMPLE/2026-11-26/sms/tc3_request")
    )
    assert json.loads(calls["DescribeSmsSignList"].body) == {
        "International": 0,
        "Limit": 100,
        "Offset": 0,
    }


@responses.activate
def test_tencent_error_answer_fails_each_part_and_exports_nothing_stale(tmp_path: Path) -> None:
    responses.post(TENCENT_API, json=fixture("tencent", "account_error.json"))
    checker, series = checked(source_config(TENCENT), tmp_path)
    assert checker.health().reading.failed_parts == ("balance", "approvals")
    assert series[("smswatch_account_up", "gateway=bank-sms")] == 0
    # AuthFailure.* is the caller's fault: an http_4xx, not retried.
    errors = ("smswatch_account_check_errors_total", "error=http_4xx", "gateway=bank-sms")
    assert series[errors] == 2
    assert not any(name.startswith("smswatch_sms_sender") for name, *_ in series)


@responses.activate
def test_tencent_watched_signature_that_is_no_longer_listed_is_absent(tmp_path: Path) -> None:
    tencent_answers()
    account = {"signatures": ["某银行", "旧签名"], "templates": ["1110"]}
    _, series = checked(source_config(TENCENT, account), tmp_path)
    approved = sorted(k for k in series if k[0] == "smswatch_sms_sender_approved")
    assert [k[2:] for k in approved] == [
        ("kind=signature", "name=旧签名"),
        ("kind=signature", "name=某银行"),
        ("kind=template", "name=1110"),
    ]
    absent = (
        "smswatch_sms_sender_state",
        "gateway=bank-sms",
        "kind=signature",
        "name=旧签名",
        "state=absent",
    )
    assert series[absent] == 1


ALIYUN = {
    "provider": "aliyun",
    "pull": False,
    "push": {"secret": "${SECRET}"},
    "auth": {"type": "aliyun", "access_key_id": "testid", "access_key_secret": "${SECRET}"},
}
ALIYUN_API = "https://dysmsapi.aliyuncs.com/"
ALIYUN_BSS = "https://business.aliyuncs.com/"


def aliyun_answers(bss: str = "account_balance.json") -> None:
    answers = {
        "QuerySmsSignList": fixture("aliyun", "account_sign_list.json"),
        "QuerySmsTemplateList": fixture("aliyun", "account_template_list.json"),
        "QueryAccountBalance": fixture("aliyun", bss),
    }

    def answer(request: Any) -> tuple[int, dict[str, str], str]:
        action = parse_qs(urlsplit(request.url).query)["Action"][0]
        return 200, {}, json.dumps(answers[action])

    responses.add_callback(responses.GET, ALIYUN_API, callback=answer)
    responses.add_callback(responses.GET, ALIYUN_BSS, callback=answer)


@responses.activate
def test_aliyun_push_only_source_checks_approvals_and_the_account_balance(
    tmp_path: Path,
) -> None:
    aliyun_answers()
    _, series = checked(source_config(ALIYUN), tmp_path)
    assert series[("smswatch_account_balance", "currency=CNY", "gateway=bank-sms")] == 1234.56
    approved = "smswatch_sms_sender_approved"
    assert series[(approved, "gateway=bank-sms", "kind=signature", "name=某银行")] == 1
    assert series[(approved, "gateway=bank-sms", "kind=signature", "name=某银行信用卡")] == 0
    assert series[(approved, "gateway=bank-sms", "kind=template", "name=SMS_15305****")] == 1
    cancelled = (
        "smswatch_sms_sender_state",
        "gateway=bank-sms",
        "kind=template",
        "name=SMS_15306****",
        "state=cancelled",
    )
    assert series[cancelled] == 1
    queries = {
        parse_qs(urlsplit(c.request.url).query)["Action"][0]: parse_qs(
            urlsplit(c.request.url).query
        )
        for c in responses.calls
    }
    assert queries["QueryAccountBalance"]["Version"] == ["2017-12-14"]
    assert queries["QuerySmsSignList"]["Version"] == ["2017-05-25"]
    assert queries["QuerySmsSignList"]["PageSize"] == ["50"]
    assert all("Signature" in query for query in queries.values())


@responses.activate
def test_aliyun_balance_error_leaves_the_approvals_exported(tmp_path: Path) -> None:
    aliyun_answers(bss="account_error.json")
    checker, series = checked(source_config(ALIYUN), tmp_path)
    assert checker.health().reading.failed_parts == ("balance",)
    assert series[("smswatch_account_up", "gateway=bank-sms")] == 0
    errors = ("smswatch_account_check_errors_total", "error=http_5xx", "gateway=bank-sms")
    assert series[errors] == 1  # isp.* is the provider's side
    assert not any(name == "smswatch_account_balance" for name, *_ in series)
    approved = ("smswatch_sms_sender_approved", "gateway=bank-sms", "kind=signature")
    assert series[(*approved, "name=某银行")] == 1


BANK_PLATFORM = {"base_url": "https://sms-gw.bank.internal"}  # the generic feed
TENCENT_ACCOUNT = {
    "provider": "tencent",
    "sms_sdk_app_id": "1400006666",
    "auth": {"type": "tc3", "secret_id": "AKIDEXAMPLE", "secret_key": "${SECRET}"},
}


@responses.activate
def test_a_bank_platform_in_front_of_tencent_checks_the_tencent_account(tmp_path: Path) -> None:
    tencent_answers()
    config = source_config(BANK_PLATFORM, TENCENT_ACCOUNT)
    assert config.sources[0].provider == "generic"
    _, series = checked(config, tmp_path)
    assert series[("smswatch_account_quota_remaining", "gateway=bank-sms")] == 4250
    assert {c.request.url for c in responses.calls} == {TENCENT_API}


@pytest.mark.parametrize(
    ("provider", "account", "path", "message"),
    [
        (TWILIO, {"interval": "30s"}, "sources[0].account.interval", "at least 1m"),
        (TWILIO, {"signatures": ["x"]}, "sources[0].account", "unknown key 'signatures'"),
        (TENCENT, {"templates": "1110"}, "sources[0].account.templates", "list"),
        (ALIYUN, {"balance_url": "ftp://x"}, "sources[0].account.balance_url", "http(s)"),
        (
            {"provider": "kannel", "push": {"secret": "${SECRET}"}},
            {},
            "sources[0].account",
            "no account API",
        ),
        (BANK_PLATFORM, {}, "sources[0].account", "no account API"),
        (BANK_PLATFORM, {"provider": "tencent"}, "sources[0].account.auth", "required"),
        (
            BANK_PLATFORM,
            {**TENCENT_ACCOUNT, "sms_sdk_app_id": ""},
            "sources[0].account.sms_sdk_app_id",
            "required",
        ),
        (
            BANK_PLATFORM,
            {**TENCENT_ACCOUNT, "auth": {"type": "basic", "username": "u", "password": "${KEY}"}},
            "sources[0].account.auth.type",
            "tc3",
        ),
    ],
)
def test_account_config_errors_name_the_field(
    provider: dict[str, Any], account: dict[str, Any], path: str, message: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        source_config(provider, account)
    assert raised.value.field_path == path
    assert message in str(raised.value)


@responses.activate
def test_aliyun_lists_are_read_page_by_page_to_their_total_count(tmp_path: Path) -> None:
    signs = fixture("aliyun", "account_sign_list.json")
    first = {**signs, "TotalCount": 51, "SmsSignList": [
        {"SignName": f"签名{i}", "AuditStatus": "AUDIT_STATE_PASS"} for i in range(50)
    ]}  # fmt: skip
    last = {**signs, "TotalCount": 51, "SmsSignList": signs["SmsSignList"][1:]}
    pages = iter([first, last])

    def answer(request: Any) -> tuple[int, dict[str, str], str]:
        action = parse_qs(urlsplit(request.url).query)["Action"][0]
        if action == "QuerySmsSignList":
            return 200, {}, json.dumps(next(pages))
        return 200, {}, json.dumps(fixture("aliyun", "account_template_list.json"))

    responses.add_callback(responses.GET, ALIYUN_API, callback=answer)
    _, series = checked(source_config(ALIYUN, {"balance": False}), tmp_path)
    signatures = [
        k for k in series if k[0] == "smswatch_sms_sender_approved" and "kind=signature" in k
    ]
    assert len(signatures) == 51
    indexes = [parse_qs(urlsplit(c.request.url).query).get("PageIndex") for c in responses.calls]
    assert indexes[:2] == [["1"], ["2"]]
