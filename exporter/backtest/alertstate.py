"""The state of Prometheus' alerting rules, evaluation by evaluation (rules/alerting.go, 2.42).

At each evaluation a series of the expression's result is *active*. A new active series is
`pending` from that evaluation; it fires once it has been active for `for` (at once when `for`
is 0). When its series is gone a pending alert is dropped, a firing one resolves — unless the
rule has `keep_firing_for`: then it keeps firing until `keep_firing_for` has passed since the
first evaluation that missed it (a return of the series before that resets the count). An
alert that comes back after it resolved starts pending again.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Firing:
    """One firing episode of one alert series."""

    active_ms: int  # first evaluation of the episode's pending phase
    fired_ms: int  # first evaluation at which it fired
    resolved_ms: int | None  # first evaluation at which it no longer fired; None: at the end


def firing_episodes(
    times: Sequence[int], active: Collection[int], for_ms: int, keep_firing_for_ms: int
) -> list[Firing]:
    """The firing episodes of one series, given the evaluation times (ascending) and the
    times at which its expression returned it."""
    episodes: list[Firing] = []
    state = "inactive"
    active_at = fired_at = 0
    keep_since: int | None = None
    for at in times:
        if at in active:
            keep_since = None
            if state == "inactive":
                state, active_at = "pending", at
        else:
            keep = False
            if state == "firing" and keep_firing_for_ms > 0:
                if keep_since is None:
                    keep_since = at
                keep = at - keep_since < keep_firing_for_ms
            if not keep:
                if state == "firing":
                    episodes.append(Firing(active_at, fired_at, at))
                state = "inactive"
                keep_since = None
                continue
        if state == "pending" and at - active_at >= for_ms:
            state, fired_at = "firing", at
    if state == "firing":
        episodes.append(Firing(active_at, fired_at, None))
    return episodes
