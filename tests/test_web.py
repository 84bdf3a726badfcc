"""The exporter's HTTP endpoints, basic auth and TLS from an exporter-toolkit web config."""

from __future__ import annotations

import base64
import gc
import secrets
import socket
import ssl
import subprocess
import types
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import yaml

from exporter.app import Exporter, job_options
from exporter.config import parse_config, simulator_config_document
from exporter.web import ConnectionLimits, SignInsThrottled, SignInThrottle

from harness import (
    Process,
    closed_by_peer,
    free_port,
    http_get,
    parse_exposition,
    raw_exchange,
    spy_on_bcrypt,
    wait_until,
)


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
    # the outage is exported (and paged as itself); the exporter stays in its Service
    wait_until(lambda: fetch(f"{base}/ready")[0] == 200, 10, "the first polls to end")
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


# ---------------------------------------------------------------------- hostile clients


def tls_web_config(tmp_path: Path, users: dict[str, str] | None = None) -> tuple[Path, Path]:
    """A web config with a fresh certificate (and bcrypt users); (web config, certificate)."""
    cert, key = make_cert(tmp_path)
    web = tmp_path / "web.yml"
    document: dict[str, Any] = {"tls_server_config": {"cert_file": cert.name, "key_file": key.name}}
    if users:
        document["basic_auth_users"] = {
            user: bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
            for user, password in users.items()
        }
    web.write_text(yaml.safe_dump(document))
    return web, cert


def with_kannel_receiver(tmp_path: Path) -> Any:
    """The unreachable config plus a Kannel push receiver with a secret."""
    doc = simulator_config_document("http://127.0.0.1:9", "1h")
    doc["sources"].append(
        {"name": "kannel", "kind": "sms_gateway", "provider": "kannel", "push": {"secret": "${S}"}}
    )
    return parse_config(doc, state_path=str(tmp_path / "state.sqlite"), env={"S": "dlr-secret"})


def test_an_idle_tls_client_blocks_neither_scrapes_nor_pushes_nor_the_lookup(
    tmp_path: Path,
) -> None:
    """A client that opens a TCP connection to the TLS port and never says hello holds only its
    own connection: everything else is answered beside it."""
    web, cert = tls_web_config(tmp_path)
    exporter = Exporter(with_kannel_receiver(tmp_path), "127.0.0.1", 0, web_config_file=str(web))
    exporter.web.start()
    idle = socket.create_connection(("127.0.0.1", exporter.port))
    try:
        context = ssl.create_default_context(cafile=str(cert))
        base = f"https://127.0.0.1:{exporter.port}"
        status, body = fetch(f"{base}/metrics", context=context)
        assert status == 200 and "smswatch_build_info" in body
        ack = fetch(
            f"{base}/push/kannel?type=8&reply=ACK/&msg=m-1&secret=dlr-secret", None, context
        )
        assert ack == (200, "ok\n")
        status, page = fetch(f"{base}/lookup", context=context)
        assert status == 401 and 'name="token"' in page
        assert not closed_by_peer(idle)  # still open: it was merely passed by
    finally:
        idle.close()
        exporter.web.stop()
        exporter.store.close()


@pytest.mark.parametrize(
    ("framing", "status"),
    [
        (b"Content-Length: -1\r\n", 400),
        (b"Content-Length: twelve\r\n", 400),
        (b"Content-Length: 5\r\nContent-Length: 6\r\n", 400),
        (b"Transfer-Encoding: chunked\r\n", 411),
        (b"Content-Length: 2000000\r\n", 413),
    ],
    ids=["negative", "not-a-number", "two-lengths", "chunked", "over-1MiB"],
)
def test_a_body_length_the_server_will_not_read_is_refused_at_once(
    plain: Exporter, framing: bytes, status: int
) -> None:
    """The client sends the head and waits: the answer must come without any body sent."""
    request = b"POST /lookup/login HTTP/1.1\r\nHost: x\r\n" + framing + b"\r\n"
    answer, headers, _ = raw_exchange(plain.port, request)
    assert (answer, headers["connection"]) == (status, "close")
    assert fetch(f"http://127.0.0.1:{plain.port}/healthz")[0] == 200


def test_protected_paths_ask_for_credentials_before_reading_a_body(tmp_path: Path) -> None:
    web, cert = tls_web_config(tmp_path, {"prometheus": "scrape-pw"})
    exporter = Exporter(unreachable_config(tmp_path), "127.0.0.1", 0, web_config_file=str(web))  # type: ignore[arg-type]
    exporter.web.start()
    try:
        context = ssl.create_default_context(cafile=str(cert))
        request = b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"
        assert raw_exchange(exporter.port, request, context)[0] == 401
    finally:
        exporter.web.stop()
        exporter.store.close()


