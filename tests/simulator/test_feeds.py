"""Paging, cursors and the watermark rule of the feeds."""

from __future__ import annotations

import json

import pytest

from exporter.simulator.feeds import (
    Cursors,
    FeedRequestError,
    ItemLog,
    log_page,
    parse_limit,
)
from exporter.simulator.simulation import Simulation
from exporter.timestamps import parse_rfc3339_ms

from .conftest import MINUTE, settings


def test_item_log_reads_across_compressed_chunks() -> None:
    log = ItemLog(chunk_items=4)
    for i in range(11):
        log.append(i * 10, f'{{"n":{i}}}'.encode())
    assert len(log) == 11
    assert [json.loads(item)["n"] for item in log.items(2, 11)] == list(range(2, 11))
    assert log.items(5, 5) == []
    assert log.time_at(10) == 100


def test_watermark_is_now_on_the_last_page_else_the_next_item_time() -> None:
    log = ItemLog()
    for at in (10, 20, 20, 30):
        log.append(at, b"{}")
    first = log_page(log, 0, 2, now_ms=35)
    assert (first.next_index, first.has_more, first.watermark_ms) == (2, True, 20)
    last = log_page(log, 2, 2, now_ms=35)
    assert (last.next_index, last.has_more, last.watermark_ms) == (4, False, 35)
    empty = log_page(log, 4, 2, now_ms=40)
    assert (empty.items, empty.has_more, empty.watermark_ms) == ([], False, 40)


@pytest.mark.parametrize("bad", ["0", "5001", "-1", "abc", "1.5"])
def test_limit_out_of_range_is_refused(bad: str) -> None:
    with pytest.raises(FeedRequestError):
        parse_limit(bad)


def test_limit_defaults_to_500() -> None:
    assert parse_limit(None) == parse_limit("") == 500
    assert parse_limit("5000") == 5000


@pytest.mark.parametrize(
    ("cursor", "message"),
    [
        ("garbage", "malformed"),
        ("t0000abcd-3", "malformed"),  # a transactions cursor on the messages feed
        ("m0000abcd-3", "another simulator run"),
        ("m{tag}-99", "past the end"),
    ],
)
def test_bad_cursors_are_refused_with_a_reason(cursor: str, message: str) -> None:
    cursors = Cursors("1234abcd")
    with pytest.raises(FeedRequestError, match=message):
        cursors.decode("messages", cursor.format(tag="1234abcd"), length=10)


def test_cursor_round_trip() -> None:
    cursors = Cursors("1234abcd")
    assert cursors.decode("messages", cursors.encode("messages", 7), length=7) == 7
    assert cursors.decode("messages", "", length=7) == 0


def test_paging_while_the_feed_grows_never_skips_and_keeps_the_watermark_rule() -> None:
    """Every item whose event time is before a page's watermark is in the pages so far."""
    simulation = Simulation(settings(scenario=None, traffic_for_ms=30 * MINUTE))
    now = simulation.settings.start_ms
    received: dict[str, list[dict[str, object]]] = {"messages": [], "transactions": []}
    promises: list[tuple[str, int, int]] = []  # (feed, watermark, items received so far)
    cursors: dict[str, str | None] = {"messages": None, "transactions": None}
    while not simulation.complete:
        now += 7_919
        simulation.advance(now)
        for feed in received:
            while True:
                page = json.loads(simulation.page(feed, cursors[feed], 37))
                received[feed].extend(page[feed])
                cursors[feed] = page["next_cursor"]
                promises.append((feed, parse_rfc3339_ms(page["watermark"]), len(received[feed])))
                if not page["has_more"]:
                    skewed = any(  # the built-in scenario's clock_skew: sms feed 5 m behind
                        f["kind"] == "clock_skew" and f["state"] == "active"
                        for f in simulation.faults()
                    )
                    behind = 5 * MINUTE if skewed and feed == "messages" else 0
                    assert parse_rfc3339_ms(page["watermark"]) == now - behind
                    break
    for feed, log in (("messages", simulation.messages), ("transactions", simulation.transactions)):
        everything = [json.loads(item) for item in log.items(0, len(log))]
        assert received[feed] == everything
        field = "status_at" if feed == "messages" else "txn_time"
        times = [parse_rfc3339_ms(str(item[field])) for item in everything]
        for name, watermark, count in promises:
            if name == feed:
                assert sum(1 for t in times if t < watermark) <= count


def test_terminal_snapshot_pages_by_terminal_id_with_now_as_watermark() -> None:
    simulation = Simulation(settings())
    now = simulation.advance(simulation.settings.start_ms + 5 * MINUTE)
    seen: list[str] = []
    cursor = None
    while True:
        page = json.loads(simulation.page("terminals", cursor, 100))
        assert parse_rfc3339_ms(page["watermark"]) == now
        seen.extend(t["terminal_id"] for t in page["terminals"])
        cursor = page["next_cursor"]
        if not page["has_more"]:
            break
    assert seen == sorted(seen) and len(seen) == len(set(seen)) == 300
    after = json.loads(simulation.page("terminals", cursor, 100))
    assert after["terminals"] == [] and after["has_more"] is False
