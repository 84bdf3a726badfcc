"""The words for the root causes, in every language a person reads them in (en, zh-CN).

One home for a cause's name and plain-words meaning: reports, the support desk, the landing page,
dashboards and alert annotations all take theirs from here, so a cause reads the same everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from exporter.catalogue import CAUSES

LANGUAGES: tuple[str, ...] = ("en", "zh-CN")


@dataclass(frozen=True)
class CauseWords:
    """A cause's short name (a column or legend) and its meaning in one sentence."""

    name: str
    meaning: str


_EN: dict[str, CauseWords] = {
    "gateway": CauseWords(
        "Bank SMS platform fault",
        "The bank SMS platform was down, in maintenance, or lost its carrier links.",
    ),
    "invalid_number": CauseWords(
        "Wrong phone number",
        "The phone number on file is wrong, empty, suspended or ported.",
    ),
    "unreachable": CauseWords(
        "Weak signal or network",
        "The handset was off, out of coverage or the network had trouble.",
    ),
    "terminal_config": CauseWords(
        "POS terminal SMS setting or software",
        "The POS terminal's SMS notice is off or its software is outdated.",
    ),
    "integration": CauseWords(
        "Integration fault",
        "Bank ↔ acquirer ↔ SMS platform integration failed: interface errors, bad data, auth "
        "or sync delay.",
    ),
    "throttled": CauseWords("Rate limited", "Rate or frequency caps held the message back."),
    "filtered": CauseWords(
        "Carrier filtering", "A carrier spam filter, blacklist or opt-out blocked the message."
    ),
    "unknown": CauseWords("Unknown", "No final status or no classifiable reason was reported."),
}

_ZH: dict[str, CauseWords] = {
    "gateway": CauseWords("银行短信平台故障", "银行短信平台故障、维护中，或与运营商的链路中断。"),
    "invalid_number": CauseWords("手机号错误", "预留手机号错误、为空、停机或已携号转网。"),
    "unreachable": CauseWords("信号弱或网络故障", "手机关机、不在服务区或网络故障。"),
    "terminal_config": CauseWords(
        "POS 终端短信设置或软件", "POS 终端的短信通知未开启，或终端软件版本过旧。"
    ),
    "integration": CauseWords(
        "系统对接故障",
        "银行、收单机构与短信平台之间的对接故障：接口错误、数据错误、认证或同步延迟。",
    ),
    "throttled": CauseWords("发送限流", "因发送速率或频次限制被拦截。"),
    "filtered": CauseWords("运营商拦截", "被运营商垃圾短信过滤、黑名单或退订拦截。"),
    "unknown": CauseWords("原因不明", "未收到最终状态，或原因无法归类。"),
}

_OTHER = {
    "en": CauseWords("Other", "A cause outside the known set."),
    "zh-CN": CauseWords("其他", "已知原因之外的其他原因。"),
}

CAUSE_WORDS: dict[str, dict[str, CauseWords]] = {"en": _EN, "zh-CN": _ZH}


def cause_words(cause: str, lang: str = "en") -> CauseWords:
    """The words for `cause` in `lang`; a cause outside the catalogue reads as "other"."""
    if lang not in CAUSE_WORDS:
        raise ValueError(f"unknown language {lang!r}; expected one of {', '.join(LANGUAGES)}")
    return CAUSE_WORDS[lang].get(cause, _OTHER[lang])


assert all(set(words) == set(CAUSES) for words in CAUSE_WORDS.values())
