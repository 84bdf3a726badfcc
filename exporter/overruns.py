"""Poll overruns: a scheduled poll that could not run on time, because the previous poll of the
same source was still running (APScheduler's `max_instances`) or the scheduler reached it later
than its misfire grace (a busy machine).

APScheduler logs a warning for each of them ("maximum number of running instances reached",
"was missed by"): at a fast poll interval, as in `smswatch demo`, that is a line every tick.
Here they are counted per source instead (`smswatch_source_poll_overruns_total`) and logged at
most once per `log_every_s` and source, with the count since its last line; APScheduler's own
lines about poll jobs are dropped. Its other warnings and errors pass.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED

from exporter.poller import Poller

log = logging.getLogger(__name__)

#: The id of a source's poll job in the scheduler: `poll:<source>`.
POLL_JOB_PREFIX = "poll:"

#: The loggers APScheduler 3 writes those two warnings to (scheduler; executors by alias).
SCHEDULER_LOGGERS = ("apscheduler.scheduler", "apscheduler.executors.default")


def poll_job_id(source: str) -> str:
    """The scheduler's job id of a source's polls."""
    return POLL_JOB_PREFIX + source


class _PollJobWarnings(logging.Filter):
    """Drops APScheduler's per-tick warnings about poll jobs (they are counted instead)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        job_id = str(getattr(args[0], "id", "")) if args else ""
        return not (record.levelno == logging.WARNING and job_id.startswith(POLL_JOB_PREFIX))


_FILTER = _PollJobWarnings()


def quiet_poll_job_warnings() -> None:
    """Install the filter on APScheduler's loggers (idempotent)."""
    for name in SCHEDULER_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


class OverrunCounter:
    """A scheduler listener counting the overruns of each source's poll job (in the state
    store, so the counter survives restarts like the others)."""

    #: The scheduler events it listens to.
    EVENTS = EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED

    def __init__(
        self,
        pollers: Mapping[str, Poller],
        log_every_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pollers = pollers
        self.log_every_s = log_every_s
        self.clock = clock
        self._lock = threading.Lock()
        self._unlogged: Counter[str] = Counter()
        self._logged_at: dict[str, float] = {}

    def attach(self, scheduler: Any) -> None:
        """Listen to `scheduler`'s overrun events; silence its per-tick warnings."""
        quiet_poll_job_warnings()
        scheduler.add_listener(self, self.EVENTS)

    def __call__(self, event: Any) -> None:
        """Count one overrun of a poll job (other jobs are not sources)."""
        job_id = str(getattr(event, "job_id", ""))
        poller = self.pollers.get(job_id.removeprefix(POLL_JOB_PREFIX))
        if not job_id.startswith(POLL_JOB_PREFIX) or poller is None:
            return
        poller.count_overrun()
        source = poller.source.name
        with self._lock:
            self._unlogged[source] += 1
            now = self.clock()
            last = self._logged_at.get(source)
            if last is not None and now - last < self.log_every_s:
                return
            count = self._unlogged.pop(source)
            self._logged_at[source] = now
        log.warning(
            "polls overran their interval: skipped or late, counted in "
            "smswatch_source_poll_overruns_total",
            extra={
                "source": source,
                "overruns": count,
                "poll_interval_s": poller.source.poll_interval_ms / 1000,
                "last_poll_s": round(poller.health.last_duration_s, 3),
            },
        )
