"""Handing written reports to an SMTP server: bounded retries with back-off, away from the
scheduler.

A scheduled report is written in a job of the exporter's scheduler, whose thread pool the
pollers share. Its delivery is handed to the `Courier`, which sends it from a thread of its own:
an SMTP server that hangs or a back-off of minutes never holds a poll or a later job back.
Each attempt is bounded by the SMTP timeout, the attempts by the retry policy, and a stop
(the exporter shutting down) ends the waiting at once.

What is retried: connection failures, timeouts and 4xx answers (the server says "later").
What is not: 5xx answers (the server refuses for good), a certificate that does not verify,
a server that offers no STARTTLS when it was asked for. Recipients a server accepted are never
sent the report twice. Either way the report stays on disk; the outcome is logged (scrubbed of
credentials) and counted as `smswatch_report_deliveries_total{schedule,result}`.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

from exporter.errors import ReportError
from exporter.privacy import scrub
from exporter.reports.letter import compose
from exporter.reports.mail import MailSettings, SmtpSettings

log = logging.getLogger(__name__)

#: Values of the `result` label of smswatch_report_deliveries_total.
SENT = "sent"
FAILED = "failed"
#: How long `Courier.stop` waits for an attempt in flight (an SMTP step's timeout at most).
STOP_GRACE_SECONDS = 10.0

Wait = Callable[[float], bool]
"""Wait up to the given seconds; True when asked to stop (`threading.Event.wait`)."""


@dataclass(frozen=True)
class Delivery:
    """One report to mail: which schedule it belongs to, where it is, to whom, how."""

    schedule: str
    report_dir: Path
    recipients: tuple[str, ...]
    settings: MailSettings


@dataclass(frozen=True)
class DeliveryOutcome:
    """How a delivery ended."""

    result: str  # sent | failed
    attempts: int
    #: Recipients that did not get the report, with the server's last word about each.
    undelivered: dict[str, str] = field(default_factory=dict)
    error: str = ""


class _Failure(Exception):
    """One attempt failed; `permanent` failures are not retried."""

    def __init__(self, text: str, *, permanent: bool) -> None:
        super().__init__(text)
        self.permanent = permanent


def tls_context(smtp: SmtpSettings) -> ssl.SSLContext:
    """A client context that verifies the server's certificate and name against `ca_file`
    (or the system's CAs). Verification is never turned off."""
    return ssl.create_default_context(cafile=str(smtp.ca_file) if smtp.ca_file else None)


def transmit(
    message: EmailMessage, sender: str, recipients: Sequence[str], smtp: SmtpSettings
) -> dict[str, tuple[int, bytes]]:
    """One SMTP session: connect, secure, log in, send. Returns the recipients the server
    refused while accepting others; raises `_Failure` when nothing was accepted."""
    try:
        if smtp.security == "tls":
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                smtp.host, smtp.port, timeout=smtp.timeout_seconds, context=tls_context(smtp)
            )
        else:
            client = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout_seconds)
        with client:
            client.ehlo()
            if smtp.security == "starttls":
                client.starttls(context=tls_context(smtp))
                client.ehlo()
            if smtp.username:
                client.login(smtp.username, smtp.password)
            return client.send_message(message, from_addr=sender, to_addrs=list(recipients))
    except smtplib.SMTPRecipientsRefused as exc:
        refused = {r: (code, text) for r, (code, text) in exc.recipients.items()}
        raise _RecipientsRefused(refused) from exc
    except smtplib.SMTPNotSupportedError as exc:
        raise _Failure(f"the server does not support it: {exc}", permanent=True) from exc
    except smtplib.SMTPResponseException as exc:
        answer = (
            exc.smtp_error.decode("utf-8", "replace")
            if isinstance(exc.smtp_error, bytes)
            else exc.smtp_error
        )
        permanent = 500 <= exc.smtp_code < 600
        raise _Failure(
            f"{type(exc).__name__}: {exc.smtp_code} {answer}", permanent=permanent
        ) from exc
    except ssl.SSLCertVerificationError as exc:
        raise _Failure(
            f"the server's certificate does not verify ({exc.verify_message}): set ca_file to "
            "the CA that signed it",
            permanent=True,
        ) from exc
    except OSError as exc:  # refused, unreachable, timed out, disconnected, TLS handshake
        raise _Failure(f"{type(exc).__name__}: {exc}", permanent=False) from exc


class _RecipientsRefused(_Failure):
    """Every recipient was refused (each with its own code)."""

    def __init__(self, refused: dict[str, tuple[int, bytes]]) -> None:
        super().__init__("every recipient was refused", permanent=False)
        self.refused = refused


