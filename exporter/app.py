"""The exporter process: state store, one scheduled poller per source, and the HTTP endpoints."""

from __future__ import annotations

import contextlib
import html
import logging
import threading
import time
from collections.abc import Callable, Mapping

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from exporter import __version__
from exporter.collector import SmswatchCollector
from exporter.config import Config
from exporter.config import Objectives as ConfigObjectives
from exporter.errors import ConfigError
from exporter.lookup.routes import build_lookup
from exporter.poller import Pipeline, Poller, is_push_only
from exporter.probes.prober import Prober
from exporter.probes.webhook import HandsetWebhookRoute
from exporter.push import PushReceiver
from exporter.reports.objectives import Objectives as ReportObjectives
from exporter.reports.schedule import schedule_reports
from exporter.store import Store
from exporter.timestamps import format_rfc3339_ms
from exporter.web import ConnectionLimits, Request, Response, WebServer

log = logging.getLogger(__name__)

#: Test hook: `<unix s>:<simulated ms>:<speed>` makes the exporter's clock an accelerated
#: simulator's (simulated ms at that Unix time, `speed` simulated seconds per second), so a
#: `smswatch run` process judges clock skew against the simulated clock (tests/test_clock_skew.py).
SIMULATED_CLOCK_ENV = "SMSWATCH_TEST_SIMULATED_CLOCK"


def clock_from_environ(environ: Mapping[str, str]) -> Callable[[], float]:
    """The exporter's clock: the wall clock, or the simulated one of the test hook."""
    value = environ.get(SIMULATED_CLOCK_ENV)
    if not value:
        return time.time
    try:
        wall_s, sim_ms, speed = (float(part) for part in value.split(":"))
    except ValueError as exc:
        raise ConfigError(
            f"must be <unix s>:<simulated ms>:<speed>, got {value!r}", path=SIMULATED_CLOCK_ENV
        ) from exc
    log.warning("test hook: the exporter runs on a simulated clock", extra={"speed": speed})
    return lambda: (sim_ms + (time.time() - wall_s) * speed * 1000) / 1000


