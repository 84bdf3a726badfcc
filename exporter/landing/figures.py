"""What the landing page says, from committed state: SLIs, causes, sources' health, alerts.

Two windows, both on the exporter's clock (the simulated one in the demo):
- **last hour**: the outcomes the exporter decided in the current minute and the 59 before it;
- **today**: those decided since 00:00 of the current day in the page's time zone
  (`reports.timezone` when reports are configured, else `lookup.timezone`, else UTC).

An outcome is dated by the minute its counter moved (`outcome_counts` in the store: minutes and
quarter hours), as a Prometheus `increase()` over the same counters would date it, without
extrapolation. The SLIs
are counted as the alert rules and reports count them (`reports.figures.Delivery`): of the
final outcomes, less those with a cardholder-side cause, the share without a bank-side cause.
The cost is bounded by the quarter hours of one day, however many receipts the state holds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

from exporter.catalogue import CAUSE_NONE
from exporter.config import Config, SourceConfig
from exporter.lookup.alerts import ActiveAlert, AlertHistory, AlertsUnavailable
from exporter.objectives import CARDHOLDER_SIDE_CAUSES
from exporter.poller import PollHealth
from exporter.reports.figures import Delivery
from exporter.reports.objectives import SOURCE_LAG_LIMIT_SECONDS
from exporter.store import MINUTE_MS, PageView, SourceState

MESSAGES = "smswatch_sms_messages_total"
RECEIPTS = "smswatch_receipts_total"
#: A polled source is stale after this many poll intervals without a successful poll (alerts
#: spec `stale_after_polls`, SmswatchSourceStale; tests/landing keeps the two equal).
STALE_AFTER_POLLS = 3
#: The longest the page waits for Prometheus' alerts before saying it could not ask.
ALERTS_TIMEOUT_S = 2.0
#: The windows, in the order the page shows them.
WINDOWS: tuple[str, ...] = ("hour", "today")


@dataclass(frozen=True)
class Windows:
    """The page's two windows as Unix ms starts, and the instant it was built."""

    now_ms: int
    hour_start_ms: int
    today_start_ms: int
    zone: ZoneInfo

    @property
    def starts(self) -> tuple[int, int]:
        """(last hour, today) starts, in `WINDOWS` order."""
        return self.hour_start_ms, self.today_start_ms


def windows_at(now_ms: int, zone: ZoneInfo) -> Windows:
    """The last hour (this minute and the 59 before) and today (since local midnight)."""
    today = datetime.fromtimestamp(now_ms / 1000, UTC).astimezone(zone).date()
    midnight = datetime.combine(today, time(0), tzinfo=zone)
    return Windows(
        now_ms=now_ms,
        hour_start_ms=now_ms - now_ms % MINUTE_MS - 59 * MINUTE_MS,
        today_start_ms=int(midnight.timestamp() * 1000),
        zone=zone,
    )


@dataclass(frozen=True)
class SliRow:
    """One gateway (SMS delivery) or acquirer (receipt notification) against its objective."""

    key: str
    objective: float
    #: The outcomes of each window, in `WINDOWS` order.
    windows: tuple[Delivery, ...]


@dataclass(frozen=True)
class CauseRow:
    """Receipts whose cardholder got no SMS, for one cause: how many in each window."""

    cause: str
    cardholder_side: bool
    counts: tuple[int, ...]  # in `WINDOWS` order


@dataclass(frozen=True)
class SourceRow:
    """One source's health: in memory (the poller) and as committed (the store)."""

    name: str
    kind: str
    push_only: bool
    up: bool
    polls: int
    last_error: str
    last_success_ms: int | None
    lag_s: float | None  # exporter's now − the source's watermark
    expected_lag_s: float
    stale: bool
    lagging: bool


@dataclass(frozen=True)
class AlertsNow:
    """The alerts firing now: `configured` False when no Prometheus is known, `error` when
    it could not be asked."""

    configured: bool
    alerts: tuple[ActiveAlert, ...] = ()
    error: str = ""


@dataclass(frozen=True)
class Landing:
    """Everything the page shows."""

    windows: Windows
    gateways: tuple[SliRow, ...]
    acquirers: tuple[SliRow, ...]
    causes: tuple[CauseRow, ...]
    sources: tuple[SourceRow, ...]
    unlisted: tuple[tuple[str, str, int], ...]
    alerts: AlertsNow = field(default_factory=lambda: AlertsNow(configured=False))


def landing_zone(config: Config) -> ZoneInfo:
    """The page's time zone: the reports' calendar, else the support desk's, else UTC."""
    if config.reports is not None:
        return ZoneInfo(config.reports.timezone)
    return config.lookup.zone


