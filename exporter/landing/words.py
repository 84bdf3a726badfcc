"""The landing page's words in English and Simplified Chinese, and how a reader's language is
chosen. Cause names and meanings are not here: they come from `exporter.vocabulary`."""

from __future__ import annotations

from exporter.vocabulary import LANGUAGES

WORDS: dict[str, dict[str, str]] = {
    "en": {
        "title": "smswatch",
        "tagline": "Card-payment SMS monitoring: is every cardholder told of their payment?",
        "other_lang": "中文",
        "as_of": "As of {time} ({zone}), version {version}.",
        "hour": "Last hour",
        "today": "Today",
        "windows": (
            "Last hour: outcomes decided in the last 60 minutes (to the minute). Today: since "
            "00:00 {zone}. From the exporter's own state; Prometheus is not needed."
        ),
        "gateways": "SMS delivery by gateway",
        "gateways_note": (
            "Of the SMS that reached a final status, the share not failed on the bank's side. "
            "Failures on the cardholder's side (wrong number, no signal, carrier filtering) are "
            "left out, as the alerts count them."
        ),
        "acquirers": "Receipt notification by acquirer",
        "acquirers_note": (
            "Of the decided receipts (approved payments that should be notified), the share "
            "notified or failed on the cardholder's side only."
        ),
        "gateway": "Gateway",
        "acquirer": "Acquirer",
        "objective": "Objective",
        "no_events": "no outcome",
        "bad_of": "{bad} bad of {events}",
        "below": "below",
        "met": "met",
        "causes": "Receipts without SMS, by cause",
        "causes_note": (
            "Approved payments whose cardholder got no delivered SMS: none sent in time, or "
            "sent and not delivered."
        ),
        "cause": "Cause",
        "no_causes": "None in these windows.",
        "cardholder_side": "cardholder's side",
        "bank_side": "bank's side",
        "alerts": "Alerts firing now",
        "alerts_off": (
            "No Prometheus is configured (lookup.prometheus or reports.prometheus_url): alerts "
            "are not shown here."
        ),
        "alerts_down": (
            "Prometheus could not be asked ({error}): the alerts firing now are unknown. The "
            "figures on this page do not need it and are current."
        ),
        "alerts_none": "No alert is firing.",
        "runbook": "runbook",
        "since": "since {time}",
        "sources": "Sources",
        "source": "Source",
        "status": "Status",
        "last_success": "Last success",
        "lag": "Lag",
        "up": "up",
        "down": "down",
        "starting": "not polled yet",
        "listening": "receives pushes",
        "stale": "stale",
        "lagging": "lagging",
        "never": "never",
        "expected_lag": "{lag} by design",
        "unlisted": "Provider codes no table knows",
        "unlisted_note": (
            'Counted as smswatch_sms_ambiguous_total{code="unlisted"} with their status\'s '
            "default cause; a new code from a provider shows here first."
        ),
        "unlisted_none": "None seen.",
        "code": "Code",
        "seen": "Seen",
        "links": "Endpoints",
        "metrics": "metrics for Prometheus",
        "ready": "readiness",
        "healthz": "liveness",
        "lookup": "the support desk's transaction lookup",
    },
    "zh-CN": {
        "title": "smswatch",
        "tagline": "银行卡交易短信监控：每一笔刷卡消费，持卡人都收到短信了吗？",
        "other_lang": "English",
        "as_of": "数据时间 {time}（{zone}），版本 {version}。",
        "hour": "最近一小时",
        "today": "今天",
        "windows": (
            "最近一小时：最近 60 分钟内（按分钟计）判定的结果。今天：{zone} 00:00 起。"
            "数据来自导出器自身的状态，无需 Prometheus。"
        ),
        "gateways": "各短信网关的送达率",
        "gateways_note": (
            "在已有最终状态的短信中，未因银行侧原因失败的比例。持卡人侧原因（手机号错误、"
            "信号弱、运营商拦截）不计入，与告警口径一致。"
        ),
        "acquirers": "各收单机构的交易通知率",
        "acquirers_note": "在已判定的应通知交易中，已通知或仅因持卡人侧原因失败的比例。",
        "gateway": "网关",
        "acquirer": "收单机构",
        "objective": "目标",
        "no_events": "暂无结果",
        "bad_of": "{events} 条中 {bad} 条失败",
        "below": "未达标",
        "met": "达标",
        "causes": "未收到短信的交易（按原因）",
        "causes_note": "已批准但持卡人未收到短信的交易：未按时发送，或已发送但未送达。",
        "cause": "原因",
        "no_causes": "这两个时段内没有。",
        "cardholder_side": "持卡人侧",
        "bank_side": "银行侧",
        "alerts": "正在触发的告警",
        "alerts_off": (
            "未配置 Prometheus（lookup.prometheus 或 reports.prometheus_url），此处不显示告警。"
        ),
        "alerts_down": (
            "无法查询 Prometheus（{error}）：当前告警未知。本页其他数据不依赖它，仍为最新。"
        ),
        "alerts_none": "当前没有告警。",
        "runbook": "处置手册",
        "since": "自 {time} 起",
        "sources": "数据源",
        "source": "数据源",
        "status": "状态",
        "last_success": "最近成功",
        "lag": "延迟",
        "up": "正常",
        "down": "故障",
        "starting": "尚未轮询",
        "listening": "接收推送",
        "stale": "停滞",
        "lagging": "延迟过大",
        "never": "从未",
        "expected_lag": "设计延迟 {lag}",
        "unlisted": "未收录的服务商代码",
        "unlisted_note": (
            '计入 smswatch_sms_ambiguous_total{code="unlisted"}，原因按其状态的默认原因归类；'
            "服务商的新代码会首先出现在这里。"
        ),
        "unlisted_none": "尚未出现。",
        "code": "代码",
        "seen": "次数",
        "links": "接口",
        "metrics": "供 Prometheus 抓取的指标",
        "ready": "就绪检查",
        "healthz": "存活检查",
        "lookup": "客服交易查询",
    },
}

assert set(WORDS) == set(LANGUAGES) and all(set(w) == set(WORDS["en"]) for w in WORDS.values())


def choose_language(asked: str, accept_language: str) -> str:
    """`?lang=` when it names a language we speak (`zh` reads as zh-CN), else the first of
    the Accept-Language header's ranges we speak (by q-value), else English."""
    named = _language(asked)
    if named:
        return named
    ranges = []
    for position, part in enumerate(accept_language.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag and quality > 0:
            ranges.append((-quality, position, tag))
    for _, _, tag in sorted(ranges):
        spoken = _language(tag)
        if spoken:
            return spoken
    return "en"


def _language(tag: str) -> str:
    """The language we speak for a tag ("" when none): any Chinese reads zh-CN."""
    primary = tag.strip().lower().split("-")[0]
    if primary == "zh":
        return "zh-CN"
    if primary == "en":
        return "en"
    return ""
