"""A canary SMS end to end on loopback with a real Kannel: `smswatch probe` sends it through
Kannel's `sendsms`, Kannel's fake SMSC delivers it and calls the exporter's `dlr-url`
receiver (the normal push path), and what the fake SMSC received plays the test handset by
putting it into the inbox folder of Gammu's dummy phone, from which a real gammu-smsd (files
backend) receives it and writes `IN<date>_<time>_<serial>_<sender>_<part>.txt` (UTF-16,
InboxFormat=unicode) into the inbox directory the probe reads. A cardholder message through
the same Kannel is counted exactly as before; the canary only in the probe metrics."""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from test_kannel import kannel  # noqa: F401 - the Kannel fixture (bearerbox, smsbox, fakesmsc)

from exporter.app import Exporter
from exporter.cli import main
from exporter.config import load_config, simulator_config_document

from harness import http_get, scrape, stop_processes, wait_until

SECRET = "dlr-secret"
GOT = re.compile(rb"Got message \d+: <(\S+) (\S+) text (.*)>")


SMSDRC = """[gammu]
device = {device}
model = dummy
connection = none

[smsd]
service = files
inboxpath = {inbox}/
outboxpath = {spool}/outbox/
sentsmspath = {spool}/sent/
errorsmspath = {spool}/error/
inboxformat = unicode
logfile = {spool}/smsd.log
commtimeout = 1
receivefrequency = 1
statusfrequency = 0
checksecurity = 0
checkbattery = 0
checksignal = 0
checknetwork = 0
"""


def sms_backup(sender: str, text: str, sent: time.struct_time) -> str:
    """One received SMS in Gammu's SMS backup format: what the dummy phone's inbox holds."""

    def ucs2(value: str) -> str:
        return value.encode("utf-16-be").hex().upper()

    return (
        "[SMSBackup000]\n"
        f'Number = "{sender}"\nNumberUnicode = {ucs2(sender)}\n'
        f"Sent = {time.strftime('%Y%m%dT%H%M%S', sent)}\nState = UnRead\n"
        f"Text00 = {ucs2(text)}\nCoding = Default\nFolder = 1\nLength = {len(text)}\n"
        "Class = -1\n"
    )