def deliver(delivery: Delivery, *, wait: Wait | None = None) -> DeliveryOutcome:
    """Mail one report with the retry policy of its settings; never raises. `wait` is the
    back-off wait (default: a plain wait that is never interrupted)."""
    pause = wait or threading.Event().wait
    settings = delivery.settings
    policy = settings.retry
    name = delivery.report_dir.name
    try:
        letter = compose(delivery.report_dir, delivery.recipients, settings)
    except ReportError as exc:
        return _finish(delivery, 0, dict.fromkeys(delivery.recipients, str(exc)), str(exc))
    pending = list(delivery.recipients)
    undelivered: dict[str, str] = {}
    error = ""
    attempt = 0
    while pending and attempt < policy.attempts:
        attempt += 1
        try:
            refused = transmit(letter.message, settings.sender_address, pending, settings.smtp)
            error = ""
        except _RecipientsRefused as exc:
            refused = exc.refused
            error = ""  # each recipient's answer says why
        except _Failure as exc:
            error = scrub(str(exc))
            if exc.permanent:
                undelivered.update(dict.fromkeys(pending, error))
                pending = []
                break
            refused = {r: (0, error.encode()) for r in pending}
        retry: list[str] = []
        for recipient, (code, answer) in refused.items():
            text = answer.decode("utf-8", "replace")
            undelivered[recipient] = scrub(f"{code} {text}" if code else text)
            if not 500 <= code < 600:  # 4xx or no answer at all: later
                retry.append(recipient)
        for recipient in pending:
            if recipient not in refused:
                undelivered.pop(recipient, None)
        pending = retry
        if pending and attempt < policy.attempts:
            delay = policy.delay(attempt)
            log.warning(
                "report delivery failed, will retry",
                extra={
                    "schedule": delivery.schedule,
                    "report": name,
                    "attempt": attempt,
                    "attempts": policy.attempts,
                    "retry_in_s": delay,
                    "recipients": len(pending),
                    "error": error or _reasons(undelivered),
                },
            )
            if pause(delay):
                error = "smswatch stopped before the report could be delivered"
                break
    return _finish(delivery, attempt, undelivered, error, letter.manifest_sha256)


def _finish(
    delivery: Delivery,
    attempts: int,
    undelivered: dict[str, str],
    error: str,
    manifest_sha256: str = "",
) -> DeliveryOutcome:
    name = delivery.report_dir.name
    if not undelivered:
        log.info(
            "report delivered",
            extra={
                "schedule": delivery.schedule,
                "report": name,
                "recipients": len(delivery.recipients),
                "attempts": attempts,
                "manifest_sha256": manifest_sha256,
            },
        )
        return DeliveryOutcome(SENT, attempts)
    reason = scrub(error or _reasons(undelivered))
    log.error(
        "report not delivered",
        extra={
            "schedule": delivery.schedule,
            "report": name,
            "attempts": attempts,
            "undelivered": ", ".join(sorted(undelivered)),
            "error": reason,
            "kept": str(delivery.report_dir),
        },
    )
    return DeliveryOutcome(FAILED, attempts, undelivered, reason)


def _reasons(undelivered: dict[str, str]) -> str:
    """``a@x: 550 5.1.1 no such mailbox; b@y: 451 try later``."""
    return "; ".join(f"{recipient}: {text}" for recipient, text in sorted(undelivered.items()))


class Courier:
    """Delivers reports from threads of its own, counts each outcome once, and stops on
    demand. `count(schedule, result)` is called once per delivery (the exporter adds it to
    `smswatch_report_deliveries_total` in the state store)."""

    def __init__(self, count: Callable[[str, str], None] | None = None) -> None:
        self._count = count
        self._stop = threading.Event()
        self._threads: set[threading.Thread] = set()
        self._lock = threading.Lock()

    def deliver(self, delivery: Delivery) -> DeliveryOutcome:
        """Deliver now, in this thread (retries included), and count the outcome."""
        outcome = deliver(delivery, wait=self._stop.wait)
        if self._count is not None:
            try:
                self._count(delivery.schedule, outcome.result)
            except Exception as exc:  # the store closed under a late delivery: still logged
                log.error("report delivery not counted", extra={"error": scrub(str(exc))})
        return outcome

    def dispatch(self, delivery: Delivery) -> None:
        """Deliver in a thread of its own; return at once."""
        thread = threading.Thread(
            target=self._run, args=(delivery,), name=f"mail:{delivery.schedule}", daemon=True
        )
        with self._lock:
            self._threads.add(thread)
        thread.start()

    def _run(self, delivery: Delivery) -> None:
        try:
            self.deliver(delivery)
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())

    def in_flight(self) -> int:
        """Deliveries still being attempted or waiting to retry."""
        with self._lock:
            return len(self._threads)

    def join(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for every delivery to end; True when none is left."""
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout)
        return self.in_flight() == 0

    def stop(self, timeout: float = STOP_GRACE_SECONDS) -> None:
        """End the back-off waits now (those deliveries are counted failed) and wait up to
        `timeout` for attempts in flight."""
        self._stop.set()
        self.join(timeout)
