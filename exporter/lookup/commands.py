"""The support desk's sub-commands of `smswatch` (registered by `cli.build_parser`).

    smswatch lookup --state.path FILE (--rrn X | --txn-id X | --terminal T --at TIME [--window 10m]
                    | --phone-last4 NNNN --at TIME) [--output text|json] [--lang en|zh]
    smswatch audit export --state.path FILE --from TIME --to TIME [--output FILE]
    smswatch lookup-token --name NAME

The CLI reads the state file directly: the file's permissions are its access control (run it as
the exporter's user). Each lookup is audited with the operating-system user, channel `cli`.
"""

from __future__ import annotations

import argparse
import getpass
import json
import socket
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from exporter.errors import ConfigError
from exporter.lookup.access import NAME, new_token
from exporter.lookup.alerts import AlertHistory
from exporter.lookup.explain import Explained, incident_text, local_time, verdict, zone_label
from exporter.lookup.page import UI
from exporter.lookup.query import BadLookup, parse_at
from exporter.lookup.service import Caller, LookupResult, LookupService, audit_csv
from exporter.lookup.settings import LookupSettings, PrometheusSettings, check_timezone
from exporter.store import Store, open_store

if TYPE_CHECKING:
    from exporter.config import Config

WIDTH = 100


def add_commands(sub: Any) -> None:
    """Add `lookup`, `audit export` and `lookup-token` to the `smswatch` sub-parsers."""
    lookup = sub.add_parser(
        "lookup",
        help="look up one transaction's SMS for a cardholder (support desk)",
        description="Find a card transaction in the state file and tell what happened to its "
        "transaction SMS, in plain words, with the advice for the cardholder. Audited.",
    )
    _add_state(lookup)
    keys = lookup.add_mutually_exclusive_group(required=True)
    keys.add_argument("--rrn", help="retrieval reference number on the receipt")
    keys.add_argument("--txn-id", dest="txn_id", help="acquirer transaction id")
    keys.add_argument("--terminal", help="terminal id (with --at)")
    keys.add_argument(
        "--phone-last4", dest="phone_last4", help="last 4 digits of the phone (with --at)"
    )
    lookup.add_argument(
        "--at", help="time of the payment: RFC 3339, or local time such as '2026-11-26 12:05'"
    )
    lookup.add_argument("--window", help="± around --at (default 10m, at most lookup.max_window)")
    lookup.add_argument("--output", choices=("text", "json"), default="text")
    lookup.add_argument("--lang", choices=("en", "zh"), default="en", help="language (en, zh)")
    lookup.add_argument(
        "--timezone", help="time zone to show and read times in (default lookup.timezone, UTC)"
    )
    lookup.add_argument(
        "--prometheus.url",
        dest="prometheus_url",
        help="Prometheus to ask for the alerts firing at the time (default lookup.prometheus)",
    )
    lookup.set_defaults(func=cmd_lookup)

    audit = sub.add_parser(
        "audit",
        help="the support-desk lookup audit",
        description="Export the record of lookups (who, when, which key, how many results).",
    )
    audit_sub = audit.add_subparsers(dest="audit_command", metavar="COMMAND", required=True)
    export = audit_sub.add_parser(
        "export",
        help="write lookups between two times as CSV",
        description="Write the lookups made from --from (inclusive) to --to (exclusive) as CSV.",
    )
    _add_state(export)
    export.add_argument("--from", dest="from_time", required=True, help="start time")
    export.add_argument("--to", dest="to_time", required=True, help="end time (exclusive)")
    export.add_argument("--output", default="-", help="CSV file to write (default: stdout)")
    export.add_argument("--timezone", help="zone of times given without offset (default UTC)")
    export.set_defaults(func=cmd_audit_export)

    token = sub.add_parser(
        "lookup-token",
        help="make a new access token for the lookup API and page",
        description="Print a new random token (give it to the agent) and the entry to add to "
        "the lookup tokens file (which stores only its hash).",
    )
    token.add_argument("--name", required=True, help="who the token is for (shown in the audit)")
    token.set_defaults(func=cmd_lookup_token)


