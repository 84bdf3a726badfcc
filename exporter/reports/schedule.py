"""Scheduled reports inside `smswatch run`: the `reports:` config section and its cron jobs.

The section (all keys but `prometheus_url` and `out_dir` optional)::

    reports:
      prometheus_url: http://prometheus:9090   # where the figures are read
      out_dir: /var/lib/smswatch/reports       # relative paths: to the config file's directory
      timezone: Asia/Shanghai                  # calendar of the periods and the schedule; UTC
      lang: zh-CN                              # en | zh-CN; en
      formats: [pdf, html, csv]                # or "pdf,csv"; all three
      keep: 90d                                # delete reports generated longer ago; "forever"
      matchers: 'job="smswatch"'               # extra PromQL matchers for smswatch series
      alert_matchers: ''                       # extra matchers for the ALERTS series
      timeout: 2m                              # per Prometheus request
      mail: {from: ..., to: [...], smtp: {...}}  # e-mail the reports (see reports/mail.py)
      schedules:
        - {period: daily, at: "01:00"}                 # every day, the day before
        - {period: weekly, at: "02:00", day: mon}      # the ISO week before; day: mon..sun
        - {period: monthly, at: "03:00", day: 1, lang: en, formats: [pdf]}  # day: 1..28
        - {period: daily, at: "06:00", name: daily-audit, mail_to: [audit@bank.example]}

A schedule is mailed when it has recipients (its `mail_to`, else `mail.to`); `name` (default:
the period) is the `schedule` label of smswatch_report_deliveries_total and must be unique.

Each schedule runs at `at` (local time in `timezone`) and reports on the last full period before
that moment; then reports older than `keep` are deleted. A failed run logs one error line and
leaves no partial report; the next run is unaffected. A written report is handed to the
delivery `Courier`, which mails it from its own thread: the job does not wait for the mail.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from exporter.errors import ConfigError, SmswatchError
from exporter.reports.delivery import Courier, Delivery
from exporter.reports.fields import duration_field, refuse_unknown_keys, string_field
from exporter.reports.mail import MailSettings, parse_mail_section, parse_recipients
from exporter.reports.objectives import DEFAULT_OBJECTIVES, Objectives
from exporter.reports.outputs import prune_reports
from exporter.reports.periods import load_zone, resolve_period
from exporter.reports.report import (
    FORMATS,
    ReportRequest,
    check_lang,
    generate_report,
    parse_formats,
)

log = logging.getLogger(__name__)

SCHEDULED_PERIODS = ("daily", "weekly", "monthly")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_KEEP_SECONDS = 90 * 86_400.0
#: A run delayed by at most this much (busy or paused process) still happens.
MISFIRE_GRACE_SECONDS = 3600

_SECTION_KEYS = {
    "prometheus_url",
    "out_dir",
    "timezone",
    "lang",
    "formats",
    "keep",
    "matchers",
    "alert_matchers",
    "timeout",
    "schedules",
    "mail",
}
_SCHEDULE_KEYS = {"period", "at", "day", "lang", "formats", "name", "mail_to"}
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,40}$")
_AT = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class ReportSchedule:
    """One scheduled report: which period, when (local time) and optional overrides."""

    period: str
    hour: int
    minute: int
    day: str | int | None = None  # weekly: mon..sun (default mon); monthly: 1..28 (default 1)
    lang: str | None = None
    formats: tuple[str, ...] | None = None
    name: str = ""  # the `schedule` label; "" means the period
    mail_to: tuple[str, ...] | None = None  # None: the section's mail.to

    @property
    def label(self) -> str:
        """The schedule's name in metrics and logs."""
        return self.name or self.period


@dataclass(frozen=True)
class ReportsConfig:
    """The validated `reports:` section."""

    prometheus_url: str
    out_dir: Path
    timezone: str = "UTC"
    lang: str = "en"
    formats: tuple[str, ...] = FORMATS
    keep_seconds: float | None = DEFAULT_KEEP_SECONDS  # None: keep forever
    matchers: str = ""
    alert_matchers: str = ""
    timeout_seconds: float = 120.0
    schedules: tuple[ReportSchedule, ...] = ()
    mail: MailSettings | None = None

    def recipients(self, schedule: ReportSchedule) -> tuple[str, ...]:
        """Who gets `schedule`'s reports by e-mail (none: not mailed)."""
        if self.mail is None:
            return ()
        return self.mail.recipients if schedule.mail_to is None else schedule.mail_to

    def mailed_schedules(self) -> tuple[str, ...]:
        """The labels of the schedules whose reports are mailed."""
        return tuple(s.label for s in self.schedules if self.recipients(s))


