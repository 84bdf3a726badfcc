"""SMS notifications — receipts and terminals: receipts printed with no SMS ever sent, and the
POS terminal inventory (SMS notice off, outdated software) behind them.
"""

from __future__ import annotations

from grafana_foundation_sdk.models import dashboard as dashboard_model

from exporter.dashboards import panels as p
from exporter.dashboards import queries as q
from exporter.dashboards.causes import cause_titles
from exporter.dashboards.layout import finish, new_dashboard
from exporter.dashboards.objectives import DELIVERY_OBJECTIVE
from exporter.language import say

UID = "smswatch-receipts"
TITLE = "SMS notifications — receipts and terminals"

TERMINALS = "smswatch_pos_terminals"
_MISSING = 'outcome="missing"'
_COMPLIANT = 'sms_notice="enabled", software="current"'
_NOTICE_OFF = 'sms_notice="disabled"'
_OUTDATED = 'software="outdated"'

#: Terminals that cannot notify: every inventory series except the enabled-and-current one.
_NON_COMPLIANT = (
    f"{q.selector(TERMINALS, p.ACQUIRER_MATCHERS)} unless {q.selector(TERMINALS, _COMPLIANT)}"
)


def _explanation() -> str:
    """What a receipt without SMS means and its two causes, named as the vocabulary names them."""
    titles = cause_titles()
    terminal, integration = titles["terminal_config"], titles["integration"]
    return say(
        f"""\
A receipt is **without SMS** when no SMS for it reached the SMS platform within the grace period
after the payment. Two causes:

- **{terminal}** — the terminal that printed the receipt has its SMS
  notice switched off, or runs software older than the supported version. The terminal
  inventory below lists them per acquirer. *Fix:* the acquirer changes the terminal's settings
  or updates its software; ask for the list of terminals out of compliance.
- **{integration}** — the terminal is fine, yet the transaction never reached
  the SMS platform: an interface, data or authentication fault between the bank, the acquirer
  and the SMS platform. *Fix:* the integration team checks the interface logs and the
  synchronisation delay; the on-call dashboard shows whether SMS sending stopped altogether.

Receipts whose SMS *was* sent but not delivered (wrong number, phone unreachable, …) are on
the overview dashboard.
""",
        f"""\
签购单**没有短信**，是指付款后在宽限期内没有任何一条对应的短信到达短信平台。原因有两种：

- **{terminal}** —— 打印签购单的终端关闭了短信通知，或运行的软件低于支持的版本。下方的终端台账
  按收单机构列出这些终端。*修复：* 由收单机构修改终端设置或升级软件；可索取不合规终端清单。
- **{integration}** —— 终端正常，但交易始终没有到达短信平台：银行、收单机构与短信平台之间的
  接口、数据或认证故障。*修复：* 由对接团队检查接口日志和同步延迟；值班仪表盘可以看出短信发送
  是否已完全停止。

短信*已发送*但未送达的签购单（手机号错误、手机无法触达……）见总览仪表盘。
""",
    )


def _receipts_without_sms() -> list[p.PanelBuilder]:
    missing_share = q.ratio(
        q.sum_increase(q.RECEIPTS, p.RANGE_WINDOW, p.ACQUIRER_MATCHERS, _MISSING),
        q.sum_increase(q.RECEIPTS, p.RANGE_WINDOW, p.ACQUIRER_MATCHERS),
    )
    terminal_share = q.ratio(
        q.sum_increase(
            q.RECEIPTS, p.RANGE_WINDOW, p.ACQUIRER_MATCHERS, _MISSING, 'cause="terminal_config"'
        ),
        q.sum_increase(q.RECEIPTS, p.RANGE_WINDOW, p.ACQUIRER_MATCHERS, _MISSING),
    )
    budget = round(1 - DELIVERY_OBJECTIVE, 6)
    return [
        p.stat(
            "Receipts without SMS — selected period",
            "Card payments whose receipt was printed but for which no SMS was ever sent, in the "
            "selected period.",
            "short",
            [
                p.query(
                    q.sum_increase(q.RECEIPTS, p.RANGE_WINDOW, p.ACQUIRER_MATCHERS, _MISSING),
                    "Receipts without SMS",
                    instant=True,
                )
            ],
            thresholds=p.presence_thresholds(),
            span=6,
        ),
        p.stat(
            "Share of receipts without SMS — selected period",
            f"Receipts without SMS among all receipts with a known outcome. The whole error "
            f"budget is {budget:.1%} of receipts: orange from half of it, red when this cause "
            "alone uses all of it.",
            "percentunit",
            [p.query(missing_share, "Without SMS", instant=True)],
            thresholds=p.ceiling_thresholds(round(budget / 2, 6), budget),
            decimals=2,
            span=6,
        ),
        p.stat(
            "Of which caused by terminal setup — selected period",
            "The share of receipts without SMS that came from terminals with SMS notice off or "
            "outdated software; the rest is put down to the bank-acquirer integration.",
            "percentunit",
            [p.query(terminal_share, cause_titles()["terminal_config"], instant=True)],
            decimals=0,
            span=6,
        ),
        p.stat(
            "Receipts awaiting an SMS now",
            "Receipts whose outcome is not known yet: they are judged once the grace period "
            "has passed and the data sources have caught up.",
            "short",
            [
                p.query(
                    f"sum(smswatch_receipts_awaiting_sms{{{p.ACQUIRER_MATCHERS}}})",
                    "Awaiting SMS",
                )
            ],
            sparkline=True,
            span=6,
        ),
        p.per_minute_breakdown(
            "Receipts without SMS, by cause",
            "Receipts without SMS per minute, split between terminal setup and integration faults.",
            q.per_minute(q.RECEIPTS, p.RATE_WINDOW, p.ACQUIRER_MATCHERS, _MISSING, by="cause"),
            "cause",
            overrides=p.cause_overrides(),
        ),
        p.per_minute_breakdown(
            "Receipts without SMS, by acquirer",
            "Receipts without SMS per minute, per acquirer.",
            q.per_minute(q.RECEIPTS, p.RATE_WINDOW, p.ACQUIRER_MATCHERS, _MISSING, by="acquirer"),
            "acquirer",
        ),
        p.timeseries(
            "Receipts vs SMS sent",
            "Receipts expecting an SMS and SMS accepted by the SMS platform, per minute, for the "
            "selected acquirers and gateways/carriers/areas. When SMS sent falls below receipts "
            "for long, transactions are not reaching the SMS platform.",
            "cpm",
            [
                p.query(
                    q.per_minute(q.RECEIPTS, p.RATE_WINDOW, p.ACQUIRER_MATCHERS),
                    "Receipts expecting an SMS",
                ),
                p.query(q.per_minute(q.SMS_SUBMITTED, p.RATE_WINDOW, p.SMS_MATCHERS), "SMS sent"),
            ],
            min_value=0,
            span=24,
        ),
    ]


