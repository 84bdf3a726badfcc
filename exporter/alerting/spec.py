"""The alert spec: objectives and thresholds in one place, read from `alerts/spec.yaml`.

Every value is validated here, so the generator can trust it; an error names the file and the
field at fault (exit code 2 through `ConfigError`). Durations are kept as integer milliseconds
and ratios as `Decimal`, so rendered thresholds are exactly what the file says.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

from exporter.catalogue import BUCKETS_SECONDS, CAUSES
from exporter.errors import ConfigError
from exporter.timestamps import parse_duration_ms

SPEC_VERSION = "smswatch/alerts/v1"

#: The SLOs the generator knows, and the label each one is computed per.
SLO_NAMES: tuple[str, ...] = ("sms-delivery", "receipt-notification", "receipt-latency")

#: Threshold keys each non-SLO alert takes (`for` is always required, `keep_firing_for` optional).
ALERT_KEYS: dict[str, tuple[str, ...]] = {
    "SMSDeliveryTotalFailure": ("window", "min_expected"),
    "ReceiptNotificationTotalFailure": ("window", "min_expected"),
    "SMSGatewayOutage": ("window", "min_events"),
    "SMSGatewayErrors": ("window", "factor", "floor", "min_events"),
    "ReceiptsWithoutSMS": ("window", "factor", "floor", "min_events"),
    "ReceiptsWithoutSMSTerminalConfig": ("window", "factor", "floor", "min_events"),
    "POSTerminalsNotNotifying": ("window", "min_events"),
    "SMSThrottled": ("window", "factor", "floor", "min_events"),
    "SMSInvalidNumberHotSpot": ("window", "factor", "floor", "min_events"),
    "SMSUnreachableHotSpot": ("window", "factor", "floor", "min_events"),
    "SMSCarrierFiltering": ("window", "factor", "floor", "min_events"),
    "ReceiptNotificationSlow": ("window", "latency_seconds", "ratio", "min_events"),
    "SmswatchMonitoringBlind": ("window", "threshold"),
    "SmswatchSourceDown": (),
    "SmswatchSourceStale": (),
    "SmswatchSourceLagging": ("threshold",),
    "SmswatchDecisionsHeldBack": ("threshold",),
    "SmswatchExporterDown": (),
    "SmswatchExporterAbsent": (),
    "SmswatchUnobservedTime": ("window",),
    "SmswatchReceiptsUnobserved": ("window", "min_events"),
    "SmswatchWatermarkClamped": ("window",),
    "SmswatchInvalidRecords": ("window", "ratio", "min_events"),
    "POSApprovalsStopped": ("window", "min_expected"),
    "SMSUnlistedCodes": ("window", "ratio", "min_events"),
    "ComplianceReportUndelivered": ("window",),
    "SMSAccountCreditRunningOut": ("window", "threshold"),
    "SMSAccountQuotaLow": ("ratio",),
    "SMSSenderNotApproved": (),
    "SmswatchAccountCheckFailing": (),
    "SMSProbeFailing": ("window", "min_events"),
    "SMSFakeDeliveryReports": ("window", "min_events"),
    "SMSProbesNotRunning": ("threshold",),
    "SmswatchSourceUnpolled": (),
    "SmswatchNoPrimary": (),
}

DASHBOARD_KEYS: tuple[str, ...] = ("overview", "oncall", "receipts")
SEVERITIES: tuple[str, ...] = ("critical", "warning", "info")


@dataclass(frozen=True)
class BurnWindow:
    """One window pair of a multi-window alert: both windows above burn_rate × budget."""

    long_ms: int
    short_ms: int
    burn_rate: Decimal


@dataclass(frozen=True)
class BurnPolicy:
    """Page or ticket: a severity, a `for:` and the window pairs that are ORed."""

    name: str
    severity: str
    for_ms: int
    windows: tuple[BurnWindow, ...]


@dataclass(frozen=True)
class Objective:
    """One SLO: the objective in percent, the traffic guard, and (latency) the bucket."""

    name: str
    objective_percent: Decimal
    min_events_per_hour: int
    latency_seconds: int | None = None

    @property
    def objective(self) -> Decimal:
        """The objective as a ratio (99.5 → 0.995), exact."""
        return self.objective_percent / 100

    @property
    def error_budget(self) -> Decimal:
        """1 − objective, exact (0.005, not 0.0050000000000000044)."""
        return 1 - self.objective


@dataclass(frozen=True)
class Thresholds:
    """The thresholds of one non-SLO alert; which fields are set depends on the alert."""

    for_ms: int
    keep_firing_for_ms: int | None = None
    window_ms: int | None = None
    ratio: Decimal | None = None
    min_events: int | None = None
    min_expected: int | None = None
    threshold_ms: int | None = None
    factor: Decimal | None = None
    floor: Decimal | None = None
    latency_seconds: int | None = None


@dataclass(frozen=True)
class Baseline:
    """How a cause's normal share is measured (see `alerts/spec.yaml`, `baseline:`)."""

    window_ms: int
    evaluation_ms: int
    ceiling: Decimal