def parse_reports_section(
    raw: Mapping[str, Any] | None,
    path: str = "reports",
    *,
    base: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> ReportsConfig:
    """Validate the parsed YAML of the `reports:` section; errors name the field path, e.g.
    ``reports.schedules[1].at``. Relative `out_dir` paths are taken from `base`; `env` is
    where `mail.smtp.password_env` is looked up (default: the process's environment)."""
    if not isinstance(raw, Mapping):
        raise ConfigError("must be a mapping", path=path)
    refuse_unknown_keys(raw, _SECTION_KEYS, path)
    url = string_field(raw, "prometheus_url", path, required=True)
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ConfigError(f"must be an http(s) URL, got {url!r}", path=f"{path}.prometheus_url")
    out_text = string_field(raw, "out_dir", path, required=True)
    out_dir = Path(out_text)
    if not out_dir.is_absolute() and base is not None:
        out_dir = base / out_dir
    timezone = string_field(raw, "timezone", path, default="UTC")
    load_zone(timezone, path=f"{path}.timezone")
    lang = check_lang(string_field(raw, "lang", path, default="en"), path=f"{path}.lang")
    formats = _formats(raw, path) or FORMATS
    keep = _keep(raw.get("keep"), f"{path}.keep")
    timeout = duration_field(raw.get("timeout", "2m"), f"{path}.timeout")
    matchers = string_field(raw, "matchers", path, default="")
    alert_matchers = string_field(raw, "alert_matchers", path, default="")
    schedules_raw = raw.get("schedules", [])
    if schedules_raw is None:
        schedules_raw = []
    if not isinstance(schedules_raw, list):
        raise ConfigError("must be a list", path=f"{path}.schedules")
    schedules = tuple(
        _schedule(item, f"{path}.schedules[{index}]") for index, item in enumerate(schedules_raw)
    )
    mail = (
        parse_mail_section(raw["mail"], f"{path}.mail", base=base, env=env)
        if raw.get("mail") is not None
        else None
    )
    _check_mailing(schedules, mail, formats, path)
    return ReportsConfig(
        prometheus_url=url.rstrip("/"),
        out_dir=out_dir,
        timezone=timezone,
        lang=lang,
        formats=formats,
        keep_seconds=keep,
        matchers=matchers,
        alert_matchers=alert_matchers,
        timeout_seconds=timeout,
        schedules=schedules,
        mail=mail,
    )


def _check_mailing(
    schedules: tuple[ReportSchedule, ...],
    mail: MailSettings | None,
    formats: tuple[str, ...],
    path: str,
) -> None:
    """Unique schedule names; a mailed schedule writes what is attached."""
    seen: dict[str, int] = {}
    for index, item in enumerate(schedules):
        here = f"{path}.schedules[{index}]"
        if item.label in seen:
            raise ConfigError(
                f"schedules[{seen[item.label]}] is already named {item.label!r}: give each "
                "schedule of the same period a distinct name",
                path=f"{here}.name",
            )
        seen[item.label] = index
        if item.mail_to and mail is None:
            raise ConfigError(
                f"needs {path}.mail (the sender and the SMTP server)", path=f"{here}.mail_to"
            )
        recipients = mail.recipients if mail is not None and item.mail_to is None else item.mail_to
        if not recipients or mail is None:
            continue
        written = item.formats or formats
        wanted = ("pdf", "csv") if mail.attach_csv else ("pdf",)
        for kind in wanted:
            if kind not in written:
                raise ConfigError(
                    f"this schedule is mailed with its {kind.upper()}: add {kind} to formats",
                    path=f"{here}.formats" if item.formats else f"{path}.formats",
                )


def _formats(raw: Mapping[str, Any], path: str) -> tuple[str, ...] | None:
    value = raw.get("formats")
    if value is None:
        return None
    if not isinstance(value, str | list):
        raise ConfigError("must be a list such as [pdf, csv]", path=f"{path}.formats")
    return parse_formats(value, path=f"{path}.formats")


def _keep(value: object, path: str) -> float | None:
    if value is None:
        return DEFAULT_KEEP_SECONDS
    if value == "forever":
        return None
    return duration_field(value, path)


def _schedule(raw: object, path: str) -> ReportSchedule:
    if not isinstance(raw, Mapping):
        raise ConfigError('must be a mapping such as {period: daily, at: "01:00"}', path=path)
    refuse_unknown_keys(raw, _SCHEDULE_KEYS, path)
    period = raw.get("period")
    if period not in SCHEDULED_PERIODS:
        raise ConfigError(
            f"must be one of {', '.join(SCHEDULED_PERIODS)}, got {period!r}", path=f"{path}.period"
        )
    at = raw.get("at")
    match = _AT.match(at) if isinstance(at, str) else None
    if not match:
        raise ConfigError(f'must be a local time "HH:MM" (24 h), got {at!r}', path=f"{path}.at")
    day = raw.get("day")
    if period == "daily" and day is not None:
        raise ConfigError("a daily schedule runs every day: remove day", path=f"{path}.day")
    if period == "weekly":
        day = "mon" if day is None else day
        if day not in WEEKDAYS:
            raise ConfigError(
                f"must be one of {', '.join(WEEKDAYS)}, got {day!r}", path=f"{path}.day"
            )
    if period == "monthly":
        day = 1 if day is None else day
        if isinstance(day, bool) or not isinstance(day, int) or not 1 <= day <= 28:
            raise ConfigError(
                f"must be a day of the month from 1 to 28, got {day!r}", path=f"{path}.day"
            )
    lang = raw.get("lang")
    if lang is not None:
        check_lang(str(lang), path=f"{path}.lang")
    name = raw.get("name")
    if name is not None and (not isinstance(name, str) or not _NAME.match(name)):
        raise ConfigError(
            f"must be lower-case letters, digits, - or _ (at most 41), got {name!r}",
            path=f"{path}.name",
        )
    mail_to = raw.get("mail_to")
    return ReportSchedule(
        period=str(period),
        hour=int(match.group(1)),
        minute=int(match.group(2)),
        day=day,
        lang=str(lang) if lang is not None else None,
        formats=_formats(raw, path),
        name=name or "",
        mail_to=None if mail_to is None else parse_recipients(mail_to, f"{path}.mail_to"),
    )


def schedule_reports(
    scheduler: Any,
    config: ReportsConfig,
    *,
    objectives: Objectives = DEFAULT_OBJECTIVES,
    clock: Clock | None = None,
    courier: Courier | None = None,
) -> list[str]:
    """Add one APScheduler 3 cron job per schedule of `config` to `scheduler` (started or not);
    return the job ids. `clock` (aware datetimes) decides the reported period and retention;
    it defaults to the wall clock. Mailed reports go to `courier` (see `run_scheduled_report`)."""
    from apscheduler.triggers.cron import CronTrigger

    zone = load_zone(config.timezone, path="reports.timezone")
    ids = []
    for index, item in enumerate(config.schedules):
        fields: dict[str, Any] = {"hour": item.hour, "minute": item.minute, "second": 0}
        if item.period == "weekly":
            fields["day_of_week"] = item.day
        elif item.period == "monthly":
            fields["day"] = item.day
        job_id = f"report:{index}:{item.period}"
        scheduler.add_job(
            run_scheduled_report,
            CronTrigger(timezone=zone, **fields),
            args=[config, item],
            kwargs={"objectives": objectives, "clock": clock, "courier": courier},
            id=job_id,
            name=f"{item.period} report at {item.hour:02d}:{item.minute:02d} {config.timezone}",
            replace_existing=True,
            misfire_grace_time=MISFIRE_GRACE_SECONDS,
            coalesce=True,
            max_instances=1,
        )
        ids.append(job_id)
    return ids


def run_scheduled_report(
    config: ReportsConfig,
    schedule: ReportSchedule,
    *,
    objectives: Objectives = DEFAULT_OBJECTIVES,
    clock: Clock | None = None,
    courier: Courier | None = None,
) -> Path | None:
    """One scheduled run: the report on the last full period before now, retention, then the
    report's e-mail when the schedule has recipients. The e-mail is dispatched to `courier`, which
    sends it in the background; without one it is sent before returning. Errors are logged
    (one line), never raised into the scheduler."""
    now = clock or (lambda: datetime.now(UTC))
    zone = load_zone(config.timezone, path="reports.timezone")
    moment = now()
    written: Path | None = None
    try:
        period = resolve_period(schedule.period, zone, end=moment, now=moment)
        request = ReportRequest(
            prometheus_url=config.prometheus_url,
            period=period,
            out_dir=config.out_dir,
            lang=schedule.lang or config.lang,
            formats=schedule.formats or config.formats,
            objectives=objectives,
            matchers=config.matchers,
            alert_matchers=config.alert_matchers,
            timeout_seconds=config.timeout_seconds,
        )
        written = generate_report(request, now=now)
    except (SmswatchError, OSError) as exc:
        log.error("scheduled report failed", extra={"period": schedule.period, "error": str(exc)})
    finally:
        if config.keep_seconds is not None:
            try:
                prune_reports(config.out_dir, config.keep_seconds, now=now)
            except OSError as exc:
                log.error("report retention failed", extra={"error": str(exc)})
    recipients = config.recipients(schedule)
    if written is not None and recipients and config.mail is not None:
        delivery = Delivery(schedule.label, written, recipients, config.mail)
        if courier is None:
            Courier().deliver(delivery)
        else:
            courier.dispatch(delivery)
    return written
