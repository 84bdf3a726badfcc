"""The words of a report in each language (en, zh-CN); figures are never translated.

Both catalogues have exactly the same keys (a test checks it).
"""

from __future__ import annotations

from collections.abc import Mapping

LANGUAGES: tuple[str, ...] = ("en", "zh-CN")

#: The font every page and chart is drawn in: it covers Latin and Chinese (fonts-noto-cjk).
CJK_FONT = "Noto Sans CJK SC"

EN: dict[str, str] = {
    "title": "Card transaction SMS notification: compliance report",
    "kind.daily": "Daily report",
    "kind.weekly": "Weekly report",
    "kind.monthly": "Monthly report",
    "kind.custom": "Report for a custom period",
    "header.report_id": "Report ID",
    "header.period": "Period",
    "header.timezone": "Time zone",
    "header.generated": "Generated",
    "header.sources": "Data sources",
    "header.prometheus": "Prometheus",
    "header.selector": "Series selector",
    "header.exporter": "smswatch exporter version",
    "header.objectives": "Objectives",
    "header.objectives_text": "SMS delivery (bank-side SLI, per gateway and carrier) ≥ "
    "{delivered} %; receipt notification (bank-side SLI, per acquirer) ≥ {receipts} %; "
    "notified within {seconds} s ≥ {within} %",
    "header.objectives_source": "set as report options; defaults 99.5 %, 97.5 % and 95 % "
    "within 60 s, the objectives of the alerts",
    "header.files": "Figure files (SHA-256)",
    "header.manifest": "Every output file of this report and its SHA-256 are listed in "
    "manifest.json and SHA256SUMS beside it (check with: sha256sum -c SHA256SUMS).",
    "header.retention": "retention",
    "header.previous": "Previous period (for trends)",
    "header.none": "none",
    "complete.yes": "Data complete: every source was up and current and the exporter was "
    "scraped for the whole period.",
    "complete.no": "These figures rest on incomplete data.",
    "complete.no_sources": "No source health series (smswatch_source_up) in the period.",
    "complete.no_exporter": "No scrape health series (up) for the exporter in the period.",
    "complete.source_gap": "source {name}: {reason} for {duration} in total",
    "complete.exporter_gap": "exporter {name}: {reason} for {duration} in total",
    "complete.resets": "Counter resets (exporter restarts without its state) handled: {count}; "
    "series absent across a boundary: {gaps}.",
    "reason.down": "down",
    "reason.lagging": "lagging",
    "reason.no_data": "no data",
    "s1": "1. Coverage",
    "s1.intro": "Approved card transactions, the receipts among them that should notify the "
    "cardholder (counted once their outcome is known), and how many got an SMS.",
    "s2": "2. Delivery",
    "s2.intro": "Success = delivered ÷ all final outcomes: the overall delivery rate, shown "
    "but not judged. The objective judges the bank-side SLI, the same one the alerts page on: "
    "of all final outcomes less the cardholder-side ones (invalid number, unreachable handset, "
    "filtered by the carrier), the share not failed on the bank's side (its SMS platform, "
    "integrations, throttling, terminal configuration, unknown or missing). Cardholder-side "
    "failures count neither good nor bad; their share is shown beside it.",
    "s2.acquirer": "Receipts by acquirer (transaction → cardholder notified)",
    "s2.gateway": "SMS by gateway (final statuses)",
    "s2.carrier": "SMS by carrier (final statuses)",
    "s2.chart": "Bank-side SLI per {bucket} against the objectives",
    "s3": "3. Latency",
    "s3.intro": "Transaction → SMS delivered, from the histogram buckets of the period. "
    "Quantiles are interpolated inside their bucket as Prometheus' histogram_quantile does; "
    "the share within {seconds} s is exact (it is a bucket bound).",
    "s3.receipts": "Transaction → SMS delivered (receipts), by acquirer",
    "s3.sms": "SMS submitted → delivered, by gateway",
    "s3.chart": "Latency distribution (transaction → SMS delivered)",
    "s4": "4. Causes",
    "s4.intro": "Receipts not notified and SMS not delivered, by cause, with the change "
    "against the previous period.",
    "s4.chart": "Receipts not notified per {bucket}, by cause",
    "s5": "5. Incidents",
    "s5.intro": "Every alert that fired in the period, from Prometheus' ALERTS history.",
    "s5.none": "No alert fired in the period.",
    "s5.method": "Start = first rule evaluation that found the alert firing; end = the "
    "evaluation that found it resolved. Accurate to the rule evaluation interval "
    "({evaluation} s); queried with a {step} s step; incidents already firing up to one day "
    "before the period are shown with their true start. MTTR = mean start → end of the "
    "incidents resolved in the period.",
    "s5.totals": "Totals",
    "s6": "6. Terminals",
    "s6.intro": "Terminal inventory at the period end, and receipts left without SMS because "
    "of the terminal's configuration during the period.",
    "s6.none": "No terminal inventory was exported at the period end.",
    "s7": "7. Data completeness",
    "s7.intro": "How long each source was up and current (event-time lag ≤ {lag}) and the "
    "exporter was scraped; checked per {step} s window.",
    "s7.gaps": "Gaps",
    "s7.no_gaps": "No gaps.",
    "s8": "8. How the figures are computed",
    "s8.text": "Counts are exact counter increases: for each series the last sample at or "
    "before the period end minus the last sample at or before its start, with every counter "
    "reset added back, so each event belongs to the period in which Prometheus first scraped "
    "it and consecutive reports add up. Prometheus' increase() is not used because it "
    "extrapolates to the window edges. Success and coverage ratios are computed from these "
    "counts, never by averaging ratios; percentages are truncated (never rounded up) to two "
    "decimals. Latency comes from the histogram bucket increases of the period.",
    "chart.objective": "objective",
    "chart.receipts": "receipts",
    "chart.sms": "SMS",
    "chart.sli": "bank-side SLI %",
    "chart.count": "count",
    "chart.seconds": "seconds (bucket upper bound)",
    "chart.within": "{share} % within {seconds} s",
    "chart.no_data": "no data",
    "bucket.hour": "hour",
    "bucket.day": "day",
    "bucket.month": "month",
    "col.item": "Item",
    "col.value": "Value",
    "col.acquirer": "Acquirer",
    "col.gateway": "Gateway",
    "col.carrier": "Carrier",
    "col.scope": "Scope",
    "col.receipts": "Receipts",
    "col.messages": "Messages",
    "col.delivered": "Delivered",
    "col.failed": "Failed",
    "col.missing": "Missing",
    "col.unknown": "Unknown",
    "col.undelivered": "Undelivered",
    "col.expired": "Expired",
    "col.rejected": "Rejected",
    "col.success": "Success",
    "col.objective": "Objective",
    "col.met": "Met",
    "col.cardholder_side": "Cardholder-side",
    "col.cardholder_share": "Cardholder-side share",
    "col.sli_events": "SLI events",
    "col.bank_side": "Bank-side failures",
    "col.sli": "Bank-side SLI",
    "col.notified": "Notified",
    "col.within": "Within {seconds} s",
    "col.share": "Share",
    "col.cause": "Cause",
    "col.meaning": "Meaning",
    "col.not_notified": "Receipts not notified",
    "col.previous": "Previous",
    "col.change": "Change",
    "col.failed_sms": "SMS not delivered",
    "col.alert": "Alert",
    "col.severity": "Severity",
    "col.start": "Start",
    "col.end": "End",
    "col.duration": "Duration",
    "col.affected": "Affected",
    "col.note": "Note",
    "col.terminals": "Terminals",
    "col.notice_off": "SMS notice off",
    "col.outdated": "Outdated software",
    "col.missing_terminal": "Receipts without SMS (terminal config)",
    "col.source": "Source",
    "col.kind": "Kind",
    "col.up": "Up",
    "col.current": "Up and current",
    "col.gaps": "Gaps",
    "col.reason": "Reason",
    "col.bucket_start": "From",
    "col.bucket_end": "To",
    "col.upper": "Up to (s)",
    "col.count": "Count",
    "all": "all",
    "yes": "met",
    "no": "not met",
    "ongoing": "ongoing",
    "before": "before the period",
    "new": "new",
    "above": "above",
    "kind.source": "source",
    "kind.exporter": "exporter",
    "item.approved": "Approved transactions",
    "item.declined": "Declined transactions",
    "item.reversed": "Reversed transactions",
    "item.receipts": "Receipts that should notify (outcome known)",
    "item.receipts_with_sms": "… with an SMS submitted",
    "item.receipts_missing": "… without SMS (missing)",
    "item.sms_submitted": "SMS submitted (all)",
    "item.coverage": "Coverage (receipts with SMS ÷ receipts that should notify)",
    "item.incidents": "Incidents",
    "item.critical": "… critical",
    "item.warning": "… warning",
    "item.firing": "Firing time inside the period",
    "item.mttr": "MTTR (mean time to resolve)",
    "item.resolved": "Incidents resolved in the period",
    "mail.subject": "{title} · {kind} {report_id}",
    "mail.greeting": "Hello,",
    "mail.attached": "Attached: the smswatch compliance report ({kind}) for {start} to {end} "
    "({zone}) as a PDF, with manifest.json (every file of the report and its SHA-256).",
    "mail.manifest_sha256": "SHA-256 of manifest.json (compare it with the one on record):",
    "mail.files": "SHA-256 of the attached files, as manifest.json records them:",
    "mail.check": "To check the attachments: sha256sum manifest.json and the files above, or "
    "sha256sum -c SHA256SUMS in the report directory on the smswatch server.",
    "footer": "smswatch compliance report",
}

