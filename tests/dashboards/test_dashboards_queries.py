"""Every panel query runs: against a real Prometheus on loopback, each target of each panel is
sent through `/api/v1/query` (and, for time series, `/api/v1/query_range`) with its template
variables substituted; no query may fail, and each panel that should have data has data.

Two scrape targets:
- a fixed exposition with every catalogue series (proves each query is valid PromQL over the
  contract's names and labels, whatever the exporter's state);
- the real thing, `smswatch demo` (simulator + exporter), once the exporter is in the tree.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from exporter import catalogue

from harness import stop_processes

GATEWAYS = ("bank-sms",)
CARRIERS = ("china-mobile", "china-unicom", "china-telecom")
AREAS = ("east", "north", "south")
ACQUIRERS = ("acq-north", "acq-south", "acq-east")
SOURCES = ("sms", "acquirer")

#: Status → causes it may carry in the fixed exposition.
STATUS_CAUSES = {
    "delivered": (catalogue.CAUSE_NONE,),
    "undelivered": ("invalid_number", "unreachable", "filtered"),
    "expired": ("unreachable",),
    "rejected": ("throttled", "filtered", "integration"),
    "failed": ("gateway",),
    "unknown": ("unknown",),
}
OUTCOME_CAUSES = {
    "delivered": (catalogue.CAUSE_NONE,),
    "failed": ("gateway", "invalid_number", "unreachable", "throttled", "filtered"),
    "missing": ("terminal_config", "integration"),
    "unknown": ("unknown",),
}

#: Panels that may rightly be empty when the real exporter runs: (dashboard uid, panel title).
MAY_BE_EMPTY_ON_DEMO: set[tuple[str, str]] = set()

TEST_ALERT = "SmswatchDashboardTestAlert"


def _rate(*labels: str) -> float:
    """A stable, label-dependent events-per-second rate (delivered dominates)."""
    base = 5.0 if catalogue.CAUSE_NONE in labels else 0.05
    return base * (1 + zlib.crc32("/".join(labels).encode()) % 7 / 10)


class CatalogueCollector(Collector):
    """Every series of the metric catalogue, counters growing with time since start."""

    def __init__(self) -> None:
        self.start = time.time()

    def collect(self) -> Iterator[Metric]:
        elapsed = time.time() - self.start + 60
        specs = catalogue.METRICS_BY_NAME
        help_of = {name: spec.help for name, spec in specs.items()}

        def counter(name: str, labels: list[str], rows: list[tuple[str, ...]]) -> Metric:
            family = CounterMetricFamily(name, help_of[name], labels=labels)
            for row in rows:
                family.add_metric(list(row), _rate(*row) * elapsed)
            return family

        def gauge(
            name: str, labels: list[str], rows: list[tuple[tuple[str, ...], float]]
        ) -> Metric:
            family = GaugeMetricFamily(name, help_of[name], labels=labels)
            for row, value in rows:
                family.add_metric(list(row), value)
            return family

        def histogram(
            name: str, labels: list[str], rows: list[tuple[str, ...]], bounds: tuple[float, ...]
        ) -> Metric:
            family = HistogramMetricFamily(name, help_of[name], labels=labels)
            for row in rows:
                total = _rate(*row, catalogue.CAUSE_NONE) * elapsed
                buckets = [
                    (floatToGoString(bound), total * min(1.0, (index + 1) / (len(bounds) - 2)))
                    for index, bound in enumerate(bounds)
                ]
                buckets.append(("+Inf", total))
                family.add_metric(list(row), buckets, sum_value=total * 12.5)
            return family

        sms_rows = [(g, c, a) for g in GATEWAYS for c in CARRIERS for a in AREAS]
        yield counter("smswatch_sms_submitted_total", ["gateway", "carrier", "area"], sms_rows)
        yield counter(
            "smswatch_sms_messages_total",
            ["gateway", "carrier", "area", "status", "cause"],
            [
                (*row, status, cause)
                for row in sms_rows
                for status, causes in STATUS_CAUSES.items()
                for cause in causes
            ],
        )
        yield histogram(
            "smswatch_sms_delivery_seconds",
            ["gateway", "carrier"],
            [(g, c) for g in GATEWAYS for c in CARRIERS],
            tuple(float(b) for b in catalogue.BUCKETS_SECONDS),
        )
        yield gauge("smswatch_sms_pending", ["gateway"], [((g,), 12) for g in GATEWAYS])
        yield gauge(
            "smswatch_sms_pending_oldest_seconds", ["gateway"], [((g,), 42) for g in GATEWAYS]
        )
        yield counter(
            "smswatch_pos_transactions_total",
            ["acquirer", "result"],
            [(a, r) for a in ACQUIRERS for r in catalogue.TRANSACTION_RESULTS],
        )
        yield counter(
            "smswatch_receipts_total",
            ["acquirer", "outcome", "cause"],
            [
                (a, outcome, cause)
                for a in ACQUIRERS
                for outcome, causes in OUTCOME_CAUSES.items()
                for cause in causes
            ],
        )
        yield histogram(
            "smswatch_receipt_notify_seconds",
            ["acquirer"],
            [(a,) for a in ACQUIRERS],
            tuple(float(b) for b in catalogue.BUCKETS_SECONDS),
        )
        yield gauge("smswatch_receipts_awaiting_sms", ["acquirer"], [((a,), 7) for a in ACQUIRERS])
        yield gauge(
            "smswatch_pos_terminals",
            ["acquirer", "sms_notice", "software"],
            [
                ((a, notice, software), 100 if (notice, software) == ("enabled", "current") else 3)
                for a in ACQUIRERS
                for notice in ("enabled", "disabled")
                for software in ("current", "outdated")
            ],
        )
        yield gauge("smswatch_source_up", ["source"], [((s,), 1) for s in SOURCES])
        yield histogram(
            "smswatch_source_poll_seconds",
            ["source"],
            [(s,) for s in SOURCES],
            catalogue.POLL_BUCKETS_SECONDS,
        )
        yield counter(
            "smswatch_source_errors_total",
            ["source", "error"],
            [(s, e) for s in SOURCES for e in catalogue.SOURCE_ERRORS],
        )
        yield gauge(
            "smswatch_source_last_success_timestamp_seconds",
            ["source"],
            [((s,), time.time() - 3) for s in SOURCES],
        )
        yield gauge("smswatch_source_lag_seconds", ["source"], [((s,), 20) for s in SOURCES])
        yield counter(
            "smswatch_records_total",
            ["source", "result"],
            [(s, r) for s in SOURCES for r in catalogue.RECORD_RESULTS],
        )
        yield gauge("smswatch_build_info", ["version"], [(("0.0.0-test",), 1)])


@pytest.fixture
def fixed_exporter(port: Callable[[], int]) -> Iterator[str]:
    """A stdlib HTTP server serving the catalogue exposition on /metrics; yields host:port."""
    registry = CollectorRegistry()
    registry.register(CatalogueCollector())

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = generate_latest(registry)
            self.send_response(200 if self.path == "/metrics" else 404)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _rule_files(repo_root: Path, tmp_path: Path) -> list[Path]:
    """The repository's alert and recording rules, if any, plus an always-firing test alert so
    the ALERTS annotation and table have something to show."""
    test_rules = tmp_path / "dashboard-test-rules.yaml"
    test_rules.write_text(
        "groups:\n  - name: dashboard-test\n    rules:\n"
        f"      - alert: {TEST_ALERT}\n        expr: vector(1)\n"
        "        labels:\n          severity: ticket\n          gateway: bank-sms\n",
        encoding="utf-8",
    )
    return [*sorted((repo_root / "alerts" / "rules").glob("*.yaml")), test_rules]


def _grafana_regex_escape(value: str) -> str:
    """A label value as Grafana puts it in a Prometheus regex: specials escaped with `\\`."""
    return re.sub(r"([$^*{}\[\]'+?.()|])", r"\\\\\1", value.replace("\\", "\\\\\\\\"))


def _variable_queries(dashboards: dict[str, dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    """(uid, variable, label, match) of every `label_values(match, label)` variable."""
    found = []
    for uid, dashboard in dashboards.items():
        for variable in dashboard["templating"]["list"]:
            if variable["type"] != "query":
                continue
            parsed = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["query"])
            assert parsed, f"{uid}: ${variable['name']}: not label_values(): {variable['query']}"
            found.append((uid, variable["name"], parsed.group(2), parsed.group(1)))
    return found


def _run_all(
    prometheus: Any,
    targets: list[Any],
    substitute: Callable[[str, dict[str, str]], str],
    values: dict[str, str],
    *,
    may_be_empty: set[tuple[str, str]],
) -> int:
    """Run every target; return how many queries ran. Fails listing every broken target."""
    problems = []
    ran = 0
    for target in targets:
        expr = substitute(target.expr, values)
        answer = prometheus.query(expr)
        ran += 1
        if answer["status"] != "success":
            problems.append(f"{target.name}: {answer.get('error')}\n    {expr}")
            continue
        if not target.instant:
            ranged = prometheus.query_range(expr)
            ran += 1
            if ranged["status"] != "success":
                problems.append(f"{target.name} (range): {ranged.get('error')}\n    {expr}")
        result = answer["data"]["result"]
        if not result and (target.uid, target.panel) not in may_be_empty:
            problems.append(f"{target.name}: no data\n    {expr}")
        if target.unit == "percentunit" and "budget" not in target.panel.lower():
            shares = [float(sample["value"][1]) for sample in result]
            if any(not 0 <= share <= 1 for share in shares if not math.isnan(share)):
                problems.append(f"{target.name}: a share outside [0, 1]: {shares}\n    {expr}")
    assert not problems, f"{len(problems)} of {len(targets)} targets failed:\n" + "\n".join(
        problems
    )
    return ran


def _check_dashboards(
    prometheus: Any,
    dashboards: dict[str, dict[str, Any]],
    targets: list[Any],
    substitute: Callable[[str, dict[str, str]], str],
    *,
    may_be_empty: set[tuple[str, str]],
) -> int:
    """Variables list values; every target runs with All and with specific values."""
    all_values = {"gateway": ".*", "carrier": ".*", "area": ".*", "acquirer": ".*", "source": ".*"}
    picked: dict[str, str] = {}
    for uid, name, label, match in _variable_queries(dashboards):
        values = prometheus.label_values(label, substitute(match, all_values))
        assert values, f"{uid}: variable ${name} lists no values for {match}"
        # Two values selected: Grafana sends a multi-value selection as a regex alternation.
        picked[name] = "(" + "|".join(_grafana_regex_escape(v) for v in values[:2]) + ")"
    ran = _run_all(prometheus, targets, substitute, all_values, may_be_empty=may_be_empty)
    # With a narrow selection any panel may rightly be empty: only errors count then.
    everything = {(target.uid, target.panel) for target in targets}
    ran += _run_all(prometheus, targets, substitute, picked, may_be_empty=everything)
    return ran


def test_every_panel_query_runs_on_the_catalogue_exposition(
    start_prometheus: Callable[..., Any],
    fixed_exporter: str,
    dashboards: dict[str, dict[str, Any]],
    targets: list[Any],
    substitute_variables: Callable[[str, dict[str, str]], str],
    poll: Callable[..., None],
    repo_root: Path,
    tmp_path: Path,
) -> None:
    prometheus = start_prometheus(fixed_exporter, _rule_files(repo_root, tmp_path))
    poll(
        lambda: (
            prometheus.value("count_over_time(smswatch_build_info[1m])") >= 4
            and prometheus.value(f'count(ALERTS{{alertname="{TEST_ALERT}"}})') > 0
        ),
        timeout=30,
        what="four scrapes of the fixed exposition and the test alert",
    )
    ran = _check_dashboards(
        prometheus, dashboards, targets, substitute_variables, may_be_empty=set()
    )
    print(f"\nfixed exposition: {len(targets)} targets, {ran} queries ran")


def _demo_available() -> bool:
    try:
        import exporter.app
        import exporter.simulator.server  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.skipif(
    not _demo_available(), reason="the simulator server (smswatch demo) is not in the tree yet"
)
def test_every_panel_query_runs_on_the_demo(
    start_prometheus: Callable[..., Any],
    dashboards: dict[str, dict[str, Any]],
    targets: list[Any],
    substitute_variables: Callable[[str, dict[str, str]], str],
    poll: Callable[..., None],
    port: Callable[[], int],
    repo_root: Path,
    tmp_path: Path,
) -> None:
    exporter_port, simulator_port = port(), port()
    log = (tmp_path / "demo.log").open("wb")
    demo = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "exporter",
            "demo",
            "--speed",
            "60",
            "--web.listen-address",
            f"127.0.0.1:{exporter_port}",
            "--simulator.listen-address",
            f"127.0.0.1:{simulator_port}",
            "--state.path",
            str(tmp_path / "state.sqlite"),
        ],
        cwd=repo_root,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:

        def metrics_up() -> bool:
            if demo.poll() is not None:
                pytest.fail(f"smswatch demo exited with {demo.returncode}; see {log.name}")
            url = f"http://127.0.0.1:{exporter_port}/metrics"
            return requests.get(url, timeout=2).status_code == 200

        poll(metrics_up, timeout=30, what="smswatch demo to serve /metrics")
        prometheus = start_prometheus(
            f"127.0.0.1:{exporter_port}", _rule_files(repo_root, tmp_path)
        )
        poll(
            lambda: (
                prometheus.value("sum(smswatch_receipts_total)") > 0
                and prometheus.value("sum(smswatch_sms_delivery_seconds_count)") > 0
                and prometheus.value("count_over_time(smswatch_build_info[1m])") >= 4
            ),
            timeout=90,
            what="receipts and delivered SMS from the demo in Prometheus",
        )
        ran = _check_dashboards(
            prometheus,
            dashboards,
            targets,
            substitute_variables,
            may_be_empty=MAY_BE_EMPTY_ON_DEMO,
        )
        print(f"\nsmswatch demo: {len(targets)} targets, {ran} queries ran")
    finally:
        stop_processes(demo)
        log.close()
