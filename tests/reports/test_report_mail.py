"""E-mailing reports, against real SMTP servers (aiosmtpd) on 127.0.0.1: one that accepts,
one that refuses, one that is down, and TLS ones (STARTTLS and implicit TLS) whose self-signed
certificate is verified against the configured CA file."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from prometheus_client import generate_latest
from report_harness import GENERATED_AT
from test_web import make_cert

from exporter.app import Exporter
from exporter.cli import main
from exporter.config import parse_config, simulator_config_document
from exporter.errors import ConfigError
from exporter.logs import LogfmtFormatter
from exporter.reports.delivery import Courier, Delivery, deliver
from exporter.reports.mail import MailSettings, RetryPolicy, SmtpSettings
from exporter.reports.schedule import parse_reports_section

from harness import free_port, wait_until

PASSWORD = "hunter2-smtp-secret"
FAST = RetryPolicy(attempts=3, backoff_seconds=0.01, max_backoff_seconds=0.02)


@dataclass
class Mailbox:
    """What an aiosmtpd handler received, and how it answers."""

    received: list[tuple[list[str], bytes]] = field(default_factory=list)
    rcpt_answers: dict[str, list[str]] = field(default_factory=dict)  # address → answers in turn
    data_answer: str = "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        answers = self.rcpt_answers.get(address)
        answer = answers.pop(0) if answers else "250 OK"
        if answer.startswith("250"):
            envelope.rcpt_tos.append(address)
        return answer

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_answer.startswith("250"):
            self.received.append((list(envelope.rcpt_tos), envelope.original_content))
        return self.data_answer


def authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, data: Any
) -> AuthResult:
    """Accepts smswatch/PASSWORD; a wrong login is refused with the login echoed back, as
    some servers do, so the log scrubber has something to remove."""
    assert isinstance(data, LoginPassword)
    if data.login == b"smswatch" and data.password == PASSWORD.encode():
        return AuthResult(success=True)
    return AuthResult(
        success=False,
        handled=False,
        message=f"535 5.7.8 bad credentials {data.login.decode()}:{data.password.decode()}",
    )


@dataclass
class Server:
    port: int
    mailbox: Mailbox


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (it is its own CA)."""
    return make_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def smtp() -> Iterator[Any]:
    """Start aiosmtpd servers on free 127.0.0.1 ports; all stopped at the end."""
    controllers: list[Controller] = []

    def start(mailbox: Mailbox | None = None, **kwargs: Any) -> Server:
        box = mailbox or Mailbox()
        port = free_port()
        controller = Controller(box, hostname="127.0.0.1", port=port, **kwargs)
        controller.start()
        controllers.append(controller)
        return Server(port, box)

    yield start
    for controller in controllers:
        controller.stop()


def settings(port: int, **smtp: Any) -> MailSettings:
    base = SmtpSettings(host="127.0.0.1", port=port, security="none", timeout_seconds=5)
    return MailSettings(
        sender="smswatch <smswatch@bank.example>",
        smtp=replace(base, **smtp),
        attach_csv=True,
        retry=FAST,
    )


def counted(courier_counts: list[tuple[str, str]]) -> Courier:
    return Courier(count=lambda schedule, result: courier_counts.append((schedule, result)))


def parse(raw: bytes) -> EmailMessage:
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_an_accepting_server_gets_the_report_in_its_language(
    reports: dict[str, Path], smtp: Any
) -> None:
    server = smtp()
    report = reports["zh-CN"]
    counts: list[tuple[str, str]] = []
    recipients = ("compliance@bank.example", "audit@bank.example")
    outcome = counted(counts).deliver(Delivery("daily", report, recipients, settings(server.port)))

    assert (outcome.result, outcome.attempts, counts) == ("sent", 1, [("daily", "sent")])
    [(envelope_to, raw)] = server.mailbox.received
    assert envelope_to == list(recipients)
    message = parse(raw)
    assert message["Subject"] == "银行卡交易短信通知合规报告 · 日报 2026-03-10"
    assert message["To"] == "compliance@bank.example, audit@bank.example"
    body = message.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    manifest_bytes = (report / "manifest.json").read_bytes()
    assert f"{hashlib.sha256(manifest_bytes).hexdigest()}  manifest.json" in text
    assert (
        "附件为 smswatch 日报，统计期间 2026-03-10 00:00 至 2026-03-11 00:00（Asia/Shanghai）"
        in text
    )
    attached = {
        part.get_filename(): part.get_payload(decode=True) for part in message.iter_attachments()
    }
    manifest = json.loads(manifest_bytes)
    expected = {"smswatch-daily-2026-03-10-zh-CN.pdf", "manifest.json"} | {
        name for name in manifest["files"] if name.endswith(".csv")
    }
    assert set(attached) == expected and len(expected) > 3
    for name, content in attached.items():
        assert content == (report / name).read_bytes(), name
    pdf = attached["smswatch-daily-2026-03-10-zh-CN.pdf"]
    assert isinstance(pdf, bytes) and pdf.startswith(b"%PDF")


