"""Scheduled reports: the `reports:` config section, cron jobs on APScheduler driven by a
controllable clock, and retention."""

from __future__ import annotations

import json
import logging
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from report_harness import LoadedPrometheus

from exporter.errors import ConfigError
from exporter.reports import ReportsConfig, parse_reports_section, schedule_reports
from exporter.reports.outputs import prune_reports
from exporter.reports.schedule import ReportSchedule


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def section(**overrides: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "prometheus_url": "http://prometheus:9090/",
        "out_dir": "reports",
        "timezone": "Asia/Shanghai",
        "lang": "zh-CN",
        "formats": ["csv", "pdf"],
        "keep": "90d",
        "schedules": [
            {"period": "daily", "at": "01:00"},
            {"period": "weekly", "at": "02:00", "day": "mon", "lang": "en"},
            {"period": "monthly", "at": "03:30", "day": 2, "formats": "pdf"},
        ],
    }
    raw.update(overrides)
    return raw


def test_a_full_section(tmp_path: Path) -> None:
    config = parse_reports_section(section(), "reports", base=tmp_path)
    assert config == ReportsConfig(
        prometheus_url="http://prometheus:9090",
        out_dir=tmp_path / "reports",
        timezone="Asia/Shanghai",
        lang="zh-CN",
        formats=("pdf", "csv"),
        keep_seconds=90 * 86400,
        schedules=(
            ReportSchedule("daily", 1, 0),
            ReportSchedule("weekly", 2, 0, day="mon", lang="en"),
            ReportSchedule("monthly", 3, 30, day=2, formats=("pdf",)),
        ),
    )


def test_defaults() -> None:
    config = parse_reports_section({"prometheus_url": "http://p:9090", "out_dir": "/srv/r"})
    assert (config.timezone, config.lang, config.formats) == ("UTC", "en", ("pdf", "html", "csv"))
    assert config.keep_seconds == 90 * 86400 and config.schedules == ()
    assert parse_reports_section(section(keep="forever")).keep_seconds is None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"prometheus_url": None}, "reports.prometheus_url: is required"),
        ({"prometheus_url": "prometheus:9090"}, "reports.prometheus_url: must be an http(s) URL"),
        ({"out_dir": ""}, "reports.out_dir: must be a non-empty string"),
        ({"timezone": "Asia/Peking"}, "reports.timezone: unknown time zone"),
        ({"lang": "fr"}, "reports.lang: must be one of en, zh-CN"),
        ({"formats": ["pdf", "docx"]}, "reports.formats: formats must be a non-empty subset"),
        ({"keep": "three months"}, "reports.keep: not a duration"),
        ({"colour": "blue"}, "reports.colour: unknown key 'colour'"),
        ({"schedules": {"period": "daily"}}, "reports.schedules: must be a list"),
        ({"schedules": [{"period": "daily", "at": "1am"}]}, "reports.schedules[0].at: must be"),
        (
            {
                "schedules": [
                    {"period": "daily", "at": "01:00"},
                    {"period": "hourly", "at": "01:00"},
                ]
            },
            "reports.schedules[1].period: must be one of daily, weekly, monthly",
        ),
        (
            {"schedules": [{"period": "weekly", "at": "01:00", "day": "funday"}]},
            "reports.schedules[0].day: must be one of mon",
        ),
        (
            {"schedules": [{"period": "monthly", "at": "01:00", "day": 31}]},
            "reports.schedules[0].day: must be a day of the month from 1 to 28",
        ),
        (
            {"schedules": [{"period": "daily", "at": "01:00", "day": 1}]},
            "reports.schedules[0].day: a daily schedule runs every day",
        ),
        (
            {"schedules": [{"period": "daily", "at": "01:00", "when": "now"}]},
            "reports.schedules[0].when: unknown key",
        ),
    ],
)
def test_errors_name_the_field(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_reports_section(section(**changes), "reports")
    assert str(caught.value).startswith(message), str(caught.value)
    assert caught.value.exit_code == 2


def test_jobs_fire_at_local_calendar_times() -> None:
    scheduler = BackgroundScheduler(timezone=UTC)
    ids = schedule_reports(scheduler, parse_reports_section(section()))
    assert ids == ["report:0:daily", "report:1:weekly", "report:2:monthly"]
    jobs = {job.id: job for job in scheduler.get_jobs()}
    start = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)  # 20:00 in Shanghai, a Tuesday
    expected = {
        "report:0:daily": "2026-03-11T01:00:00+08:00",
        "report:1:weekly": "2026-03-16T02:00:00+08:00",
        "report:2:monthly": "2026-04-02T03:30:00+08:00",
    }
    for job_id, when in expected.items():
        assert jobs[job_id].trigger.get_next_fire_time(None, start).isoformat() == when
        assert jobs[job_id].misfire_grace_time == 3600
        assert jobs[job_id].coalesce is True and jobs[job_id].max_instances == 1
    # Once the scheduler runs, scheduling again replaces the jobs instead of adding copies.
    scheduler.start(paused=True)
    try:
        schedule_reports(scheduler, parse_reports_section(section()))
        assert sorted(job.id for job in scheduler.get_jobs()) == ids
    finally:
        scheduler.shutdown(wait=False)