ZH: dict[str, str] = {
    "title": "银行卡交易短信通知合规报告",
    "kind.daily": "日报",
    "kind.weekly": "周报",
    "kind.monthly": "月报",
    "kind.custom": "自定义期间报告",
    "header.report_id": "报告编号",
    "header.period": "统计期间",
    "header.timezone": "时区",
    "header.generated": "生成时间",
    "header.sources": "数据来源",
    "header.prometheus": "Prometheus",
    "header.selector": "序列选择器",
    "header.exporter": "smswatch 导出器版本",
    "header.objectives": "目标",
    "header.objectives_text": "短信送达（银行侧 SLI，按网关及运营商）≥ {delivered} %；"
    "签购单通知（银行侧 SLI，按收单机构）≥ {receipts} %；{seconds} 秒内通知占比 ≥ {within} %",
    "header.objectives_source": "由报告参数设定；默认 99.5 %、97.5 % 及 60 秒内 95 %，"
    "与告警目标一致",
    "header.files": "数据文件（SHA-256）",
    "header.manifest": "本报告的全部输出文件及其 SHA-256 列于同目录的 manifest.json 与 "
    "SHA256SUMS（校验命令：sha256sum -c SHA256SUMS）。",
    "header.retention": "保留期",
    "header.previous": "上一期间（用于趋势）",
    "header.none": "无",
    "complete.yes": "数据完整：整个期间内各数据源均在线且及时，导出器均被正常采集。",
    "complete.no": "本报告的数据不完整。",
    "complete.no_sources": "期间内没有数据源健康序列（smswatch_source_up）。",
    "complete.no_exporter": "期间内没有导出器的采集健康序列（up）。",
    "complete.source_gap": "数据源 {name}：{reason}，共 {duration}",
    "complete.exporter_gap": "导出器 {name}：{reason}，共 {duration}",
    "complete.resets": "已处理计数器重置（导出器丢失状态后重启）：{count} 次；跨边界缺失的序列："
    "{gaps} 个。",
    "reason.down": "中断",
    "reason.lagging": "滞后",
    "reason.no_data": "无数据",
    "s1": "1. 覆盖情况",
    "s1.intro": "批准的银行卡交易、其中应通知持卡人的签购单（结果确定后计入），"
    "以及获得短信的数量。",
    "s2": "2. 送达情况",
    "s2.intro": "成功率 = 已送达 ÷ 全部最终结果，即总体送达率，仅作展示，不作考核。"
    "目标考核的是银行侧 SLI，与告警所依据的指标相同：在全部最终结果中剔除持卡人侧原因"
    "（号码无效、手机不可达、被运营商拦截）后，未因银行侧原因（短信平台、系统对接、限流、"
    "终端配置、未知或缺失）失败的占比。持卡人侧失败既不计为成功也不计为失败，其占比列于旁边。",
    "s2.acquirer": "按收单机构统计签购单（交易 → 持卡人收到通知）",
    "s2.gateway": "按短信网关统计短信（最终状态）",
    "s2.carrier": "按运营商统计短信（最终状态）",
    "s2.chart": "每{bucket}银行侧 SLI 与目标",
    "s3": "3. 时延",
    "s3.intro": "交易 → 短信送达，取自本期间的直方图分桶。分位数按 Prometheus histogram_quantile "
    "的方法在桶内线性插值；{seconds} 秒内占比为精确值（该值是桶边界）。",
    "s3.receipts": "交易 → 短信送达（签购单），按收单机构",
    "s3.sms": "短信提交 → 送达，按短信网关",
    "s3.chart": "时延分布（交易 → 短信送达）",
    "s4": "4. 原因分析",
    "s4.intro": "未通知的签购单与未送达的短信，按原因统计，并与上一期间对比。",
    "s4.chart": "每{bucket}未通知签购单（按原因）",
    "s5": "5. 事件",
    "s5.intro": "期间内触发的全部告警，取自 Prometheus 的 ALERTS 历史。",
    "s5.none": "期间内没有告警触发。",
    "s5.method": "开始 = 首次判定告警触发的规则评估时刻；结束 = 判定告警恢复的评估时刻。"
    "精度为规则评估间隔（{evaluation} 秒）；查询步长 {step} 秒；"
    "期间开始前一天内已触发的事件显示其真实开始时间。"
    "MTTR = 期间内已恢复事件从开始到结束的平均时长。",
    "s5.totals": "合计",
    "s6": "6. 终端",
    "s6.intro": "期间结束时的终端清单，以及期间内因终端配置导致无短信的签购单。",
    "s6.none": "期间结束时没有导出终端清单。",
    "s7": "7. 数据完整性",
    "s7.intro": "各数据源在线且及时（事件时间滞后 ≤ {lag}）以及导出器被采集的时长；"
    "按 {step} 秒窗口检查。",
    "s7.gaps": "数据缺口",
    "s7.no_gaps": "没有数据缺口。",
    "s8": "8. 计算方法",
    "s8.text": "计数为精确的计数器增量：每个序列取期间结束时刻及之前的最后一个样本，"
    "减去期间开始时刻及之前的最后一个样本，并补回每次计数器重置，"
    "因此每个事件归入 Prometheus 首次采集到它的期间，相邻报告可以相加。"
    "未使用 Prometheus 的 increase()，因为它会外推到窗口边缘。"
    "成功率与覆盖率由这些计数直接计算，从不对比率求平均；"
    "百分比截断（从不进位）到两位小数。时延取自本期间直方图分桶的增量。",
    "chart.objective": "目标",
    "chart.receipts": "签购单",
    "chart.sms": "短信",
    "chart.sli": "银行侧 SLI %",
    "chart.count": "数量",
    "chart.seconds": "秒（桶上界）",
    "chart.within": "{seconds} 秒内 {share} %",
    "chart.no_data": "无数据",
    "bucket.hour": "小时",
    "bucket.day": "日",
    "bucket.month": "月",
    "col.item": "项目",
    "col.value": "数值",
    "col.acquirer": "收单机构",
    "col.gateway": "短信网关",
    "col.carrier": "运营商",
    "col.scope": "范围",
    "col.receipts": "签购单",
    "col.messages": "短信",
    "col.delivered": "已送达",
    "col.failed": "失败",
    "col.missing": "缺失",
    "col.unknown": "未知",
    "col.undelivered": "未送达",
    "col.expired": "过期",
    "col.rejected": "被拒",
    "col.success": "成功率",
    "col.objective": "目标",
    "col.met": "达标",
    "col.cardholder_side": "持卡人侧",
    "col.cardholder_share": "持卡人侧占比",
    "col.sli_events": "SLI 计数",
    "col.bank_side": "银行侧失败",
    "col.sli": "银行侧 SLI",
    "col.notified": "已通知",
    "col.within": "{seconds} 秒内",
    "col.share": "占比",
    "col.cause": "原因",
    "col.meaning": "含义",
    "col.not_notified": "未通知签购单",
    "col.previous": "上期",
    "col.change": "变化",
    "col.failed_sms": "未送达短信",
    "col.alert": "告警",
    "col.severity": "级别",
    "col.start": "开始",
    "col.end": "结束",
    "col.duration": "持续时长",
    "col.affected": "影响范围",
    "col.note": "备注",
    "col.terminals": "终端数",
    "col.notice_off": "短信通知关闭",
    "col.outdated": "软件版本过旧",
    "col.missing_terminal": "无短信签购单（终端配置）",
    "col.source": "数据源",
    "col.kind": "类型",
    "col.up": "在线",
    "col.current": "在线且及时",
    "col.gaps": "缺口数",
    "col.reason": "原因",
    "col.bucket_start": "起",
    "col.bucket_end": "止",
    "col.upper": "上界（秒）",
    "col.count": "数量",
    "all": "全部",
    "yes": "达标",
    "no": "未达标",
    "ongoing": "持续中",
    "before": "期间开始前",
    "new": "新增",
    "above": "高于",
    "kind.source": "数据源",
    "kind.exporter": "导出器",
    "item.approved": "批准的交易",
    "item.declined": "拒绝的交易",
    "item.reversed": "冲正的交易",
    "item.receipts": "应通知的签购单（结果已确定）",
    "item.receipts_with_sms": "… 其中已提交短信",
    "item.receipts_missing": "… 其中无短信（缺失）",
    "item.sms_submitted": "已提交短信（全部）",
    "item.coverage": "覆盖率（有短信的签购单 ÷ 应通知的签购单）",
    "item.incidents": "事件数",
    "item.critical": "… 严重",
    "item.warning": "… 警告",
    "item.firing": "期间内告警触发时长",
    "item.mttr": "MTTR（平均恢复时长）",
    "item.resolved": "期间内已恢复的事件",
    "mail.subject": "{title} · {kind} {report_id}",
    "mail.greeting": "您好：",
    "mail.attached": "附件为 smswatch {kind}，统计期间 {start} 至 {end}（{zone}），PDF 格式；"
    "另附 manifest.json，列出本报告的全部文件及其 SHA-256。",
    "mail.manifest_sha256": "manifest.json 的 SHA-256（请与存档记录核对）：",
    "mail.files": "附件的 SHA-256（与 manifest.json 所记一致）：",
    "mail.check": "校验附件：对 manifest.json 及上列文件计算 sha256sum；或在 smswatch 服务器的"
    "报告目录中执行 sha256sum -c SHA256SUMS。",
    "footer": "smswatch 合规报告",
}

CATALOGUES: dict[str, Mapping[str, str]] = {"en": EN, "zh-CN": ZH}


class Texts:
    """The words of one language; `t(key, **values)` formats a text."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self._words = CATALOGUES[lang]

    def __call__(self, key: str, **values: object) -> str:
        text = self._words.get(key, key)
        return text.format(**values) if values else text

    def has(self, key: str) -> bool:
        return key in self._words
