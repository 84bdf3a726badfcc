"""The landing page's HTML: plain, one inline style sheet, no script, no external resource.

Every value is HTML-escaped; a runbook link is made only of an http(s) URL. The style sheet is
allowed by its hash in the Content-Security-Policy, so a browser loads nothing else. One column
of narrow tables: readable on a 360 px wide phone without sideways scrolling.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import html
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from exporter import __version__
from exporter.landing.figures import WINDOWS, Landing, SliRow, SourceRow
from exporter.landing.words import WORDS
from exporter.lookup.alerts import ActiveAlert
from exporter.lookup.explain import duration_text, local_time, zone_label
from exporter.timestamps import parse_rfc3339_ms
from exporter.vocabulary import cause_words

STYLE = """
*{box-sizing:border-box}
body{margin:0;font:16px/1.45 system-ui,-apple-system,"Segoe UI","Noto Sans CJK SC",sans-serif;
color:#1c2127;background:#f4f6f8;overflow-wrap:break-word}
header{display:flex;flex-wrap:wrap;gap:.3em 1em;align-items:baseline;justify-content:space-between;
padding:.7em 1em;background:#12355b;color:#fff}
header h1{font-size:1.2em;margin:0}
header a{color:#fff}
main{max-width:60em;margin:0 auto;padding:.8em}
section{background:#fff;border:1px solid #d5dbe1;border-radius:8px;padding:.8em;margin:0 0 .9em}
h2{font-size:1.1em;margin:0 0 .4em}
p{margin:.3em 0}
.note{color:#52606d;font-size:.88em}
table{border-collapse:collapse;width:100%;margin:.4em 0}
th,td{text-align:left;padding:.3em .3em;border-bottom:1px solid #e3e7eb;vertical-align:top}
th{font-size:.85em;color:#52606d;font-weight:600}
td.n{text-align:right;font-variant-numeric:tabular-nums}
td.n b,.nw{white-space:nowrap}
small{display:block;color:#52606d;font-size:.8em;white-space:normal}
.good b{color:#1a7f37}.bad b{color:#cf222e}.none b{color:#52606d}
.flag{display:inline-block;font-size:.8em;font-weight:700;padding:0 .45em;border-radius:1em;
background:#e6e9ed;margin:.1em .2em .1em 0}
.flag.ok{background:#dafbe1;color:#1a7f37}.flag.warn{background:#fff8c5;color:#7d4e00}
.flag.bad{background:#ffebe9;color:#a40e26}
ul.alerts{list-style:none;margin:0;padding:0}
ul.alerts li{border-left:5px solid #9aa5b1;padding:.3em .6em;margin:.35em 0;
overflow-wrap:anywhere}
ul.alerts li.critical{border-left-color:#cf222e}ul.alerts li.warning{border-left-color:#bf8700}
.error{background:#fde8e8;border:1px solid #e0a3a3;border-radius:6px;padding:.5em}
.note,code{overflow-wrap:anywhere}
ul.links{margin:.2em 0;padding-left:1.2em}
"""

STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode("utf-8")).digest()).decode()
#: Nothing but the inline style sheet may load: no script, image, font or frame.
CSP = (
    f"default-src 'none'; style-src 'sha256-{STYLE_HASH}'; form-action 'none'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _percent(value: float) -> str:
    return f"{value * 100:.2f} %"


def render(landing: Landing, lang: str) -> str:
    """The whole page in `lang` (en | zh-CN)."""
    w = WORDS[lang]
    win = landing.windows
    zone = win.zone
    other = "en" if lang == "zh-CN" else "zh-CN"
    head = (
        f'<!doctype html><html lang="{"zh-Hans" if lang == "zh-CN" else "en"}"><head>'
        '<meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(w['title'])}</title><style>{STYLE}</style></head><body>"
        f"<header><h1>{_e(w['title'])}</h1>"
        f'<a href="?lang={other}" hreflang="{other}" lang="{other}">{_e(w["other_lang"])}</a>'
        "</header><main>"
    )
    now = local_time(win.now_ms, zone)
    intro = (
        f"<p>{_e(w['tagline'])}</p>"
        f'<p class="note">'
        f"{_e(w['as_of'].format(time=now, zone=zone_label(zone, win.now_ms), version=__version__))}"
        f" {_e(w['windows'].format(zone=zone.key))}</p>"
    )
    body = "".join(
        [
            intro,
            _alerts(landing, lang),
            _sli_table("gateways", "gateway", landing.gateways, lang),
            _sli_table("acquirers", "acquirer", landing.acquirers, lang),
            _causes(landing, lang),
            _sources(landing, lang),
            _unlisted(landing, lang),
            _links(lang),
        ]
    )
    return f"{head}{body}</main></body></html>"


def _section(name: str, title: str, inner: str) -> str:
    return f'<section id="{name}"><h2>{_e(title)}</h2>{inner}</section>'


def _window_heads(lang: str) -> str:
    return "".join(f'<th class="n">{_e(WORDS[lang][key])}</th>' for key in WINDOWS)


def _sli_table(name: str, column: str, rows: tuple[SliRow, ...], lang: str) -> str:
    w = WORDS[lang]
    lines = []
    for row in rows:
        cells = []
        for key, delivery in zip(WINDOWS, row.windows, strict=True):
            sli = delivery.sli
            data = (
                f'data-window="{key}" data-events="{delivery.sli_events}" '
                f'data-bad="{delivery.bank_side}"'
            )
            if sli is None:
                cells.append(
                    f'<td class="n none" {data}><b>—</b><small>{_e(w["no_events"])}</small></td>'
                )
                continue
            judged = "good" if sli >= row.objective else "bad"
            verdict = w["met"] if judged == "good" else w["below"]
            detail = w["bad_of"].format(
                bad=f"{delivery.bank_side:,}", events=f"{delivery.sli_events:,}"
            )
            cells.append(
                f'<td class="n {judged}" {data}><b>{_e(_percent(float(sli)))}</b>'
                f"<small>{_e(detail)}</small><small>{_e(verdict)}</small></td>"
            )
        lines.append(
            f'<tr data-key="{_e(row.key)}"><td>{_e(row.key)}</td>{"".join(cells)}'
            f'<td class="n nw">{_e(_percent(row.objective))}</td></tr>'
        )
    table = (
        f"<table><tr><th>{_e(w[column])}</th>{_window_heads(lang)}"
        f'<th class="n">{_e(w["objective"])}</th></tr>{"".join(lines)}</table>'
    )
    return _section(name, w[name], f'{table}<p class="note">{_e(w[name + "_note"])}</p>')


def _causes(landing: Landing, lang: str) -> str:
    w = WORDS[lang]
    if not landing.causes:
        inner = f"<p>{_e(w['no_causes'])}</p>"
    else:
        lines = []
        for row in landing.causes:
            words = cause_words(row.cause, lang)
            side = w["cardholder_side"] if row.cardholder_side else w["bank_side"]
            counts = "".join(
                f'<td class="n" data-window="{key}">{count:,}</td>'
                for key, count in zip(WINDOWS, row.counts, strict=True)
            )
            lines.append(
                f'<tr data-cause="{_e(row.cause)}"><td><b>{_e(words.name)}</b>'
                f"<small>{_e(words.meaning)} ({_e(side)})</small></td>{counts}</tr>"
            )
        inner = (
            f"<table><tr><th>{_e(w['cause'])}</th>{_window_heads(lang)}</tr>"
            f"{''.join(lines)}</table>"
        )
    return _section("causes", w["causes"], f'{inner}<p class="note">{_e(w["causes_note"])}</p>')


def _flags(row: SourceRow, lang: str) -> str:
    w = WORDS[lang]
    if row.push_only:
        flags = [("ok", w["listening"])]
    elif row.polls == 0:
        flags = [("", w["starting"])]
    else:
        flags = [("ok", w["up"])] if row.up else [("bad", w["down"])]
    if row.stale:
        flags.append(("bad", w["stale"]))
    if row.lagging:
        flags.append(("warn", w["lagging"]))
    return "".join(f'<span class="flag {kind}">{_e(text)}</span>' for kind, text in flags)


def _sources(landing: Landing, lang: str) -> str:
    w = WORDS[lang]
    zone = landing.windows.zone
    short = "zh" if lang == "zh-CN" else "en"
    lines = []
    for row in landing.sources:
        last_ok = (
            _when(row.last_success_ms, landing.windows.now_ms, zone)
            if row.last_success_ms is not None
            else w["never"]
        )
        lag = "—" if row.lag_s is None else duration_text(round(row.lag_s * 1000), short)
        by_design = duration_text(round(row.expected_lag_s * 1000), short)
        expected = (
            f"<small>{_e(w['expected_lag'].format(lag=by_design))}</small>"
            if row.expected_lag_s
            else ""
        )
        error = f"<small>{_e(row.last_error)}</small>" if row.last_error else ""
        lines.append(
            f'<tr data-source="{_e(row.name)}"><td>{_e(row.name)}<small>{_e(row.kind)}</small></td>'
            f"<td>{_flags(row, lang)}{error}</td><td>{_e(last_ok)}</td>"
            f'<td class="n">{_e(lag)}{expected}</td></tr>'
        )
    table = (
        f"<table><tr><th>{_e(w['source'])}</th><th>{_e(w['status'])}</th>"
        f'<th>{_e(w["last_success"])}</th><th class="n">{_e(w["lag"])}</th></tr>'
        f"{''.join(lines)}</table>"
    )
    return _section("sources", w["sources"], table)


def _when(ms: int, now_ms: int, zone: ZoneInfo) -> str:
    """Local time; with the date when not the same day as now."""
    same_day = local_time(ms, zone)[:10] == local_time(now_ms, zone)[:10]
    return local_time(ms, zone, with_date=not same_day)


def _alerts(landing: Landing, lang: str) -> str:
    w = WORDS[lang]
    state = landing.alerts
    if not state.configured:
        inner = f'<p class="note">{_e(w["alerts_off"])}</p>'
    elif state.error:
        inner = (
            f'<p class="error" role="alert">{_e(w["alerts_down"].format(error=state.error))}</p>'
        )
    elif not state.alerts:
        inner = f"<p>{_e(w['alerts_none'])}</p>"
    else:
        items = "".join(_alert(alert, landing, lang) for alert in state.alerts)
        inner = f'<ul class="alerts">{items}</ul>'
    return _section("alerts", w["alerts"], inner)


def _alert(alert: ActiveAlert, landing: Landing, lang: str) -> str:
    w = WORDS[lang]
    url = alert.runbook_url
    link = (
        f' · <a href="{_e(url)}" rel="noreferrer">{_e(w["runbook"])}</a>'
        if urlsplit(url).scheme in ("http", "https")
        else ""
    )
    where = ", ".join(
        f"{key}={alert.labels[key]}"
        for key in ("gateway", "acquirer", "source", "carrier", "area", "cause")
        if alert.labels.get(key)
    )
    since = ""
    with contextlib.suppress(ValueError):
        since = w["since"].format(
            time=_when(
                parse_rfc3339_ms(alert.active_at), landing.windows.now_ms, landing.windows.zone
            )
        )
    details = " · ".join(part for part in (alert.severity, where, since) if part)
    summary = alert.annotations.get("summary", "")
    return (
        f'<li class="{_e(alert.severity)}" data-alert="{_e(alert.alertname)}">'
        f"<b>{_e(alert.alertname)}</b>{link}<small>{_e(details)}</small>"
        + (f"<small>{_e(summary)}</small>" if summary else "")
        + "</li>"
    )


def _unlisted(landing: Landing, lang: str) -> str:
    w = WORDS[lang]
    if not landing.unlisted:
        inner = f"<p>{_e(w['unlisted_none'])}</p>"
    else:
        rows = "".join(
            f"<tr><td>{_e(gateway)}</td><td>{_e(code)}</td><td>{seen}</td></tr>"
            for gateway, code, seen in landing.unlisted
        )
        inner = (
            f"<table><tr><th>{_e(w['gateway'])}</th><th>{_e(w['code'])}</th>"
            f"<th>{_e(w['seen'])}</th></tr>{rows}</table>"
        )
    return _section(
        "unlisted", w["unlisted"], f'<p class="note">{_e(w["unlisted_note"])}</p>{inner}'
    )


def _links(lang: str) -> str:
    w = WORDS[lang]
    items = "".join(
        f'<li><a href="{path}">/{path}</a>: {_e(w[path])}</li>'
        for path in ("metrics", "ready", "healthz", "lookup")
    )
    return _section("links", w["links"], f'<ul class="links">{items}</ul>')
