"""Settings of one simulator run."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True)
class SimulatorSettings:
    """Everything that determines a simulator run; same settings and seed → same traffic."""

    seed: int = 42
    speed: float = 1.0
    start_ms: int = 0
    traffic_for_ms: int | None = None
    scenario: str | None = None  # path to a YAML timeline, None = built-in default, "none" = none
    rate: float = 2.0  # card transactions per simulated second at the daily peak
    missing_after_ms: int = 300_000
    give_up_after_ms: int = 1_800_000
    gateway: str = "bank-sms"
    sms_api: str = "generic"  # the shape of the SMS gateway API served (shapes.SHAPES)
    push_url: str | None = None  # where pushing shapes (aliyun) send their reports
    #: Where the canary handset's inbox is (gammu-smsd files backend), None: no handset.
    handset_dir: str | None = None


_DEFAULTS = SimulatorSettings()


def settings_from_options(
    *,
    seed: int = _DEFAULTS.seed,
    speed: float = _DEFAULTS.speed,
    start_ms: int | None = None,
    traffic_for_ms: int | None = _DEFAULTS.traffic_for_ms,
    scenario: str | None = _DEFAULTS.scenario,
    rate: float = _DEFAULTS.rate,
    missing_after_ms: int = _DEFAULTS.missing_after_ms,
    give_up_after_ms: int = _DEFAULTS.give_up_after_ms,
    sms_api: str = _DEFAULTS.sms_api,
    push_url: str | None = _DEFAULTS.push_url,
    handset_dir: str | None = _DEFAULTS.handset_dir,
) -> SimulatorSettings:
    """Build settings from CLI options; the start defaults to now, truncated to the second."""
    if start_ms is None:
        start_ms = int(time.time()) * 1000
    return SimulatorSettings(
        seed=seed,
        speed=speed,
        start_ms=start_ms,
        traffic_for_ms=traffic_for_ms,
        scenario=scenario,
        rate=rate,
        missing_after_ms=missing_after_ms,
        give_up_after_ms=give_up_after_ms,
        sms_api=sms_api,
        push_url=push_url,
        handset_dir=handset_dir,
    )
