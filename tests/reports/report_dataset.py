"""A known history of smswatch metrics, written as OpenMetrics for `promtool tsdb
create-blocks-from openmetrics`, with the figures a report on it must show.

The report period is 2026-03-10 in Asia/Shanghai (2026-03-09T16:00Z to 2026-03-10T16:00Z).
Prometheus scrapes the exporter every 60 s at second 17 (never on a period boundary), and the
history holds what makes naive figures wrong:

- the exporter is down from 12 minutes before the period start to 8 minutes after (no samples,
  `up` = 0): its counters resume afterwards with everything counted meanwhile, and one of them
  (bank-b/cu delivered SMS) comes back reset to zero;
- at 04:00:17Z the exporter restarts without its state: every counter restarts from zero;
- a receipts series (acq-b, failed, filtered) appears for the first time inside the period;
- the `sms` source is down 07:00–07:30Z and the `acquirer` source lags 20 minutes 10:00–10:20Z;
- alerts fire and resolve (one across the period start, one still firing at its end);
- gateway `bank-c` and acquirer `acq-c` carry healthy traffic: 1 % of outcomes fail on the
  cardholder's side and a few on the bank's side, so their overall delivery rate is below
  99.5 % while their bank-side SLI meets its objective.

Every counter is built from per-scrape increments ("visible increments": what the scrape at that
instant newly shows, the new value itself after a reset), so the expected figure of any window
(a, b] is the plain sum of the increments of the scrapes in it — computed here without any of
the report's code.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from exporter.catalogue import BUCKETS_SECONDS

ZONE = "Asia/Shanghai"
JOB = {"job": "smswatch", "instance": "exporter:8479"}


def ts(text: str) -> float:
    """Unix seconds of an RFC 3339 UTC time."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).timestamp()


PERIOD_START = ts("2026-03-09T16:00:00Z")
PERIOD_END = ts("2026-03-10T16:00:00Z")
PREVIOUS_START = ts("2026-03-08T16:00:00Z")
DATA_START = ts("2026-03-08T14:00:17Z")
DATA_END = ts("2026-03-10T17:00:17Z")
SCRAPE = 60
DOWN = (PERIOD_START - 12 * 60, PERIOD_START + 8 * 60)  # exporter not scraped
RESET_ALL = ts("2026-03-10T04:00:17Z")
NEW_SERIES_FROM = ts("2026-03-10T09:30:17Z")
SMS_DOWN = (ts("2026-03-10T07:00:17Z"), ts("2026-03-10T07:29:17Z"))  # inclusive scrapes
ACQ_LAGGING = (ts("2026-03-10T10:00:17Z"), ts("2026-03-10T10:19:17Z"))
GATEWAY_OUTAGE = (ts("2026-03-10T02:00:00Z"), ts("2026-03-10T02:45:00Z"))
TERMINALS_CHANGE = ts("2026-03-10T12:00:17Z")
EVAL = 30  # rule evaluation interval of the test Prometheus

ACQUIRERS = ("acq-a", "acq-b")
GATEWAYS = ("bank-a", "bank-b")
HEALTHY_GATEWAY = "bank-c"
HEALTHY_ACQUIRER = "acq-c"
CARRIERS = ("cm", "cu")


def scrape_times() -> Iterator[float]:
    moment = DATA_START
    while moment <= DATA_END:
        yield moment
        moment += SCRAPE


def exporter_up(moment: float) -> bool:
    return not DOWN[0] <= moment < DOWN[1]


@dataclass
class CounterSeries:
    """One counter series: (time, value, visible increment) per scrape."""

    name: str
    labels: dict[str, str]
    samples: list[tuple[float, float, int]] = field(default_factory=list)

    def increase(self, start: float, end: float) -> int:
        return sum(d for t, _, d in self.samples if start < t <= end)


@dataclass
class Alert:
    """A firing interval written as ALERTS samples every EVAL seconds from first to last."""

    labels: dict[str, str]
    first: float
    last: float
    pending_from: float | None = None

    @property
    def resolved(self) -> float:
        return self.last + EVAL


