"""Group commit: work that arrives while a durable commit is in flight is committed together in
the next transaction, one fsync for the group.

Each caller of `GroupCommit.submit` waits until its own item is committed (or has failed), so a
push is still acknowledged only after its records are on disk. There is no committer thread:
the first caller to find no commit in flight leads. It enters the gate (the store's write lock,
so items keep arriving while a poll's page or another group commits), hands the commit function
everything queued by the time its transaction has begun, wakes each waiter with its own
outcome, and passes the lead to the first item that queued meanwhile. The commit function
returns one outcome per item (None, or the exception that item alone failed with); when it
raises, every item of the group fails with that same exception object.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Generic, TypeVar

T = TypeVar("T")

#: The commit of one group: given `take` (call it once the transaction has begun: the items
#: queued by then), one outcome per taken item, in their order.
CommitGroup = Callable[[Callable[[], list[T]]], list[BaseException | None]]


class _Waiter(Generic[T]):
    """One submitted item and how its submitter learns the outcome."""

    __slots__ = ("done", "error", "item", "lead", "woken")

    def __init__(self, item: T) -> None:
        self.item = item
        self.woken = threading.Lock()  # held until the waiter is woken (lighter than an Event)
        self.woken.acquire()
        self.lead = False  # woken to lead the next group
        self.done = False  # woken because the item was committed or failed
        self.error: BaseException | None = None


class GroupCommit(Generic[T]):
    """Commits submitted items in groups, one transaction per group (see the module doc)."""

    def __init__(
        self, commit: CommitGroup[T], gate: Callable[[], AbstractContextManager[object]]
    ) -> None:
        self._commit = commit
        self._gate = gate
        self._lock = threading.Lock()
        self._queue: list[_Waiter[T]] = []
        self._leading = False
        #: Groups committed (or failed) and items in them, since start.
        self.groups = 0
        self.items = 0

    @property
    def queued(self) -> int:
        """Items submitted and not yet taken into a group."""
        with self._lock:
            return len(self._queue)

    def submit(self, item: T) -> None:
        """Commit `item` with whatever else is queued; return once it is committed, or raise
        what made it (or its whole group) fail."""
        waiter = _Waiter(item)
        with self._lock:
            self._queue.append(waiter)
            lead = not self._leading
            self._leading = True
        if not lead:
            waiter.woken.acquire()
            if not waiter.lead:
                if waiter.error is not None:
                    raise waiter.error
                return
        self._lead()
        if waiter.error is not None:
            raise waiter.error

    def _take(self) -> list[_Waiter[T]]:
        with self._lock:
            group, self._queue = self._queue, []
        return group

    def _lead(self) -> None:
        """Commit one group (which holds the leader's own item), wake its waiters, pass on."""
        group: list[_Waiter[T]] | None = None

        def take() -> list[T]:
            nonlocal group
            if group is None:
                group = self._take()
            return [w.item for w in group]

        try:
            with self._gate():
                outcomes = self._commit(take)
        except BaseException as exc:  # the group fails as one, with the same exception
            take()
            outcomes = [exc] * len(group or [])
        taken = group or []
        with self._lock:
            self.groups += 1
            self.items += len(taken)
            if self._queue:
                successor = self._queue[0]
                successor.lead = True
                successor.woken.release()
            else:
                self._leading = False
        for waiter, outcome in zip(taken, outcomes, strict=True):
            waiter.error = outcome
            waiter.done = True
            waiter.woken.release()
