"""Scenario files: the format, its validation errors (naming the field) and the built-in one."""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from exporter.errors import ConfigError
from exporter.simulator.scenario import (
    ACCOUNT_KINDS,
    CANARY_KINDS,
    KINDS,
    SECOND_SOURCE_KINDS,
    default_scenario,
    load_scenario,
    parse_fault_json,
    parse_scenario,
    scenario_faults,
)

from .conftest import MINUTE, START_MS

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "scenario.yaml"


def parse(*faults: dict[str, Any]) -> list[Any]:
    return parse_scenario({"faults": list(faults)}, sim_start_ms=START_MS, gateway="bank-sms")


def test_offsets_and_rfc3339_starts() -> None:
    relative, absolute = parse(
        {"kind": "throttling", "start": "10m", "duration": "90s"},
        {"kind": "throttling", "start": "2026-11-26T04:30:00Z", "duration": 60},
    )
    assert relative.start_ms == START_MS + 10 * MINUTE
    assert relative.end_ms == START_MS + 10 * MINUTE + 90_000
    assert absolute.start_ms == START_MS + 30 * MINUTE
    assert absolute.duration_ms == 60_000
    assert relative.share == 0.4  # the kind's default


@pytest.mark.parametrize(
    ("fault", "path", "message"),
    [
        ({"kind": "meteor", "start": "1m", "duration": "1m"}, "faults[0].kind", "one of"),
        ({"start": "1m", "duration": "1m"}, "faults[0].kind", "missing"),
        ({"kind": "throttling", "duration": "1m"}, "faults[0].start", "missing"),
        ({"kind": "throttling", "start": "1m"}, "faults[0].duration", "missing"),
        ({"kind": "throttling", "start": "soon", "duration": "1m"}, "faults[0].start", "duration"),
        ({"kind": "throttling", "start": "1m", "duration": "0s"}, "faults[0].duration", "longer"),
        ({"kind": "throttling", "start": "1m", "duration": "1m", "share": 1.5}, ".share", "<= 1"),
        ({"kind": "throttling", "start": "1m", "duration": "1m", "share": "x"}, ".share", "number"),
        ({"kind": "throttling", "start": "1m", "duration": "1m", "sahre": 1}, ".sahre", "unknown"),
        (
            {"kind": "throttling", "start": "1m", "duration": "1m", "carrier": "att"},
            ".carrier",
            "one of",
        ),
        (
            {"kind": "weak_signal", "start": "1m", "duration": "1m", "area": "mars"},
            ".area",
            "one of",
        ),
        (
            {"kind": "terminal_sms_off", "start": "1m", "duration": "1m", "terminals": 0},
            ".terminals",
            ">= 1",
        ),
        (
            {"kind": "sync_delay", "start": "1m", "duration": "1m", "delay": "later"},
            ".delay",
            "duration",
        ),
        (
            {"kind": "gateway_outage", "start": "1m", "duration": "1m", "gateway": "other"},
            ".gateway",
            "bank-sms",
        ),
        (
            {"kind": "api_errors", "start": "1m", "duration": "1m", "mode": ["500", "boom"]},
            "faults[0].mode[1]",
            "one of",
        ),
        (
            {"kind": "api_errors", "start": "1m", "duration": "1m", "target": "dns"},
            ".target",
            "sms",
        ),
        (
            {"kind": "integration_drop", "start": "2026-11-26T04:30:00", "duration": "1m"},
            ".start",
            "UTC offset",
        ),
    ],
)
def test_invalid_faults_name_the_field(fault: dict[str, Any], path: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as raised:
        parse(fault)
    assert raised.value.field_path.endswith(path)
    assert path in str(raised.value)


def test_second_fault_is_named_by_its_index() -> None:
    ok = {"kind": "throttling", "start": "1m", "duration": "1m"}
    with pytest.raises(ConfigError, match=r"faults\[1\]\.share"):
        parse(ok, {**ok, "share": 0})


def test_document_shape_errors() -> None:
    for document, message in (
        ([1, 2], "mapping"),
        ({"faults": {"kind": "throttling"}}, "list"),
        ({"fautls": []}, "unknown field"),
        ({"faults": ["throttling"]}, "mapping"),
    ):
        with pytest.raises(ConfigError, match=message):
            parse_scenario(document, sim_start_ms=START_MS, gateway="bank-sms")


def test_file_errors_name_the_file(tmp_path: Path, scenario_file: Callable[..., str]) -> None:
    with pytest.raises(ConfigError, match="cannot read scenario") as missing:
        load_scenario(str(tmp_path / "nope.yaml"), sim_start_ms=START_MS, gateway="bank-sms")
    assert "nope.yaml" in str(missing.value)
    broken = tmp_path / "broken.yaml"
    broken.write_text("faults: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_scenario(str(broken), sim_start_ms=START_MS, gateway="bank-sms")
    path = scenario_file({"kind": "throttling", "start": "1m", "duration": "1m", "share": 2})
    with pytest.raises(ConfigError) as bad:
        load_scenario(path, sim_start_ms=START_MS, gateway="bank-sms")
    assert str(bad.value).startswith(f"{path}: faults[0].share:")


def test_the_built_in_scenario_injects_every_kind_within_the_first_hour() -> None:
    faults = default_scenario(sim_start_ms=START_MS, gateway="bank-sms")
    expected = set(KINDS) - set(SECOND_SOURCE_KINDS) - set(ACCOUNT_KINDS) - set(CANARY_KINDS)
    assert sorted(f.kind for f in faults) == sorted(expected)
    assert all(f.start_ms >= START_MS and f.end_ms <= START_MS + 60 * MINUTE for f in faults)
    spans = sorted((f.start_ms, f.end_ms) for f in faults)
    assert all(end <= next_start for (_, end), (next_start, _) in pairwise(spans))
    assert scenario_faults(None, sim_start_ms=START_MS, gateway="bank-sms") == faults
    assert scenario_faults("none", sim_start_ms=START_MS, gateway="bank-sms") == []


def test_the_shipped_example_has_every_kind() -> None:
    faults = load_scenario(str(EXAMPLE), sim_start_ms=START_MS, gateway="bank-sms")
    assert sorted(f.kind for f in faults) == sorted(KINDS)


def test_a_posted_fault_starts_now_and_ignores_its_start() -> None:
    body = (
        b'{"kind": "carrier_filtering", "start": "5h", "duration": "2m", "carrier": "china-mobile"}'
    )
    fault = parse_fault_json(
        body, now_ms=START_MS + 123, sim_start_ms=START_MS, gateway="bank-sms", fault_id=4
    )
    assert (fault.start_ms, fault.duration_ms, fault.fault_id) == (START_MS + 123, 120_000, 4)
    assert fault.to_dict()["carrier"] == "china-mobile"
    with pytest.raises(ConfigError, match="not JSON"):
        parse_fault_json(b"{", now_ms=0, sim_start_ms=0, gateway="bank-sms", fault_id=1)