ALERTS: tuple[Alert, ...] = (
    Alert(
        {
            "alertname": "SMSGatewayOutage",
            "severity": "critical",
            "cause": "gateway",
            "gateway": "bank-a",
        },
        ts("2026-03-10T02:00:00Z"),
        ts("2026-03-10T02:44:30Z"),
        pending_from=ts("2026-03-10T01:58:00Z"),
    ),
    Alert(
        {
            "alertname": "SMSUnreachableHotSpot",
            "severity": "warning",
            "cause": "unreachable",
            "gateway": "bank-b",
            "carrier": "cu",
        },
        ts("2026-03-10T09:10:30Z"),
        ts("2026-03-10T09:31:00Z"),
    ),
    Alert(
        {
            "alertname": "ReceiptsWithoutSMS",
            "severity": "warning",
            "cause": "integration",
            "acquirer": "acq-b",
        },
        ts("2026-03-10T13:00:00Z"),
        ts("2026-03-10T13:04:30Z"),
    ),
    Alert(
        {
            "alertname": "ReceiptsWithoutSMS",
            "severity": "warning",
            "cause": "integration",
            "acquirer": "acq-b",
        },
        ts("2026-03-10T13:10:00Z"),
        ts("2026-03-10T13:14:30Z"),
    ),
    # Evaluations not on a 30 s grid of the query (a group with an offset).
    Alert(
        {
            "alertname": "SmswatchSourceDown",
            "severity": "critical",
            "cause": "gateway",
            "source": "sms",
        },
        ts("2026-03-10T07:05:07Z"),
        ts("2026-03-10T07:31:37Z"),
    ),
    # Across the period start: fired on the previous day.
    Alert(
        {
            "alertname": "SmswatchExporterDown",
            "severity": "critical",
            "cause": "",
            "job": "smswatch",
        },
        ts("2026-03-09T15:00:00Z"),
        ts("2026-03-09T16:29:30Z"),
    ),
    # Still firing at the period end (and after).
    Alert(
        {
            "alertname": "POSTerminalsNotNotifying",
            "severity": "warning",
            "cause": "terminal_config",
            "acquirer": "acq-a",
        },
        ts("2026-03-10T15:30:00Z"),
        ts("2026-03-10T16:40:00Z"),
    ),
    # The previous day only: must not appear.
    Alert(
        {
            "alertname": "SMSThrottled",
            "severity": "warning",
            "cause": "throttled",
            "gateway": "bank-a",
        },
        ts("2026-03-09T10:00:00Z"),
        ts("2026-03-09T10:20:00Z"),
    ),
    # The dead man's switch fires all the time and is no incident.
    Alert(
        {"alertname": "Watchdog", "severity": "none"},
        ts("2026-03-08T14:00:00Z"),
        ts("2026-03-10T17:00:00Z"),
    ),
)

#: Terminal inventory before and after TERMINALS_CHANGE: (acquirer, notice, software) → count.
TERMINALS_BEFORE = {
    ("acq-a", "enabled", "current"): 100,
    ("acq-a", "disabled", "current"): 2,
    ("acq-a", "enabled", "outdated"): 3,
    ("acq-a", "disabled", "outdated"): 0,
    ("acq-b", "enabled", "current"): 50,
    ("acq-b", "disabled", "current"): 0,
    ("acq-b", "enabled", "outdated"): 1,
    ("acq-b", "disabled", "outdated"): 0,
}
TERMINALS_AFTER = {
    ("acq-a", "enabled", "current"): 98,
    ("acq-a", "disabled", "current"): 4,
    ("acq-a", "enabled", "outdated"): 2,
    ("acq-a", "disabled", "outdated"): 1,
    ("acq-b", "enabled", "current"): 51,
    ("acq-b", "disabled", "current"): 1,
    ("acq-b", "enabled", "outdated"): 0,
    ("acq-b", "disabled", "outdated"): 2,
}

