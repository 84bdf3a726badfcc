"""One transaction explained for a support agent: its situation, a timeline in plain words, advice.

Pure: from the retained rows (`store.LookupRows`) and the alerts firing at the time, in English
or Simplified Chinese. The situation is the receipt's cause when it was not notified
(`advice.yaml` keys), else what is going on: delivered, on its way, not sent yet, cancelled, ...
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from exporter.catalogue import CAUSES
from exporter.lookup.advice import (
    SITUATIONS,
    SITUATIONS_BESIDE_CAUSES,
    VOCABULARY_LANGUAGE,
    Advice,
    advice_for,
)
from exporter.lookup.alerts import FiringAlert
from exporter.reconcile import parse_timeline
from exporter.store import StoredMessage, StoredTransaction
from exporter.timestamps import format_rfc3339_ms
from exporter.vocabulary import cause_words

FINAL = frozenset({"delivered", "undelivered", "expired", "rejected", "failed", "unknown"})
ZERO_DECIMAL_CURRENCIES = frozenset({"JPY", "KRW", "VND", "CLP", "ISK", "UGX", "XAF", "XOF"})

#: Every sentence the timeline and summaries use, per language.
WORDS: dict[str, dict[str, str]] = {
    "en": {
        "payment_approved": "Card payment of {amount} approved at terminal {terminal} "
        "(merchant {merchant}), card {pan}.",
        "payment_declined": "Card payment of {amount} declined at terminal {terminal} "
        "(response code {code}).",
        "payment_reversal": "Cancellation of payment {original} at terminal {terminal}.",
        "not_expected": "This card is not registered for transaction SMS: none is sent.",
        "submitted": "The bank's SMS platform accepted the SMS to {phone} ({carrier}), "
        "{delay} after the payment.",
        "too_late": "This SMS was sent too late to count: more than {grace} after the payment.",
        "another": "Another SMS for the same payment.",
        "enroute": "Handed to the mobile carrier, on its way to the phone",
        "delivered": "Delivered to the phone",
        "undelivered": "The carrier could not deliver it",
        "expired": "The carrier gave up: the phone could not be reached in time",
        "rejected": "Rejected before it reached the phone",
        "failed": "Sending failed",
        "unknown": "The carrier reported its status as unknown",
        "code": " (code {code})",
        "end": ".",
        "later_report": "A later report said “{status}”: the first final report counts.",
        "gave_up": "No delivery report within {limit} of sending: the result is unknown.",
        "missing": "No SMS was sent within {grace} of the payment.",
        "notice_off": " The terminal's SMS notice setting was switched off at the time.",
        "software_old": " The terminal runs outdated software ({version}).",
        "reversed": "The payment was cancelled (reversed).",
        "alert_started": "Incident alert {alert} started: {title}.",
        "alert_ended": "Incident alert {alert} ended.",
        "incident_item": "{alert} ({severity}{cause}), firing from {start}{earlier} {until}",
        "incident_cause": ", {name}",
        "until": "until {end}",
        "continues": "and still at {end}",
        "earlier": " or earlier",
        "summary_delivered": "SMS delivered to {phone} at {time}, {delay} after the payment.",
        "summary_failed": "SMS to {phone} not delivered: {status}",
        "summary_missing": "No SMS was sent within {grace} of the payment.",
        "summary_late": " An SMS was sent later, at {time}.",
        "summary_unknown": "No delivery report for the SMS to {phone} sent at {time}.",
        "summary_on_its_way": "SMS to {phone} sent at {time}; delivery not confirmed yet.",
        "summary_awaiting": "No SMS sent yet for this payment.",
        "summary_reversed": "Payment cancelled at {time}: no SMS was due.",
        "summary_declined": "Payment declined (response code {code}): no SMS was due.",
        "summary_not_registered": "Card not registered for transaction SMS: none was due.",
        "summary_reversal": "Cancels payment {original}.",
        "badge_good": "Delivered",
        "badge_wait": "Waiting",
        "badge_failed": "Not delivered",
        "badge_missing": "No SMS sent",
        "badge_unknown": "Not confirmed",
        "badge_info": "No SMS due",
        "s": "{n} s",
        "min": "{n} min",
        "min_s": "{m} min {s} s",
        "h_min": "{h} h {m} min",
    },
    "zh": {
        "payment_approved": "在终端 {terminal}（商户 {merchant}）刷卡消费 {amount} 成功，"
        "卡号 {pan}。",
        "payment_declined": "在终端 {terminal} 刷卡消费 {amount} 被拒绝（应答码 {code}）。",
        "payment_reversal": "在终端 {terminal} 撤销交易 {original}。",
        "not_expected": "该卡未开通动账短信，不发送短信。",
        "submitted": "银行短信平台已受理发往 {phone}（{carrier}）的短信，距交易 {delay}。",
        "too_late": "该短信发送过晚（距交易超过 {grace}），不计为及时通知。",
        "another": "同一笔交易的另一条短信。",
        "enroute": "已交给运营商，正在投递到手机",
        "delivered": "已送达手机",
        "undelivered": "运营商无法投递",
        "expired": "投递超时：在有效期内无法联系到手机",
        "rejected": "在到达手机之前被拒绝",
        "failed": "发送失败",
        "unknown": "运营商回执状态为未知",
        "code": "（错误码 {code}）",
        "end": "。",
        "later_report": "之后又收到回执“{status}”：以第一个最终回执为准。",
        "gave_up": "发送后 {limit}内没有送达回执：结果未知。",
        "missing": "交易后 {grace}内没有发送短信。",
        "notice_off": "当时该终端的短信通知设置为关闭。",
        "software_old": "该终端软件版本过旧（{version}）。",
        "reversed": "该笔交易已撤销（冲正）。",
        "alert_started": "故障告警 {alert} 开始：{title}。",
        "alert_ended": "故障告警 {alert} 结束。",
        "incident_item": "{alert}（{severity}{cause}），{start}{earlier} 开始告警，{until}",
        "incident_cause": "，{name}",
        "until": "{end} 结束",
        "continues": "{end} 时仍在告警",
        "earlier": "或更早",
        "summary_delivered": "短信已于 {time} 送达 {phone}，距交易 {delay}。",
        "summary_failed": "发往 {phone} 的短信未送达：{status}",
        "summary_missing": "交易后 {grace}内没有发送短信。",
        "summary_late": "之后于 {time} 发送过一条短信。",
        "summary_unknown": "{time} 发往 {phone} 的短信没有送达回执。",
        "summary_on_its_way": "发往 {phone} 的短信已于 {time} 发出，尚未确认送达。",
        "summary_awaiting": "该笔交易的短信尚未发送。",
        "summary_reversed": "交易已于 {time} 撤销，无需发送短信。",
        "summary_declined": "交易被拒绝（应答码 {code}），无需发送短信。",
        "summary_not_registered": "该卡未开通动账短信，无需发送短信。",
        "summary_reversal": "撤销交易 {original}。",
        "badge_good": "已送达",
        "badge_wait": "等待中",
        "badge_failed": "未送达",
        "badge_missing": "未发送短信",
        "badge_unknown": "未确认",
        "badge_info": "无需短信",
        "s": "{n} 秒",
        "min": "{n} 分钟",
        "min_s": "{m} 分 {s} 秒",
        "h_min": "{h} 小时 {m} 分",
    },
}


@dataclass(frozen=True)
class Step:
    """One line of the timeline."""

    at_ms: int
    kind: str  # payment | sms_submitted | sms_status | sms_later_report | sms_gave_up |
    #            missing | reversed | alert_started | alert_ended | note
    text: str
    tone: str  # good | bad | wait | info


@dataclass(frozen=True)
class Explained:
    """A transaction with everything an agent needs to answer the cardholder."""

    transaction: StoredTransaction
    messages: list[StoredMessage]
    situation: str
    advice: Advice
    summary: str
    steps: list[Step]
    alerts: list[FiringAlert] | None = field(default=None)  # None: alert history unavailable

    def to_json(self) -> dict[str, Any]:
        """The JSON form of the API (times RFC 3339 UTC)."""
        t = self.transaction
        receipt = None
        if t.state is not None:
            receipt = {
                "state": t.state,
                "outcome": t.outcome if t.state == "decided" else None,
                "cause": t.cause if t.state == "decided" else None,
                "decided_at": _ts(t.decide_ms) if t.state == "decided" else None,
                "notify_seconds": None if t.notify_ms is None else t.notify_ms / 1000,
                "reversed_at": _ts(t.reversed_ms),
            }
        return {
            "txn_id": t.txn_id,
            "rrn": t.rrn,
            "txn_time": _ts(t.txn_ms),
            "terminal_id": t.terminal_id,
            "merchant_id": t.merchant_id,
            "acquirer": t.acquirer,
            "source": t.source,
            "amount": t.amount,
            "currency": t.currency,
            "pan": t.pan,
            "result": t.result,
            "response_code": t.response_code,
            "sms_expected": t.sms_expected,
            "original_txn_id": t.original_txn_id or None,
            "receipt": receipt,
            "terminal": None
            if t.terminal_notice is None
            else {"sms_notice_enabled": t.terminal_notice, "software_version": t.terminal_software},
            "situation": self.situation,
            "title": self.advice.title,
            "explanation": self.advice.explanation,
            "advice": self.advice.advice,
            "summary": self.summary,
            "timeline": [
                {"at": _ts(s.at_ms), "kind": s.kind, "tone": s.tone, "text": s.text}
                for s in self.steps
            ],
            "sms": [_message_json(m, t) for m in self.messages],
            "alerts": None if self.alerts is None else [a.to_json(_ts) for a in self.alerts],
        }


def _ts(ms: int | None) -> str | None:
    return None if ms is None else format_rfc3339_ms(ms)


def is_linked(m: StoredMessage, t: StoredTransaction) -> bool:
    """Whether `m` is the SMS the receipt `t` counts (message ids are unique per gateway)."""
    return m.message_id == t.message_id and (
        t.message_gateway is None or m.gateway == t.message_gateway
    )


def _message_json(m: StoredMessage, t: StoredTransaction) -> dict[str, Any]:
    return {
        "message_id": m.message_id,
        "gateway": m.gateway,
        "phone": m.phone,
        "carrier": m.carrier,
        "area": m.area,
        "submitted_at": _ts(m.submitted_ms),
        "final_status": m.final_status,
        "final_code": m.final_code or None,
        "final_cause": m.final_cause,
        "final_at": _ts(m.final_ms),
        "counts_for_receipt": is_linked(m, t),
        "events": [
            {"status": status, "at": _ts(at), "error_code": code or None}
            for status, at, code in parse_timeline(m.events, m.submitted_ms)
        ],
    }


def local_time(ms: int, zone: ZoneInfo, with_date: bool = True) -> str:
    """`2026-11-26 12:05:07` in the display zone (`12:05:07` without the date)."""
    moment = datetime.fromtimestamp(ms / 1000, UTC).astimezone(zone)
    return moment.strftime("%Y-%m-%d %H:%M:%S" if with_date else "%H:%M:%S")


def zone_label(zone: ZoneInfo, at_ms: int) -> str:
    """`Asia/Shanghai, UTC+08:00` for the instant `at_ms`."""
    offset = datetime.fromtimestamp(at_ms / 1000, UTC).astimezone(zone).strftime("%z")
    return f"{zone.key}, UTC{offset[:3]}:{offset[3:]}"


def duration_text(ms: int, lang: str) -> str:
    """A short, rounded duration: `6 s`, `2 min 5 s`, `1 h 3 min`."""
    words = WORDS[lang]
    seconds = max(0, round(ms / 1000))
    if seconds < 60:
        return words["s"].format(n=seconds)
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        if seconds == 0:
            return words["min"].format(n=minutes)
        return words["min_s"].format(m=minutes, s=seconds)
    hours, minutes = divmod(minutes, 60)
    return words["h_min"].format(h=hours, m=minutes)


def amount_text(amount: int, currency: str) -> str:
    """Minor units as `128.00 CNY`."""
    if currency.upper() in ZERO_DECIMAL_CURRENCIES:
        return f"{amount} {currency}"
    return f"{amount / 100:.2f} {currency}"


def _has_code(code: str) -> bool:
    return bool(code) and code.strip("0") != ""


def situation_of(t: StoredTransaction, messages: Sequence[StoredMessage]) -> str:
    """The `advice.yaml` key that describes where this transaction stands."""
    if t.result == "reversed":
        return "reversal"
    if t.result != "approved":
        return "declined"
    if t.state is None:
        return "not_registered"
    if t.state == "reversed":
        return "reversed"
    if t.state == "decided":
        if t.outcome == "delivered":
            return "delivered"
        return t.cause or "unknown"
    if t.reversed_ms is not None:
        return "reversed"
    linked = next((m for m in messages if is_linked(m, t)), None)
    if linked is None:
        return "awaiting"
    if linked.final_status is None:
        return "on_its_way"
    if linked.final_status == "delivered":
        return "delivered"
    if linked.final_status == "unknown":
        return "unknown"
    return linked.final_cause or "unknown"


def verdict(explained: Explained, lang: str = "en") -> tuple[str, str]:
    """The tone (good, wait, bad, info) and a two-word verdict, for a badge or a heading."""
    words = WORDS[lang]
    situation, t = explained.situation, explained.transaction
    if situation == "delivered":
        return "good", words["badge_good"]
    if situation in ("on_its_way", "awaiting"):
        return "wait", words["badge_wait"]
    if situation in SITUATIONS_BESIDE_CAUSES:
        return "info", words["badge_info"]
    if t.state == "decided" and t.outcome == "missing":
        return "bad", words["badge_missing"]
    if situation == "unknown":
        return "bad", words["badge_unknown"]
    return "bad", words["badge_failed"]


def explain(
    t: StoredTransaction,
    messages: Sequence[StoredMessage],
    alerts: Sequence[FiringAlert] | None,
    zone: ZoneInfo,
    lang: str = "en",
) -> Explained:
    """The situation, summary and timeline of one transaction, in `lang`."""
    words = WORDS[lang]
    situation = situation_of(t, messages)
    advice = advice_for(situation, lang)
    steps: list[Step] = []
    amount = amount_text(t.amount, t.currency)
    if t.result == "reversed":
        steps.append(
            Step(
                t.txn_ms,
                "payment",
                words["payment_reversal"].format(
                    original=t.original_txn_id, terminal=t.terminal_id
                ),
                "info",
            )
        )
    elif t.result != "approved":
        steps.append(
            Step(
                t.txn_ms,
                "payment",
                words["payment_declined"].format(
                    amount=amount, terminal=t.terminal_id, code=t.response_code
                ),
                "info",
            )
        )
    else:
        steps.append(
            Step(
                t.txn_ms,
                "payment",
                words["payment_approved"].format(
                    amount=amount, terminal=t.terminal_id, merchant=t.merchant_id, pan=t.pan
                ),
                "info",
            )
        )
        if t.state is None:
            steps.append(Step(t.txn_ms, "note", words["not_expected"], "info"))
    grace_ms = (
        t.decide_ms - t.txn_ms
        if t.state == "decided" and t.outcome == "missing" and t.decide_ms is not None
        else None
    )
    for m in messages:
        steps.extend(_message_steps(t, m, grace_ms, words, lang))
    if t.state == "decided" and t.outcome == "missing" and t.decide_ms is not None:
        text = words["missing"].format(grace=duration_text(t.decide_ms - t.txn_ms, lang))
        if t.cause == "terminal_config":
            if t.terminal_notice is False:
                text += words["notice_off"]
            elif t.terminal_software:
                text += words["software_old"].format(version=t.terminal_software)
        steps.append(Step(t.decide_ms, "missing", text, "bad"))
    if t.reversed_ms is not None and situation == "reversed":
        steps.append(Step(t.reversed_ms, "reversed", words["reversed"], "info"))
    ranked = sorted(alerts or (), key=lambda a: a.labels.get("cause") != situation)
    for alert in ranked:
        title = advice_for(alert.labels["cause"], lang).title if _known_cause(alert) else ""
        steps.append(
            Step(
                alert.firing_from_ms,
                "alert_started",
                words["alert_started"].format(alert=alert.alertname, title=title or "—"),
                "bad",
            )
        )
        if not alert.continues:
            steps.append(
                Step(
                    alert.firing_until_ms,
                    "alert_ended",
                    words["alert_ended"].format(alert=alert.alertname),
                    "info",
                )
            )
    steps.sort(key=lambda s: s.at_ms)  # stable: same-time steps keep their order
    summary = _summary(t, messages, situation, grace_ms, zone, words, lang)
    return Explained(
        t, list(messages), situation, advice, summary, steps, None if alerts is None else ranked
    )


def incident_text(alert: FiringAlert, zone: ZoneInfo, lang: str = "en") -> str:
    """`SMSGatewayErrors (critical, <cause name>), firing from 12:04:00 until 12:11:45`, in the
    zone; the cause, when the alert names one, in the vocabulary's words."""
    words = WORDS[lang]
    end = local_time(alert.firing_until_ms, zone)
    cause = alert.labels.get("cause", "")
    named = ""
    if cause in CAUSES:
        name = cause_words(cause, VOCABULARY_LANGUAGE.get(lang, "en")).name
        named = words["incident_cause"].format(name=name)
    return words["incident_item"].format(
        alert=alert.alertname,
        severity=alert.labels.get("severity", "?"),
        cause=named,
        start=local_time(alert.firing_from_ms, zone),
        earlier=words["earlier"] if alert.started_earlier else "",
        until=(words["continues"] if alert.continues else words["until"]).format(end=end),
    )


