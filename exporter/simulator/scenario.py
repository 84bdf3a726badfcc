"""Fault scenarios: the timeline of injected faults, its YAML format and its validation.

A scenario file holds a list of faults under `faults:`. Every fault has a `kind`, a `start`
(an offset from the simulation start such as `10m`, or an RFC 3339 time such as
`2026-11-26T12:10:00Z`) and a `duration`; the fault is active for `start <= t < start + duration`
in simulated time. The other fields depend on the kind; selectors left out match everything.
`share` is the probability (0 < share <= 1) that one matching transaction or message is hit.
Durations use the Prometheus style: `250ms`, `30s`, `5m`, `1h30m`.

One example per kind::

    faults:
      # The SMS platform loses its carrier links: messages are submitted, then fail with
      # IB:0070 / MA:0054 / MA:0051 / DB:9001 (cause gateway).
      - {kind: gateway_outage, start: 5m, duration: 4m, gateway: bank-sms, share: 1.0}
      # Wrong or dead numbers on file: MK:0001 / DB:0101 / MI:0073 / MK:0005 / DB:0102
      # (cause invalid_number).
      - {kind: invalid_numbers, start: 10m, duration: 4m, share: 0.3, acquirer: acq-north}
      # Weak signal in one area or on one carrier: EXPIRED MK:0010, UNDELIV MK:0023 / MI:0024,
      # DELETED MI:0099 (cause unreachable); the messages that still arrive are slower.
      - {kind: weak_signal, start: 15m, duration: 5m, area: west, carrier: china-unicom,
         share: 0.5, latency_factor: 6}
      # Terminals of an acquirer get their SMS notice switched off at start and back on at the
      # end: their receipts get no SMS (missing, cause terminal_config).
      - {kind: terminal_sms_off, start: 21m, duration: 10m, acquirer: acq-south, terminals: 25}
      # Receipts that never reach the SMS platform (missing, cause integration).
      - {kind: integration_drop, start: 32m, duration: 4m, acquirer: acq-east, share: 0.6}
      # The SMS is submitted `delay` + up to `jitter` after the transaction: beyond
      # missing_after the receipt is missing (integration), within it is delivered late.
      - {kind: sync_delay, start: 37m, duration: 5m, delay: 2m, jitter: 6m, share: 1.0}
      # Flow control: REJECTD DB:9007 / IB:0008 / MI:0061 / DB:0142 (cause throttled).
      - {kind: throttling, start: 43m, duration: 4m, share: 0.4, carrier: china-mobile}
      # Carrier spam filter: REJECTD MK:0115 / KEYWORD / DB:0144 (cause filtered).
      - {kind: carrier_filtering, start: 48m, duration: 4m, carrier: china-telecom, share: 0.6}
      # The polled HTTP API misbehaves (data unaffected): 500, 429 with Retry-After, a slow
      # answer, a non-JSON body or truncated JSON, on `sms`, `acquirer` or `both`.
      - {kind: api_errors, start: 53m, duration: 5m, target: both, share: 0.3,
         mode: [500, 429, slow, malformed, truncated], retry_after: 2s, slow: 3s}
      # The generic feeds serve poisoned extra items after a share of the records released:
      # values that parse but cannot be stored (an integer above 2^63, a lone surrogate,
      # `Infinity`) and invalid items; the truth counts them (`records`), data unaffected.
      - {kind: poison_records, start: 58m, duration: 5m, target: both, share: 0.05,
         mode: [big_integer, lone_surrogate, infinity, invalid_item]}
      # The upstream's clock is off (a clock step, Beijing time labelled `Z`): the watermark of
      # every page served while the fault lasts, and the `Date` header of provider-shaped
      # answers and pushes, are shifted by `offset` (`-5m`: behind). Data are unaffected.
      - {kind: clock_skew, start: 58m, duration: 2m, target: sms, offset: 8h}
      # The generic feeds answer with an empty `next_cursor` (data unaffected): a consumer
      # must stay where it was, never restart from the beginning.
      - {kind: cursor_reset, start: 60m, duration: 5m, target: both, share: 1.0}
      # A second gateway and a second acquirer source (`/sms-2/v1/messages`, gateway
      # `<gateway>-2`; `/acquirer-2/v1/transactions`) carry the hit transactions (`target`
      # acquirer), their messages (`target` sms) or both, with ids of their own counters:
      # the same `m-…`/`t-…` ids as the first gateway and acquirer use.
      - {kind: id_collision, start: 0m, duration: 60m, target: both, share: 0.5}
      # A hit transaction takes the RRN of the latest earlier transaction at least `min_age`
      # older (`reuse`: of any acquirer, the same one or another one), each RRN reused once.
      # Its own SMS still carries it: the truth is each transaction's own messages.
      - {kind: rrn_reuse, start: 0m, duration: 60m, share: 0.2, min_age: 10m, reuse: any}
      # The provider revokes the sender signature (or the template): the simulated account
      # lists it rejected while the fault lasts (messages are unaffected).
      - {kind: sender_revoked, start: 0m, duration: 2h, sender: signature}
      # a grey route: DELIVRD reported for a share of messages that never reach the handset
      # (the truth counts them delivered, as any consumer must; `fake_delivery_reports` in
      # the truth document says how many; canaries sent to /sms/v1/send miss the handset)
      - {kind: fake_delivery_reports, start: 0m, duration: 60m, carrier: china-mobile,
         share: 0.3}

`POST /sim/v1/faults` takes one such fault as a JSON object; its `start` is ignored and the
fault starts at the current simulated time (its next millisecond). Faults are judged on event
time: transaction-level faults (`terminal_sms_off`, `integration_drop`, `sync_delay`) by the
transaction's time, message-level faults by the message's submit time, `api_errors` by the
simulated time of the request, `cursor_reset` by the time of the request too. A fault
started at run time affects transactions that start after it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import yaml

from exporter.errors import ConfigError
from exporter.simulator.world import ACQUIRERS, AREAS, CARRIERS
from exporter.timestamps import (
    format_duration_ms,
    format_rfc3339_ms,
    parse_duration_ms,
    parse_rfc3339_ms,
)

API_ERROR_MODES: tuple[str, ...] = ("500", "429", "slow", "malformed", "truncated")
API_TARGETS: tuple[str, ...] = ("sms", "acquirer", "both")
POISON_MODES: tuple[str, ...] = ("big_integer", "lone_surrogate", "infinity", "invalid_item")
#: The allowed `mode` values of each kind that has one.
MODES: dict[str, tuple[str, ...]] = {"api_errors": API_ERROR_MODES, "poison_records": POISON_MODES}

#: Per kind, its own fields and their defaults (None: a selector that matches everything).
FIELDS: dict[str, dict[str, Any]] = {
    "gateway_outage": {"gateway": None, "carrier": None, "area": None, "share": 1.0},
    "invalid_numbers": {"acquirer": None, "carrier": None, "area": None, "share": 0.3},
    "weak_signal": {"carrier": None, "area": None, "share": 0.5, "latency_factor": 4.0},
    "terminal_sms_off": {"acquirer": None, "terminals": 10},
    "integration_drop": {"acquirer": None, "share": 0.5},
    "sync_delay": {"acquirer": None, "share": 1.0, "delay": "3m", "jitter": "5m"},
    "throttling": {"carrier": None, "area": None, "share": 0.4},
    "carrier_filtering": {"carrier": None, "area": None, "share": 0.5},
    "api_errors": {
        "target": "both",
        "share": 0.3,
        "mode": list(API_ERROR_MODES),
        "retry_after": "2s",
        "slow": "3s",
    },
    "poison_records": {"target": "both", "share": 0.05, "mode": list(POISON_MODES)},
    "clock_skew": {"target": "both", "offset": "8h"},
    "cursor_reset": {"target": "both", "share": 1.0},
    "id_collision": {"target": "both", "acquirer": None, "share": 0.5},
    "rrn_reuse": {"acquirer": None, "share": 0.2, "min_age": "10m", "reuse": "any"},
    "sender_revoked": {"sender": "signature"},
    "fake_delivery_reports": {"acquirer": None, "carrier": None, "area": None, "share": 0.3},
}
#: `rrn_reuse`: whose RRN a hit transaction takes (an earlier transaction of any acquirer, of
#: the same acquirer, or of another one).
REUSE_FROM: tuple[str, ...] = ("any", "same_acquirer", "other_acquirer")
KINDS: tuple[str, ...] = tuple(FIELDS)
#: Kinds that publish on the second gateway and acquirer feeds: a consumer sees them only
#: with those feeds configured, so the built-in scenario (for the built-in config) leaves
#: them out.
SECOND_SOURCE_KINDS: tuple[str, ...] = ("id_collision",)
#: Kinds that change only what the simulated provider account answers (account.py): an
#: exporter sees them with an `account:` section, so the built-in scenario leaves them out
#: and they are started at run time (`POST /sim/v1/faults`).
ACCOUNT_KINDS: tuple[str, ...] = ("sender_revoked",)
#: `sender_revoked`: which sender the provider revokes.
SENDERS: tuple[str, ...] = ("signature", "template")
#: Kinds only canary probes can see (the bank's own traffic cannot tell a fake DELIVRD from a
#: real one): the built-in scenario leaves them out too.
CANARY_KINDS: tuple[str, ...] = ("fake_delivery_reports",)
#: Duration fields of the format and the `Fault` attribute (ms) each one sets.
DURATION_FIELDS: dict[str, str] = {
    "delay": "delay_ms",
    "jitter": "jitter_ms",
    "retry_after": "retry_after_ms",
    "slow": "slow_ms",
    "min_age": "min_age_ms",
}
COMMON_FIELDS: tuple[str, ...] = ("kind", "start", "duration")


@dataclass(frozen=True)
class Fault:
    """One injected fault, with absolute simulated start and end (Unix ms)."""

    kind: str
    start_ms: int
    duration_ms: int
    fault_id: int = 0
    share: float = 1.0
    gateway: str | None = None
    acquirer: str | None = None
    carrier: str | None = None
    area: str | None = None
    terminals: int = 0
    delay_ms: int = 0
    jitter_ms: int = 0
    latency_factor: float = 1.0
    target: str = "both"
    modes: tuple[str, ...] = field(default=())
    retry_after_ms: int = 0
    slow_ms: int = 0
    offset_ms: int = 0  # clock_skew: how far the upstream's clock is ahead (< 0: behind)
    min_age_ms: int = 0
    reuse: str = "any"
    sender: str = "signature"  # sender_revoked: the signature or the template

    @property
    def end_ms(self) -> int:
        """First simulated instant after the fault."""
        return self.start_ms + self.duration_ms

    def active(self, at_ms: int) -> bool:
        """True when the fault is in force at `at_ms`."""
        return self.start_ms <= at_ms < self.start_ms + self.duration_ms

    def matches(
        self, *, acquirer: str | None = None, carrier: str | None = None, area: str | None = None
    ) -> bool:
        """True when the fault's selectors (those it has) match the given labels."""
        return (
            (self.acquirer is None or acquirer is None or self.acquirer == acquirer)
            and (self.carrier is None or carrier is None or self.carrier == carrier)
            and (self.area is None or area is None or self.area == area)
        )

    def state(self, now_ms: int) -> str:
        """`scheduled`, `active` or `ended` at `now_ms`."""
        if now_ms < self.start_ms:
            return "scheduled"
        return "active" if now_ms < self.end_ms else "ended"

    def to_dict(self) -> dict[str, Any]:
        """The fault in the scenario format, with absolute start and end (for the HTTP API)."""
        out: dict[str, Any] = {
            "id": self.fault_id,
            "kind": self.kind,
            "start": format_rfc3339_ms(self.start_ms),
            "end": format_rfc3339_ms(self.end_ms),
            "duration": format_duration_ms(self.duration_ms),
        }
        for name in FIELDS[self.kind]:
            if name == "offset":
                sign = "-" if self.offset_ms < 0 else ""
                out[name] = sign + format_duration_ms(abs(self.offset_ms))
            elif name in DURATION_FIELDS:
                out[name] = format_duration_ms(getattr(self, DURATION_FIELDS[name]))
            elif name == "mode":
                out[name] = list(self.modes)
            else:
                out[name] = getattr(self, name)
        return out


