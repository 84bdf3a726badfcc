"""Latency figures from histogram bucket counts: quantiles and the share within a target.

Quantiles follow Prometheus' `histogram_quantile` exactly (linear interpolation inside the bucket
that holds the rank, the first bucket starting at 0), applied to the exact bucket increases of
the period, so a reader can reproduce them with PromQL on aligned data. A quantile that falls in
the +Inf bucket is only known to be above the highest finite bound: it is reported as such
(`above_bound`), never as a made-up number. The share within the target needs no interpolation:
the target is a bucket bound.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

QUANTILES: tuple[float, ...] = (0.5, 0.9, 0.95, 0.99)


@dataclass(frozen=True)
class Quantile:
    """A quantile estimate in seconds, or `above_bound` when it lies in the +Inf bucket."""

    q: float
    seconds: float | None  # None: no observations
    above_bound: bool = False


@dataclass(frozen=True)
class LatencySummary:
    """Bucket counts of one histogram over the period (cumulative, by upper bound)."""

    name: str
    buckets: tuple[tuple[float, int], ...]  # (le, cumulative count), ending with +Inf

    @property
    def count(self) -> int:
        return self.buckets[-1][1] if self.buckets else 0

    def within(self, bound: float) -> int:
        """Observations ≤ `bound`; `bound` must be one of the bucket bounds."""
        for le, cumulative in self.buckets:
            if le == bound:
                return cumulative
        raise ValueError(f"{bound} is not a bucket bound of {self.name}")

    def quantile(self, q: float) -> Quantile:
        return bucket_quantile(q, self.buckets)

    def per_bucket(self) -> list[tuple[float, float, int]]:
        """(lower, upper, count) of each bucket, not cumulative."""
        out: list[tuple[float, float, int]] = []
        lower = 0.0
        previous = 0
        for le, cumulative in self.buckets:
            out.append((lower, le, cumulative - previous))
            lower, previous = le, cumulative
        return out


def summary_from_buckets(name: str, by_le: Mapping[str, float]) -> LatencySummary:
    """Build a summary from `{le label value: cumulative count}` (Prometheus `le` strings)."""
    parsed = sorted((_le(le), count) for le, count in by_le.items())
    if not parsed or not math.isinf(parsed[-1][0]):
        parsed.append((math.inf, parsed[-1][1] if parsed else 0))
    return LatencySummary(name, tuple((le, round(count)) for le, count in parsed))


def bucket_quantile(q: float, buckets: Sequence[tuple[float, int | float]]) -> Quantile:
    """Prometheus' `histogram_quantile(q, …)` over cumulative `(le, count)` pairs."""
    if not buckets or not math.isinf(buckets[-1][0]):
        raise ValueError("the last bucket must be +Inf")
    # Like Prometheus: make counts monotonic (a bucket never has fewer than the one below).
    bounds = [le for le, _ in buckets]
    counts: list[float] = []
    for _, count in buckets:
        counts.append(max(float(count), counts[-1]) if counts else float(count))
    total = counts[-1]
    if total == 0:
        return Quantile(q, None)
    rank = q * total
    index = next(i for i, cumulative in enumerate(counts) if cumulative >= rank)
    if index == len(bounds) - 1:
        return Quantile(q, bounds[-2] if len(bounds) > 1 else 0.0, above_bound=True)
    if index == 0 and bounds[0] <= 0:
        return Quantile(q, bounds[0])
    start = bounds[index - 1] if index > 0 else 0.0
    end = bounds[index]
    below = counts[index - 1] if index > 0 else 0.0
    in_bucket = counts[index] - below
    if in_bucket <= 0:
        return Quantile(q, end)
    # Same operation order as Prometheus, so the float result is identical.
    return Quantile(q, start + (end - start) * ((rank - below) / in_bucket))


def _le(text: str) -> float:
    return math.inf if text in ("+Inf", "Inf", "inf") else float(text)
