"""Compliance reports: periodic PDF, HTML and CSV reports with figures an auditor can trust.

`smswatch report` writes one report; `smswatch run` schedules them from the `reports:` config
section (`parse_reports_section`, `schedule_reports`). Figures come from exact counter increases
and histogram buckets read from Prometheus (`counters`), never from averaged ratios.
"""

from exporter.reports.objectives import DEFAULT_OBJECTIVES, Objectives
from exporter.reports.report import ReportRequest, generate_report
from exporter.reports.schedule import (
    ReportSchedule,
    ReportsConfig,
    parse_reports_section,
    run_scheduled_report,
    schedule_reports,
)

__all__ = [
    "DEFAULT_OBJECTIVES",
    "Objectives",
    "ReportRequest",
    "ReportSchedule",
    "ReportsConfig",
    "generate_report",
    "parse_reports_section",
    "run_scheduled_report",
    "schedule_reports",
]
