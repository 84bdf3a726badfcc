"""A real Kannel (bearerbox + smsbox, with its fake SMSC) calling the exporter's `dlr-url`
receiver over loopback: the submission (SMSC ACK, type 8) and the delivery (type 1) arrive as
Kannel sends them and are counted once each. Needs Debian's `kannel` and `kannel-extras`
packages (`.ci/run` installs them)."""

from __future__ import annotations

import shutil
import subprocess
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from exporter.app import Exporter
from exporter.config import parse_config, simulator_config_document

from harness import free_port, http_get, scrape, stop_processes, wait_until

FAKESMSC = Path("/usr/lib/kannel/test/fakesmsc")


@pytest.fixture(autouse=True, scope="module")
def _kannel_installed() -> None:
    assert shutil.which("bearerbox") and shutil.which("smsbox") and FAKESMSC.exists(), (
        "Debian packages kannel and kannel-extras are needed (see .ci/run)"
    )


SECRET = "dlr-secret"


def kannel_conf(admin: int, smsbox: int, smsc: int, sendsms: int) -> str:
    return f"""
group = core
admin-port = {admin}
admin-password = admin-secret
status-password = status-secret
smsbox-port = {smsbox}
admin-interface = 127.0.0.1
box-allow-ip = 127.0.0.1
dlr-storage = internal

group = smsc
smsc = fake
smsc-id = fake1
port = {smsc}
connect-allow-ip = 127.0.0.1

group = smsbox
bearerbox-host = 127.0.0.1
sendsms-port = {sendsms}
global-sender = 12345

group = sendsms-user
username = smswatch
password = sendsms-secret

group = sms-service
keyword = default
text = "ok"
"""


@pytest.fixture
def kannel(tmp_path: Path) -> Iterator[int]:
    admin, smsbox, smsc, sendsms = (free_port() for _ in range(4))
    conf = tmp_path / "kannel.conf"
    conf.write_text(kannel_conf(admin, smsbox, smsc, sendsms))
    log = open(tmp_path / "kannel.log", "ab")  # noqa: SIM115 - closed below
    handset = open(tmp_path / "fakesmsc.log", "ab")  # noqa: SIM115 - closed below
    started: list[subprocess.Popen[bytes]] = []

    def run(*args: str, out: IO[bytes] = log) -> None:
        started.append(subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT))

    try:
        run("bearerbox", "-v", "1", str(conf))
        wait_until(
            lambda: (
                http_get(f"http://127.0.0.1:{admin}/status.txt?password=status-secret")[0] == 200
            ),
            20,
            "bearerbox",
        )
        run(
            str(FAKESMSC),
            "-H",
            "127.0.0.1",
            "-r",
            str(smsc),
            "-i",
            "1000",
            "-m",
            "0",
            "1 2 text nop",
            out=handset,  # what the fake SMSC received: a canary test plays the handset from it
        )
        run("smsbox", "-v", "1", str(conf))
        wait_until(
            lambda: http_get(f"http://127.0.0.1:{sendsms}/cgi-bin/sendsms")[0] in (400, 403),
            20,
            "smsbox",
        )
        yield sendsms
    finally:
        stop_processes(*reversed(started))  # only what this fixture started, by pid
        log.close()
        handset.close()


def test_kannel_dlr_url_callbacks_are_counted(tmp_path: Path, kannel: int) -> None:
    doc = simulator_config_document("http://127.0.0.1:9")
    doc["state"]["path"] = str(tmp_path / "state.sqlite")
    doc["sources"][0] = {
        "name": "kannel",
        "kind": "sms_gateway",
        "provider": "kannel",
        "push": {"secret": "${SECRET}"},
    }
    app = Exporter(parse_config(doc, env={"SECRET": SECRET}), "127.0.0.1", 0)
    app.web.start()
    try:
        dlr_url = (
            f"http://127.0.0.1:{app.port}/push/kannel?type=%d&reply=%A&smsc=%i"
            f"&msg=m-1&ref=633012345678&carrier=china-mobile&secret={SECRET}"
        )
        query = urllib.parse.urlencode(
            {
                "username": "smswatch",
                "password": "sendsms-secret",
                "to": "13800138000",
                "text": "Card *1234 spent CNY 88.00",
                "dlr-mask": "31",
                "dlr-url": dlr_url,
            }
        )
        status, body = http_get(f"http://127.0.0.1:{kannel}/cgi-bin/sendsms?{query}")
        assert status == 202 and "Accepted" in body, body

        def counted() -> dict[str, float]:
            exported = scrape(f"http://127.0.0.1:{app.port}/metrics")
            values = {
                "submitted": sum(
                    v
                    for (n, ls), v in exported.items()
                    if n == "smswatch_sms_submitted_total" and ("gateway", "kannel") in ls
                ),
                "delivered": sum(
                    v
                    for (n, ls), v in exported.items()
                    if n == "smswatch_sms_messages_total"
                    and {("gateway", "kannel"), ("status", "delivered")} <= ls
                ),
            }
            return values if values == {"submitted": 1, "delivered": 1} else {}

        wait_until(counted, 20, "Kannel's DLR callbacks to be counted")
        accepted = scrape(f"http://127.0.0.1:{app.port}/metrics")[
            (
                "smswatch_push_requests_total",
                frozenset({("source", "kannel"), ("result", "accepted")}),
            )
        ]
        assert accepted >= 2  # at least the SMSC ACK (type 8) and the delivery (type 1)
    finally:
        app.web.stop()
        app.store.close()
