"""Replicas on one PostgreSQL state, in process: what one replica's start does to another's
watch. (The end-to-end proof with real processes is test_replicas_end_to_end.py.)"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path

import pytest
from test_push import FIXTURES, SECRET, base, document, metric, post

from exporter.app import Exporter
from exporter.config import parse_config
from exporter.dialect import PostgreSQL
from exporter.leases import LeaseKeeper
from exporter.store import Store

from harness import wait_until

START_S = 1_795_680_000  # 2026-11-26T08:00:00Z


@pytest.fixture
def replicas(tmp_path: Path, postgresql_dsn: str) -> Iterator[list[Exporter]]:
    """Two exporters on one PostgreSQL state (the first one started, the second not yet)."""
    doc = document(tmp_path / "unused.sqlite")
    doc["state"] = {"backend": "postgresql", "dsn": postgresql_dsn}
    config = parse_config(doc, env={"PUSH_SECRET": SECRET})
    apps = [Exporter(config, "127.0.0.1", 0), Exporter(config, "127.0.0.1", 0)]
    apps[0].start()
    yield apps
    for app in apps:
        app.stop()


def push_at(app: Exporter, at_s: int) -> None:
    """One Alibaba SmsReport push dated `at_s` (the provider's clock), acknowledged."""
    body = (FIXTURES / "aliyun" / "sms_report.json").read_bytes()
    status, answer = post(
        base(app, "aliyun"), body, headers={"Date": formatdate(at_s, usegmt=True)}
    )
    assert status == 200 and json.loads(answer)["code"] == 0


def test_a_replica_starting_while_another_listens_leaves_no_unobserved_time(
    replicas: list[Exporter],
) -> None:
    listening, starting = replicas
    push_at(listening, START_S)
    starting.start()  # a second replica joins, or one starts again after a kill
    push_at(listening, START_S + 60)  # the provider heard every push acknowledged
    assert metric(listening, "smswatch_unobserved_seconds_total", source="aliyun") == 0


@pytest.mark.xfail(
    strict=True,
    reason="a replica paused (SIGSTOP, GC, frozen VM) inside a write transaction keeps the "
    "state's write lock: no other replica renews or takes a lease, nor commits a page or a push, "
    "until it wakes or PostgreSQL ends its session, after max(2 x TTL, 30 s) "
    "(leases.IDLE_TRANSACTION_MIN_MS): beyond the bound of TTL + 2 poll intervals",
)
def test_a_replica_paused_inside_a_write_transaction_loses_its_lease_after_the_ttl(
    postgresql_dsn: str,
) -> None:
    """Issue 13: a replica that pauses past its lease has its source taken over within the
    lease TTL and two poll intervals, wherever the pause caught it."""
    ttl_ms = 1000
    stores = [Store(postgresql_dsn, backend=PostgreSQL(postgresql_dsn)) for _ in range(2)]
    paused = LeaseKeeper(stores[0], ["acquirer"], ttl_ms, "replica-paused")
    other = LeaseKeeper(stores[1], ["acquirer"], ttl_ms, "replica-other")
    paused.start()
    assert paused.polls("acquirer")
    page = stores[0].transaction()
    page.__enter__()  # a page's transaction under way when the process is stopped
    starting = threading.Thread(target=other.start)  # its first round waits for the lock
    try:
        starting.start()
        wait_until(
            lambda: other.polls("acquirer"),
            5 * ttl_ms / 1000,
            "the other replica to take the acquirer over while the holder sleeps",
            interval=0.05,
        )
    finally:
        try:
            page.__exit__(None, None, None)  # it wakes up
        finally:
            starting.join()
            paused.stop()
            other.stop()
            for store in stores:
                store.close()
