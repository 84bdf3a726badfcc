"""Health alerts: the exporter and its sources, and the Watchdog that proves the alerting path.

These carry no `cause`: they say smswatch is blind or late, not why cardholders miss SMS. The
blindness page itself lives in `blindness.py`; these are its earlier, quieter warnings.
"""

from __future__ import annotations

from exporter.alerting.blindness import LAG, blindness_group, excess_lag, polled
from exporter.alerting.promql import Alert, Context, Group, format_duration, format_number
from exporter.language import say


def health_alerts(ctx: Context) -> list[Alert]:
    spec = ctx.spec
    alerts = spec.alerts
    stale_ms = spec.poll_interval_ms * spec.stale_after_polls
    lag = alerts["SmswatchSourceLagging"]
    assert lag.threshold_ms
    up = f"up{{{spec.selector}}}"
    held = alerts["SmswatchDecisionsHeldBack"]
    assert held.threshold_ms
    held_s = format_number(held.threshold_ms // 1000)
    lag_text = format_duration(lag.threshold_ms)
    down = format_duration(alerts["SmswatchSourceDown"].for_ms)
    interval = format_duration(spec.poll_interval_ms)
    exporter_down = format_duration(alerts["SmswatchExporterDown"].for_ms)
    absent = format_duration(alerts["SmswatchExporterAbsent"].for_ms)
    return [
        ctx.alert(
            "SmswatchSourceDown",
            f"{ctx.metric('smswatch_source_up')} == 0\n",
            severity="warning",
            summary=say(
                "An upstream API of smswatch cannot be polled.",
                "smswatch 无法轮询某个上游接口。",
            ),
            description=say(
                "The last polls of source {{ $labels.source }} failed (smswatch_source_up is 0 "
                f"for {down}): its numbers are frozen and its alerts cannot fire.",
                "数据源 {{ $labels.source }} 最近的轮询均失败（smswatch_source_up 已为 0 持续 "
                f"{down}）：其数据已冻结，依赖它的告警无法触发。",
            ),
            dashboard="oncall",
        ),
        ctx.alert(
            "SmswatchSourceStale",
            (
                f"(time() - {ctx.metric('smswatch_source_last_success_timestamp_seconds')})\n"
                f"* on (job, instance, source) {polled(ctx)}\n"
                f"> {ctx.stale_seconds(stale_ms)}\n"
            ),
            severity="warning",
            summary=say(
                "An upstream API of smswatch has not been polled successfully for a while.",
                "smswatch 已有一段时间未能成功轮询某个上游接口。",
            ),
            description=say(
                "Source {{ $labels.source }} has had no successful poll for "
                "{{ $value | humanizeDuration }} (more than "
                f"{spec.stale_after_polls} poll intervals of {interval}): a poll may be hung.",
                "数据源 {{ $labels.source }} 已有 {{ $value | humanizeDuration }} 没有成功轮询"
                f"（超过 {spec.stale_after_polls} 个 {interval} 的轮询周期）：某次轮询可能已卡死。",
            ),
            dashboard="oncall",
        ),
        ctx.alert(
            "SmswatchSourceLagging",
            (
                f"{excess_lag(ctx)}\n"
                f"* on (job, instance, source) {polled(ctx, LAG)}\n"
                f"> {format_number(lag.threshold_ms // 1000)}\n"
            ),
            severity="warning",
            summary=say(
                "An upstream feed is complete only up to a time far in the past.",
                "某上游数据流只完整到很久以前的时间点。",
            ),
            description=say(
                "Source {{ $labels.source }} is complete only up to "
                f"{{{{ $value | humanizeDuration }}}} ago (threshold {lag_text}): receipts wait "
                "longer for their outcome, and receipt alerts come late.",
                "数据源 {{ $labels.source }} 的数据只完整到 {{ $value | humanizeDuration }} 之前"
                f"（阈值 {lag_text}）：签购单需要更久才能判定结果，签购单相关告警也会延迟。",
            ),
            dashboard="oncall",
        ),
        ctx.alert(
            "SmswatchDecisionsHeldBack",
            (
                f"{ctx.metric('smswatch_source_holding_decisions')} == 1\n"
                f"and on (job, instance)\n"
                f"{ctx.metric('smswatch_decisions_lag_seconds')} > {held_s}\n"
                f"unless on (job, instance, source)\n"
                f"{excess_lag(ctx)} <= {held_s}\n"
            ),
            severity="warning",
            summary=say(
                "Receipt decisions wait for one source far behind the clock.",
                "签购单的判定在等待一个远远落后于时钟的数据源。",
            ),
            description=say(
                "Receipts are decided only up to more than "
                f"{format_duration(held.threshold_ms)} ago, and source {{{{ $labels.source }}}} "
                "is the one holding them back: receipt alerts and the receipt SLO come late.",
                f"签购单只判定到 {format_duration(held.threshold_ms)} 以前，拖慢判定的是数据源 "
                "{{ $labels.source }}：签购单相关告警和签购单 SLO 都会延迟。",
            ),
            dashboard="oncall",
        ),
        ctx.alert(
            "SmswatchExporterDown",
            f"{up} == 0\n",
            severity="critical",
            summary=say(
                "Prometheus cannot scrape the smswatch exporter.",
                "Prometheus 无法抓取 smswatch exporter。",
            ),
            description=say(
                "Scrapes of {{ $labels.instance }} (job {{ $labels.job }}) have failed for "
                f"{exporter_down}: transaction SMS are not monitored and no SMS alert can fire.",
                "对 {{ $labels.instance }}（job {{ $labels.job }}）的抓取已连续失败 "
                f"{exporter_down}：交易短信处于无人监控状态，任何短信告警都无法触发。",
            ),
            dashboard="oncall",
        ),
        ctx.alert(
            "SmswatchExporterAbsent",
            f"absent({up})\n",
            severity="critical",
            summary=say(
                "Prometheus has no smswatch exporter target at all.",
                "Prometheus 中完全没有 smswatch exporter 的抓取目标。",
            ),
            description=say(
                "No target of job {{ $labels.job }} has been scraped for "
                f"{absent}: the scrape config or service discovery lost the exporter. "
                "Transaction SMS are not monitored.",
                f"job {{{{ $labels.job }}}} 已有 {absent} 没有任何目标被抓取：抓取配置或服务发现"
                "丢失了 exporter。交易短信处于无人监控状态。",
            ),
        ),
        Alert(
            name="Watchdog",
            expr="vector(1)\n",
            for_ms=None,
            severity="info",
            summary=say(
                "The alerting pipeline is alive (this alert always fires).",
                "告警链路正常（本告警始终处于触发状态）。",
            ),
            description=say(
                "Watchdog always fires. If the dead man's switch stops receiving it, Prometheus, "
                "the rules or Alertmanager are broken and no other alert would reach on-call.",
                "Watchdog 始终触发。如果“死人开关”不再收到它，说明 Prometheus、告警规则或 "
                "Alertmanager 出了故障，其他任何告警都无法送达值班人员。",
            ),
        ),
    ]


def replica_alerts(ctx: Context) -> list[Alert]:
    """Replicas sharing one state: a source nobody polls, no primary (exporter/leases.py).
    Judged over every replica of the job (`max by`): each exports its own view."""
    alerts = ctx.spec.alerts
    unpolled = format_duration(alerts["SmswatchSourceUnpolled"].for_ms)
    no_primary = format_duration(alerts["SmswatchNoPrimary"].for_ms)
    return [
        ctx.alert(
            "SmswatchSourceUnpolled",
            f"max by (job, source) ({ctx.metric('smswatch_source_leader')}) < 1\n",
            severity="warning",
            summary=say(
                "No smswatch replica polls an upstream source.",
                "没有任何 smswatch 副本在轮询某个上游数据源。",
            ),
            description=say(
                "No replica of job {{ $labels.job }} has held the lease of source "
                f"{{{{ $labels.source }}}} for {unpolled}: its numbers are frozen. The replicas "
                "cannot write their leases (state database) or none is running its poller.",
                "job {{ $labels.job }} 的所有副本都未持有数据源 {{ $labels.source }} 的租约已达 "
                f"{unpolled}：其数据已冻结。副本无法写入租约（状态数据库），或没有副本在运行轮询。",
            ),
            dashboard="oncall",
        ),
        ctx.alert(
            "SmswatchNoPrimary",
            f"max by (job) ({ctx.metric('smswatch_primary')}) < 1\n",
            severity="critical",
            summary=say(
                "No smswatch replica is the primary: business series and singleton jobs stopped.",
                "没有任何 smswatch 副本担任主副本：业务指标和单实例任务已停止。",
            ),
            description=say(
                "No replica of job {{ $labels.job }} has held the primary lease for "
                f"{no_primary}: nobody exports the SMS and receipt series (every SMS alert is "
                "blind) and no report, canary probe or prune runs.",
                "job {{ $labels.job }} 的所有副本都未持有主副本租约已达 "
                f"{no_primary}：没有副本导出短信和签购单指标（所有短信告警都失明），"
                "报表、拨测和清理任务都不会运行。",
            ),
            dashboard="oncall",
        ),
    ]


def health_groups(ctx: Context) -> list[Group]:
    return [
        blindness_group(ctx),
        Group("smswatch-health", tuple(health_alerts(ctx))),
        Group("smswatch-replicas", tuple(replica_alerts(ctx))),
    ]
