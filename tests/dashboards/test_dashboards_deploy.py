"""The compose stack, the Prometheus config and the Grafana provisioning agree with each other
(services, ports, volumes, paths), since Docker itself cannot run here."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from exporter.config import load_config
from exporter.dashboards import FOLDER_TITLE, FOLDER_UID, grafana

SERVICES = {"simulator", "exporter", "prometheus", "alertmanager", "grafana"}
PORTS = {
    "simulator": 8480,
    "exporter": 8479,
    "prometheus": 9090,
    "alertmanager": 9093,
    "grafana": 3000,
}
OFFICIAL_IMAGES = {
    "prometheus": r"prom/prometheus:v\d+\.\d+\.\d+",
    "alertmanager": r"prom/alertmanager:v\d+\.\d+\.\d+",
    "grafana": r"grafana/grafana:\d+\.\d+\.\d+",
}
#: Files the alert rules work provides; the stack mounts them.
FROM_ALERTS = {"../alerts/rules", "../alerts/alertmanager.yml"}


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def deploy(repo_root: Path) -> Path:
    return repo_root / "deploy"


@pytest.fixture(scope="module")
def compose(deploy: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = _load(deploy / "compose.yaml")
    return loaded


@pytest.fixture(scope="module")
def prometheus_config(deploy: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = _load(deploy / "prometheus.yml")
    return loaded


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path → source (a path relative to deploy/, or a named volume)."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target, *_ = volume.split(":")
        mounts[target] = source
    return mounts


def _flag(command: list[str], name: str) -> str:
    """The value of `--name=value` or `--name value` in a command list."""
    for index, word in enumerate(command):
        if word == name:
            return command[index + 1]
        if word.startswith(name + "="):
            return word.split("=", 1)[1]
    raise AssertionError(f"{name} not in {command}")


def _days(duration: str) -> float:
    units = {"d": 1, "w": 7, "h": 1 / 24, "y": 365}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)([dwhy])", duration))


def test_compose_has_the_five_services_with_health_checks(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == SERVICES
    for name, service in compose["services"].items():
        check = service.get("healthcheck", {})
        assert check.get("test") and check.get("interval") and check.get("retries"), name
        assert service.get("restart") == "unless-stopped", name


def test_compose_images_are_official_and_pinned(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, pattern in OFFICIAL_IMAGES.items():
        assert re.fullmatch(pattern, services[name]["image"]), services[name]["image"]
    for name in ("exporter", "simulator"):
        assert services[name]["build"] == {"context": "..", "dockerfile": "Dockerfile"}


def test_compose_ports_are_the_documented_ones_on_loopback(compose: dict[str, Any]) -> None:
    for name, port in PORTS.items():
        assert compose["services"][name]["ports"] == [f"127.0.0.1:{port}:{port}"], name


def test_compose_volumes_exist(compose: dict[str, Any], deploy: Path) -> None:
    named = set(compose["volumes"])
    used = set()
    for name, service in compose["services"].items():
        for target, source in _mounts(service).items():
            assert target.startswith("/"), (name, target)
            if source.startswith("."):
                if source not in FROM_ALERTS:
                    assert (deploy / source).exists(), f"{name}: {source} does not exist"
            else:
                assert source in named, f"{name}: volume {source} is not declared"
                used.add(source)
    assert used == named, "a declared volume nobody uses"
    assert "/prometheus" in _mounts(compose["services"]["prometheus"])
    assert "/var/lib/grafana" in _mounts(compose["services"]["grafana"])


def test_the_alert_files_the_stack_mounts_exist(deploy: Path) -> None:
    if not (deploy / "../alerts").is_dir():
        pytest.skip("alerts/ (rules, alertmanager.yml) is not in the tree yet")
    for source in FROM_ALERTS:
        assert (deploy / source).exists(), source


def test_compose_exporter_and_simulator_commands(compose: dict[str, Any], deploy: Path) -> None:
    services = compose["services"]
    exporter = services["exporter"]
    assert exporter["entrypoint"] == ["smswatch"]
    assert exporter["command"][0] == "run"
    config = _flag(exporter["command"], "--config.file")
    assert config == "/etc/smswatch/config.yaml"
    assert _mounts(exporter)[config] == "../examples/simulator.yaml"
    state = Path(_flag(exporter["command"], "--state.path"))
    assert _mounts(exporter)[str(state.parent)] == "smswatch-state"
    assert _flag(exporter["command"], "--web.listen-address") == f":{PORTS['exporter']}"
    assert exporter["depends_on"]["simulator"]["condition"] == "service_healthy"

    simulator = services["simulator"]
    assert simulator["entrypoint"] == ["smswatch"]
    assert simulator["command"][0] == "simulate"
    assert _flag(simulator["command"], "--web.listen-address") == f":{PORTS['simulator']}"


def test_compose_prometheus_keeps_35_days_and_loads_rules(
    compose: dict[str, Any], prometheus_config: dict[str, Any]
) -> None:
    service = compose["services"]["prometheus"]
    command = service["command"]
    assert _days(_flag(command, "--storage.tsdb.retention.time")) >= 35
    config = _flag(command, "--config.file")
    assert _mounts(service)[config] == "./prometheus.yml"
    (rules,) = prometheus_config["rule_files"]
    assert _mounts(service)[str(Path(rules).parent)] == "../alerts/rules"
    assert _flag(command, "--storage.tsdb.path") == "/prometheus"


def test_compose_alertmanager_config(compose: dict[str, Any]) -> None:
    service = compose["services"]["alertmanager"]
    config = _flag(service["command"], "--config.file")
    assert _mounts(service)[config] == "../alerts/alertmanager.yml"


def test_compose_grafana_provisioning_and_dashboards(
    compose: dict[str, Any], repo_root: Path
) -> None:
    service = compose["services"]["grafana"]
    mounts = _mounts(service)
    assert mounts["/etc/grafana/provisioning"] == "../dashboards/provisioning"
    providers = _load(repo_root / "dashboards/provisioning/dashboards/smswatch.yaml")
    (provider,) = providers["providers"]
    assert mounts[provider["options"]["path"]] == "../dashboards"
    home = Path(service["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"])
    assert str(home.parent) == provider["options"]["path"]
    assert (repo_root / "dashboards" / home.name).is_file()
    assert service["depends_on"]["prometheus"]["condition"] == "service_healthy"


def test_prometheus_scrapes_the_exporter_and_alerts_alertmanager(
    prometheus_config: dict[str, Any],
) -> None:
    targets = {
        job["job_name"]: [t for c in job["static_configs"] for t in c["targets"]]
        for job in prometheus_config["scrape_configs"]
    }
    assert targets["smswatch"] == [f"exporter:{PORTS['exporter']}"]
    (alerting,) = prometheus_config["alerting"]["alertmanagers"]
    assert alerting["static_configs"][0]["targets"] == [f"alertmanager:{PORTS['alertmanager']}"]
    glob = prometheus_config["global"]
    for key in ("scrape_interval", "evaluation_interval"):
        assert glob[key] in {"15s", "20s", "30s"}, key


@pytest.mark.skipif(not shutil.which("promtool"), reason="promtool is not installed")
def test_promtool_accepts_the_prometheus_config(deploy: Path) -> None:
    result = subprocess.run(
        ["promtool", "check", "config", str(deploy / "prometheus.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(not shutil.which("promtool"), reason="promtool is not installed")
def test_promtool_accepts_the_config_with_the_repository_rules(
    deploy: Path, repo_root: Path, tmp_path: Path
) -> None:
    """The same config with its rule glob pointed at alerts/rules/ (mounted there in compose),
    so promtool also loads and checks the rules the stack will run."""
    rules = sorted((repo_root / "alerts" / "rules").glob("*.yaml"))
    if not rules:
        pytest.skip("alerts/rules/ has no rules yet")
    text = (deploy / "prometheus.yml").read_text(encoding="utf-8")
    rewritten = text.replace("/etc/prometheus/rules/", f"{repo_root / 'alerts' / 'rules'}/")
    assert rewritten != text
    config = tmp_path / "prometheus.yml"
    config.write_text(rewritten, encoding="utf-8")
    result = subprocess.run(
        ["promtool", "check", "config", str(config)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(rules)} rule files found" in result.stdout


def test_grafana_datasource_provisioning(
    repo_root: Path, compose: dict[str, Any], prometheus_config: dict[str, Any]
) -> None:
    provisioning = _load(repo_root / "dashboards/provisioning/datasources/prometheus.yaml")
    assert provisioning["apiVersion"] == 1
    by_type = {source["type"]: source for source in provisioning["datasources"]}
    prometheus = by_type["prometheus"]
    url = urlsplit(prometheus["url"])
    assert url.hostname in compose["services"] and url.port == PORTS[url.hostname]
    assert prometheus["isDefault"] is True and prometheus["access"] == "proxy"
    interval = prometheus_config["global"]["scrape_interval"]
    assert prometheus["jsonData"]["timeInterval"] == interval, "$__rate_interval needs it"
    payload = grafana.datasource_payload("http://x", is_default=True)
    assert payload["jsonData"] == prometheus["jsonData"], "push creates the same datasource"
    assert payload["uid"] == prometheus["uid"] and payload["name"] == prometheus["name"]
    alertmanager = urlsplit(by_type["alertmanager"]["url"])
    assert alertmanager.port == PORTS[str(alertmanager.hostname)]


def test_grafana_dashboard_provisioning(repo_root: Path) -> None:
    providers = _load(repo_root / "dashboards/provisioning/dashboards/smswatch.yaml")
    assert providers["apiVersion"] == 1
    (provider,) = providers["providers"]
    assert provider["type"] == "file"
    assert provider["folderUid"] == FOLDER_UID and provider["folder"] == FOLDER_TITLE
    assert provider["allowUiUpdates"] is False


def test_exporter_config_polls_the_simulator_service(
    compose: dict[str, Any], deploy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mounted config, with the stack's environment, loads and polls the simulator."""
    exporter = compose["services"]["exporter"]
    source = _mounts(exporter)[_flag(exporter["command"], "--config.file")]
    for key, value in exporter["environment"].items():
        monkeypatch.setenv(key, value)
    config = load_config(str(deploy / source))
    assert {s.kind for s in config.sources} == {"sms_gateway", "acquirer"}
    for polled in config.sources:
        url = urlsplit(polled.base_url)
        assert url.hostname == "simulator" and url.port == PORTS["simulator"], polled.name
    (acquirer,) = [s for s in config.sources if s.kind == "acquirer"]
    assert acquirer.terminals_path, "without the inventory no terminal panel has data"
    assert config.min_software_version