def test_clients_that_dribble_or_idle_are_cut_off_at_their_deadline(tmp_path: Path) -> None:
    web, cert = tls_web_config(tmp_path)
    limits = ConnectionLimits(handshake_timeout_s=0.5, head_timeout_s=0.5)
    exporter = Exporter(
        unreachable_config(tmp_path),  # type: ignore[arg-type]
        "127.0.0.1",
        0,
        web_config_file=str(web),
        web_limits=limits,
    )
    exporter.web.start()
    context = ssl.create_default_context(cafile=str(cert))
    idle = socket.create_connection(("127.0.0.1", exporter.port))  # never says hello
    dribbler = context.wrap_socket(
        socket.create_connection(("127.0.0.1", exporter.port), timeout=5),
        server_hostname="127.0.0.1",
    )
    try:
        dribbler.sendall(b"GET /metrics HTTP/1.1\r\n")

        def dribble() -> bool:  # one header byte at a time, far more often than any timeout
            try:
                dribbler.sendall(b"X")
            except OSError:
                return True
            return closed_by_peer(dribbler, wait=0.05)

        wait_until(dribble, 10, "the server to cut off a client dribbling its head", 0)
        wait_until(lambda: closed_by_peer(idle), 10, "the server to drop a client without hello")
        assert fetch(f"https://127.0.0.1:{exporter.port}/metrics", context=context)[0] == 200
    finally:
        idle.close()
        dribbler.close()
        exporter.web.stop()
        exporter.store.close()


@pytest.mark.parametrize(
    "stalled",
    [
        b"GET /metrics HTTP/1.1\r\nHost: x\r\n",  # a head that never ends
        b"POST /lookup/login HTTP/1.1\r\nHost: x\r\nContent-Length: 900\r\n\r\ntoken=",
    ],
    ids=["slow-head", "slow-body"],
)
def test_slow_clients_cannot_crowd_out_a_scrape(tmp_path: Path, stalled: bytes) -> None:
    """Twice as many slow-loris clients as the server holds connections: the server closes the
    ones waiting longest, never holds more than its limit, and every scrape is answered."""
    limits = ConnectionLimits(max_connections=4, head_timeout_s=60, body_timeout_s=60)
    exporter = Exporter(unreachable_config(tmp_path), "127.0.0.1", 0, web_limits=limits)  # type: ignore[arg-type]
    exporter.web.start()
    slow: list[socket.socket] = []
    try:
        for _ in range(2 * limits.max_connections):
            sock = socket.create_connection(("127.0.0.1", exporter.port))
            sock.sendall(stalled)
            slow.append(sock)
        for _ in range(3):
            status, body = fetch(f"http://127.0.0.1:{exporter.port}/metrics")
            assert status == 200 and "smswatch_build_info" in body
        closed: set[int] = set()

        def held_open() -> set[int]:
            closed.update(
                i for i, sock in enumerate(slow) if i not in closed and closed_by_peer(sock)
            )
            return set(range(len(slow))) - closed

        wait_until(
            lambda: len(held_open()) <= limits.max_connections, 10, "slow clients to be let go"
        )
        if stalled.startswith(b"GET"):  # the oldest ones went first
            # (A client waiting for its head is as old as its connection, and connections are
            # accepted in order. One waiting to send its body waits since its head was read,
            # by its own thread: under load not in the order they connected.)
            assert max(closed) < min(held_open(), default=len(slow))
    finally:
        for sock in slow:
            sock.close()
        exporter.web.stop()
        exporter.store.close()


# ---------------------------------------------------------------------- basic auth


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[tuple[Exporter, str]]:
    """An exporter whose web config has one user, prometheus; (exporter, its password)."""
    password = secrets.token_urlsafe(12)
    web = tmp_path / "web.yml"
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()
    web.write_text(yaml.safe_dump({"basic_auth_users": {"prometheus": hashed}}))
    exporter = Exporter(unreachable_config(tmp_path), "127.0.0.1", 0, web_config_file=str(web))  # type: ignore[arg-type]
    exporter.web.start()
    yield exporter, password
    exporter.web.stop()
    exporter.store.close()


