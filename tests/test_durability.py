"""What cannot be read again once acknowledged is on disk before the acknowledgement: push
commits and the commits of a consuming pull (Tencent PullSmsSendStatus) run at
synchronous=FULL; re-readable feeds keep NORMAL. Seen through SQLite's own statement trace on
the exporter's write connection (a power cut cannot be staged in a test)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import responses
from test_provider_pull import FIXTURES, NOON, TENCENT, TENCENT_API, recorded
from test_push import SECRET, document, post

from exporter.app import Exporter
from exporter.config import parse_config
from exporter.poller import Pipeline, Poller
from exporter.store import Store

from harness import config_with


def commit_modes(statements: list[str]) -> list[str]:
    """The synchronous setting in force at each COMMIT of a write transaction, in order."""
    mode, modes = "NORMAL", []
    for sql in statements:
        text = sql.strip().upper()
        if text.startswith("PRAGMA SYNCHRONOUS="):
            mode = text.split("=", 1)[1]
        elif text == "COMMIT":
            modes.append(mode)
    return modes


def test_a_push_is_committed_at_synchronous_full_before_it_is_acknowledged(
    tmp_path: Path,
) -> None:
    config = parse_config(document(tmp_path / "state.sqlite"), env={"PUSH_SECRET": SECRET})
    app = Exporter(config, "127.0.0.1", 0)
    statements: list[str] = []
    app.store._db.set_trace_callback(statements.append)
    app.web.start()
    try:
        body = (FIXTURES / "aliyun" / "sms_report.json").read_bytes()
        status, _ = post(f"http://127.0.0.1:{app.port}/push/aliyun?secret={SECRET}", body)
        assert status == 200
        assert commit_modes(statements) == ["FULL"]
    finally:
        app.web.stop()
        app.store.close()


@responses.activate
def test_a_consuming_pull_commits_at_full_and_a_re_readable_feed_at_normal(
    tmp_path: Path,
) -> None:
    config = config_with(sms=TENCENT)
    store = Store(str(tmp_path / "state.sqlite"))
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)
    try:
        recorded(responses.POST, TENCENT_API, "tencent", "pull_page1.json")
        recorded(responses.POST, TENCENT_API, "tencent", "pull_page2.json")
        empty = {"Response": {"PullSmsSendStatusSet": [], "RequestId": "d0"}}
        responses.post(TENCENT_API, json=empty, headers={"Date": NOON})
        poller = Poller(config.sources[0], Pipeline(config, store), threading.Event())
        statements.clear()  # only the poll's commits: opening the pipeline may commit too
        poller.poll()
        assert poller.health.up, poller.health.last_error
        assert commit_modes(statements)[:3] == ["FULL", "FULL", "FULL"]

        statements.clear()
        generic = config_with()
        page = json.dumps({"messages": [], "next_cursor": "c1", "has_more": False,
                           "watermark": "2026-11-26T12:00:00Z"})  # fmt: skip
        responses.get(f"{generic.sources[0].base_url}/sms/v1/messages", body=page)
        generic_poller = Poller(generic.sources[0], Pipeline(generic, store), threading.Event())
        statements.clear()
        generic_poller.poll()
        assert commit_modes(statements) and set(commit_modes(statements)) == {"NORMAL"}
    finally:
        store.close()
