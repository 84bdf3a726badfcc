"""The exporter's HTTP endpoints, basic auth and TLS from an exporter-toolkit web config."""

from __future__ import annotations

import base64
import ssl
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest
import yaml

from exporter.app import Exporter, job_options
from exporter.config import parse_config, simulator_config_document

from harness import parse_exposition, wait_until


def unreachable_config(tmp_path: Path) -> object:
    doc = simulator_config_document("http://127.0.0.1:9", "200ms")  # port 9: refused
    for source in doc["sources"]:
        source.update({"retries": 0, "timeout": {"connect": "200ms", "read": "200ms"}})
    return parse_config(doc, state_path=str(tmp_path / "state.sqlite"))


def fetch(
    url: str, auth: tuple[str, str] | None = None, context: ssl.SSLContext | None = None
) -> tuple[int, str]:
    request = urllib.request.Request(url)
    if auth:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=5, context=context) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.fixture
def plain(tmp_path: Path) -> Iterator[Exporter]:
    exporter = Exporter(unreachable_config(tmp_path), "127.0.0.1", 0)  # type: ignore[arg-type]
    exporter.start()
    yield exporter
    exporter.stop()


def test_unreachable_sources_are_reported_not_fatal(plain: Exporter) -> None:
    base = f"http://127.0.0.1:{plain.port}"
    assert fetch(f"{base}/healthz")[0] == 200

    def errors_counted() -> bool:
        metrics = parse_exposition(fetch(f"{base}/metrics")[1])
        key = (
            "smswatch_source_errors_total",
            frozenset({("source", "sms"), ("error", "connection")}),
        )
        return metrics.get(key, 0) >= 1

    wait_until(errors_counted, 10, "connection errors to be counted")
    metrics = parse_exposition(fetch(f"{base}/metrics")[1])
    assert metrics[("smswatch_source_up", frozenset({("source", "sms")}))] == 0
    assert fetch(f"{base}/ready")[0] == 503
    # the landing page shows the error once the failed poll has ended
    page = wait_until(
        lambda: (p := fetch(f"{base}/"))[0] == 200 and "connection" in p[1] and p[1],
        10,
        "the landing page to show the connection error",
    )
    assert "acquirer" in page
    # every configured acquirer is exported from the start, with zeros
    assert (
        metrics[
            (
                "smswatch_receipts_total",
                frozenset(
                    {("acquirer", "acq-east"), ("outcome", "missing"), ("cause", "integration")}
                ),
            )
        ]
        == 0
    )


def make_cert(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "server.crt", tmp_path / "server.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def test_basic_auth_and_tls_from_the_web_config(tmp_path: Path) -> None:
    cert, key = make_cert(tmp_path)
    hashed = bcrypt.hashpw(b"right-password", bcrypt.gensalt(rounds=4)).decode()
    web = tmp_path / "web.yml"
    web.write_text(
        yaml.safe_dump(
            {
                "tls_server_config": {"cert_file": cert.name, "key_file": key.name},
                "basic_auth_users": {"prometheus": hashed},
            }
        )
    )
    exporter = Exporter(unreachable_config(tmp_path), "127.0.0.1", 0, web_config_file=str(web))  # type: ignore[arg-type]
    exporter.start()
    try:
        context = ssl.create_default_context(cafile=str(cert))
        base = f"https://127.0.0.1:{exporter.port}"
        assert fetch(f"{base}/metrics", context=context)[0] == 401
        assert fetch(f"{base}/metrics", ("prometheus", "wrong"), context)[0] == 401
        assert fetch(f"{base}/metrics", ("nobody", "right-password"), context)[0] == 401
        status, body = fetch(f"{base}/metrics", ("prometheus", "right-password"), context)
        assert status == 200 and "smswatch_build_info" in body
        assert fetch(f"{base}/healthz", context=context)[0] == 200  # for container health checks
        with pytest.raises(OSError):  # plain HTTP to the TLS port gets nowhere
            fetch(f"http://127.0.0.1:{exporter.port}/metrics")
    finally:
        exporter.stop()


def test_a_bad_web_config_is_a_config_error(tmp_path: Path) -> None:
    from exporter.errors import ConfigError

    web = tmp_path / "web.yml"
    web.write_text("basic_auth_users:\n  prometheus: plaintext\n")
    with pytest.raises(ConfigError, match=r"basic_auth_users\.prometheus"):
        Exporter(unreachable_config(tmp_path), "127.0.0.1", 0, web_config_file=str(web))  # type: ignore[arg-type]


def test_each_source_polls_on_its_own_job_never_twice_at_once(plain: Exporter) -> None:
    jobs = {job.id: job for job in plain.scheduler.get_jobs()}
    assert {"poll:sms", "poll:acquirer"} <= set(jobs)
    for name in ("poll:sms", "poll:acquirer"):
        job = jobs[name]
        assert job.max_instances == 1
        assert job.coalesce is True
        assert job.misfire_grace_time == 1  # half the interval, at least a second
        assert job.trigger.interval.total_seconds() == 0.2
    assert job_options(15_000)["misfire_grace_time"] == 7


def test_scheduled_reports_are_registered_in_the_exporter(tmp_path: Path) -> None:
    doc = simulator_config_document("http://127.0.0.1:9", "1s")
    doc["reports"] = {
        "prometheus_url": "http://127.0.0.1:9090",
        "out_dir": str(tmp_path / "reports"),
        "timezone": "Asia/Shanghai",
        "schedules": [{"period": "daily", "at": "01:00"}, {"period": "monthly", "at": "02:30"}],
    }
    config = parse_config(doc, state_path=str(tmp_path / "state.sqlite"))
    exporter = Exporter(config, "127.0.0.1", 0)
    exporter.start()
    try:
        jobs = {job.id: job for job in exporter.scheduler.get_jobs()}
        daily = jobs["report:0:daily"]
        assert str(daily.trigger.timezone) == "Asia/Shanghai"
        assert daily.next_run_time.hour == 1 and daily.next_run_time.minute == 0
        assert "report:1:monthly" in jobs
    finally:
        exporter.stop()
