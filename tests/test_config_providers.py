"""Provider configuration: defaults per provider, and errors that name the field at fault."""

from __future__ import annotations

from typing import Any

import pytest

from exporter.config import parse_config, simulator_config_document
from exporter.errors import ConfigError

ENV = {"SECRET": "s3cret"}


def sms(**keys: Any) -> dict[str, Any]:
    doc = simulator_config_document("http://127.0.0.1:8480")
    doc["sources"][0] = {"name": "sms", "kind": "sms_gateway", **keys}
    return doc


def test_provider_defaults_fill_in_the_public_endpoints() -> None:
    twilio = parse_config(
        sms(
            provider="twilio",
            account_sid="AC1",
            auth={"type": "basic", "username": "AC1", "password": "${SECRET}"},
        ),
        env=ENV,
    ).sources[0]
    assert twilio.base_url == "https://api.twilio.com"
    assert twilio.path == "/2010-04-01/Accounts/AC1/Messages.json"
    assert twilio.pull and twilio.push is None and twilio.page_size == 500
    kannel = parse_config(sms(provider="kannel", push={"secret": "${SECRET}"}), env=ENV).sources[0]
    assert not kannel.pull and kannel.push is not None
    assert kannel.push.path == "/push/sms" and kannel.push.secret == "s3cret"
    assert kannel.options["error_codes"] == "cmpp"
    assert "s3cret" not in repr(kannel)


@pytest.mark.parametrize(
    ("keys", "field", "problem"),
    [
        ({"provider": "smoke-signals"}, "sources[0].provider", "unknown provider"),
        ({"provider": "twilio", "auth": {"type": "bearer", "token": "${SECRET}"}},
         "sources[0].account_sid", "required"),
        ({"provider": "twilio", "account_sid": "AC1",
          "auth": {"type": "bearer", "token": "${SECRET}"}},
         "sources[0].auth.type", "needs auth type basic"),
        ({"provider": "twilio", "account_sid": "AC1", "txn_ref_pattern": "RRN \\d+",
          "auth": {"type": "basic", "username": "AC1", "password": "${SECRET}"}},
         "sources[0].txn_ref_pattern", "capturing group"),
        ({"provider": "twilio", "account_sid": "AC1", "page_size": 5000,
          "auth": {"type": "basic", "username": "AC1", "password": "${SECRET}"}},
         "sources[0].page_size", "between 1 and 1000"),
        ({"provider": "kannel"}, "sources[0].push", "needs a push receiver"),
        ({"provider": "kannel", "pull": True, "push": {}}, "sources[0].pull", "only pushes"),
        ({"provider": "twilio", "account_sid": "AC1", "push": {},
          "auth": {"type": "basic", "username": "AC1", "password": "${SECRET}"}},
         "sources[0].push", "no push receiver"),
        ({"provider": "kannel", "push": {"path": "/metrics"}}, "sources[0].push.path", "/push/"),
        ({"provider": "kannel", "push": {"secret": "plain"}},
         "sources[0].push.secret", "must not be written"),
        ({"provider": "jasmin", "push": {}, "error_codes": "morse"},
         "sources[0].error_codes", "one of"),
        ({"provider": "kannel", "push": {}}, "sources[0].push.secret", "needs a secret"),
        ({"provider": "kannel", "push": {"lag": "60s"}},
         "sources[0].push.secret", "insecure: true"),
        ({"provider": "kannel", "push": {"insecure": "yes"}},
         "sources[0].push.insecure", "true or false"),
        ({"provider": "kannel", "push": {"insecure": True, "secret": "${SECRET}"}},
         "sources[0].push.insecure", "neither"),
        ({"provider": "kannel", "push": {"allow_from": ["10.0.0.1/8"]}},
         "sources[0].push.allow_from[0]", "not an address"),
        ({"provider": "aliyun", "pull": True, "auth": {"type": "aliyun", "access_key_id": "id",
          "access_key_secret": "${SECRET}"}}, "sources[0].phone_numbers", "one number at a time"),
        ({"provider": "tencent", "sms_sdk_app_id": "1400006666",
          "auth": {"type": "tc3", "secret_id": "id", "secret_key": "key"}},
         "sources[0].auth.secret_key", "must not be written"),
    ],
)  # fmt: skip
def test_provider_errors_name_the_field(keys: dict[str, Any], field: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(sms(**keys), env=ENV)
    assert field in str(caught.value) and problem in str(caught.value), str(caught.value)


def test_two_push_receivers_cannot_share_a_path() -> None:
    push = {"path": "/push/dlr", "secret": "${SECRET}"}
    doc = sms(provider="kannel", push=push)
    doc["sources"].append({"name": "j", "kind": "sms_gateway", "provider": "jasmin", "push": push})
    with pytest.raises(ConfigError, match="push path"):
        parse_config(doc, env=ENV)


def test_acquirer_providers() -> None:
    doc = simulator_config_document("http://127.0.0.1:8480")
    doc["sources"][1] = {
        "name": "stripe",
        "kind": "acquirer",
        "provider": "stripe",
        "auth": {"type": "bearer", "token": "${SECRET}"},
        "terminals": False,
    }
    source = parse_config(doc, env=ENV).sources[1]
    assert source.terminals_path == "" and source.acquirers == ("stripe",)
    assert source.page_size == 100  # Stripe's maximum
    doc["sources"][1]["provider"] = "twilio"
    with pytest.raises(ConfigError, match="unknown provider 'twilio' for kind acquirer"):
        parse_config(doc, env=ENV)


def test_the_providers_example_validates() -> None:
    import re
    from pathlib import Path

    import yaml

    path = Path(__file__).parent.parent / "examples" / "providers.yaml"
    names = re.findall(r"\$\{([A-Z_]+)\}", path.read_text())
    config = parse_config(
        yaml.safe_load(path.read_text()), source_file=str(path), env={n: "x1" for n in names}
    )
    assert {s.provider for s in config.sources} == {
        "twilio", "aliyun", "tencent", "vonage", "kannel", "jasmin", "stripe", "square", "generic"
    }  # fmt: skip
    assert [s.push.path for s in config.sources if s.push] == [
        "/push/aliyun", "/push/tencent", "/push/vonage", "/push/kannel", "/push/jasmin"
    ]  # fmt: skip
    accounts = {s.name: s.account for s in config.sources if s.account}
    assert {name: a.interval_ms for name, a in accounts.items()} == {
        "twilio": 600_000, "aliyun-canary": 600_000, "tencent": 1_800_000, "vonage": 600_000
    }  # fmt: skip
    assert accounts["vonage"].base_url == "https://rest.nexmo.com"
    assert accounts["aliyun-canary"].signatures == ("某银行",)