def sli_rows(
    view: PageView, metric: str, keys: Sequence[str], objective: float
) -> tuple[SliRow, ...]:
    """One row per configured key (and any other seen), from the windows' increases."""
    outcomes: dict[str, list[Counter[str]]] = {}
    causes: dict[str, list[Counter[str]]] = {}
    for (name, labels), values in view.increases.items():
        if name != metric:
            continue
        key, outcome, cause = labels
        for index, value in enumerate(values):
            outcomes.setdefault(key, [Counter() for _ in WINDOWS])[index][outcome] += int(value)
            causes.setdefault(key, [Counter() for _ in WINDOWS])[index][cause] += int(value)
    ordered = list(keys) + sorted(set(outcomes) - set(keys))
    return tuple(
        SliRow(
            key=key,
            objective=objective,
            windows=tuple(
                Delivery(
                    key,
                    dict(outcomes.get(key, [Counter()] * len(WINDOWS))[index]),
                    dict(causes.get(key, [Counter()] * len(WINDOWS))[index]),
                )
                for index in range(len(WINDOWS))
            ),
        )
        for key in ordered
    )


def cause_rows(view: PageView) -> tuple[CauseRow, ...]:
    """Receipts not delivered (missing, failed, unknown) by cause, most of today first."""
    counts: dict[str, list[int]] = {}
    for (name, labels), values in view.increases.items():
        if name != RECEIPTS or labels[1] == "delivered" or labels[2] == CAUSE_NONE:
            continue
        row = counts.setdefault(labels[2], [0] * len(WINDOWS))
        for index, value in enumerate(values):
            row[index] += int(value)
    return tuple(
        CauseRow(cause, cause in CARDHOLDER_SIDE_CAUSES, tuple(values))
        for cause, values in sorted(counts.items(), key=lambda item: (-item[1][-1], item[0]))
        if any(values)
    )


def source_rows(
    config: Config,
    states: Sequence[SourceState],
    health: Mapping[str, PollHealth],
    now_s: float,
    wall_s: float,
) -> tuple[SourceRow, ...]:
    """Each configured source's health. Lag is on the exporter's clock (`now_s`); staleness
    on the wall clock the polls are dated by (`wall_s`), never for a push-only source."""
    by_name = {s.name: s for s in states}
    rows = []
    for source in config.sources:
        state = by_name.get(source.name)
        poll = health.get(source.name) or PollHealth()
        expected = source.expected_lag_ms(config.give_up_after_ms) / 1000
        lag = _lag_s(source, state, now_s)
        last_ok = None if state is None else state.last_success_ms
        stale = (
            not source.push_only
            and last_ok is not None
            and wall_s - last_ok / 1000 > STALE_AFTER_POLLS * source.poll_interval_ms / 1000
        )
        if poll.polls == 0 and state is not None and state.last_poll_ms is not None:
            # polled by another replica (or before this process's first poll): as committed
            poll = PollHealth(up=not state.last_error, polls=1, last_error=state.last_error)
        rows.append(
            SourceRow(
                name=source.name,
                kind=source.kind,
                push_only=source.push_only,
                up=poll.up,
                polls=poll.polls,
                last_error=poll.last_error or (state.last_error if state else ""),
                last_success_ms=last_ok,
                lag_s=lag,
                expected_lag_s=expected,
                stale=stale,
                lagging=lag is not None and lag - expected > SOURCE_LAG_LIMIT_SECONDS,
            )
        )
    return tuple(rows)


def _lag_s(source: SourceConfig, state: SourceState | None, now_s: float) -> float | None:
    """now − the source's watermark (the older of its feed and terminal inventory)."""
    if state is None or state.watermark_ms < 0:
        return None
    marks = [state.watermark_ms]
    if source.terminals_path and state.terminals_watermark_ms is not None:
        marks.append(state.terminals_watermark_ms)
    return now_s - min(marks) / 1000


def alerts_now(history: AlertHistory | None) -> AlertsNow:
    """Prometheus' firing alerts, or why they are not known (never raises)."""
    if history is None:
        return AlertsNow(configured=False)
    try:
        return AlertsNow(configured=True, alerts=tuple(history.active(ALERTS_TIMEOUT_S)))
    except AlertsUnavailable as exc:
        return AlertsNow(configured=True, error=str(exc))


def gather(
    config: Config,
    view_at: Callable[[Sequence[int], int], PageView],
    health: Mapping[str, PollHealth],
    windows: Windows,
    wall_s: float,
    history: AlertHistory | None = None,
) -> Landing:
    """The page's figures: `view_at` reads the store (`Store.page_view`) for the windows."""
    view = view_at(windows.starts, windows.now_ms)
    return Landing(
        windows=windows,
        gateways=sli_rows(view, MESSAGES, config.gateways, config.objectives.sms_delivery_ratio),
        acquirers=sli_rows(
            view, RECEIPTS, config.acquirers, config.objectives.receipt_notification_ratio
        ),
        causes=cause_rows(view),
        sources=source_rows(config, view.sources, health, windows.now_ms / 1000, wall_s),
        unlisted=tuple(view.unlisted),
        alerts=alerts_now(history),
    )
