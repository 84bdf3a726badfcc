"""Config validation: every error names the file, the field path and the problem."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.config import (
    load_config,
    parse_config,
    simulator_config_document,
)
from exporter.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "simulator.yaml"


def write(tmp_path: Path, doc: Any) -> Path:
    path = tmp_path / "smswatch.yaml"
    path.write_text(yaml.safe_dump(doc) if not isinstance(doc, str) else doc)
    return path


def smswatch(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "exporter", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def test_the_shipped_example_is_the_simulator_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SMSWATCH_SIM_URL", raising=False)
    example = load_config(str(EXAMPLE))
    built = parse_config(
        simulator_config_document("http://127.0.0.1:8480"), source_file=str(EXAMPLE)
    )
    assert example == built


def test_env_default_and_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMSWATCH_SIM_URL", "http://sim.internal:9000")
    assert load_config(str(EXAMPLE)).sources[0].base_url == "http://sim.internal:9000"


@pytest.mark.parametrize(
    ("mutate", "field", "problem"),
    [
        (
            lambda d: d["sources"][0].update(poll_interval="soon"),
            "sources[0].poll_interval",
            "duration",
        ),
        (lambda d: d["sources"][1].update(kind="ftp"), "sources[1].kind", "unknown kind"),
        (lambda d: d["sources"][0].update(base_url="sms.bank"), "sources[0].base_url", "http"),
        (lambda d: d["sources"][0].update(page_size=0), "sources[0].page_size", "between"),
        (lambda d: d["sources"][0].update(colour="red"), "sources[0]", "unknown key 'colour'"),
        (
            lambda d: d["reconcile"].update(missing_after="-5m"),
            "reconcile.missing_after",
            "duration",
        ),
        (
            lambda d: d["objectives"].update(sms_delivery_ratio=99.5),
            "objectives.sms_delivery_ratio",
            "between 0 and 1",
        ),
        (
            lambda d: d["objectives"].update(receipt_notification_ratio=97.5),
            "objectives.receipt_notification_ratio",
            "between 0 and 1",
        ),
        (lambda d: d["sources"][1].update(name="sms"), "sources[1].name", "duplicate"),
        (
            lambda d: d["sources"][0].update(auth={"type": "bearer", "token": "hunter2"}),
            "sources[0].auth.token",
            "must not be written in the config file",
        ),
        (
            lambda d: d["sources"][0].update(
                auth={"type": "basic", "username": "u", "password_file": "/nonexistent"}
            ),
            "sources[0].auth.password_file",
            "cannot read secret file",
        ),
        (lambda d: d["sources"].pop(1), "sources", "acquirer is required"),
    ],
)
def test_errors_name_the_field(tmp_path: Path, mutate: Any, field: str, problem: str) -> None:
    doc = simulator_config_document("http://127.0.0.1:8480")
    mutate(doc)
    path = write(tmp_path, doc)
    with pytest.raises(ConfigError) as caught:
        load_config(str(path))
    message = str(caught.value)
    assert str(path) in message
    assert field in message
    assert problem in message


def test_secret_from_a_file_is_read_and_never_shown(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("file-token\n")
    doc = simulator_config_document("http://127.0.0.1:8480")
    doc["sources"][0]["auth"] = {"type": "bearer", "token_file": "token"}
    config = load_config(str(write(tmp_path, doc)))
    assert config.sources[0].auth.secret == "file-token"
    assert "file-token" not in repr(config)


def test_check_config_ok_and_exit_codes(tmp_path: Path) -> None:
    ok = smswatch("check-config", str(EXAMPLE))
    assert ok.returncode == 0, ok.stderr
    assert "ok" in ok.stdout
    bad = write(tmp_path, "sources: [\n")
    result = smswatch("check-config", str(bad))
    assert result.returncode == 2
    assert "not valid YAML" in result.stderr and str(bad) in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_missing_env_var_is_a_config_error_with_exit_2(tmp_path: Path) -> None:
    doc = simulator_config_document("${SMSWATCH_TEST_UNSET_URL}")
    path = write(tmp_path, doc)
    env = {k: v for k, v in __import__("os").environ.items() if k != "SMSWATCH_TEST_UNSET_URL"}
    result = smswatch("check-config", str(path), env=env)
    assert result.returncode == 2
    assert "SMSWATCH_TEST_UNSET_URL is not set" in result.stderr
    assert "sources[0].base_url" in result.stderr


def test_run_with_a_bad_config_exits_2(tmp_path: Path) -> None:
    result = smswatch("run", "--config.file", str(tmp_path / "absent.yaml"))
    assert result.returncode == 2
    assert "cannot read config" in result.stderr


def test_bad_usage_exits_2() -> None:
    assert smswatch("run").returncode == 2
    assert smswatch("no-such-command").returncode == 2


def test_reports_section_is_validated_with_its_field_path(tmp_path: Path) -> None:
    doc = simulator_config_document("http://127.0.0.1:8480")
    doc["reports"] = {
        "prometheus_url": "http://127.0.0.1:9090",
        "out_dir": "reports",
        "schedules": [{"period": "daily", "at": "01:00"}, {"period": "weekly", "at": "25:00"}],
    }
    with pytest.raises(ConfigError, match=r"reports\.schedules\[1\]\.at"):
        load_config(str(write(tmp_path, doc)))
    doc["reports"]["schedules"].pop()
    config = load_config(str(write(tmp_path, doc)))
    assert config.reports is not None
    assert config.reports.out_dir == tmp_path / "reports"
