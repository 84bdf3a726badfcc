"""`smswatch account check`: check the provider accounts of a config once, now.

What an engineer runs after setting up `account:` (or rotating a key): one check per gateway,
the same code the exporter schedules, printed. Exit code 0 when every part was read and every
watched signature and template is approved, 1 otherwise, 2 for a bad config.
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from exporter.errors import ConfigError

if TYPE_CHECKING:
    from exporter.accounts.readings import AccountReading


def add_account_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `smswatch account check`."""
    account = sub.add_parser(
        "account",
        help="provider account health: balance or quota, signature and template approval",
        description="Read the provider accounts of the gateways with an `account:` section.",
    )
    actions = account.add_subparsers(dest="account_command", metavar="ACTION", required=True)
    check = actions.add_parser(
        "check",
        help="check the accounts once, now",
        description="One account check per gateway, as the exporter schedules it. Exit code 0 "
        "when every part was read and every watched signature and template is approved.",
    )
    check.add_argument("--config.file", dest="config_file", required=True, help="YAML config")
    check.add_argument("--gateway", default="", help="only this gateway")
    check.add_argument("--output", choices=("text", "json"), default="text")
    check.add_argument(
        "--log.level",
        dest="log_level",
        default="warning",
        choices=("debug", "info", "warning", "error"),
        help="log level (default warning)",
    )
    check.set_defaults(func=check_command)


def check_command(args: argparse.Namespace) -> int:
    """Check each selected gateway's account once and print what was read."""
    from exporter.accounts.checker import AccountChecker
    from exporter.config import load_config

    config = load_config(args.config_file)
    sources = [
        s
        for s in config.sources
        if s.account is not None and (not args.gateway or s.gateway == args.gateway)
    ]
    if not sources:
        which = f"gateway {args.gateway!r} with" if args.gateway else "source with"
        raise ConfigError(f"no {which} an account section", path="--gateway")
    results: list[dict[str, Any]] = []
    healthy = True
    for source in sources:
        checker = AccountChecker(source)
        try:
            reading = checker.check()
        finally:
            checker.close()
        result = describe(source.gateway, checker.source.provider, reading)
        healthy = healthy and result["ok"]
        results.append(result)
    if args.output == "json":
        print(json.dumps({"accounts": results}, ensure_ascii=False, indent=2))
    else:
        for result in results:
            print("\n".join(text_lines(result)))
    return 0 if healthy else 1


def describe(gateway: str, provider: str, reading: AccountReading) -> dict[str, Any]:
    """One gateway's reading as a plain document (the JSON output)."""
    senders = [{"kind": s.kind, "name": s.name, "state": s.state} for s in reading.senders or ()]
    return {
        "gateway": gateway,
        "provider": provider,
        "ok": not reading.failed_parts and all(s["state"] == "approved" for s in senders),
        "failed": list(reading.failed_parts),
        "balance": (
            {"amount": reading.balance.amount, "currency": reading.balance.currency}
            if reading.balance
            else None
        ),
        "quota": (
            {"remaining": reading.quota.remaining, "limit": reading.quota.total}
            if reading.quota
            else None
        ),
        "senders": senders,
    }


def text_lines(result: dict[str, Any]) -> list[str]:
    """One gateway's result for a person."""
    lines = [f"{result['gateway']} ({result['provider']}): {'ok' if result['ok'] else 'NOT OK'}"]
    if result["balance"]:
        lines.append(f"  balance: {result['balance']['amount']} {result['balance']['currency']}")
    if result["quota"]:
        quota = result["quota"]
        lines.append(f"  quota: {quota['remaining']} of {quota['limit']} messages left")
    lines.extend(f"  {s['kind']} {s['name']}: {s['state']}" for s in result["senders"])
    lines.extend(f"  {part}: could not be read (see the log)" for part in result["failed"])
    return lines
