"""Logs carry no phone number and no secret, whatever goes wrong.

Every pulled source family polls a real loopback server that fails in each way a source can
fail (connection refused, timeout, 4xx, 5xx, 429, a body that is not JSON), and the push
receivers get reports they refuse; the log lines all this produces (logfmt and JSON, at debug
level, third-party loggers included) are scanned for phone-like numbers and known secrets.
`requests` puts the URL with its query in its exception text: Alibaba's query holds the phone
number, the AccessKeyId and the signature.
"""

from __future__ import annotations

import io
import logging
import re
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from test_push import SECRET, document, post

from exporter.app import Exporter
from exporter.config import parse_config
from exporter.logs import JsonFormatter, LogfmtFormatter
from exporter.poller import Pipeline, Poller
from exporter.store import Store

from harness import config_with, free_port

PHONE = "13900001234"
ACCESS_KEY_ID = "LTAI5tSmswatchKeyId"
TENCENT_SECRET_ID = "AKIDsmswatchSecretId"
KNOWN_SECRETS = ("s3cret", ACCESS_KEY_ID, TENCENT_SECRET_ID, "abcd1234", SECRET)
PHONE_LIKE = re.compile(r"(?<!\d)(?:\+?86)?1[3-9]\d{9}(?!\d)|\+\d{10,15}")
RAW_SIGNATURE = re.compile(r"(?i)signature=(?!\*\*\*)")

FAILURES = ("connection", "timeout", "http_4xx", "http_5xx", "throttled", "bad_payload")
QUICK = {"retries": 0, "timeout": {"connect": "500ms", "read": "300ms"}}
FAMILIES: dict[str, tuple[str, dict[str, Any]]] = {
    "generic_sms": (
        "sms",
        {"path": "/sms/v1/messages", "auth": {"type": "bearer", "token": "${SECRET}"}},
    ),
    "generic_acquirer": (
        "acquirer",
        {"auth": {"type": "header", "name": "X-Api-Key", "value": "${SECRET}"}},
    ),
    "twilio": (
        "sms",
        {
            "provider": "twilio",
            "account_sid": "AC0123456789abcdef0123456789abcdef",
            "auth": {
                "type": "basic",
                "username": "AC0123456789abcdef0123456789abcdef",
                "password": "${SECRET}",
            },
        },
    ),
    "aliyun": (
        "sms",
        {
            "provider": "aliyun",
            "phone_numbers": [PHONE],
            "auth": {
                "type": "aliyun",
                "access_key_id": ACCESS_KEY_ID,
                "access_key_secret": "${SECRET}",
            },
        },
    ),
    "tencent": (
        "sms",
        {
            "provider": "tencent",
            "sms_sdk_app_id": "1400006666",
            "auth": {"type": "tc3", "secret_id": TENCENT_SECRET_ID, "secret_key": "${SECRET}"},
        },
    ),
    "vonage": (
        "sms",
        {
            "provider": "vonage",
            "account_id": "abcd1234",
            "auth": {"type": "basic", "username": "abcd1234", "password": "${SECRET}"},
        },
    ),
    "stripe": (
        "acquirer",
        {
            "provider": "stripe",
            "auth": {"type": "bearer", "token": "${SECRET}"},
            "acquirers": ["stripe"],
        },
    ),
    "square": (
        "acquirer",
        {
            "provider": "square",
            "auth": {"type": "bearer", "token": "${SECRET}"},
            "acquirers": ["square"],
        },
    ),
}


class FailingUpstream:
    """Answers every request with the failure `mode` names, echoing what it was sent."""

    def __init__(self) -> None:
        self.mode = "http_5xx"
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                mode = upstream.mode
                if mode == "timeout":
                    time.sleep(0.6)
                    return
                echo = f"bad request for {urllib.parse.unquote(self.path)} from {PHONE}".encode()
                status = {"http_4xx": 404, "http_5xx": 503, "throttled": 429}.get(mode, 200)
                self.send_response(status)
                self.send_header("Retry-After", "0")
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(echo)))
                self.end_headers()
                self.wfile.write(echo)

            do_GET = _answer
            do_POST = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Every log line of the process, in both formats, at debug level."""
    out = io.StringIO()
    handlers = []
    for formatter in (LogfmtFormatter(), JsonFormatter()):
        handler = logging.StreamHandler(out)
        handler.setFormatter(formatter)
        handlers.append(handler)
    root, urllib3 = logging.getLogger(), logging.getLogger("urllib3")
    saved = root.handlers[:], root.level, urllib3.level
    root.handlers[:] = handlers
    root.setLevel(logging.DEBUG)
    urllib3.setLevel(logging.DEBUG)
    yield out
    root.handlers[:], level, urllib3_level = saved
    root.setLevel(level)
    urllib3.setLevel(urllib3_level)


def assert_clean(text: str) -> None:
    assert text, "the failures were logged"
    for secret in KNOWN_SECRETS:
        assert secret not in text, f"secret {secret!r} in the log:\n{_around(text, secret)}"
    phone = PHONE_LIKE.search(text)
    assert phone is None, f"phone-like number in the log:\n{_around(text, phone.group(0))}"
    signature = RAW_SIGNATURE.search(text)
    assert signature is None, _around(text, signature.group(0))


def _around(text: str, needle: str) -> str:
    at = text.find(needle)
    return text[max(0, at - 300) : at + 300]


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_no_phone_number_nor_secret_in_the_logs_of_any_failed_poll(
    family: str, captured: io.StringIO, tmp_path: Path
) -> None:
    upstream = FailingUpstream()
    closed = free_port()
    kind, options = FAMILIES[family]
    store = Store(str(tmp_path / "state.sqlite"))
    try:
        for failure in FAILURES:
            upstream.mode = failure
            port = closed if failure == "connection" else upstream.port
            base = {"base_url": f"http://127.0.0.1:{port}", **QUICK, **options}
            config = config_with(**{kind: base})
            source = next(s for s in config.sources if s.name == kind)
            poller = Poller(source, Pipeline(config, store), threading.Event())
            poller.poll()
            assert not poller.health.up
            errors = {
                labels
                for metric, labels, value in store.snapshot()[0]
                if metric == "smswatch_source_errors_total" and value
            }
            assert f"{kind}\x1f{failure}" in errors, (family, failure, errors)
    finally:
        store.close()
        upstream.stop()
    assert_clean(captured.getvalue())


def test_no_phone_number_nor_secret_in_the_logs_of_refused_pushes(
    captured: io.StringIO, tmp_path: Path
) -> None:
    config = parse_config(document(tmp_path / "state.sqlite"), env={"PUSH_SECRET": SECRET})
    app = Exporter(config, "127.0.0.1", 0)
    app.web.start()
    try:
        base = f"http://127.0.0.1:{app.port}/push"
        bad = f'[{{"phone_number": "{PHONE}", "biz_id": 7, "success": "maybe"}}'.encode()
        for provider in ("aliyun", "tencent", "vonage", "jasmin", "kannel"):
            assert post(f"{base}/{provider}?secret={SECRET}&to={PHONE}", bad)[0] == 400
            assert post(f"{base}/{provider}?secret=wrong-{PHONE}", b"[]")[0] == 403
            assert post(f"{base}/{provider}?secret={SECRET}", b"x" * 5000)[0] == 413
            form = f"msisdn={PHONE}&to=%2B86{PHONE}&status=BOGUS&secret={SECRET}".encode()
            status, _ = post(f"{base}/{provider}", form, "application/x-www-form-urlencoded")
            assert status in (400, 403)
    finally:
        app.web.stop()
        app.store.close()
    assert_clean(captured.getvalue())
