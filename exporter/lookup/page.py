"""The `/lookup` page: a search form and each transaction's story, for a support agent.

Plain HTML and one inline style sheet (allowed by its hash in the Content-Security-Policy): no
script, no external CDN, no images; readable on a phone (one column below 40em). Every value is
HTML-escaped; times are shown in the configured time zone.
"""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Mapping
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from exporter.lookup.alerts import FiringAlert
from exporter.lookup.explain import (
    Explained,
    amount_text,
    incident_text,
    local_time,
    verdict,
    zone_label,
)
from exporter.lookup.service import LookupResult

UI: dict[str, dict[str, str]] = {
    "en": {
        "title": "Support desk lookup",
        "product": "smswatch",
        "intro": "Find a card payment and see what happened to its transaction SMS.",
        "signed_in": "Signed in as {user}",
        "sign_out": "Sign out",
        "other_lang": "中文",
        "by_rrn": "Reference number (RRN) on the receipt",
        "more": "Other ways to search: transaction id, terminal and time, phone and time",
        "by_txn": "Transaction id",
        "by_terminal": "Terminal id",
        "by_phone": "Last 4 digits of the phone",
        "time": "Time of the payment",
        "window": "± min",
        "search": "Search",
        "times_in": "Times are in {zone}.",
        "phone_note": "Searching by phone finds only payments for which an SMS was sent; "
        "for “no SMS at all” search by RRN, or by terminal and time.",
        "found": "{n} transaction(s) found.",
        "found_none": "No transaction found. Check the number on the receipt and the time; "
        "transactions are kept for a limited period only.",
        "truncated": "Only the first {n} are shown: narrow the search.",
        "what_happened": "What happened",
        "what_to_say": "What to tell the cardholder",
        "timeline": "Timeline",
        "details": "Transaction details",
        "incident": "Incident at the time",
        "alerts_unavailable": "Alert history is unavailable right now.",
        "bad_request": "Cannot search like this",
        "sign_in": "Sign in",
        "sign_in_intro": "Sign in with your access token, or with your user name and password.",
        "token": "Access token",
        "or": "or",
        "username": "User name",
        "password": "Password",
        "sign_in_failed": "Sign-in failed: check your token or password.",
        "rrn": "RRN",
        "txn_id": "Transaction id",
        "terminal": "Terminal",
        "merchant": "Merchant",
        "acquirer": "Acquirer",
        "amount": "Amount",
        "card": "Card",
        "result": "Result",
        "paid_at": "Time",
    },
    "zh": {
        "title": "客服交易查询",
        "product": "smswatch",
        "intro": "查询一笔刷卡交易，了解其动账短信的发送情况。",
        "signed_in": "当前用户：{user}",
        "sign_out": "退出",
        "other_lang": "English",
        "by_rrn": "签购单上的参考号（RRN）",
        "more": "其他查询方式：交易号、终端号加时间、手机号加时间",
        "by_txn": "交易号",
        "by_terminal": "终端号",
        "by_phone": "手机号后 4 位",
        "time": "交易时间",
        "window": "± 分钟",
        "search": "查询",
        "times_in": "时间均为 {zone}。",
        "phone_note": "按手机号查询只能找到已发送过短信的交易；"
        "如“完全没有短信”，请按参考号或终端号加时间查询。",
        "found": "找到 {n} 笔交易。",
        "found_none": "未找到交易。请核对签购单上的号码和交易时间；交易记录仅保留有限的时间。",
        "truncated": "仅显示前 {n} 笔，请缩小查询范围。",
        "what_happened": "发生了什么",
        "what_to_say": "如何答复持卡人",
        "timeline": "时间线",
        "details": "交易详情",
        "incident": "当时的故障告警",
        "alerts_unavailable": "暂时无法获取告警记录。",
        "bad_request": "无法按此条件查询",
        "sign_in": "登录",
        "sign_in_intro": "请使用访问令牌，或用户名和密码登录。",
        "token": "访问令牌",
        "or": "或",
        "username": "用户名",
        "password": "密码",
        "sign_in_failed": "登录失败：请检查令牌或密码。",
        "rrn": "参考号",
        "txn_id": "交易号",
        "terminal": "终端",
        "merchant": "商户",
        "acquirer": "收单机构",
        "amount": "金额",
        "card": "卡号",
        "result": "结果",
        "paid_at": "时间",
    },
}