#: (outcome or status, cause, most per scrape, chance of any in a scrape)
RECEIPT_KINDS = (
    ("delivered", "none", 40, 1.0),
    ("failed", "invalid_number", 1, 0.2),
    ("failed", "unreachable", 2, 0.2),
    ("missing", "terminal_config", 1, 0.1),
    ("missing", "integration", 1, 0.1),
    ("unknown", "unknown", 1, 0.05),
)
MESSAGE_KINDS = (
    ("delivered", "none", 20, 1.0),
    ("undelivered", "unreachable", 1, 0.2),
    ("rejected", "invalid_number", 1, 0.1),
    ("expired", "unreachable", 1, 0.1),
    ("unknown", "unknown", 1, 0.05),
)
#: Relative weight of each latency bucket (then +Inf) for generated observations.
LATENCY_WEIGHTS = (300, 500, 1200, 900, 500, 300, 150, 60, 30, 15, 6, 3, 2)

#: Healthy traffic, one scrape in `every` gets `count`: (outcome or status, cause, count, every).
#: Per 200 outcomes, 2 (1 %) fail on the cardholder's side; a few fail on the bank's side.
HEALTHY_RECEIPT_KINDS = (
    ("delivered", "none", 197, 1),
    ("failed", "invalid_number", 1, 1),
    ("failed", "unreachable", 1, 1),
    ("missing", "integration", 1, 4),
    ("unknown", "unknown", 1, 8),
)
HEALTHY_MESSAGE_KINDS = (
    ("delivered", "none", 198, 1),
    ("undelivered", "unreachable", 1, 1),
    ("rejected", "invalid_number", 1, 1),
    ("failed", "throttled", 1, 10),
)

#: The SLIs' cause split, as the alerting spec states it (alerts/spec.yaml, `causes:`).
CARDHOLDER_SIDE = ("invalid_number", "unreachable", "filtered")
BANK_SIDE = ("gateway", "integration", "throttled", "terminal_config", "unknown")


#: Which series of a metric a figure takes, by their labels.
Where = Callable[[Mapping[str, str]], bool]


def everywhere(labels: Mapping[str, str]) -> bool:
    return True


@dataclass
class Dataset:
    counters: list[CounterSeries]
    gauges: list[tuple[str, dict[str, str], list[tuple[float, float]]]]

    def increase(
        self,
        name: str,
        start: float = PERIOD_START,
        end: float = PERIOD_END,
        where: Where = everywhere,
    ) -> int:
        return sum(
            s.increase(start, end) for s in self.counters if s.name == name and where(s.labels)
        )

    def by(
        self,
        name: str,
        label: str,
        start: float = PERIOD_START,
        end: float = PERIOD_END,
        where: Where = everywhere,
    ) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.counters:
            if s.name == name and where(s.labels):
                key = s.labels.get(label, "")
                out[key] = out.get(key, 0) + s.increase(start, end)
        return out

    def sli(self, name: str, where: Where = everywhere) -> tuple[int, int, int, int]:
        """(all outcomes, cardholder-side, SLI events, bank-side bad events) in the period."""
        causes = self.by(name, "cause", where=where)
        total = sum(causes.values())
        cardholder = sum(causes.get(c, 0) for c in CARDHOLDER_SIDE)
        return total, cardholder, total - cardholder, sum(causes.get(c, 0) for c in BANK_SIDE)

    def buckets(
        self,
        name: str,
        start: float = PERIOD_START,
        end: float = PERIOD_END,
        where: Where = everywhere,
    ) -> list[tuple[float, int]]:
        """Cumulative (le, count) over the window, +Inf last."""
        per_le = self.by(f"{name}_bucket", "le", start, end, where)
        return sorted(((float(le), count) for le, count in per_le.items()))


def _counter_steps(
    rng: random.Random,
    peak: int,
    chance: float = 1.0,
    *,
    active: Callable[[float], bool] = lambda t: True,
) -> Callable[[float], int]:
    def step(moment: float) -> int:
        if not active(moment) or rng.random() >= chance:
            return 0
        return rng.randint(1 if chance < 1 else 0, peak)

    return step