def _known_cause(alert: FiringAlert) -> bool:
    return alert.labels.get("cause", "") in SITUATIONS


def _status_text(status: str, code: str, words: dict[str, str], end: bool = True) -> str:
    text = words.get(status, words["unknown"])
    if _has_code(code) and status != "delivered":
        text += words["code"].format(code=code)
    return text + words["end"] if end else text


def _message_steps(
    t: StoredTransaction,
    m: StoredMessage,
    grace_ms: int | None,
    words: dict[str, str],
    lang: str,
) -> list[Step]:
    steps = [
        Step(
            m.submitted_ms,
            "sms_submitted",
            words["submitted"].format(
                phone=m.phone,
                carrier=m.carrier,
                delay=duration_text(m.submitted_ms - t.txn_ms, lang),
            ),
            "wait",
        )
    ]
    if t.state is not None and not is_linked(m, t):
        if grace_ms is not None and m.submitted_ms > t.txn_ms + grace_ms:
            note = words["too_late"].format(grace=duration_text(grace_ms, lang))
        else:
            note = words["another"]
        steps.append(Step(m.submitted_ms, "note", note, "info"))
    final_seen = False
    for status, at_ms, code in parse_timeline(m.events, m.submitted_ms):
        if status == "submitted":
            continue
        if status not in FINAL:
            steps.append(Step(at_ms, "sms_status", _status_text(status, code, words), "wait"))
            continue
        if not final_seen and status == m.final_status and at_ms == m.final_ms:
            final_seen = True
            tone = "good" if status == "delivered" else "bad"
            steps.append(Step(at_ms, "sms_status", _status_text(status, code, words), tone))
        else:
            steps.append(
                Step(
                    at_ms,
                    "sms_later_report",
                    words["later_report"].format(status=_status_text(status, "", words, end=False)),
                    "info",
                )
            )
    if m.final_status is not None and not final_seen and m.final_ms is not None:
        steps.append(
            Step(
                m.final_ms,
                "sms_gave_up",
                words["gave_up"].format(limit=duration_text(m.final_ms - m.submitted_ms, lang)),
                "bad",
            )
        )
    return steps


