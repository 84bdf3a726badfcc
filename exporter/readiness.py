"""`/healthz` and `/ready`: what a container orchestrator asks the exporter before trusting it.

Liveness (`/healthz`) says only that the process serves HTTP: a failure there is worth a restart,
and nothing a restart cannot fix is checked (an upstream API that is down is not).

Readiness (`/ready`) says that the exporter's answers are its own judgement of the present:
- the state store is open and answers a read (the metrics, the lookup and the push receivers'
  commits all depend on it);
- every polled source has finished its first poll in this process, successful or not, so
  `smswatch_source_up` and the freshness gauges are this process's verdict, not a restored one;
  with replicas, only the sources this replica holds the lease of: another replica polls the
  others, and this one serves pushes, lookups and scrapes from the shared state all the same;
- push-only sources count as ready once their receiver is routed, which it is before the
  server listens: the exporter waits for their pushes, it never polls them;
- the exporter is not stopping.

A source that is down does not make the exporter unready: the outage is exported
(`smswatch_source_up 0`) and pages as itself (SmswatchSourceDown). Taking the pod out of its
Service instead would refuse providers' pushes and the support desk's lookups, and page an
upstream outage as the exporter being down.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass

from exporter.config import SourceConfig
from exporter.dialect import STATE_ERRORS
from exporter.leases import Lease
from exporter.poller import PollHealth
from exporter.store import Store
from exporter.web import Request, Response


@dataclass(frozen=True)
class Watched:
    """A source as readiness sees it: its config and its in-memory poll health."""

    source: SourceConfig
    health: PollHealth
    #: The source's lease (replicas); None: this exporter always polls it.
    lease: Lease | None = None


def liveness(request: Request) -> Response:
    """`/healthz`: 200 while the process serves HTTP."""
    return Response(200, b"ok\n")


class Readiness:
    """`/ready`: 200 with one line per check once all pass, else 503 naming what is missing."""

    def __init__(
        self, store: Store, sources: Mapping[str, Watched], stopping: threading.Event
    ) -> None:
        """`sources` by name; `stopping` is set when the exporter begins to shut down."""
        self.store = store
        self.sources = sources
        self.stopping = stopping

    def checks(self) -> tuple[bool, list[str]]:
        """Whether the exporter is ready, and one line per check (what a person reads)."""
        lines: list[str] = []
        ready = True
        if self.stopping.is_set():
            return False, ["exporter: stopping"]
        try:
            self.store.snapshot()
            lines.append("state: open")
        except STATE_ERRORS as exc:  # closed, locked past its timeout, unreadable file
            ready = False
            lines.append(f"state: not readable ({type(exc).__name__})")
        for name, watched in self.sources.items():
            source, health = watched.source, watched.health
            if source.push_only:
                path = source.push.path if source.push is not None else "?"
                lines.append(f"source {name}: push receiver listening at {path}")
            elif watched.lease is not None and watched.lease.kept and not watched.lease.held():
                lines.append(f"source {name}: polled by another replica")
            elif health.polls == 0:
                ready = False
                lines.append(f"source {name}: first poll not finished")
            elif health.up:
                lines.append(f"source {name}: polled, up")
            else:
                lines.append(f"source {name}: polled, down ({health.last_error})")
        return ready, lines

    def __call__(self, request: Request) -> Response:
        """The route: 200 `ready` or 503 `not ready`, then the checks, one per line."""
        ready, lines = self.checks()
        head = "ready" if ready else "not ready"
        return Response(200 if ready else 503, "\n".join([head, *lines, ""]).encode())
