"""Report alerts: a scheduled compliance report that did not reach its readers.

A ticket, not a page: the report is written and kept on disk either way; what is missing is
its e-mail, which someone must send again before the auditors notice.
"""

from __future__ import annotations

from exporter.alerting.promql import Alert, Context, Group, format_duration
from exporter.language import say


def report_alerts(ctx: Context) -> list[Alert]:
    """Every report alert, with the thresholds of the spec."""
    undelivered = ctx.spec.alerts["ComplianceReportUndelivered"]
    assert undelivered.window_ms
    failed = ctx.metric("smswatch_report_deliveries_total", result='="failed"')
    by_schedule = ctx.by("smswatch_report_deliveries_total", "schedule")
    window = format_duration(undelivered.window_ms)
    return [
        ctx.alert(
            "ComplianceReportUndelivered",
            f"sum by ({by_schedule}) (increase({failed}[{ctx.window(undelivered.window_ms)}]))"
            " > 0\n",
            severity="warning",
            summary=say(
                "A scheduled compliance report could not be e-mailed to its recipients.",
                "定时生成的合规报告未能通过电子邮件发送给收件人。",
            ),
            description=say(
                "{{ $value | humanize }} e-mail deliveries of the reports of schedule "
                "{{ $labels.schedule }} failed in the last "
                f"{window} after their retries: the SMTP "
                "server is down, refuses, or its certificate does not verify. The report files "
                "are kept; the exporter's log line `report not delivered` names the report "
                "and the reason.",
                f"计划 {{{{ $labels.schedule }}}} 的报告在最近 {window} 内有 "
                "{{ $value | humanize }} 次邮件发送在重试后仍失败：SMTP 服务器宕机、拒收，"
                "或其证书校验不通过。报告文件已保留；exporter 日志写明了报告和失败原因。",
            ),
        ),
    ]


def report_groups(ctx: Context) -> list[Group]:
    """The groups of reports.yaml."""
    return [Group("smswatch-reports", tuple(report_alerts(ctx)))]
