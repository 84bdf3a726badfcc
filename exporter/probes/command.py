"""`smswatch probe --gateway G --to NUMBER`: one canary now, waiting for both proofs.

The pre-release check after a change, and the joint test with an acquirer or SMS platform:
the canary goes out through the gateway's send API of the config's `probes:` section, its
delivery report comes back through the normal path (the running exporter takes pushes, or
polls the gateway, into the same state file), and the handset's inbox is read here. Prints a
timeline; exit 0 only when both the delivery report and the handset proved delivery.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from exporter.errors import ConfigError
from exporter.probes.prober import Prober
from exporter.probes.settings import CanaryNumber, ProbeSettings
from exporter.store import CanaryRow, Store
from exporter.timestamps import format_rfc3339_ms, parse_duration_ms


def add_command(sub: Any) -> None:
    """Register `smswatch probe` on the CLI's sub-command parsers."""
    probe = sub.add_parser(
        "probe",
        help="send one canary SMS now and wait for both proofs of delivery",
        description="Send one canary SMS through a gateway's send API (config `probes:`) and "
        "wait for its delivery report (through the running exporter) and for its nonce on the "
        "test handset. Exit 0 only when both arrive.",
    )
    probe.add_argument("--config.file", dest="config_file", required=True, help="YAML config")
    probe.add_argument("--gateway", required=True, help="a gateway listed under probes.gateways")
    probe.add_argument("--to", required=True, help="the test handset's number")
    probe.add_argument("--carrier", default=None, help="carrier label (default: from the config)")
    probe.add_argument("--area", default=None, help="area label (default: from the config)")
    probe.add_argument(
        "--timeout",
        default=None,
        help="how long to wait for both proofs (default report_timeout + handset_timeout)",
    )
    probe.add_argument("--state.path", dest="state_path", default=None, help="state file")
    probe.add_argument(
        "--log.level",
        dest="log_level",
        default="warning",
        choices=["debug", "info", "warning", "error"],
        help="log level (default warning: the timeline is the output)",
    )
    probe.set_defaults(func=probe_command)


def probe_command(args: argparse.Namespace) -> int:
    """The `smswatch probe` command."""
    from exporter.config import load_config

    config = load_config(args.config_file, state_path=args.state_path)
    if config.probes is None:
        raise ConfigError("no probes: section", path="probes", source=args.config_file)
    store = Store(config.state_path)
    try:
        return run_probe(
            config.probes,
            store,
            args.gateway,
            args.to,
            carrier=args.carrier,
            area=args.area,
            timeout_ms=parse_duration_ms(args.timeout) if args.timeout else None,
        )
    finally:
        store.close()


def run_probe(
    settings: ProbeSettings,
    store: Store,
    gateway: str,
    to: str,
    *,
    carrier: str | None = None,
    area: str | None = None,
    timeout_ms: int | None = None,
    out: TextIO | None = None,
    clock: Callable[[], float] = time.time,
    poll_s: float = 0.2,
) -> int:
    """Send one canary and print its timeline until both proofs or a verdict; the exit code."""
    out = out or sys.stdout
    probe = settings.gateway(gateway)
    if probe is None:
        known = ", ".join(g.gateway for g in settings.gateways)
        raise ConfigError(f"gateway {gateway!r} is not probed (probed: {known})", path="--gateway")
    if not to.lstrip("+").isdigit():
        raise ConfigError("must be a phone number", path="--to")
    listed = next((n for n in probe.numbers if n.number == to), None)
    number = CanaryNumber(
        to,
        carrier or (listed.carrier if listed else "other"),
        area or (listed.area if listed else "other"),
    )
    prober = Prober(settings, store, clock)
    canary = prober.send_one(probe, number)
    start = canary.sent_ms
    deadline = clock() + (
        timeout_ms / 1000
        if timeout_ms is not None
        else (settings.report_timeout_ms + settings.handset_timeout_ms) / 1000
    )
    print(
        f"canary {canary.canary_id} to {canary.phone} through {gateway} "
        f"(carrier {number.carrier}, area {number.area}), nonce {canary.nonce}",
        file=out,
    )
    shown = 0
    while True:
        prober.check()
        current = store.canary(canary.canary_id) or canary
        shown = _print_new(current, start, shown, out)
        if _both_proofs(current) or current.verdict is not None or clock() >= deadline:
            break
        time.sleep(poll_s)
    return _conclude(current, out)


def _both_proofs(canary: CanaryRow) -> bool:
    return canary.report_status == "delivered" and canary.handset_ms is not None


def _print_new(canary: CanaryRow, start_ms: int, shown: int, out: TextIO) -> int:
    """Print the timeline entries not printed yet, as `+seconds  wall time  what  detail`."""
    for at_ms, what, detail in canary.timeline[shown:]:
        print(
            f"  +{(at_ms - start_ms) / 1000:8.3f} s  {format_rfc3339_ms(at_ms)}  "
            f"{what:<8}  {detail}",
            file=out,
        )
    return len(canary.timeline)


def _conclude(canary: CanaryRow, out: TextIO) -> int:
    report = canary.report_status or "none"
    handset = "received" if canary.handset_ms is not None else "not received"
    print(f"delivery report: {report}; handset: {handset}", file=out)
    if _both_proofs(canary):
        assert canary.handset_ms is not None and canary.report_ms is not None
        seconds = (canary.handset_ms - canary.sent_ms) / 1000
        print(
            f"result: delivered, both proofs in (on the handset {seconds:.0f} s after sending, "
            "to the second its inbox tells)",
            file=out,
        )
        return 0
    if canary.verdict == "fake_report":
        print("result: FAKE DELIVERY REPORT: delivered reported, handset never got it", file=out)
    elif canary.send_error:
        print(f"result: FAILED, send refused: {canary.send_error}", file=out)
    elif canary.report_status is None:
        print(
            "result: FAILED, no delivery report (is the exporter running and taking the "
            "gateway's reports?)",
            file=out,
        )
    else:
        print(f"result: FAILED, cause {canary.cause or 'pending'}", file=out)
    return 1