def build() -> Dataset:
    """The whole history (deterministic)."""
    rng = random.Random(20260310)
    counters: list[CounterSeries] = []

    def count(
        name: str,
        labels: dict[str, str],
        step: Callable[[float], int],
        reset: Callable[[float], bool] = _never,
    ) -> None:
        counters.append(_counter(name, labels, step, reset))

    for acquirer in ACQUIRERS:
        for result, peak, chance in (
            ("approved", 45, 1.0),
            ("declined", 2, 0.3),
            ("reversed", 1, 0.05),
        ):
            count(
                "smswatch_pos_transactions_total",
                {"acquirer": acquirer, "result": result},
                _counter_steps(rng, peak, chance),
            )
        for outcome, cause, peak, chance in RECEIPT_KINDS:
            count(
                "smswatch_receipts_total",
                {"acquirer": acquirer, "outcome": outcome, "cause": cause},
                _counter_steps(rng, peak, chance),
            )
        count(
            "smswatch_receipts_total",
            {"acquirer": acquirer, "outcome": "failed", "cause": "gateway"},
            _counter_steps(rng, 12, active=lambda t: GATEWAY_OUTAGE[0] <= t < GATEWAY_OUTAGE[1]),
        )
    count(
        "smswatch_receipts_total",
        {"acquirer": "acq-b", "outcome": "failed", "cause": "filtered"},
        _counter_steps(rng, 1, 0.3, active=lambda t: t >= NEW_SERIES_FROM),
    )
    for gateway in GATEWAYS:
        for carrier in CARRIERS:
            base = {"gateway": gateway, "carrier": carrier, "area": "north"}
            count("smswatch_sms_submitted_total", dict(base), _counter_steps(rng, 22))
            for status, cause, peak, chance in MESSAGE_KINDS:
                resets_after_gap = (gateway, carrier, status) == ("bank-b", "cu", "delivered")
                count(
                    "smswatch_sms_messages_total",
                    {**base, "status": status, "cause": cause},
                    _counter_steps(rng, peak, chance),
                    (lambda t: t == _first_after_down()) if resets_after_gap else _never,
                )
            count(
                "smswatch_sms_messages_total",
                {**base, "status": "failed", "cause": "gateway"},
                _counter_steps(
                    rng,
                    8,
                    active=lambda t, g=gateway: (
                        g == "bank-a" and GATEWAY_OUTAGE[0] <= t < GATEWAY_OUTAGE[1]
                    ),
                ),
            )

    for acquirer in ACQUIRERS:
        counters.extend(
            _histogram(rng, "smswatch_receipt_notify_seconds", {"acquirer": acquirer}, 40)
        )
    for gateway in GATEWAYS:
        for carrier in CARRIERS:
            counters.extend(
                _histogram(
                    rng,
                    "smswatch_sms_delivery_seconds",
                    {"gateway": gateway, "carrier": carrier},
                    20,
                )
            )

    # Healthy traffic (no random draws: the series above keep their values).
    for outcome, cause, amount, every in HEALTHY_RECEIPT_KINDS:
        count(
            "smswatch_receipts_total",
            {"acquirer": HEALTHY_ACQUIRER, "outcome": outcome, "cause": cause},
            _every_nth(amount, every),
        )
    for status, cause, amount, every in HEALTHY_MESSAGE_KINDS:
        count(
            "smswatch_sms_messages_total",
            {
                "gateway": HEALTHY_GATEWAY,
                "carrier": "cm",
                "area": "north",
                "status": status,
                "cause": cause,
            },
            _every_nth(amount, every),
        )

    gauges: list[tuple[str, dict[str, str], list[tuple[float, float]]]] = []
    times = [t for t in scrape_times() if exporter_up(t)]
    for (acquirer, notice, software), before in TERMINALS_BEFORE.items():
        after = TERMINALS_AFTER[(acquirer, notice, software)]
        gauges.append(
            (
                "smswatch_pos_terminals",
                {**JOB, "acquirer": acquirer, "sms_notice": notice, "software": software},
                [(t, float(before if t < TERMINALS_CHANGE else after)) for t in times],
            )
        )
    for source in ("sms", "acquirer"):
        up_points = [
            (t, 0.0 if source == "sms" and SMS_DOWN[0] <= t <= SMS_DOWN[1] else 1.0) for t in times
        ]
        lag_points = [
            (t, 1200.0 if source == "acquirer" and ACQ_LAGGING[0] <= t <= ACQ_LAGGING[1] else 30.0)
            for t in times
        ]
        gauges.append(("smswatch_source_up", {**JOB, "source": source}, up_points))
        gauges.append(("smswatch_source_lag_seconds", {**JOB, "source": source}, lag_points))
    gauges.append(("smswatch_build_info", {**JOB, "version": "0.1.0"}, [(t, 1.0) for t in times]))
    gauges.append(("up", dict(JOB), [(t, 1.0 if exporter_up(t) else 0.0) for t in scrape_times()]))
    for alert in ALERTS:
        if alert.pending_from is not None:
            gauges.append(
                (
                    "ALERTS",
                    {**alert.labels, "alertstate": "pending"},
                    [(t, 1.0) for t in _every(alert.pending_from, alert.first - EVAL)],
                )
            )
        gauges.append(
            (
                "ALERTS",
                {**alert.labels, "alertstate": "firing"},
                [(t, 1.0) for t in _every(alert.first, alert.last)],
            )
        )
    return Dataset(counters, gauges)