def _fail(path: str, message: str, source: str) -> ConfigError:
    return ConfigError(message, path=path, source=source)


def _duration(value: object, path: str, source: str, *, positive: bool = False) -> int:
    try:
        ms = parse_duration_ms(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise _fail(path, f"not a duration (use e.g. 30s, 5m, 1h): {value!r}", source) from exc
    if positive and ms <= 0:
        raise _fail(path, "must be longer than 0", source)
    return ms


def _start(value: object, sim_start_ms: int, path: str, source: str) -> int:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise _fail(path, f"timestamp without a UTC offset: {value.isoformat()}", source)
        return int(value.astimezone(UTC).timestamp() * 1000)
    if isinstance(value, str) and "T" in value:
        try:
            return parse_rfc3339_ms(value)
        except ValueError as exc:
            raise _fail(path, f"not an RFC 3339 time ({exc})", source) from exc
    return sim_start_ms + _duration(value, path, source)


def _choice(value: object, allowed: tuple[str, ...], path: str, source: str) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise _fail(path, f"must be one of {', '.join(allowed)}; got {value!r}", source)
    return value


def _number(value: object, path: str, source: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(path, f"not a number: {value!r}", source)
    return float(value)


def parse_fault(
    raw: object,
    *,
    sim_start_ms: int,
    gateway: str,
    path: str = "fault",
    source: str = "",
    start_now_ms: int | None = None,
    fault_id: int = 0,
) -> Fault:
    """Validate one fault mapping; errors name the field (`faults[2].share`).

    With `start_now_ms` the fault's `start` is ignored (and may be absent): it starts then.
    """
    if not isinstance(raw, Mapping):
        raise _fail(path, f"must be a mapping with kind, start, duration; got {raw!r}", source)
    kind = raw.get("kind")
    if kind is None:
        raise _fail(f"{path}.kind", "missing", source)
    kind = _choice(kind, KINDS, f"{path}.kind", source)
    spec = FIELDS[kind]
    for key in raw:
        if key not in COMMON_FIELDS and key not in spec:
            allowed = ", ".join((*COMMON_FIELDS, *spec))
            raise _fail(f"{path}.{key}", f"unknown field for {kind} (allowed: {allowed})", source)
    if start_now_ms is not None:
        start_ms = start_now_ms
    elif "start" not in raw:
        raise _fail(f"{path}.start", "missing", source)
    else:
        start_ms = _start(raw["start"], sim_start_ms, f"{path}.start", source)
    if "duration" not in raw:
        raise _fail(f"{path}.duration", "missing", source)
    duration_ms = _duration(raw["duration"], f"{path}.duration", source, positive=True)

    values = {**spec, **{k: v for k, v in raw.items() if k in spec}}
    params: dict[str, Any] = {}
    vocabularies = {
        "gateway": (gateway,),
        "acquirer": ACQUIRERS,
        "carrier": CARRIERS,
        "area": AREAS,
        "target": API_TARGETS,
        "reuse": REUSE_FROM,
        "sender": SENDERS,
    }
    for name, value in values.items():
        where = f"{path}.{name}"
        if name in vocabularies:
            if value is not None or name in ("target", "reuse", "sender"):
                params[name] = _choice(value, vocabularies[name], where, source)
        elif name == "share":
            share = _number(value, where, source)
            if not 0 < share <= 1:
                raise _fail(where, f"must be > 0 and <= 1; got {value!r}", source)
            params["share"] = share
        elif name == "latency_factor":
            factor = _number(value, where, source)
            if not 1 <= factor <= 100:
                raise _fail(where, f"must be between 1 and 100; got {value!r}", source)
            params["latency_factor"] = factor
        elif name == "terminals":
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise _fail(where, f"must be a whole number >= 1; got {value!r}", source)
            params["terminals"] = value
        elif name == "offset":
            text = str(value).strip()
            sign = -1 if text.startswith("-") else 1
            offset = _duration(text.lstrip("+-"), where, source, positive=True)
            params["offset_ms"] = sign * offset
        elif name in DURATION_FIELDS:
            params[DURATION_FIELDS[name]] = _duration(value, where, source)
        elif name == "mode":
            modes = value if isinstance(value, list) else [value]
            if not modes:
                raise _fail(where, "must name at least one mode", source)
            params["modes"] = tuple(
                _choice(str(m), MODES[kind], f"{where}[{i}]", source) for i, m in enumerate(modes)
            )
    return Fault(kind=kind, start_ms=start_ms, duration_ms=duration_ms, fault_id=fault_id, **params)


def parse_scenario(
    document: object, *, sim_start_ms: int, gateway: str, source: str = ""
) -> list[Fault]:
    """Validate a whole scenario document (`{"faults": [...]}`); ids follow the file order."""
    if document is None:
        return []
    if not isinstance(document, Mapping):
        raise _fail("", "a scenario is a mapping with a `faults` list", source)
    for key in document:
        if key not in ("faults", "description"):
            raise _fail(str(key), "unknown field (allowed: faults, description)", source)
    faults = document.get("faults") or []
    if not isinstance(faults, list):
        raise _fail("faults", "must be a list of faults", source)
    return [
        parse_fault(
            raw,
            sim_start_ms=sim_start_ms,
            gateway=gateway,
            path=f"faults[{index}]",
            source=source,
            fault_id=index + 1,
        )
        for index, raw in enumerate(faults)
    ]


def load_scenario(path: str, *, sim_start_ms: int, gateway: str) -> list[Fault]:
    """Read and validate a scenario YAML file."""
    try:
        with open(path, encoding="utf-8") as handle:
            document = yaml.safe_load(handle)
    except OSError as exc:
        raise ConfigError(f"cannot read scenario: {exc.strerror}", source=path) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", source=path) from exc
    return parse_scenario(document, sim_start_ms=sim_start_ms, gateway=gateway, source=path)


def default_scenario(*, sim_start_ms: int, gateway: str) -> list[Fault]:
    """The built-in scenario: every fault kind once within the first simulated hour."""
    text = resources.files("exporter.simulator").joinpath("default_scenario.yaml").read_text()
    return parse_scenario(
        yaml.safe_load(text),
        sim_start_ms=sim_start_ms,
        gateway=gateway,
        source="built-in scenario",
    )


def scenario_faults(scenario: str | None, *, sim_start_ms: int, gateway: str) -> list[Fault]:
    """The faults of a run: None → the built-in scenario, `"none"` → none, else a YAML file."""
    if scenario is None:
        return default_scenario(sim_start_ms=sim_start_ms, gateway=gateway)
    if scenario == "none":
        return []
    return load_scenario(scenario, sim_start_ms=sim_start_ms, gateway=gateway)


def parse_fault_json(
    body: bytes, *, now_ms: int, sim_start_ms: int, gateway: str, fault_id: int
) -> Fault:
    """Validate the JSON body of `POST /sim/v1/faults`; it starts at `now_ms`."""
    try:
        raw = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"body is not JSON: {exc}", path="fault") from exc
    return parse_fault(
        raw,
        sim_start_ms=sim_start_ms,
        gateway=gateway,
        start_now_ms=now_ms,
        fault_id=fault_id,
    )
