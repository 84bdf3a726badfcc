"""The exporter process: state store, one scheduled poller per source, and the HTTP endpoints."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from exporter.accounts.checker import AccountChecker
from exporter.collector import SmswatchCollector
from exporter.config import Config
from exporter.config import Objectives as ConfigObjectives
from exporter.dialect import STATE_ERRORS
from exporter.errors import ConfigError
from exporter.landing import LandingPage
from exporter.leases import PRIMARY, LeaseKeeper, holder_is_dead, replica_id, source_lease
from exporter.lookup.routes import build_lookup
from exporter.overruns import OverrunCounter, poll_job_id
from exporter.poller import Pipeline, Poller, is_push_only
from exporter.probes.prober import Prober
from exporter.probes.webhook import HandsetWebhookRoute
from exporter.push import STATE_DOWN_RETRY_AFTER_S, PushReceiver
from exporter.readiness import Readiness, Watched, liveness
from exporter.reports.delivery import Courier
from exporter.reports.objectives import Objectives as ReportObjectives
from exporter.reports.schedule import schedule_reports
from exporter.snapshots import LastSnapshot
from exporter.store import open_store
from exporter.web import ConnectionLimits, Request, Response, Route, WebServer

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
        self.store = open_store(config)
        self.pipeline = Pipeline(config, self.store, clock)
        self._stop = threading.Event()
        #: Replicas sharing the state: this one polls the sources whose lease it holds, and
        #: runs the singleton jobs while it holds the primary lease.
        self.keeper = LeaseKeeper(
            self.store,
            [s.name for s in config.sources if not is_push_only(s)],
            config.lease_ttl_ms,
            replica_id(os.environ),
            on_acquired=self._poll_now,
        )
        self.pollers = {
            s.name: Poller(
                s,
                self.pipeline,
                self._stop,
                clock,
                # a push-only source is "polled" (its last poll recorded) by the primary
                lease=self.keeper.primary if is_push_only(s) else self.keeper.by_source[s.name],
            )
            for s in config.sources
        }
        #: Provider account checks (balance, approvals), by gateway: on their own schedule.
        self.accounts = {
            s.gateway: AccountChecker(s, self._stop) for s in config.sources if s.account
        }
        self.registry = CollectorRegistry(auto_describe=True)
        health = {n: p.health for n, p in self.pollers.items()}
        #: The committed state as scrapes and /ready read it (the last one while it is down).
        self.snapshots = LastSnapshot(self.store)
        self.registry.register(
            SmswatchCollector(
                config,
                self.store,
                health,
                clock,
                accounts={g: checker.health for g, checker in self.accounts.items()},
                leadership=self.keeper,
                snapshots=self.snapshots,
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
                "/": LandingPage(config, self.store, health, clock),
                "/metrics": self._metrics,
                "/healthz": liveness,
                "/ready": Readiness(
                    self.store,
                    {n: Watched(p.source, p.health, p.lease) for n, p in self.pollers.items()},
                    self._stop,
                    self.snapshots,
                ),
            }
        )
        self.web.open_paths.add("/ready")  # like /healthz: a kubelet's probe has no credentials
        for source in config.sources:
            if source.push is not None:  # provider pushes: open to providers, own secret
                receiver = PushReceiver(source, self.pipeline, clock)
                self.web.routes[source.push.path] = receiver
                self.web.admission[source.push.path] = receiver.admit
                self.web.open_paths.add(source.push.path)
        self.courier = Courier(count=self._count_delivery)
        self.prober = Prober(config.probes, self.store, clock) if config.probes else None
        probe_jobs = 1 + len(config.probes.gateways) if config.probes else 0
        webhook = config.probes.webhook if config.probes else None
        if self.prober is not None and webhook is not None:  # the handset's inbound webhook
            route = HandsetWebhookRoute(webhook, self.prober.take_webhook)
            self.web.routes[webhook.path] = route
            self.web.admission[webhook.path] = route.admit
            self.web.open_paths.add(webhook.path)
        # pages and the lookup API need the state: while it is down they say so (503), as the
        # push receivers do, instead of failing with 500
        self.web.routes = {path: _state_guarded(route) for path, route in self.web.routes.items()}
        self.scheduler = BackgroundScheduler(
            executors={
                "default": ThreadPoolExecutor(
                    max(2, len(self.pollers) + len(self.accounts) + probe_jobs)
                )
            },
            timezone="UTC",
        )
        OverrunCounter(self.pollers).attach(self.scheduler)

    @property
    def port(self) -> int:
        """The bound HTTP port."""
        return self.web.port

    def start(self) -> None:
        """Start serving and polling (first poll of every source right away)."""
        push_only = [s for s in self.config.sources if is_push_only(s)]
        listening = self._others_listening() if push_only else []
        for source in push_only:
            if listening:  # they took the pushes while this process was not listening
                log.info(
                    "another replica listens: no push gap opened",
                    extra={"source": source.name, "replicas": ",".join(listening)},
                )
            else:  # nobody listened since the last push taken before
                self.store.open_push_gap(source.name)
        self.snapshots.read()  # the numbers served should the database go down before a scrape
        self.web.start()
        self.keeper.start()  # one round now: the first polls of the sources it took
        now = time.time()
        jobs = [
            (poller.poll, poller.source.poll_interval_ms, poll_job_id(name), f"poll {name}")
            for name, poller in self.pollers.items()
        ] + [  # provider account checks, on their own slow schedule
            (
                self._as_primary(checker.check),
                checker.settings.interval_ms,
                f"account:{g}",
                f"account {g}",
            )
            for g, checker in self.accounts.items()
        ]
        for job, interval_ms, job_id, job_name in jobs:
            self.scheduler.add_job(
                job,
                "interval",
                seconds=interval_ms / 1000,
                id=job_id,
                name=job_name,
                replace_existing=True,
                next_run_time=_datetime(now),
                **job_options(interval_ms),
            )
        self.scheduler.add_job(
            self._as_primary(self._prune),
            "interval",
            seconds=self.config.prune_interval_ms / 1000,
            id="prune",
            **job_options(60_000),
        )
        if self.prober is not None:
            self._schedule_probes(self.prober, now)
        if self.config.reports is not None:
            schedule_reports(
                _PrimaryJobs(self.scheduler, self._as_primary),
                self.config.reports,
                objectives=report_objectives(self.config.objectives),
                courier=self.courier,
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
                self._as_primary(prober.send_round),
                "interval",
                args=(probe.gateway,),
                seconds=probe.interval_ms / 1000,
                id=f"probe:{probe.gateway}",
                next_run_time=_datetime(now),
                **job_options(probe.interval_ms),
            )
        self.scheduler.add_job(
            self._as_primary(prober.check),
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
        self.keeper.stop()  # no poll in flight: release the leases, another replica takes them
        self.courier.stop()  # reports being mailed: waiting ends, attempts in flight finish
        self.web.stop()
        for poller in self.pollers.values():
            poller.client.close()
        for checker in self.accounts.values():
            checker.close()
        if self.prober is not None:
            self.prober.session.close()
        self.store.close()

    def _others_listening(self) -> list[str]:
        """The other replicas alive now (heard within the lease TTL, and not a process of this
        host found gone): they took the providers' pushes while this one was not listening.
        (A replica of another host that died within the last TTL still counts: a gap of at most
        that long goes unnoticed.)"""
        with self.store.transaction():
            seen = self.store.replicas_seen(self.store.db_now_ms() - self.keeper.ttl_ms)
        return [r for r in seen if r != self.keeper.replica and not holder_is_dead(r)]

    def _as_primary(self, job: Callable[..., object]) -> Callable[..., None]:
        """`job`, run only while this replica is the primary (singleton jobs: one replica)."""

        @functools.wraps(job)
        def gated(*args: object, **kwargs: object) -> None:
            if self.keeper.is_primary():
                job(*args, **kwargs)

        return gated

    def _poll_now(self, lease: str) -> None:
        """A lease was just acquired: poll its source now rather than at its next run; a new
        primary checks the provider accounts now (their series come from its checks) and runs
        its canary rounds as they come."""
        if not self.scheduler.running:
            return
        if lease == PRIMARY:
            jobs = [f"account:{gateway}" for gateway in self.accounts]
        else:
            jobs = [poll_job_id(n) for n in self.pollers if source_lease(n) == lease]
        soon = _datetime(time.time())
        for job_id in jobs:
            with contextlib.suppress(Exception):  # being stopped
                self.scheduler.modify_job(job_id, next_run_time=soon)

    def _count_delivery(self, schedule: str, result: str) -> None:
        self.store.tally(Counter({("smswatch_report_deliveries_total", (schedule, result)): 1}))

    def _prune(self) -> None:
        if not self.store.writable():
            return  # the state database is down: the next prune does it
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


class _PrimaryJobs:
    """A scheduler whose added jobs run only on the primary replica (see `Exporter._as_primary`)."""

    def __init__(self, scheduler: BackgroundScheduler, gate: Callable[..., Callable[..., None]]):
        self._scheduler = scheduler
        self._gate = gate

    def add_job(self, func: Callable[..., object], *args: object, **kwargs: object) -> object:
        """`BackgroundScheduler.add_job`, `func` gated."""
        return self._scheduler.add_job(self._gate(func), *args, **kwargs)


def _state_guarded(route: Route) -> Route:
    """`route`, answering 503 with `Retry-After` when the state database is down."""

    def guarded(request: Request) -> Response:
        try:
            return route(request)
        except STATE_ERRORS as exc:
            log.warning(
                "request refused: state database down",
                extra={"path": request.path, "error": type(exc).__name__},
            )
            return Response(
                503,
                b"state database unavailable, retry later\n",
                headers={"Retry-After": str(STATE_DOWN_RETRY_AFTER_S)},
            )

    return guarded


def _datetime(epoch: float) -> object:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC)


def report_objectives(objectives: ConfigObjectives) -> ReportObjectives:
    """The objectives scheduled reports judge, from the config's `objectives:`."""
    return ReportObjectives(
        delivered_ratio=objectives.sms_delivery_ratio,
        receipt_notification_ratio=objectives.receipt_notification_ratio,
        within_latency_ratio=objectives.receipt_notify_within_60s_ratio,
    )
