"""`smswatch report`: turn command-line options into a report request and run it; with
`--mail-to` or `--send`, mail the report through the config file's `reports.mail` block."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

from exporter.errors import ConfigError, ReportError
from exporter.reports.delivery import Courier, Delivery
from exporter.reports.mail import MailSettings, parse_recipients
from exporter.reports.objectives import Objectives
from exporter.reports.outputs import MANIFEST
from exporter.reports.periods import load_zone, parse_time, resolve_period
from exporter.reports.report import ReportRequest, check_lang, generate_report, parse_formats
from exporter.timestamps import parse_duration_ms


def request_from_args(args: argparse.Namespace, *, now: datetime) -> ReportRequest:
    """Validate the options of `smswatch report`; a bad one is a `ConfigError` naming it."""
    for value, flag in ((args.prometheus_url, "--prometheus.url"), (args.out, "--out")):
        if not value:
            raise ConfigError("is required (or --send DIR to mail a written report)", path=flag)
    zone = load_zone(args.timezone, path="--timezone")
    lang = check_lang(args.lang, path="--lang")
    formats = parse_formats(args.formats, path="--format")
    if args.period == "custom":
        if args.end:
            raise ConfigError("a custom period takes --from and --to, not --end", path="--end")
        if not args.from_time or not args.to_time:
            raise ConfigError("a custom period needs both --from and --to", path="--period")
    elif args.to_time:
        raise ConfigError(
            f"--to only goes with --period custom (use --end with {args.period})", path="--to"
        )
    start = parse_time(args.from_time, zone, path="--from", now=now) if args.from_time else None
    end_text = args.to_time if args.period == "custom" else args.end
    end_path = "--to" if args.period == "custom" else "--end"
    end = parse_time(end_text, zone, path=end_path, now=now) if end_text else None
    period = resolve_period(args.period, zone, start=start, end=end, now=now)
    for value, flag in (
        (args.delivered_ratio, "--objective.delivered"),
        (args.receipt_ratio, "--objective.receipt-notification"),
        (args.within_ratio, "--objective.within-latency"),
    ):
        if not 0 < value <= 1:
            raise ConfigError(
                f"must be a fraction in (0, 1], such as 0.995, got {value}", path=flag
            )
    try:
        timeout = parse_duration_ms(args.timeout) / 1000
    except ValueError as exc:
        raise ConfigError(str(exc), path="--prometheus.timeout") from exc
    if not args.prometheus_url.startswith(("http://", "https://")):
        raise ConfigError(
            f"must be an http(s) URL, got {args.prometheus_url!r}", path="--prometheus.url"
        )
    return ReportRequest(
        prometheus_url=args.prometheus_url,
        period=period,
        out_dir=Path(args.out),
        lang=lang,
        formats=formats,
        objectives=Objectives(
            delivered_ratio=args.delivered_ratio,
            receipt_notification_ratio=args.receipt_ratio,
            within_latency_ratio=args.within_ratio,
        ),
        matchers=args.matchers,
        alert_matchers=args.alert_matchers,
        timeout_seconds=timeout,
    )


def mail_from_args(args: argparse.Namespace) -> tuple[MailSettings, tuple[str, ...]] | None:
    """The sender, SMTP server and recipients of `--mail-to` / `--send` (None: no mail), read
    from the `reports.mail` block of `--config.file`; checked before any report is written."""
    if not args.mail_to and not args.send:
        return None
    flag = "--send" if args.send else "--mail-to"
    if not args.config_file:
        raise ConfigError(
            "needs --config.file: its reports.mail block names the sender and the SMTP server",
            path=flag,
        )
    from exporter.config import load_config

    config = load_config(args.config_file)
    mail = config.reports.mail if config.reports is not None else None
    if mail is None:
        raise ConfigError(
            "is required to mail a report", path="reports.mail", source=args.config_file
        )
    given = parse_recipients(",".join(args.mail_to), "--mail-to") if args.mail_to else ()
    recipients = given or mail.recipients
    if not recipients:
        raise ConfigError("no recipients: give --mail-to or set reports.mail.to", path=flag)
    return mail, recipients


def run_report(args: argparse.Namespace) -> int:
    """The `smswatch report` command: write one report (or take the written one of `--send`),
    print its directory, and mail it when asked. Exit 1 when the mail was not delivered to
    every recipient (the report is kept)."""
    mail = mail_from_args(args)
    if args.send:
        path = Path(args.send)
        if not (path / MANIFEST).is_file():
            raise ConfigError(f"{path} is not a report directory (no {MANIFEST})", path="--send")
    else:
        request = request_from_args(args, now=datetime.now(UTC))
        if mail is not None and "pdf" not in request.formats:
            raise ConfigError("a mailed report needs its PDF: add pdf", path="--format")
        path = generate_report(request)
    print(path, flush=True)
    if mail is not None:
        settings, recipients = mail
        outcome = Courier().deliver(Delivery("command-line", path, recipients, settings))
        if outcome.result != "sent":
            raise ReportError(
                f"the report is kept in {path} but was not delivered to "
                f"{', '.join(sorted(outcome.undelivered))}: {outcome.error}"
            )
    return 0