def test_a_refusing_server_is_not_retried_and_the_report_stays(
    reports: dict[str, Path], smtp: Any
) -> None:
    server = smtp(Mailbox(data_answer="554 5.7.1 message refused by policy"))
    counts: list[tuple[str, str]] = []
    before = sorted(p.name for p in reports["en"].iterdir())
    outcome = counted(counts).deliver(
        Delivery("daily", reports["en"], ("compliance@bank.example",), settings(server.port))
    )
    assert (outcome.result, outcome.attempts, counts) == ("failed", 1, [("daily", "failed")])
    assert "554" in outcome.error and "refused by policy" in outcome.error
    assert server.mailbox.received == []
    assert sorted(p.name for p in reports["en"].iterdir()) == before


def test_recipients_are_retried_only_while_the_server_says_later(
    reports: dict[str, Path], smtp: Any
) -> None:
    server = smtp(
        Mailbox(
            rcpt_answers={
                "later@bank.example": ["451 4.3.0 mailbox busy, try later"],
                "gone@bank.example": ["550 5.1.1 no such mailbox"],
            }
        )
    )
    recipients = ("ok@bank.example", "later@bank.example", "gone@bank.example")
    counts: list[tuple[str, str]] = []
    outcome = counted(counts).deliver(
        Delivery("weekly", reports["en"], recipients, settings(server.port))
    )
    # The first attempt reaches ok@; the second reaches later@; gone@ is refused for good.
    assert [to for to, _ in server.mailbox.received] == [
        ["ok@bank.example"],
        ["later@bank.example"],
    ]
    assert outcome.attempts == 2
    assert (outcome.result, list(outcome.undelivered)) == ("failed", ["gone@bank.example"])
    assert outcome.error == "gone@bank.example: 550 5.1.1 no such mailbox"
    assert counts == [("weekly", "failed")]


def test_a_server_that_is_down_is_retried_with_back_off_then_fails(
    reports: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="exporter.reports.delivery")
    waits: list[float] = []

    def wait(seconds: float) -> bool:
        waits.append(seconds)
        return False  # not asked to stop

    outcome = deliver(
        Delivery("daily", reports["en"], ("compliance@bank.example",), settings(free_port())),
        wait=wait,
    )
    assert (outcome.result, outcome.attempts) == ("failed", 3)
    assert waits == [0.01, 0.02]  # doubling, capped at max_backoff
    assert "ConnectionRefusedError" in outcome.error
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["report delivery failed, will retry"] * 2 + ["report not delivered"]
    assert caplog.records[-1].__dict__["kept"] == str(reports["en"])
    assert (reports["en"] / "smswatch-daily-2026-03-10-en.pdf").is_file()


def test_starttls_and_implicit_tls_verify_the_certificate_against_the_ca_file(
    reports: dict[str, Path], smtp: Any, certificate: tuple[Path, Path]
) -> None:
    cert, key = certificate
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    starttls = smtp(tls_context=server_context, require_starttls=True)
    implicit = smtp(ssl_context=server_context)
    report = reports["en"]
    to = ("compliance@bank.example",)
    for server, security in ((starttls, "starttls"), (implicit, "tls")):
        outcome = Courier().deliver(
            Delivery("daily", report, to, settings(server.port, security=security, ca_file=cert))
        )
        assert outcome.result == "sent", (security, outcome.error)
        assert len(server.mailbox.received) == 1
        # Without the CA file the system's CAs do not know the certificate: refused at once,
        # never sent in clear text or unverified.
        outcome = Courier().deliver(
            Delivery("daily", report, to, settings(server.port, security=security))
        )
        assert (outcome.result, outcome.attempts) == ("failed", 1), security
        assert "certificate does not verify" in outcome.error
        assert len(server.mailbox.received) == 1