@dataclass(frozen=True)
class AlertSpec:
    """The whole spec file, validated."""

    service: str
    selector: str
    runbook_base_url: str
    dashboard_base_url: str
    dashboards: dict[str, str]
    poll_interval_ms: int
    stale_after_polls: int
    missing_after_ms: int
    scrape_interval_ms: int
    sms_sources: dict[str, str]
    transaction_sources: tuple[str, ...]
    bank_side_causes: tuple[str, ...]
    cardholder_causes: tuple[str, ...]
    baseline: Baseline
    period_ms: int
    page: BurnPolicy
    ticket: BurnPolicy
    objectives: dict[str, Objective]
    alerts: dict[str, Thresholds]


class _Reader:
    """Typed access to a parsed YAML mapping that names the field path in every error."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, message: str) -> ConfigError:
        return ConfigError(message, path=path, source=self.source)

    def mapping(self, value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, "must be a mapping")
        return value

    def keys(self, value: dict[str, Any], path: str, allowed: tuple[str, ...]) -> None:
        unknown = sorted(set(value) - set(allowed))
        if unknown:
            raise self.fail(f"{path}.{unknown[0]}" if path else unknown[0], "unknown field")

    def get(self, value: dict[str, Any], key: str, path: str) -> Any:
        if key not in value:
            raise self.fail(f"{path}.{key}" if path else key, "missing")
        return value[key]

    def text(self, value: dict[str, Any], key: str, path: str) -> str:
        item = self.get(value, key, path)
        if not isinstance(item, str) or not item.strip():
            raise self.fail(f"{path}.{key}" if path else key, "must be a non-empty string")
        return item.strip()

    def duration(self, value: dict[str, Any], key: str, path: str, *, zero: bool = False) -> int:
        item = self.get(value, key, path)
        where = f"{path}.{key}" if path else key
        if not isinstance(item, str):
            raise self.fail(where, "must be a duration such as 5m")
        try:
            ms = parse_duration_ms(item)
        except ValueError as exc:
            raise self.fail(where, str(exc)) from exc
        if ms < 0 or (ms == 0 and not zero):
            raise self.fail(where, "must be >= 0" if zero else "must be > 0")
        return ms

    def count(self, value: dict[str, Any], key: str, path: str) -> int:
        item = self.get(value, key, path)
        if isinstance(item, bool) or not isinstance(item, int) or item < 1:
            raise self.fail(f"{path}.{key}", "must be an integer >= 1")
        return int(item)

    def decimal(self, value: dict[str, Any], key: str, path: str) -> Decimal:
        item = self.get(value, key, path)
        if isinstance(item, bool) or not isinstance(item, int | float | str):
            raise self.fail(f"{path}.{key}", "must be a number")
        try:
            number = Decimal(str(item))
        except InvalidOperation as exc:
            raise self.fail(f"{path}.{key}", "must be a number") from exc
        if not number.is_finite() or number <= 0:
            raise self.fail(f"{path}.{key}", "must be > 0")
        return number


def _policy(read: _Reader, raw: Any, path: str) -> BurnPolicy:
    data = read.mapping(raw, path)
    read.keys(data, path, ("severity", "for", "windows"))
    severity = read.text(data, "severity", path)
    if severity not in SEVERITIES:
        raise read.fail(f"{path}.severity", f"must be one of {', '.join(SEVERITIES)}")
    windows_raw = read.get(data, "windows", path)
    if not isinstance(windows_raw, list) or not windows_raw:
        raise read.fail(f"{path}.windows", "must be a non-empty list")
    windows = []
    for index, item in enumerate(windows_raw):
        where = f"{path}.windows[{index}]"
        pair = read.mapping(item, where)
        read.keys(pair, where, ("long", "short", "burn_rate"))
        window = BurnWindow(
            long_ms=read.duration(pair, "long", where),
            short_ms=read.duration(pair, "short", where),
            burn_rate=read.decimal(pair, "burn_rate", where),
        )
        if window.short_ms >= window.long_ms:
            raise read.fail(f"{where}.short", "must be shorter than long")
        windows.append(window)
    return BurnPolicy(
        name=path.rpartition(".")[2],
        severity=severity,
        for_ms=read.duration(data, "for", path),
        windows=tuple(windows),
    )


def _objective(read: _Reader, name: str, raw: Any, path: str) -> Objective:
    data = read.mapping(raw, path)
    latency = name == "receipt-latency"
    allowed = ("objective", "min_events_per_hour") + (("latency_seconds",) if latency else ())
    read.keys(data, path, allowed)
    percent = read.decimal(data, "objective", path)
    if not Decimal(0) < percent < Decimal(100):
        raise read.fail(f"{path}.objective", "must be a percentage between 0 and 100")
    seconds = None
    if latency:
        seconds = read.count(data, "latency_seconds", path)
        if seconds not in BUCKETS_SECONDS:
            buckets = ", ".join(str(b) for b in BUCKETS_SECONDS)
            raise read.fail(f"{path}.latency_seconds", f"must be a histogram bucket: {buckets}")
    return Objective(
        name=name,
        objective_percent=percent,
        min_events_per_hour=read.count(data, "min_events_per_hour", path),
        latency_seconds=seconds,
    )


def _thresholds(read: _Reader, name: str, raw: Any, path: str) -> Thresholds:
    data = read.mapping(raw, path)
    keys = ALERT_KEYS[name]
    read.keys(data, path, ("for", "keep_firing_for", *keys))
    missing = [key for key in keys if key not in data]
    if missing:
        raise read.fail(f"{path}.{missing[0]}", "missing")

    def fraction(key: str) -> Decimal | None:
        if key not in keys:
            return None
        value = read.decimal(data, key, path)
        if value >= 1:
            raise read.fail(f"{path}.{key}", "must be a fraction below 1 (0.05 = 5 %)")
        return value

    def count(key: str) -> int | None:
        return read.count(data, key, path) if key in keys else None

    def duration(key: str) -> int | None:
        return read.duration(data, key, path) if key in keys else None

    latency = count("latency_seconds")
    if latency is not None and latency not in BUCKETS_SECONDS:
        buckets = ", ".join(str(b) for b in BUCKETS_SECONDS)
        raise read.fail(f"{path}.latency_seconds", f"must be a histogram bucket: {buckets}")
    return Thresholds(
        for_ms=read.duration(data, "for", path, zero=True),
        keep_firing_for_ms=(
            read.duration(data, "keep_firing_for", path) if "keep_firing_for" in data else None
        ),
        window_ms=duration("window"),
        ratio=fraction("ratio"),
        min_events=count("min_events"),
        min_expected=count("min_expected"),
        threshold_ms=duration("threshold"),
        factor=read.decimal(data, "factor", path) if "factor" in keys else None,
        floor=fraction("floor"),
        latency_seconds=latency,
    )


def _causes(read: _Reader, top: dict[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(bank side, cardholder side): every catalogue cause on exactly one side."""
    raw = read.mapping(read.get(top, "causes", ""), "causes")
    read.keys(raw, "causes", ("bank_side", "cardholder_side"))
    sides = []
    for side in ("bank_side", "cardholder_side"):
        items = read.get(raw, side, "causes")
        if not isinstance(items, list) or not all(isinstance(c, str) for c in items):
            raise read.fail(f"causes.{side}", "must be a list of causes")
        unknown = sorted(set(items) - set(CAUSES))
        if unknown:
            raise read.fail(f"causes.{side}", f"not a cause: {unknown[0]}")
        sides.append(tuple(items))
    bank, cardholder = sides
    both = sorted(set(bank) & set(cardholder))
    if both:
        raise read.fail("causes.cardholder_side", f"{both[0]} is on both sides")
    left = sorted(set(CAUSES) - set(bank) - set(cardholder))
    if left:
        raise read.fail("causes.bank_side", f"{left[0]} is on neither side")
    return bank, cardholder