def test_scheduled_runs_write_reports_at_their_times_and_prune_old_ones(
    prometheus: LoadedPrometheus, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = parse_reports_section(
        {
            "prometheus_url": prometheus.url,
            "out_dir": str(tmp_path),
            "timezone": "Asia/Shanghai",
            "formats": ["csv"],
            "keep": "36h",
            "schedules": [{"period": "daily", "at": "01:00"}, {"period": "weekly", "at": "02:00"}],
        }
    )
    clock = Clock(datetime(2026, 3, 10, 16, 30, tzinfo=UTC))
    scheduler = BackgroundScheduler(timezone=UTC)
    schedule_reports(scheduler, config, clock=clock)

    # Every fire time of the registered triggers over six days, in order.
    horizon = clock.now + timedelta(days=6)
    fires: list[tuple[datetime, Any]] = []
    for job in scheduler.get_jobs():
        moment = job.trigger.get_next_fire_time(None, clock.now)
        while moment is not None and moment <= horizon:
            fires.append((moment, job))
            moment = job.trigger.get_next_fire_time(moment, moment)
    fires.sort(key=lambda item: item[0])
    assert [(m.astimezone(UTC).isoformat(), j.id) for m, j in fires[:3]] == [
        ("2026-03-10T17:00:00+00:00", "report:0:daily"),
        ("2026-03-11T17:00:00+00:00", "report:0:daily"),
        ("2026-03-12T17:00:00+00:00", "report:0:daily"),
    ]
    assert ("2026-03-15T18:00:00+00:00", "report:1:weekly") in [
        (m.astimezone(UTC).isoformat(), j.id) for m, j in fires
    ]

    seen: dict[str, list[str]] = {}
    stamps: dict[str, str] = {}
    caplog.set_level(logging.ERROR, logger="exporter.reports.schedule")
    for moment, job in fires:
        clock.now = moment.astimezone(UTC)
        job.func(*job.args, **job.kwargs)
        seen[moment.isoformat()] = sorted(p.name for p in tmp_path.iterdir())
        for directory in tmp_path.iterdir():
            manifest = json.loads((directory / "manifest.json").read_text())
            stamps.setdefault(directory.name, manifest["generated_at"])

    # 01:00 on the 11th: the report on the 10th appears, stamped with the scheduled time.
    assert seen["2026-03-11T01:00:00+08:00"] == ["smswatch-daily-2026-03-10-en"]
    assert stamps["smswatch-daily-2026-03-10-en"] == "2026-03-10T17:00:00+00:00"
    # The data ends an hour into the 11th: that report is written, and says it is incomplete.
    assert seen["2026-03-12T01:00:00+08:00"] == [
        "smswatch-daily-2026-03-10-en",
        "smswatch-daily-2026-03-11-en",
    ]
    # The 12th has no data at all: the run fails with one logged line and writes nothing;
    # retention then removes the report generated 48 h earlier (keep: 36h).
    assert seen["2026-03-13T01:00:00+08:00"] == ["smswatch-daily-2026-03-11-en"]
    assert seen["2026-03-14T01:00:00+08:00"] == []
    failures = [r for r in caplog.records if r.getMessage() == "scheduled report failed"]
    assert len(failures) == 4  # the 12th to the 15th
    assert all("no smswatch data in the period" in r.__dict__["error"] for r in failures)
    # Monday the 16th at 02:00: the weekly report on the ISO week of the 9th.
    assert seen["2026-03-16T02:00:00+08:00"] == ["smswatch-weekly-2026-W11-en"]
    weekly = json.loads((tmp_path / "smswatch-weekly-2026-W11-en" / "manifest.json").read_text())
    assert weekly["period"]["start"] == "2026-03-09T00:00:00+08:00"
    assert weekly["data_complete"] is False


def test_retention_touches_only_our_directories(tmp_path: Path) -> None:
    now = datetime(2026, 3, 20, tzinfo=UTC)

    def report(name: str, generated: datetime) -> Path:
        directory = tmp_path / name
        directory.mkdir()
        (directory / "manifest.json").write_text(
            json.dumps({"generated_at": generated.isoformat()})
        )
        return directory

    old = report("smswatch-daily-2026-03-01-en", now - timedelta(days=10))
    young = report("smswatch-daily-2026-03-18-en", now - timedelta(days=2))
    foreign = report("quarterly-figures", now - timedelta(days=400))
    (tmp_path / "smswatch-daily-2026-02-01-en").mkdir()  # no manifest: not ours to judge
    stale = tmp_path / ".smswatch-daily-2026-03-02-en.tmp-abc123"
    stale.mkdir()
    os.utime(stale, (time.time() - 3 * 86400, time.time() - 3 * 86400))
    fresh = tmp_path / ".smswatch-daily-2026-03-19-en.tmp-def456"
    fresh.mkdir()

    removed = prune_reports(tmp_path, 7 * 86400, now=lambda: now)
    assert sorted(p.name for p in removed) == sorted([old.name, stale.name])
    assert young.exists() and foreign.exists() and fresh.exists()
    assert (tmp_path / "smswatch-daily-2026-02-01-en").exists()
