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
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from test_web import make_cert

from exporter.logs import LogfmtFormatter
from exporter.reports.delivery import Courier, Delivery
from exporter.reports.mail import MailSettings, RetryPolicy, SmtpSettings

from harness import free_port

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
    assert "附件为 smswatch 日报" in text
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
    assert counts == [("weekly", "failed")]


def test_a_server_that_is_down_is_retried_with_back_off_then_counted_failed(
    reports: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="exporter.reports.delivery")
    counts: list[tuple[str, str]] = []
    waits: list[float] = []
    courier = counted(counts)
    courier._stop.wait = lambda seconds: bool(waits.append(seconds))  # type: ignore[assignment,method-assign,func-returns-value]
    outcome = courier.deliver(
        Delivery("daily", reports["en"], ("compliance@bank.example",), settings(free_port()))
    )
    assert (outcome.result, outcome.attempts, counts) == ("failed", 3, [("daily", "failed")])
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