def _summary(
    t: StoredTransaction,
    messages: Sequence[StoredMessage],
    situation: str,
    grace_ms: int | None,
    zone: ZoneInfo,
    words: dict[str, str],
    lang: str,
) -> str:
    linked = next((m for m in messages if is_linked(m, t)), None)
    first = linked or (messages[0] if messages else None)

    def at(ms: int | None) -> str:
        return "?" if ms is None else local_time(ms, zone)

    if situation == "reversal":
        return words["summary_reversal"].format(original=t.original_txn_id)
    if situation == "declined":
        return words["summary_declined"].format(code=t.response_code)
    if situation == "not_registered":
        return words["summary_not_registered"]
    if situation == "reversed":
        return words["summary_reversed"].format(time=at(t.reversed_ms))
    if t.state == "decided" and t.outcome == "missing":
        grace = duration_text(grace_ms, lang) if grace_ms is not None else "?"
        text = words["summary_missing"].format(grace=grace)
        return text + (words["summary_late"].format(time=at(first.submitted_ms)) if first else "")
    if linked is None:
        return words["summary_awaiting"]
    if situation == "delivered" and linked.final_ms is not None:
        return words["summary_delivered"].format(
            phone=linked.phone,
            time=at(linked.final_ms),
            delay=duration_text(linked.final_ms - t.txn_ms, lang),
        )
    if linked.final_status is None:
        return words["summary_on_its_way"].format(phone=linked.phone, time=at(linked.submitted_ms))
    if linked.final_status == "unknown":
        return words["summary_unknown"].format(phone=linked.phone, time=at(linked.submitted_ms))
    status = _status_text(linked.final_status, linked.final_code, words)
    return words["summary_failed"].format(phone=linked.phone, status=status)