def test_an_unknown_user_costs_the_same_bcrypt_check_as_a_wrong_password(
    guarded: tuple[Exporter, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Timing must not tell which users exist: every refusal runs bcrypt at the users' cost."""
    exporter, _ = guarded
    checked = spy_on_bcrypt(monkeypatch)
    url = f"http://127.0.0.1:{exporter.port}/metrics"
    assert fetch(url, ("nobody", "guess"))[0] == 401
    assert fetch(url, ("prometheus", "guess"))[0] == 401
    assert fetch(url, ("prometheus", "guess"))[0] == 401  # a failure is never remembered
    assert [h[:7] for h in checked] == [b"$2b$05$"] * 3


def test_a_signed_in_password_is_remembered_only_as_a_keyed_digest(
    guarded: tuple[Exporter, str],
) -> None:
    exporter, password = guarded
    header = "Basic " + base64.b64encode(f"prometheus:{password}".encode()).decode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{exporter.port}/metrics", headers={"Authorization": header}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200
    # Walk everything the exporter holds (its web server, caches, config, store, ...).
    seen, stack = set(), [exporter]
    while stack:
        item = stack.pop()
        if id(item) in seen or isinstance(item, type | types.ModuleType | types.FunctionType):
            continue
        seen.add(id(item))
        assert not (isinstance(item, str) and password in item), "the password is kept"
        stack.extend(gc.get_referents(item))
    assert len(seen) > 500  # the walk went far


def test_failed_sign_ins_back_off_per_client_address(guarded: tuple[Exporter, str]) -> None:
    exporter, password = guarded
    url = f"http://127.0.0.1:{exporter.port}/metrics"
    free = exporter.web.sign_ins.free_failures
    for i in range(free):
        assert fetch(url, ("nobody" if i % 2 else "prometheus", f"guess-{i}"))[0] == 401
    assert fetch(url, ("prometheus", "guess-again"))[0] == 401  # the first one past the free
    request = urllib.request.Request(url)
    token = base64.b64encode(f"prometheus:{password}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    with pytest.raises(urllib.error.HTTPError) as refused:  # even the right one, for now
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 429 and int(refused.value.headers["Retry-After"]) >= 1
    assert fetch(f"http://127.0.0.1:{exporter.port}/healthz")[0] == 200


def test_the_back_off_doubles_expires_and_is_forgotten() -> None:
    now = [1000.0]
    throttle = SignInThrottle(free_failures=2, first_lockout_s=1, max_lockout_s=4,
                              forget_after_s=60, clock=lambda: now[0])  # fmt: skip
    for _ in range(2):
        throttle.failed("203.0.113.7")
        throttle.check("203.0.113.7")  # free failures: not locked
    lockouts = []
    for _ in range(4):
        throttle.failed("203.0.113.7")
        with pytest.raises(SignInsThrottled) as locked:
            throttle.check("203.0.113.7")
        lockouts.append(locked.value.retry_after_s)
        throttle.check("198.51.100.1")  # another address is not concerned
        now[0] += locked.value.retry_after_s
        throttle.check("203.0.113.7")  # the lock-out is over
    assert lockouts == [1, 2, 4, 4]
    now[0] += 61
    throttle.failed("203.0.113.7")
    throttle.check("203.0.113.7")  # forgotten: free failures again
    for host in range(3):  # one IPv6 host holds a whole /64
        throttle.failed(f"2001:db8:0:1::{host + 1}")
    with pytest.raises(SignInsThrottled):
        throttle.check("2001:db8:0:1:ffff::9")
    throttle.check("2001:db8:0:2::1")


def test_malformed_requests_leave_no_traceback_in_the_log(tmp_path: Path) -> None:
    config = tmp_path / "smswatch.yaml"
    doc = simulator_config_document("http://127.0.0.1:9", "1h")
    doc["state"]["path"] = str(tmp_path / "state.sqlite")
    config.write_text(yaml.safe_dump(doc))
    port = free_port()
    exporter = Process(
        ["run", "--config.file", str(config), "--web.listen-address", f"127.0.0.1:{port}"],
        tmp_path / "exporter.log",
    )
    try:
        wait_until(lambda: http_get(f"http://127.0.0.1:{port}/healthz")[0] == 200, 20, "start")
        for framing in (b"Content-Length: x1\r\n", b"Content-Length: -1\r\n", b"TE: a\r\n" * 200):
            request = b"POST /metrics HTTP/1.1\r\nHost: x\r\n" + framing + b"\r\n"
            assert raw_exchange(port, request)[0] in (400, 431)
        assert http_get(f"http://127.0.0.1:{port}/metrics")[0] == 200
    finally:
        assert exporter.stop() == 0
    assert "Traceback" not in exporter.output(), exporter.output()[-3000:]