def _add_state(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state.path", dest="state_path", help="SQLite state file")
    parser.add_argument(
        "--log.level",
        dest="log_level",
        default="warning",
        choices=["debug", "info", "warning", "error"],
        help="log level (default warning)",
    )
    parser.add_argument(
        "--config.file", dest="config_file", help="config file (state path and lookup settings)"
    )


def _open(args: argparse.Namespace) -> tuple[Store, LookupSettings]:
    settings = LookupSettings()
    path = args.state_path
    if args.config_file:
        from exporter.config import load_config

        config = load_config(args.config_file, state_path=path)
        settings, path = config.lookup, config.state_path
        if config.state_backend == "postgresql" and not args.state_path:
            return open_store(config), _with_timezone(args, settings)
    if not path:
        raise ConfigError("give --state.path or --config.file", path="--state.path")
    if not Path(path).is_file():
        raise ConfigError(f"no state file at {path}", path="--state.path")
    return Store(path), _with_timezone(args, settings)


def _with_timezone(args: argparse.Namespace, settings: LookupSettings) -> LookupSettings:
    if getattr(args, "timezone", None):
        return replace(settings, timezone=check_timezone(args.timezone, "--timezone"))
    return settings


def cmd_lookup(args: argparse.Namespace) -> int:
    """`smswatch lookup`: print one key's transactions, explained."""
    store, settings = _open(args)
    if args.prometheus_url:
        settings = replace(settings, prometheus=PrometheusSettings(args.prometheus_url.rstrip("/")))
    try:
        history = AlertHistory(settings.prometheus) if settings.prometheus else None
        service = LookupService(store, settings, history)
        params = {
            k: v
            for k, v in {
                "rrn": args.rrn,
                "txn_id": args.txn_id,
                "terminal": args.terminal,
                "phone_last4": args.phone_last4,
                "at": args.at,
                "window": args.window,
            }.items()
            if v is not None
        }
        caller = Caller(_os_user(), "cli", "cli", socket.gethostname())
        try:
            result = service.run(params, caller, args.lang)
        except BadLookup as exc:
            print(f"smswatch: error: {exc}", file=sys.stderr)
            return 2
        if args.output == "json":
            print(json.dumps(result.to_json(), ensure_ascii=False, indent=2))
        else:
            print(render_text(result, settings, args.lang))
        return 0
    finally:
        store.close()


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def render_text(result: LookupResult, settings: LookupSettings, lang: str) -> str:
    """The readable form of a lookup for a terminal."""
    zone = settings.zone
    ui = UI[lang]
    q = result.query
    lines = []
    count = len(result.results)
    head = ui["found"].format(n=count) if count else ui["found_none"]
    if result.truncated:
        head += " " + ui["truncated"].format(n=count)
    lines.append(f"{q.kind} {q.audit_key if q.kind == 'phone_last4' else q.value}: {head}")
    at = result.results[0].transaction.txn_ms if result.results else int(time.time() * 1000)
    lines.append(ui["times_in"].format(zone=zone_label(zone, at)))
    for explained in result.results:
        lines.append("")
        lines.extend(_text_card(explained, result, settings, lang))
    return "\n".join(lines)


def _wrap(text: str, indent: str = "  ") -> list[str]:
    return textwrap.wrap(text, WIDTH, initial_indent=indent, subsequent_indent=indent) or [indent]


def _text_card(
    explained: Explained, result: LookupResult, settings: LookupSettings, lang: str
) -> list[str]:
    ui = UI[lang]
    zone = settings.zone
    t = explained.transaction
    _, label = verdict(explained, lang)
    lines = [f"== {label}: {explained.advice.title}"]
    lines.append(
        f"   {ui['rrn']} {t.rrn} · {ui['txn_id']} {t.txn_id} ({t.source}) · "
        f"{local_time(t.txn_ms, zone)} · "
        f"{ui['terminal']} {t.terminal_id} ({t.acquirer}) · {ui['card']} {t.pan}"
    )
    lines.extend(_wrap(explained.summary, "   "))
    if explained.alerts is None:
        lines.append(f"   {ui['alerts_unavailable']}")
    elif explained.alerts:
        lines.append(f"{ui['incident']}:")
        lines.extend(f"  {incident_text(a, zone, lang)}" for a in explained.alerts)
    lines.append(f"{ui['timeline']}:")
    for step in explained.steps:
        stamp = local_time(step.at_ms, zone)
        lines.extend(
            textwrap.wrap(
                step.text,
                WIDTH,
                initial_indent=f"  {stamp}  ",
                subsequent_indent=" " * (len(stamp) + 4),
            )
        )
    lines.append(f"{ui['what_happened']}:")
    lines.extend(_wrap(explained.advice.explanation))
    lines.append(f"{ui['what_to_say']}:")
    lines.extend(_wrap(explained.advice.advice))
    return lines


def cmd_audit_export(args: argparse.Namespace) -> int:
    """`smswatch audit export`: the lookups of a period as CSV."""
    store, settings = _open(args)
    try:
        try:
            from_ms = parse_at(args.from_time, settings.zone)
            to_ms = parse_at(args.to_time, settings.zone)
        except BadLookup as exc:
            raise ConfigError(str(exc).replace("at is", "--from/--to is"), path="--from") from None
        if to_ms <= from_ms:
            raise ConfigError("must be after --from", path="--to")
        text = audit_csv(store.audit_entries(from_ms, to_ms))
    finally:
        store.close()
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text, encoding="utf-8")
    return 0


def demo_access(config: Config, directory: Path) -> tuple[Config, str]:
    """`smswatch demo`'s lookup access: a fresh token, its digest in a tokens file written in
    `directory` (the demo's work directory, removed when it stops)."""
    token, digest = new_token()
    path = directory / "lookup-tokens.yml"
    path.write_text(f"tokens:\n  - name: demo\n    sha256: {digest}\n", encoding="utf-8")
    return replace(config, lookup=replace(config.lookup, tokens_file=str(path))), token


def cmd_lookup_token(args: argparse.Namespace) -> int:
    """`smswatch lookup-token`: a new token and its tokens-file entry."""
    if not NAME.fullmatch(args.name):
        raise ConfigError("must be 1-64 letters, digits, '.', '_', '@', '-'", path="--name")
    token, digest = new_token()
    print(f"token for {args.name} (shown once, give it to them privately):")
    print(f"  {token}")
    print("add to the lookup tokens file:")
    print(f"  - name: {args.name}")
    print(f"    sha256: {digest}")
    return 0