def test_starttls_is_never_skipped_when_the_server_does_not_offer_it(
    reports: dict[str, Path], smtp: Any, certificate: tuple[Path, Path]
) -> None:
    server = smtp()  # plain SMTP, no STARTTLS
    outcome = Courier().deliver(
        Delivery(
            "daily",
            reports["en"],
            ("compliance@bank.example",),
            settings(server.port, security="starttls", ca_file=certificate[0]),
        )
    )
    assert (outcome.result, outcome.attempts) == ("failed", 1)
    assert "STARTTLS" in outcome.error
    assert server.mailbox.received == []


def test_login_over_starttls_and_no_credential_in_the_log(
    reports: dict[str, Path],
    smtp: Any,
    certificate: tuple[Path, Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    from exporter.reports.mail import parse_mail_section

    cert, key = certificate
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    server = smtp(tls_context=server_context, require_starttls=True, authenticator=authenticator)

    def configured(password: str) -> MailSettings:
        return parse_mail_section(
            {
                "from": "smswatch@bank.example",
                "smtp": {
                    "host": "127.0.0.1",
                    "port": server.port,
                    "ca_file": str(cert),
                    "username": "smswatch",
                    "password_env": "SMTP_PASSWORD",
                },
                "retry": {"attempts": 1},
            },
            "reports.mail",
            env={"SMTP_PASSWORD": password},
        )

    to = ("compliance@bank.example",)
    good = Courier().deliver(Delivery("daily", reports["en"], to, configured(PASSWORD)))
    assert good.result == "sent" and len(server.mailbox.received) == 1

    caplog.set_level(logging.INFO, logger="exporter.reports.delivery")
    wrong = "wrong-" + PASSWORD
    bad = Courier().deliver(Delivery("daily", reports["en"], to, configured(wrong)))
    assert (bad.result, bad.attempts) == ("failed", 1)
    assert "535" in bad.error
    written = "\n".join(LogfmtFormatter().format(r) for r in caplog.records)
    assert "report not delivered" in written
    assert wrong not in written and wrong not in bad.error
    assert "smswatch:***" in written


def test_a_report_changed_on_disk_is_not_mailed(
    reports: dict[str, Path], smtp: Any, tmp_path: Path
) -> None:
    server = smtp()
    copy = shutil.copytree(reports["en"], tmp_path / reports["en"].name)
    (copy / "smswatch-daily-2026-03-10-en.pdf").write_bytes(b"%PDF-1.7 forged")
    outcome = Courier().deliver(
        Delivery("daily", copy, ("compliance@bank.example",), settings(server.port))
    )
    assert (outcome.result, outcome.attempts) == ("failed", 0)
    assert "changed since the report was written" in outcome.error
    assert server.mailbox.received == []


# ------------------------------------------------------------------ configuration


def mail_section(**smtp: Any) -> dict[str, Any]:
    return {
        "prometheus_url": "http://prometheus:9090",
        "out_dir": "reports",
        "formats": ["pdf", "csv"],
        "mail": {
            "from": "smswatch <smswatch@bank.example>",
            "to": ["compliance@bank.example"],
            "attach": ["pdf", "csv"],
            "smtp": {
                "host": "smtp.bank.example",
                "username": "smswatch",
                "password_env": "SMTP_PASSWORD",
                **smtp,
            },
            "retry": {"attempts": 4, "backoff": "30s", "max_backoff": "10m"},
        },
        "schedules": [
            {"period": "daily", "at": "01:00"},
            {"period": "daily", "at": "06:00", "name": "daily-audit", "mail_to": "a@bank.example"},
            {"period": "weekly", "at": "02:00", "mail_to": []},
        ],
    }


def test_a_mail_section() -> None:
    config = parse_reports_section(mail_section(), env={"SMTP_PASSWORD": PASSWORD})
    assert config.mail is not None
    assert config.mail.smtp == SmtpSettings(
        host="smtp.bank.example",
        port=587,
        security="starttls",
        username="smswatch",
        password=PASSWORD,
        timeout_seconds=30.0,
    )
    assert PASSWORD not in repr(config)
    assert config.mail.retry == RetryPolicy(4, 30.0, 600.0)
    assert [config.recipients(s) for s in config.schedules] == [
        ("compliance@bank.example",),
        ("a@bank.example",),
        (),
    ]
    assert config.mailed_schedules() == ("daily", "daily-audit")
    tls = parse_reports_section(mail_section(security="tls"), env={"SMTP_PASSWORD": PASSWORD})
    assert tls.mail is not None and tls.mail.smtp.port == 465


@pytest.mark.parametrize(
    ("change", "path", "message"),
    [
        (lambda r: r["mail"]["smtp"].update(password="x"), "mail.smtp.password", "never written"),
        (lambda r: r["mail"]["smtp"].update(security="none"), "mail.smtp.security", "loopback"),
        (
            lambda r: r["mail"]["smtp"].update(host="127.0.0.1", security="none"),
            "mail.smtp.security",
            "allow_plaintext: true",
        ),
        (
            lambda r: r["mail"]["smtp"].update(password_env="UNSET"),
            "mail.smtp.password_env",
            "not set",
        ),
        (lambda r: r["mail"]["smtp"].update(port=0), "mail.smtp.port", "1..65535"),
        (
            lambda r: r["mail"]["smtp"].update(ca_file="/nonexistent.pem"),
            "mail.smtp.ca_file",
            "no such",
        ),
        (lambda r: r["mail"]["smtp"].update(verify=False), "mail.smtp.verify", "unknown key"),
        (lambda r: r["mail"]["retry"].update(attempts=0), "mail.retry.attempts", "from 1 to 20"),
        (lambda r: r["mail"].update(to=["ok@x.example", "not an address"]), "mail.to[1]", "e-mail"),
        (lambda r: r.update(formats=["csv"]), "formats", "add pdf"),
        (lambda r: r["schedules"][1].update(name="daily"), "schedules[1].name", "already named"),
        (lambda r: r.pop("mail"), "schedules[1].mail_to", "needs reports.mail"),
    ],
)
def test_mail_errors_name_the_field(change: Any, path: str, message: str) -> None:
    raw = mail_section()
    change(raw)
    with pytest.raises(ConfigError) as caught:
        parse_reports_section(raw, env={"SMTP_PASSWORD": PASSWORD})
    assert caught.value.field_path == f"reports.{path}"
    assert message in str(caught.value)


# ------------------------------------------------------------------ inside `smswatch run`


def test_scheduled_reports_are_mailed_in_the_background_and_counted(
    reports: dict[str, Path], tmp_path: Path, smtp: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scheduled job hands its report to the exporter's courier and returns while the
    e-mail waits to be retried; stopping ends the wait, counts the delivery failed and keeps
    the report. (The report itself is the session's: writing one is tested elsewhere and
    costs seconds.)"""
    server = smtp(Mailbox(rcpt_answers={"later@bank.example": ["451 4.2.0 try later"] * 5}))
    out = tmp_path / "reports"

    def written(request: Any, now: Any = None) -> Path:
        return Path(shutil.copytree(reports["en"], out / f"{request.name}"))

    monkeypatch.setattr("exporter.reports.schedule.generate_report", written)
    document = simulator_config_document("http://127.0.0.1:1")
    document["reports"] = {
        "prometheus_url": "http://127.0.0.1:1",
        "out_dir": str(out),
        "timezone": "Asia/Shanghai",
        "formats": ["pdf"],
        "mail": {
            "from": "smswatch@bank.example",
            "smtp": {
                "host": "127.0.0.1",
                "port": server.port,
                "security": "none",
                "allow_plaintext": True,
            },
            "retry": {"attempts": 5, "backoff": "1h"},
        },
        "schedules": [
            {"period": "daily", "at": "01:00", "mail_to": ["ok@bank.example"]},
            {"period": "weekly", "at": "02:00", "mail_to": ["later@bank.example"]},
            {"period": "monthly", "at": "03:00"},  # not mailed: no series
        ],
    }
    config = parse_config(document, state_path=str(tmp_path / "state.sqlite"))
    assert config.reports is not None
    app = Exporter(config, "127.0.0.1", 0)
    app.start()  # its sources are unreachable: only the report jobs matter here
    try:
        jobs = {job.id: job for job in app.scheduler.get_jobs()}
        assert {"report:0:daily", "report:1:weekly", "report:2:monthly"} <= set(jobs)
        for job_id in ("report:0:daily", "report:1:weekly"):
            job = jobs[job_id]
            job.func(*job.args, **{**job.kwargs, "clock": lambda: GENERATED_AT})
        wait_until(lambda: server.mailbox.received, 10, "the daily report's e-mail")
        # the daily one's thread ends just after its e-mail arrives; the weekly one waits an
        # hour to retry, on its own thread, not in its job
        wait_until(lambda: app.courier.in_flight() == 1, 10, "the daily delivery to end")
        app.courier.stop()
        assert app.courier.in_flight() == 0
        exposition = generate_latest(app.registry).decode()
    finally:
        app.stop()
    series = [line for line in exposition.splitlines() if line.startswith("smswatch_report_")]
    assert sorted(series) == [
        'smswatch_report_deliveries_total{result="failed",schedule="daily"} 0.0',
        'smswatch_report_deliveries_total{result="failed",schedule="weekly"} 1.0',
        'smswatch_report_deliveries_total{result="sent",schedule="daily"} 1.0',
        'smswatch_report_deliveries_total{result="sent",schedule="weekly"} 0.0',
    ]
    assert [to for to, _ in server.mailbox.received] == [["ok@bank.example"]]
    kept = [p.name for p in out.glob("smswatch-weekly-*/*.pdf")]
    assert kept == ["smswatch-daily-2026-03-10-en.pdf"]  # the session's report, copied


# ------------------------------------------------------------------ on the command line


def config_file(tmp_path: Path, port: int) -> Path:
    document = simulator_config_document("http://127.0.0.1:1")
    document["reports"] = {
        "prometheus_url": "http://127.0.0.1:1",
        "out_dir": "reports",
        "mail": {
            "from": "smswatch@bank.example",
            "to": ["compliance@bank.example"],
            "smtp": {
                "host": "127.0.0.1",
                "port": port,
                "security": "none",
                "allow_plaintext": True,
            },
            "retry": {"attempts": 1},
        },
    }
    path = tmp_path / "smswatch.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def test_send_a_written_report_now_from_the_command_line(
    reports: dict[str, Path], smtp: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = smtp()
    report = reports["zh-CN"]
    args = ["report", "--config.file", str(config_file(tmp_path, server.port)), "--send"]
    code = main([*args, str(report), "--mail-to", "a@bank.example,b@bank.example"])
    captured = capsys.readouterr()
    assert (code, captured.out.strip(), captured.err) == (0, str(report), "")
    [(envelope_to, raw)] = server.mailbox.received
    assert envelope_to == ["a@bank.example", "b@bank.example"]
    assert parse(raw)["Subject"] == "银行卡交易短信通知合规报告 · 日报 2026-03-10"

    # Down: the log line, then one error line naming who did not get it; exit 1.
    down = config_file(tmp_path, free_port())
    code = main(["report", "--config.file", str(down), "--send", str(report)])
    captured = capsys.readouterr()
    assert code == 1
    *logged, last = captured.err.splitlines()
    assert logged and all('msg="report not delivered"' in line for line in logged)
    assert last.startswith(f"smswatch: error: the report is kept in {report} ")
    assert "compliance@bank.example" in captured.err and "ConnectionRefusedError" in captured.err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--mail-to", "a@bank.example", "--out", "x", "--prometheus.url", "http://p:9090"],
         "--mail-to: needs --config.file"),
        (["--out", "x"], "--prometheus.url: is required (or --send DIR"),
        (["--mail-to", "a@bank.example", "--config.file", "CONFIG", "--format", "csv",
          "--out", "x", "--prometheus.url", "http://p:9090"], "--format: a mailed report needs"),
        (["--send", "/nonexistent", "--config.file", "CONFIG"], "is not a report directory"),
        (["--send", "REPORT", "--config.file", "CONFIG", "--mail-to", "nobody"],
         "--mail-to[0]: must be an e-mail address"),
    ],
)  # fmt: skip
def test_mail_options_are_checked_before_anything_is_sent(
    args: list[str],
    message: str,
    reports: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = str(config_file(tmp_path, free_port()))
    values = {"CONFIG": config, "REPORT": str(reports["en"])}
    code = main(["report", *(values.get(a, a) for a in args)])
    assert code == 2
    assert message in capsys.readouterr().err