def _baseline(read: _Reader, top: dict[str, Any]) -> Baseline:
    raw = read.mapping(read.get(top, "baseline", ""), "baseline")
    read.keys(raw, "baseline", ("window", "evaluation", "ceiling"))
    ceiling = read.decimal(raw, "ceiling", "baseline")
    if ceiling >= 1:
        raise read.fail("baseline.ceiling", "must be a fraction below 1 (0.5 = 50 %)")
    return Baseline(
        window_ms=read.duration(raw, "window", "baseline"),
        evaluation_ms=read.duration(raw, "evaluation", "baseline"),
        ceiling=ceiling,
    )


def parse_spec(raw: Any, source: str = "spec") -> AlertSpec:
    """Validate a parsed spec document; raise `ConfigError` naming the first bad field."""
    read = _Reader(source)
    top = read.mapping(raw, "")
    read.keys(
        top,
        "",
        (
            "version",
            "service",
            "selector",
            "runbook_base_url",
            "dashboard_base_url",
            "dashboards",
            "exporter",
            "causes",
            "baseline",
            "slo",
            "alerts",
        ),
    )
    if top.get("version") != SPEC_VERSION:
        raise read.fail("version", f"must be {SPEC_VERSION!r}")

    dashboards = read.mapping(read.get(top, "dashboards", ""), "dashboards")
    read.keys(dashboards, "dashboards", DASHBOARD_KEYS)
    dashboard_uids = {key: read.text(dashboards, key, "dashboards") for key in DASHBOARD_KEYS}

    exp = read.mapping(read.get(top, "exporter", ""), "exporter")
    read.keys(
        exp,
        "exporter",
        (
            "poll_interval",
            "scrape_interval",
            "stale_after_polls",
            "missing_after",
            "sms_sources",
            "transaction_sources",
        ),
    )
    txn_raw = read.get(exp, "transaction_sources", "exporter")
    if not isinstance(txn_raw, list) or not txn_raw or not all(isinstance(t, str) for t in txn_raw):
        raise read.fail("exporter.transaction_sources", "must be a non-empty list of sources")
    bank, cardholder = _causes(read, top)
    sms = read.mapping(read.get(exp, "sms_sources", "exporter"), "exporter.sms_sources")
    if not sms:
        raise read.fail("exporter.sms_sources", "must name at least one SMS source")
    sms_sources = {str(src): read.text(sms, src, "exporter.sms_sources") for src in sorted(sms)}

    slo = read.mapping(read.get(top, "slo", ""), "slo")
    read.keys(slo, "slo", ("period", "page", "ticket", "objectives"))
    objectives_raw = read.mapping(read.get(slo, "objectives", "slo"), "slo.objectives")
    read.keys(objectives_raw, "slo.objectives", SLO_NAMES)
    objectives = {
        name: _objective(
            read, name, read.get(objectives_raw, name, "slo.objectives"), f"slo.objectives.{name}"
        )
        for name in SLO_NAMES
    }

    alerts_raw = read.mapping(read.get(top, "alerts", ""), "alerts")
    read.keys(alerts_raw, "alerts", tuple(ALERT_KEYS))
    alerts = {
        name: _thresholds(read, name, read.get(alerts_raw, name, "alerts"), f"alerts.{name}")
        for name in ALERT_KEYS
    }

    return AlertSpec(
        service=read.text(top, "service", ""),
        selector=read.text(top, "selector", ""),
        runbook_base_url=read.text(top, "runbook_base_url", "").rstrip("/"),
        dashboard_base_url=read.text(top, "dashboard_base_url", "").rstrip("/"),
        dashboards=dashboard_uids,
        poll_interval_ms=read.duration(exp, "poll_interval", "exporter"),
        stale_after_polls=read.count(exp, "stale_after_polls", "exporter"),
        missing_after_ms=read.duration(exp, "missing_after", "exporter"),
        scrape_interval_ms=read.duration(exp, "scrape_interval", "exporter"),
        sms_sources=sms_sources,
        transaction_sources=tuple(txn_raw),
        bank_side_causes=bank,
        cardholder_causes=cardholder,
        baseline=_baseline(read, top),
        period_ms=read.duration(slo, "period", "slo"),
        page=_policy(read, read.get(slo, "page", "slo"), "slo.page"),
        ticket=_policy(read, read.get(slo, "ticket", "slo"), "slo.ticket"),
        objectives=objectives,
        alerts=alerts,
    )


def load_spec(path: str | Path) -> AlertSpec:
    """Read and validate the spec file at `path`."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", source=str(path)) from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", source=str(path)) from exc
    return parse_spec(raw, source=str(path))
