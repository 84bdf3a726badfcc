"""The root causes in words a manager understands, for legends and the explanation panel.

The label values live in `exporter.catalogue` (CAUSES, CAUSE_NONE); a cause's name and meaning
come from `exporter.vocabulary`, the one home of those words in every language. This module only
adds what the dashboards say beside them: who fixes each cause.
"""

from __future__ import annotations

from exporter.catalogue import CAUSES
from exporter.language import current_language, say
from exporter.vocabulary import cause_words


def who_fixes(cause: str) -> str:
    """One sentence: who fixes `cause`, in the language being generated."""
    actions = {
        "gateway": say(
            "The SMS platform team and its vendor restore the service; messages may need "
            "resending.",
            "短信平台团队及其供应商恢复服务；短信可能需要补发。",
        ),
        "invalid_number": say(
            "Branches and the call centre update the cardholder's phone number.",
            "由网点和客服中心更新持卡人的手机号码。",
        ),
        "unreachable": say(
            "Usually resolves itself; a spike in one carrier or area goes to that carrier.",
            "通常会自行恢复；某运营商或地区突增时，交由该运营商处理。",
        ),
        "terminal_config": say(
            "The acquirer fixes the terminal's settings or updates its software.",
            "由收单机构修正终端设置或升级终端软件。",
        ),
        "integration": say(
            "The integration team of the bank and the acquirer.",
            "由银行与收单机构的对接团队处理。",
        ),
        "throttled": say(
            "The SMS platform team raises the limits or spreads the load.",
            "由短信平台团队提高限额或分散流量。",
        ),
        "filtered": say(
            "The SMS platform team works with the carrier on the sender and the wording.",
            "由短信平台团队就发送号码和措辞与运营商沟通。",
        ),
        "unknown": say(
            "The SMS platform team checks the carrier's delivery reports.",
            "由短信平台团队核查运营商的状态报告。",
        ),
    }
    return actions[cause]


def cause_titles() -> dict[str, str]:
    """Cause label → its name in the vocabulary, in the language being generated: legends."""
    return {cause: cause_words(cause, current_language()).name for cause in CAUSES}


def delivered_title() -> str:
    """How delivered messages (`cause="none"`) read in a legend."""
    return say("Delivered", "已送达")


def explanation_markdown() -> str:
    """A Markdown table of every cause: the text panel that explains the failure legends."""
    lang = current_language()
    lines = [
        say(
            "| Why the SMS did not arrive | What happened | Who fixes it |",
            "| 短信未送达的原因 | 发生了什么 | 由谁修复 |",
        ),
        "|---|---|---|",
    ]
    for cause in CAUSES:
        words = cause_words(cause, lang)
        lines.append(f"| **{words.name}** | {words.meaning} | {who_fixes(cause)} |")
    return "\n".join(lines) + "\n"