def job_options(interval_ms: int) -> dict[str, object]:
    """APScheduler options of a poll job: never two at once, missed runs coalesced."""
    return {
        "max_instances": 1,
        "coalesce": True,
        "misfire_grace_time": max(1, interval_ms // 2000),
    }


class Exporter:
    """Wires config, store, pollers, scheduler and web server; `start()` and `stop()`."""

    def __init__(
        self,
        config: Config,
        host: str,
        port: int,
        web_config_file: str | None = None,
        clock: Callable[[], float] = time.time,
        web_limits: ConnectionLimits | None = None,
    ) -> None:
        """`clock` is the exporter's now (Unix seconds): what watermarks are capped against
        (`max_clock_skew`) and lags are measured from; the demo and tests against an
        accelerated simulator pass its clock. `web_limits` bound the HTTP server's connections
        (defaults: `ConnectionLimits()`)."""
        self.config = config
        self.store = Store(config.state_path)
        self.pipeline = Pipeline(config, self.store, clock)
        self._stop = threading.Event()
        self.pollers = {s.name: Poller(s, self.pipeline, self._stop, clock) for s in config.sources}
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(
            SmswatchCollector(
                config, self.store, {n: p.health for n, p in self.pollers.items()}, clock
            )
        )
        try:
            self.lookup = build_lookup(config.lookup, self.store)
            self.web = WebServer(host, port, web_config_file, web_limits)
        except BaseException:
            self.store.close()
            raise
        self.lookup.mount(self.web)
        self.web.routes.update(
            {
                "/": self._landing,
                "/metrics": self._metrics,
                "/healthz": self._healthz,
                "/ready": self._ready,
            }
        )
        for source in config.sources:
            if source.push is not None:  # provider pushes: open to providers, own secret
                receiver = PushReceiver(source, self.pipeline, clock)
                self.web.routes[source.push.path] = receiver
                self.web.admission[source.push.path] = receiver.admit
                self.web.open_paths.add(source.push.path)
        self.prober = Prober(config.probes, self.store, clock) if config.probes else None
        probe_jobs = 1 + len(config.probes.gateways) if config.probes else 0
        webhook = config.probes.webhook if config.probes else None
        if self.prober is not None and webhook is not None:  # the handset's inbound webhook
            route = HandsetWebhookRoute(webhook, self.prober.take_webhook)
            self.web.routes[webhook.path] = route
            self.web.admission[webhook.path] = route.admit
            self.web.open_paths.add(webhook.path)
        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max(2, len(self.pollers) + probe_jobs))},
            timezone="UTC",
        )

    @property
    def port(self) -> int:
        """The bound HTTP port."""
        return self.web.port

    def start(self) -> None:
        """Start serving and polling (first poll of every source right away)."""
        for source in self.config.sources:
            if is_push_only(source):  # not listening since the last push taken before
                self.store.open_push_gap(source.name)
        self.web.start()
        now = time.time()
        for name, poller in self.pollers.items():
            interval_ms = poller.source.poll_interval_ms
            self.scheduler.add_job(
                poller.poll,
                "interval",
                seconds=interval_ms / 1000,
                id=f"poll:{name}",
                name=f"poll {name}",
                replace_existing=True,
                next_run_time=_datetime(now),
                **job_options(interval_ms),
            )
        self.scheduler.add_job(
            self._prune,
            "interval",
            seconds=self.config.prune_interval_ms / 1000,
            id="prune",
            **job_options(60_000),
        )
        if self.prober is not None:
            self._schedule_probes(self.prober, now)
        if self.config.reports is not None:
            schedule_reports(
                self.scheduler,
                self.config.reports,
                objectives=report_objectives(self.config.objectives),
            )
        self.scheduler.start()
        log.info(
            "exporter running",
            extra={
                "port": self.port,
                "sources": ",".join(self.pollers),
                "state": self.config.state_path,
            },
        )

    def _schedule_probes(self, prober: Prober, now: float) -> None:
        """Canary rounds per gateway (the first one now) and the inbox check."""
        settings = prober.settings
        for probe in settings.gateways:
            self.scheduler.add_job(
                prober.send_round,
                "interval",
                args=(probe.gateway,),
                seconds=probe.interval_ms / 1000,
                id=f"probe:{probe.gateway}",
                next_run_time=_datetime(now),
                **job_options(probe.interval_ms),
            )
        self.scheduler.add_job(
            prober.check,
            "interval",
            seconds=settings.check_interval_ms / 1000,
            id="probe-check",
            **job_options(settings.check_interval_ms),
        )

    def stop(self) -> None:
        """Stop polling (waiting for polls in flight) and serving; close the store."""
        self._stop.set()
        with contextlib.suppress(Exception):  # not started
            self.scheduler.shutdown(wait=True)
        self.web.stop()
        for poller in self.pollers.values():
            poller.client.close()
        if self.prober is not None:
            self.prober.session.close()
        self.store.close()

    def _prune(self) -> None:
        watermark = self.store.watermark(self.pipeline.source_names, self.pipeline.with_terminals)
        if watermark > 0:
            removed = self.store.prune(watermark - self.config.retention_ms)
            if removed:
                log.info("pruned retained records", extra={"rows": removed})
        self.store.prune_audit(int(time.time() * 1000) - self.config.lookup.audit_retention_ms)
        if self.prober is not None:  # decided canaries are kept as long as transactions
            self.store.prune_canaries(int(self.pipeline.clock() * 1000) - self.config.retention_ms)

    # ------------------------------------------------------------------ routes

    def _metrics(self, request: Request) -> Response:
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(200, encoder(self.registry), content_type)

    def _healthz(self, request: Request) -> Response:
        return Response(200, b"ok\n")

    def _ready(self, request: Request) -> Response:
        _, _, sources = self.store.snapshot()
        polled = {s.name for s in sources if s.last_success_ms is not None}
        waiting = [
            name
            for name, poller in self.pollers.items()
            if name not in polled and not is_push_only(poller.source)  # pushes wait for us
        ]
        if waiting:
            return Response(503, f"not ready: never polled {', '.join(waiting)}\n".encode())
        return Response(200, b"ready\n")

    def _landing(self, request: Request) -> Response:
        _, _, sources = self.store.snapshot()
        by_name = {s.name: s for s in sources}
        now = self.pipeline.clock()
        rows = []
        for name, poller in self.pollers.items():
            state = by_name.get(name)
            last_poll = (
                format_rfc3339_ms(state.last_poll_ms) if state and state.last_poll_ms else "never"
            )
            last_ok = (
                format_rfc3339_ms(state.last_success_ms)
                if state and state.last_success_ms
                else "never"
            )
            watermark = (
                format_rfc3339_ms(state.watermark_ms) if state and state.watermark_ms >= 0 else "—"
            )
            lag = (
                f"{now - state.watermark_ms / 1000:.0f} s"
                if state and state.watermark_ms >= 0
                else "—"
            )
            status = "up" if poller.health.up else ("down" if poller.health.polls else "starting")
            rows.append(
                "<tr>"
                + "".join(
                    f"<td>{html.escape(str(v))}</td>"
                    for v in (
                        name,
                        poller.source.kind,
                        status,
                        last_poll,
                        last_ok,
                        poller.health.last_error or "—",
                        watermark,
                        lag,
                    )
                )
                + "</tr>"
            )
        body = _LANDING.format(
            version=html.escape(__version__),
            rows="\n".join(rows),
            unlisted=_unlisted_section(self.store.unlisted_codes()),
        )
        return Response(200, body.encode("utf-8"), "text/html; charset=utf-8")


def _unlisted_section(codes: list[tuple[str, str, int]]) -> str:
    """The landing page's list of provider codes no table knows (counted `unlisted`)."""
    if not codes:
        return "<p>None seen.</p>"
    rows = "\n".join(
        f"<tr><td>{html.escape(g)}</td><td>{html.escape(c)}</td><td>{n}</td></tr>"
        for g, c, n in codes
    )
    return f"<table><tr><th>gateway</th><th>code</th><th>seen</th></tr>\n{rows}\n</table>"


def _datetime(epoch: float) -> object:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC)


_LANDING = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>smswatch exporter</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:70em}}
table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:left}}</style>
</head><body>
<h1>smswatch exporter</h1>
<p>Card-transaction SMS monitoring, version {version}.</p>
<ul><li><a href="metrics">/metrics</a></li><li><a href="ready">/ready</a></li>
<li><a href="healthz">/healthz</a></li>
<li><a href="lookup">/lookup</a>: the support desk's transaction lookup</li></ul>
<h2>Sources</h2>
<table><tr><th>source</th><th>kind</th><th>status</th><th>last poll</th><th>last success</th>
<th>last error</th><th>watermark</th><th>lag</th></tr>
{rows}
</table>
<h2>Provider codes no table knows</h2>
<p>Counted as <code>smswatch_sms_ambiguous_total{{code="unlisted"}}</code> with their status's
default cause; a new code from a provider shows here first.</p>
{unlisted}
</body></html>
"""


def report_objectives(objectives: ConfigObjectives) -> ReportObjectives:
    """The objectives scheduled reports judge, from the config's `objectives:`."""
    return ReportObjectives(
        delivered_ratio=objectives.sms_delivery_ratio,
        receipt_notification_ratio=objectives.receipt_notification_ratio,
        within_latency_ratio=objectives.receipt_notify_within_60s_ratio,
    )
