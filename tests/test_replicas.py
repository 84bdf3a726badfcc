"""Replicas on one PostgreSQL state, in process: what one replica's start does to another's
watch. (The end-to-end proof with real processes is test_replicas_end_to_end.py.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path

import pytest
from test_push import FIXTURES, SECRET, base, document, metric, post

from exporter.app import Exporter
from exporter.config import parse_config

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


@pytest.mark.xfail(
    strict=True,
    reason="a replica's start opens the push source's gap in the shared state although another "
    "replica listens (Store.open_push_gap at Exporter.start): receipts of a watched time "
    "become unknown instead of missing",
)
def test_a_replica_starting_while_another_listens_leaves_no_unobserved_time(
    replicas: list[Exporter],
) -> None:
    listening, starting = replicas
    push_at(listening, START_S)
    starting.start()  # a second replica joins, or one starts again after a kill
    push_at(listening, START_S + 60)  # the provider heard every push acknowledged
    assert metric(listening, "smswatch_unobserved_seconds_total", source="aliyun") == 0