def _every(first: float, last: float) -> list[float]:
    out = []
    moment = first
    while moment <= last:
        out.append(moment)
        moment += EVAL
    return out


def _every_nth(amount: int, every: int) -> Callable[[float], int]:
    """`amount` at one scrape in `every` (by scrape index), else nothing."""
    position = {t: i for i, t in enumerate(scrape_times())}

    def step(moment: float) -> int:
        return amount if position[moment] % every == 0 else 0

    return step


def _never(moment: float) -> bool:
    return False


def _first_after_down() -> float:
    return next(t for t in scrape_times() if t >= DOWN[1])


def _counter(
    name: str,
    labels: dict[str, str],
    step: Callable[[float], int],
    reset: Callable[[float], bool] = _never,
) -> CounterSeries:
    series = CounterSeries(name, {**JOB, **labels})
    value = 0
    pending = 0
    for moment in scrape_times():
        pending += step(moment)
        if not exporter_up(moment):
            continue
        if moment < NEW_SERIES_FROM and labels.get("cause") == "filtered":
            continue  # the series does not exist yet
        if moment == RESET_ALL or reset(moment):
            value = pending
        else:
            value += pending
        series.samples.append((moment, float(value), pending))
        pending = 0
    return series


def _histogram(
    rng: random.Random, name: str, labels: dict[str, str], peak: int
) -> list[CounterSeries]:
    """Bucket, count and sum series; observations per scrape drawn from LATENCY_WEIGHTS."""
    bounds = [*(float(b) for b in BUCKETS_SECONDS), float("inf")]
    les = [f"{b:g}" if b != float("inf") else "+Inf" for b in bounds]
    per_step: list[list[int]] = []
    for _ in scrape_times():
        counts = [0] * len(bounds)
        for index in rng.choices(range(len(bounds)), LATENCY_WEIGHTS, k=rng.randint(0, peak)):
            counts[index] += 1
        per_step.append(counts)
    out: list[CounterSeries] = []
    for index, le in enumerate(les):
        steps = [sum(c[: index + 1]) for c in per_step]
        out.append(_counter(f"{name}_bucket", {**labels, "le": le}, _replay(steps)))
    totals = [sum(c) for c in per_step]
    out.append(_counter(f"{name}_count", dict(labels), _replay(totals)))
    return out


def _replay(values: list[int]) -> Callable[[float], int]:
    position = {t: i for i, t in enumerate(scrape_times())}

    def step(moment: float) -> int:
        return values[position[moment]]

    return step


def openmetrics(dataset: Dataset) -> str:
    """The dataset as an OpenMetrics exposition with timestamps. Counters named `*_total` are
    typed; every other name is its own untyped family (histogram series included), which
    is all the TSDB keeps anyway."""
    families: dict[str, list[str]] = {}

    def render(labels: Mapping[str, str]) -> str:
        return "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"

    for series in dataset.counters:
        families.setdefault(series.name, []).extend(
            f"{series.name}{render(series.labels)} {_num(value)} {_num(moment)}"
            for moment, value, _ in series.samples
        )
    for name, labels, points in dataset.gauges:
        families.setdefault(name, []).extend(
            f"{name}{render(labels)} {_num(value)} {_num(moment)}" for moment, value in points
        )
    lines: list[str] = []
    for name, block in families.items():
        if name.endswith("_total"):
            lines.append(f"# TYPE {name.removesuffix('_total')} counter")
        lines.extend(block)
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def _num(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(value)
