"""Group commit itself: while one group commits, the next gathers; the lead passes on; each
submitter returns only once its own item is committed, or raises what failed it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import nullcontext

from exporter.group_commit import GroupCommit

from harness import wait_until


def test_items_arriving_during_a_commit_form_the_next_group_and_each_waits_for_its_own() -> None:
    committed: list[list[int]] = []
    first_started, release_first = threading.Event(), threading.Event()

    def commit(take: Callable[[], list[int]]) -> list[BaseException | None]:
        items = take()
        if not committed:
            first_started.set()
            release_first.wait(30)
        committed.append(items)
        return [ValueError(f"item {i}") if i == 3 else None for i in items]

    groups = GroupCommit(commit, nullcontext)
    returned: dict[int, object] = {}

    def submit(i: int) -> None:
        try:
            groups.submit(i)
            returned[i] = "committed"
        except ValueError as exc:
            returned[i] = str(exc)

    threads = [threading.Thread(target=submit, args=(0,))]
    threads[0].start()
    assert first_started.wait(30)
    for i in range(1, 6):  # arrive while the first group commits
        threads.append(threading.Thread(target=submit, args=(i,)))
        threads[-1].start()
    wait_until(lambda: groups.queued == 5, 30, "the next group gathered")
    assert returned == {}  # nobody is answered before its own commit
    release_first.set()
    for thread in threads:
        thread.join(30)
    assert committed[0] == [0] and sorted(committed[1]) == [1, 2, 3, 4, 5]
    assert returned == {i: "committed" for i in (0, 1, 2, 4, 5)} | {3: "item 3"}
    assert (groups.groups, groups.items, groups.queued) == (2, 6, 0)


def test_a_commit_that_raises_fails_its_whole_group_and_the_next_one_still_commits() -> None:
    boom = OSError("disk gone")
    calls = 0

    def commit(take: Callable[[], list[int]]) -> list[BaseException | None]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise boom  # before taking anything: the group fails all the same
        return [None] * len(take())

    groups = GroupCommit(commit, nullcontext)
    try:
        groups.submit(1)
    except OSError as exc:
        assert exc is boom
    else:
        raise AssertionError("the failed commit did not fail its push")
    groups.submit(2)
    assert (groups.groups, groups.items) == (2, 2)