STYLE = """
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI","Noto Sans CJK SC",sans-serif;
color:#1c2127;background:#f4f6f8}
header{display:flex;flex-wrap:wrap;gap:.5em 1em;align-items:center;justify-content:space-between;
padding:.7em 1em;background:#12355b;color:#fff}
header h1{font-size:1.15em;margin:0}
header a,header button{color:#fff}
header form{display:inline}
header button{background:none;border:1px solid #fff;border-radius:4px;padding:.2em .6em;
font:inherit;cursor:pointer}
main{max-width:60em;margin:0 auto;padding:1em}
.searches{display:grid;grid-template-columns:repeat(auto-fit,minmax(17em,1fr));gap:.8em}
details.more{grid-column:1/-1}
details.more>summary{cursor:pointer;color:#1f4f8a;font-weight:600;padding:.3em 0}
.searches form,.card,.login{background:#fff;border:1px solid #d5dbe1;border-radius:8px;padding:.9em}
label{display:block;font-weight:600;margin:.2em 0}
input,select{width:100%;min-width:0;font:inherit;padding:.45em;border:1px solid #9aa5b1;
border-radius:4px}
.row{display:flex;gap:.5em}
.row>*{flex:1;min-width:0}
.row>.win{flex:0 0 5.5em}
button.primary{margin-top:.6em;width:100%;font:inherit;font-weight:600;padding:.5em;border:0;
border-radius:4px;background:#1f6feb;color:#fff;cursor:pointer}
.note{color:#52606d;font-size:.9em}
.error{background:#fde8e8;border:1px solid #e0a3a3;border-radius:8px;padding:.8em;margin:1em 0}
.card{margin:1em 0;border-left:6px solid #9aa5b1;overflow-wrap:anywhere}
.card.good{border-left-color:#1a7f37}.card.bad{border-left-color:#cf222e}
.card.wait{border-left-color:#bf8700}
.card h2{font-size:1.2em;margin:.1em 0 .3em}
.badge{display:inline-block;font-size:.8em;font-weight:700;padding:.1em .6em;border-radius:1em;
background:#e6e9ed;margin-right:.4em;vertical-align:middle}
.good .badge{background:#dafbe1;color:#1a7f37}.bad .badge{background:#ffebe9;color:#a40e26}
.wait .badge{background:#fff8c5;color:#7d4e00}
.summary{font-size:1.05em;font-weight:600}
.card h3{font-size:1em;margin:1em 0 .2em}
.incident{background:#fff1e5;border:1px solid #f0b27a;border-radius:6px;padding:.5em .8em}
.incident ul{margin:.3em 0;padding-left:1.2em}
ol.timeline{list-style:none;margin:0;padding:0}
ol.timeline li{display:flex;gap:.8em;padding:.35em 0 .35em .8em;border-left:3px solid #d5dbe1}
ol.timeline li.good{border-left-color:#1a7f37}ol.timeline li.bad{border-left-color:#cf222e}
ol.timeline li.wait{border-left-color:#bf8700}
ol.timeline time{flex:0 0 auto;font-variant-numeric:tabular-nums;color:#52606d}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2em 1em;margin:.5em 0}
dt{color:#52606d}dd{margin:0;overflow-wrap:anywhere}
.login{max-width:26em;margin:2em auto}
@media (max-width:40em){ol.timeline li{flex-direction:column;gap:0}main{padding:.6em}}
"""

STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode("utf-8")).digest()).decode()
CSP = (
    f"default-src 'none'; style-src 'sha256-{STYLE_HASH}'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
WINDOWS_MIN: tuple[int, ...] = (5, 10, 30, 60, 120)


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _document(lang: str, body: str, header_extra: str = "") -> str:
    ui = UI[lang]
    return (
        f'<!doctype html><html lang="{"zh-Hans" if lang == "zh" else "en"}"><head>'
        '<meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(ui['title'])} · smswatch</title><style>{STYLE}</style></head><body>"
        f"<header><h1>{_e(ui['product'])} · {_e(ui['title'])}</h1>{header_extra}</header>"
        f"<main>{body}</main></body></html>"
    )


def login_page(lang: str, failed: bool) -> str:
    """The sign-in form (answered with 401 until the agent signs in)."""
    ui = UI[lang]
    error = f'<p class="error" role="alert">{_e(ui["sign_in_failed"])}</p>' if failed else ""
    body = (
        f'<section class="login"><h2>{_e(ui["sign_in"])}</h2>'
        f'<p class="note">{_e(ui["sign_in_intro"])}</p>{error}'
        '<form method="post" action="lookup/login">'
        f'<input type="hidden" name="lang" value="{_e(lang)}">'
        f'<label for="token">{_e(ui["token"])}</label>'
        '<input id="token" name="token" type="password" autocomplete="off">'
        f'<p class="note">{_e(ui["or"])}</p>'
        f'<label for="username">{_e(ui["username"])}</label>'
        '<input id="username" name="username" autocomplete="username">'
        f'<label for="password">{_e(ui["password"])}</label>'
        '<input id="password" name="password" type="password" autocomplete="current-password">'
        f'<button class="primary" type="submit">{_e(ui["sign_in"])}</button></form></section>'
    )
    return _document(lang, body)


def _local_input(params: Mapping[str, str], zone: ZoneInfo, at_ms: int | None) -> str:
    """The `at` value for a datetime-local input: as typed, or the parsed time in the zone."""
    if at_ms is not None:
        return local_time(at_ms, zone).replace(" ", "T")[:16]
    return params.get("at", "")


def _window_select(name_id: str, params: Mapping[str, str], ui: dict[str, str]) -> str:
    chosen = params.get("window", "10m")
    options = "".join(
        f'<option value="{m}m"{" selected" if chosen == f"{m}m" else ""}>± {m}</option>'
        for m in WINDOWS_MIN
    )
    return (
        f'<div class="win"><label for="{name_id}">{_e(ui["window"])}</label>'
        f'<select id="{name_id}" name="window">{options}</select></div>'
    )


def _search_forms(lang: str, params: Mapping[str, str], zone: ZoneInfo, at_ms: int | None) -> str:
    ui = UI[lang]
    at_value = _e(_local_input(params, zone, at_ms))
    hidden = f'<input type="hidden" name="lang" value="{_e(lang)}">'
    button = f'<button class="primary" type="submit">{_e(ui["search"])}</button>'

    def simple(key: str, label: str, extra: str = "") -> str:
        return (
            f'<form method="get" action="lookup" role="search">{hidden}'
            f'<label for="q-{key}">{_e(label)}</label>'
            f'<input id="q-{key}" name="{key}" value="{_e(params.get(key, ""))}" '
            f'autocomplete="off" {extra}>{button}</form>'
        )

    def timed(key: str, label: str, extra: str) -> str:
        return (
            f'<form method="get" action="lookup" role="search">{hidden}'
            f'<label for="q-{key}">{_e(label)}</label>'
            f'<input id="q-{key}" name="{key}" value="{_e(params.get(key, ""))}" '
            f'autocomplete="off" {extra}>'
            f'<div class="row"><div><label for="at-{key}">{_e(ui["time"])}</label>'
            f'<input id="at-{key}" name="at" type="datetime-local" value="{at_value}"></div>'
            f"{_window_select(f'w-{key}', params, ui)}</div>{button}</form>"
        )

    # after a search by RRN the other forms fold away, so the result is near the top on a phone
    opened = "" if params.get("rrn") else " open"
    return (
        '<section class="searches">'
        + simple("rrn", ui["by_rrn"], 'inputmode="text" maxlength="32"')
        + f'<details class="more"{opened}><summary>{_e(ui["more"])}</summary>'
        + '<div class="searches">'
        + simple("txn_id", ui["by_txn"], 'maxlength="64"')
        + timed("terminal", ui["by_terminal"], 'maxlength="64"')
        + timed(
            "phone_last4", ui["by_phone"], 'inputmode="numeric" maxlength="4" pattern="[0-9]{4}"'
        )
        + "</div></details></section>"
    )


def _incidents(alerts: list[FiringAlert] | None, zone: ZoneInfo, lang: str) -> str:
    ui = UI[lang]
    if alerts is None:
        return f'<p class="incident">{_e(ui["alerts_unavailable"])}</p>'
    if not alerts:
        return ""
    items = [f"<li>{_e(incident_text(a, zone, lang))}</li>" for a in alerts]
    return (
        f'<div class="incident"><strong>{_e(ui["incident"])}</strong><ul>{"".join(items)}</ul>'
        "</div>"
    )


def _card(explained: Explained, zone: ZoneInfo, lang: str) -> str:
    ui = UI[lang]
    t = explained.transaction
    tone, badge = verdict(explained, lang)
    day = local_time(t.txn_ms, zone)[:10]
    steps = []
    for step in explained.steps:
        stamp = local_time(step.at_ms, zone)
        shown = stamp[11:] if stamp[:10] == day else stamp
        steps.append(
            f'<li class="{_e(step.tone)}"><time datetime="{_e(stamp)}">{_e(shown)}</time>'
            f"<span>{_e(step.text)}</span></li>"
        )
    details = [
        (ui["rrn"], t.rrn),
        # transaction ids are unique per acquirer source only: name the source beside it
        (ui["txn_id"], f"{t.txn_id} ({t.source})" if t.source else t.txn_id),
        (ui["paid_at"], local_time(t.txn_ms, zone)),
        (ui["terminal"], t.terminal_id),
        (ui["merchant"], t.merchant_id),
        (ui["acquirer"], t.acquirer),
        (ui["amount"], amount_text(t.amount, t.currency)),
        (ui["card"], t.pan),
        (ui["result"], f"{t.result} ({t.response_code})"),
    ]
    rows = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in details)
    return (
        f'<article class="card {tone}" data-situation="{_e(explained.situation)}" '
        f'data-rrn="{_e(t.rrn)}">'
        f'<h2><span class="badge">{_e(badge)}</span>{_e(explained.advice.title)}</h2>'
        f'<p class="summary">{_e(explained.summary)}</p>'
        f"{_incidents(explained.alerts, zone, lang)}"
        f"<h3>{_e(ui['what_happened'])}</h3><p>{_e(explained.advice.explanation)}</p>"
        f"<h3>{_e(ui['what_to_say'])}</h3><p>{_e(explained.advice.advice)}</p>"
        f'<h3>{_e(ui["timeline"])}</h3><ol class="timeline">{"".join(steps)}</ol>'
        f"<details><summary>{_e(ui['details'])}</summary><dl>{rows}</dl></details>"
        "</article>"
    )