@pytest.fixture
def gammu_smsd(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A real gammu-smsd (Debian package, files backend) on Gammu's dummy phone: an SMS put in
    the phone's inbox folder comes out as an `IN…` file in the inbox directory."""
    assert shutil.which("gammu-smsd"), "Debian package gammu-smsd is needed (see .ci/run)"
    spool, device, inbox = tmp_path / "gammu", tmp_path / "phone", tmp_path / "inbox"
    for folder in ("outbox", "sent", "error"):
        (spool / folder).mkdir(parents=True)
    (device / "sms" / "1").mkdir(parents=True)
    inbox.mkdir()
    rc = spool / "smsdrc"
    rc.write_text(SMSDRC.format(device=device, inbox=inbox, spool=spool))
    process = subprocess.Popen(
        ["gammu-smsd", "-c", str(rc)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_until(
            lambda: "Starting phone communication" in _read(spool / "smsd.log"), 20, "gammu-smsd"
        )
        yield device / "sms" / "1", inbox
    finally:
        stop_processes(process)  # only what this fixture started, by pid


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


class FakeSmscHandset:
    """Reads what Kannel's fake SMSC received and puts each message into the dummy phone's
    inbox folder, where gammu-smsd receives it: the test handset."""

    def __init__(self, log: Path, phone_inbox: Path) -> None:
        self.log = log
        self.phone_inbox = phone_inbox
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        done = 0
        count = 0
        while not self.stop.wait(0.05):
            lines = self.log.read_bytes().splitlines() if self.log.exists() else []
            for line in lines[done:]:
                match = GOT.search(line)
                if match:
                    sender, text = match.group(1).decode(), match.group(3).decode("latin-1")
                    count += 1
                    staged = self.phone_inbox.parent / f"staged-{count}"
                    staged.write_text(sms_backup(sender, text, time.localtime()))
                    staged.rename(self.phone_inbox / str(count))  # whole, never half written
            done = len(lines)


def test_canary_through_kannel_is_proved_twice_and_kept_apart(
    tmp_path: Path,
    kannel: int,  # noqa: F811
    gammu_smsd: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    phone_inbox, inbox = gammu_smsd
    doc = simulator_config_document("http://127.0.0.1:9")
    doc["state"]["path"] = str(tmp_path / "state.sqlite")
    doc["sources"][0] = {
        "name": "kannel",
        "kind": "sms_gateway",
        "provider": "kannel",
        "push": {"secret": "${SECRET}"},
    }
    monkeypatch.setenv("SECRET", SECRET)
    monkeypatch.setenv("SENDSMS_PASSWORD", "sendsms-secret")
    handset = FakeSmscHandset(tmp_path / "fakesmsc.log", phone_inbox)
    handset.thread.start()
    config_file = tmp_path / "smswatch.yml"

    def write_config(exporter_port: int) -> None:
        doc["probes"] = {
            "handset_timeout": "30s",
            "report_timeout": "60s",
            "inbox": {"gammu_dir": str(inbox)},
            "gateways": [
                {
                    "gateway": "kannel",
                    "numbers": [
                        {"number": "13800138000", "carrier": "china-mobile", "area": "north"}
                    ],
                    "send": {
                        "kind": "kannel",
                        "url": f"http://127.0.0.1:{kannel}/cgi-bin/sendsms",
                        "username": "smswatch",
                        "password": "${SENDSMS_PASSWORD}",
                        "dlr_url": f"http://127.0.0.1:{exporter_port}/push/kannel?type=%d"
                        "&reply=%A&smsc=%i&msg={canary_id}&ref={canary_id}&secret=${SECRET}",
                    },
                }
            ],
        }
        config_file.write_text(yaml.safe_dump(doc))

    write_config(9)  # the port is known once the exporter listens
    app = Exporter(load_config(str(config_file)), "127.0.0.1", 0)
    app.web.start()
    write_config(app.port)
    try:
        # a cardholder message through the same Kannel, its DLR to the same receiver
        dlr_url = (
            f"http://127.0.0.1:{app.port}/push/kannel?type=%d&reply=%A&smsc=%i"
            f"&msg=m-1&ref=633012345678&carrier=china-mobile&area=north&secret={SECRET}"
        )
        query = urllib.parse.urlencode(
            {
                "username": "smswatch",
                "password": "sendsms-secret",
                "to": "13900139000",
                "text": "Card *1234 spent CNY 88.00",
                "dlr-mask": "31",
                "dlr-url": dlr_url,
            }
        )
        assert http_get(f"http://127.0.0.1:{kannel}/cgi-bin/sendsms?{query}")[0] == 202

        code = main(
            [
                "probe",
                "--config.file",
                str(config_file),
                "--gateway",
                "kannel",
                "--to",
                "13800138000",
                "--timeout",
                "60s",
            ]
        )
        printed = capsys.readouterr().out
        print(printed)  # the timeline, shown with `pytest -rP`
        assert code == 0, printed
        assert "result: delivered, both proofs in" in printed
        for step in ("sent", "accepted", "report", "handset", "verdict"):
            assert f"  {step}" in printed, printed
        assert "13800138000" not in printed  # the number shows masked only

        def exported() -> dict[str, float]:
            metrics = scrape(f"http://127.0.0.1:{app.port}/metrics")

            def total(name: str, *pairs: tuple[str, str]) -> float:
                return sum(v for (n, ls), v in metrics.items() if n == name and set(pairs) <= ls)

            values = {
                "cardholder_submitted": total("smswatch_sms_submitted_total"),
                "cardholder_final": total("smswatch_sms_messages_total"),
                "cardholder_delivered": total(
                    "smswatch_sms_messages_total", ("status", "delivered")
                ),
                "probe_sent": total("smswatch_probe_sent_total", ("carrier", "china-mobile")),
                "probe_delivered": total("smswatch_probe_delivered_total"),
                "probe_received": total("smswatch_probe_received_total"),
                "probe_e2e": total("smswatch_probe_end_to_end_seconds_count"),
                "probe_fake": total("smswatch_probe_fake_reports_total"),
                "probe_failed": total("smswatch_probe_failures_total"),
            }
            return values

        expected = {
            "cardholder_submitted": 1,
            "cardholder_final": 1,
            "cardholder_delivered": 1,
            "probe_sent": 1,
            "probe_delivered": 1,
            "probe_received": 1,
            "probe_e2e": 1,
            "probe_fake": 0,
            "probe_failed": 0,
        }
        wait_until(lambda: exported() == expected, 20, "the cardholder DLRs to be counted")
    finally:
        handset.stop.set()
        handset.thread.join(5)
        app.web.stop()
        app.store.close()
