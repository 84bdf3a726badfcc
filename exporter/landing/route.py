"""The `/` route: choose the reader's language, gather the figures, answer the page."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from exporter.config import Config
from exporter.landing.figures import gather, landing_zone, windows_at
from exporter.landing.page import CSP, render
from exporter.landing.words import choose_language
from exporter.lookup.alerts import AlertHistory
from exporter.lookup.settings import PrometheusSettings
from exporter.poller import PollHealth
from exporter.store import Store
from exporter.web import Request, Response


def prometheus_settings(config: Config) -> PrometheusSettings | None:
    """Where the alerts firing now are read: `lookup.prometheus`, else the reports'
    `prometheus_url`, else nowhere."""
    if config.lookup.prometheus is not None:
        return config.lookup.prometheus
    if config.reports is not None:
        return PrometheusSettings(url=config.reports.prometheus_url)
    return None


class LandingPage:
    """Answers `/`: figures from the store's pages connection (never the scrapes' one), the
    pollers' in-memory health and, when configured, Prometheus' alerts."""

    def __init__(
        self,
        config: Config,
        store: Store,
        health: Mapping[str, PollHealth],
        clock: Callable[[], float] = time.time,
        history: AlertHistory | None = None,
    ) -> None:
        """`clock` is the exporter's now (Unix seconds; the simulated one in the demo): the
        windows and lags are on it. Poll times are on the store's own clock."""
        self.config = config
        self.store = store
        self.health = health
        self.clock = clock
        settings = prometheus_settings(config)
        self.history = history or (AlertHistory(settings) if settings is not None else None)
        self.zone = landing_zone(config)

    def __call__(self, request: Request) -> Response:
        """The page, in the language asked (`?lang=`) or preferred (Accept-Language)."""
        asked = (request.query.get("lang") or [""])[0]
        lang = choose_language(asked, request.headers.get("accept-language", ""))
        landing = gather(
            self.config,
            self.store.page_view,
            self.health,
            windows_at(int(self.clock() * 1000), self.zone),
            self.store.clock(),
            self.history,
        )
        return Response(
            200,
            render(landing, lang).encode("utf-8"),
            "text/html; charset=utf-8",
            {
                "Content-Security-Policy": CSP,
                "Content-Language": lang,
                "Vary": "Accept-Language",
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer",
            },
        )