def search_page(
    lang: str,
    user: str,
    params: Mapping[str, str],
    zone: ZoneInfo,
    now_ms: int,
    result: LookupResult | None = None,
    error: str = "",
) -> str:
    """The search forms, and the results or the error of the search just made."""
    ui = UI[lang]
    other = "zh" if lang == "en" else "en"
    switch = urlencode({**{k: v for k, v in params.items() if v}, "lang": other})
    header = (
        f'<span>{_e(ui["signed_in"].format(user=user))} · <a href="lookup?{_e(switch)}" '
        f'lang="{"zh-Hans" if other == "zh" else "en"}">{_e(ui["other_lang"])}</a> · '
        f'<form method="post" action="lookup/logout"><button type="submit">{_e(ui["sign_out"])}'
        "</button></form></span>"
    )
    at_ms = result.query.at_ms if result is not None else None
    times_in = ui["times_in"].format(zone=zone_label(zone, now_ms))
    parts = [
        f'<p class="note">{_e(ui["intro"])} {_e(times_in)} {_e(ui["phone_note"])}</p>',
        _search_forms(lang, params, zone, at_ms),
    ]
    if error:
        parts.append(
            f'<section class="error" role="alert"><strong>{_e(ui["bad_request"])}:</strong> '
            f"{_e(error)}</section>"
        )
    if result is not None:
        count = len(result.results)
        text = ui["found"].format(n=count) if count else ui["found_none"]
        if result.truncated:
            text += " " + ui["truncated"].format(n=count)
        parts.append(f'<section class="results" aria-live="polite"><p class="note">{_e(text)}</p>')
        parts.extend(_card(r, zone, lang) for r in result.results)
        parts.append("</section>")
    return _document(lang, "".join(parts), header)