def _terminals() -> list[p.PanelBuilder]:
    inventory = q.selector(TERMINALS, p.ACQUIRER_MATCHERS)
    return [
        p.stat(
            "POS terminals",
            "Terminals in the acquirers' inventory (as of the last poll).",
            "short",
            [p.query(f"sum({inventory})", "Terminals")],
            span=6,
        ),
        p.stat(
            "Terminals with SMS notice off",
            "Terminals whose SMS notice setting is disabled: their payments never trigger an SMS.",
            "short",
            [
                p.query(
                    f"sum({q.selector(TERMINALS, p.ACQUIRER_MATCHERS, _NOTICE_OFF)})",
                    "SMS notice off",
                )
            ],
            thresholds=p.presence_thresholds(),
            span=6,
        ),
        p.stat(
            "Terminals with outdated software",
            "Terminals running software older than the supported version, which may not "
            "request the SMS.",
            "short",
            [
                p.query(
                    f"sum({q.selector(TERMINALS, p.ACQUIRER_MATCHERS, _OUTDATED)})",
                    "Outdated software",
                )
            ],
            thresholds=p.presence_thresholds(),
            span=6,
        ),
        p.stat(
            "Terminals out of compliance",
            "Share of terminals with SMS notice off, outdated software, or both. Orange from "
            "1 %, red from 5 %.",
            "percentunit",
            [p.query(f"(sum({_NON_COMPLIANT}) or vector(0))\n/\nsum({inventory})", "Share")],
            thresholds=p.ceiling_thresholds(0.01, 0.05),
            decimals=1,
            span=6,
        ),
        p.bars(
            "Terminals out of compliance, by acquirer",
            "Terminals with SMS notice off or outdated software, per acquirer, most first.",
            "short",
            [p.query(f"sort_desc(sum by (acquirer) ({_NON_COMPLIANT}))", "{{acquirer}}")],
            thresholds=p.presence_thresholds(),
            min_value=0,
            span=12,
        ),
        p.timeseries(
            "Terminal inventory over time",
            "Terminals by SMS notice setting and software currency. A step up in disabled or "
            "outdated terminals usually follows a software rollout or a configuration push.",
            "short",
            [
                p.query(
                    f"sum by (sms_notice, software) ({inventory})",
                    "SMS notice {{sms_notice}}, software {{software}}",
                )
            ],
            stacked=True,
            min_value=0,
            span=12,
        ),
        p.bars(
            "Receipts without SMS due to terminal setup, by acquirer — selected period",
            "Per acquirer, the share of its receipts without SMS that came from terminals with "
            "SMS notice off or outdated software.",
            "percentunit",
            [
                p.query(
                    "sort_desc(\n"
                    + q.ratio(
                        q.sum_increase(
                            q.RECEIPTS,
                            p.RANGE_WINDOW,
                            p.ACQUIRER_MATCHERS,
                            _MISSING,
                            'cause="terminal_config"',
                            by="acquirer",
                        ),
                        q.sum_increase(
                            q.RECEIPTS, p.RANGE_WINDOW, p.ACQUIRER_MATCHERS, _MISSING, by="acquirer"
                        ),
                    )
                    + "\n)",
                    "{{acquirer}}",
                    instant=True,
                )
            ],
            min_value=0,
            max_value=1,
            span=12,
            height=10,
        ),
        p.text(
            "Receipts without SMS: the two causes",
            "What a receipt without SMS means, its two causes, and who fixes each.",
            _explanation(),
            span=12,
            height=10,
        ),
    ]


def build() -> dashboard_model.Dashboard:
    """The receipts and terminals dashboard, uid `smswatch-receipts`."""
    dashboard = new_dashboard(
        UID,
        TITLE,
        "Receipts printed with no SMS ever sent, by cause and acquirer, and the POS terminal "
        "inventory behind them: SMS notice off, outdated software.",
        time_from="now-24h",
        refresh="5m",
    )
    sections = (
        ("Receipts without SMS", _receipts_without_sms()),
        ("POS terminal inventory", _terminals()),
    )
    return finish(dashboard, sections)
