"""deploy/kubernetes as `kubectl kustomize` renders it: valid objects that run the exporter the
way the rest of the repository expects (job label, scrape interval, sources, secrets, probes)."""

from __future__ import annotations

import os
import re
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kustomize import KUBERNETES, REPO, TARGETS, container, find, kubectl, rendered

from exporter import __version__, cli
from exporter.alerting.generate import drift
from exporter.alerting.spec import load_spec
from exporter.config import parse_config
from exporter.errors import ConfigError
from exporter.kubernetes import render

SPEC = REPO / "alerts" / "spec.yaml"
GENERATED = KUBERNETES / "base" / "generated"
OPERATOR_KINDS = {"PrometheusRule", "ServiceMonitor"}
#: The oldest Kubernetes minor still commonly run, and the newest kubernetes-validate ships.
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
#: The Prometheus Operator's duration pattern (CRD monitoring.coreos.com_prometheusrules.yaml
#: and _servicemonitors.yaml of prometheus-operator v0.82, fields `for`, `interval`, ...).
OPERATOR_DURATION = re.compile(
    r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
)
#: Secret keys the base config reads (the README's `kubectl create secret` line).
BASE_SECRET_KEYS = ("SMS_GATEWAY_TOKEN", "ACQUIRER_PASSWORD", "lookup-tokens.yml")


@pytest.fixture(params=TARGETS)
def target(request: pytest.FixtureRequest) -> str:
    """Each kustomization under deploy/kubernetes."""
    value: str = request.param
    return value


def spec_job() -> str:
    match = re.fullmatch(r'job="([^"]+)"', load_spec(SPEC).selector)
    assert match, "the spec selects the exporter by its job label"
    return match.group(1)


# ------------------------------------------------------------------ generated files


def test_committed_manifests_match_the_generator() -> None:
    problems = drift(render(SPEC, REPO / "dashboards"), GENERATED)
    assert not problems, "run `smswatch kubernetes generate` and commit:\n" + "\n".join(problems)


def test_check_mode_names_the_drifted_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["kubernetes", "generate", "--spec", str(SPEC), "--dashboards", str(REPO / "dashboards")]
    assert cli.main([*args, "--out", str(tmp_path)]) == 0
    assert cli.main([*args, "--out", str(tmp_path), "--check"]) == 0
    (tmp_path / "prometheusrule-health.yaml").write_text("{}\n")
    capsys.readouterr()
    assert cli.main([*args, "--out", str(tmp_path), "--check"]) == 1
    assert "prometheusrule-health.yaml: differs from the generator" in capsys.readouterr().err


def test_prometheus_rules_hold_exactly_the_rule_files_at_their_evaluation_interval() -> None:
    rules = {o["metadata"]["name"]: o for o in rendered("base") if o["kind"] == "PrometheusRule"}
    files = sorted((REPO / "alerts" / "rules").glob("*.yaml"))
    assert sorted(rules) == [f"smswatch-{path.stem}" for path in files]
    evaluation = f"{load_spec(SPEC).scrape_interval_ms // 1000}s"
    compose = yaml.safe_load((REPO / "deploy" / "prometheus.yml").read_text())
    assert compose["global"]["evaluation_interval"] == evaluation
    for path in files:
        expected = yaml.safe_load(path.read_text())
        for group in expected["groups"]:  # evaluated as often as deploy/prometheus.yml does
            group.setdefault("interval", evaluation)
        assert rules[f"smswatch-{path.stem}"]["spec"] == expected, path


def test_prometheus_rule_groups_pass_promtool(promtool: str, tmp_path: Path) -> None:
    paths = []
    for rule in (o for o in rendered("base") if o["kind"] == "PrometheusRule"):
        path = tmp_path / f"{rule['metadata']['name']}.yaml"
        path.write_text(yaml.safe_dump(rule["spec"]))
        paths.append(str(path))
    result = subprocess.run(
        [promtool, "check", "rules", *paths], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_rules_fit_the_operator_crd() -> None:
    """The structural part of the PrometheusRule CRD that rule files could get wrong."""
    for rule in (o for o in rendered("base") if o["kind"] == "PrometheusRule"):
        assert rule["apiVersion"] == "monitoring.coreos.com/v1"
        groups = rule["spec"]["groups"]
        names = [g["name"] for g in groups]
        assert len(names) == len(set(names)), "group names are the list's map key"
        for group in groups:
            assert set(group) <= {"name", "interval", "limit", "query_offset", "rules"}
            for item in group["rules"]:
                where = f"{rule['metadata']['name']}: {item.get('alert') or item.get('record')}"
                allowed = {"alert", "record", "expr", "for", "keep_firing_for", "labels"}
                assert set(item) <= allowed | {"annotations"}, where
                assert ("alert" in item) != ("record" in item), where
                assert isinstance(item["expr"], str | int), where
                for key in ("for", "keep_firing_for"):
                    assert OPERATOR_DURATION.match(item.get(key, "0")), where
                for key in ("labels", "annotations"):
                    values = item.get(key, {}).values()
                    assert all(isinstance(v, str) for v in values), f"{where}: {key}"


def test_dashboards_are_config_maps_for_the_grafana_sidecar() -> None:
    maps = [
        o
        for o in rendered("base")
        if o["kind"] == "ConfigMap" and o["metadata"]["labels"].get("grafana_dashboard") == "1"
    ]
    files = sorted((REPO / "dashboards").glob("*.json"))
    assert len(maps) == len(files)
    data = {key: text for m in maps for key, text in m["data"].items()}
    assert data == {path.name: path.read_text(encoding="utf-8") for path in files}


# ------------------------------------------------------------------ rendered objects


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_core_objects_validate_against_the_kubernetes_schemas(version: str) -> None:
    distinct: dict[str, dict[str, Any]] = {}  # each object once, however many targets hold it
    for target in TARGETS:
        core = [o for o in rendered(target) if o["kind"] not in OPERATOR_KINDS]
        assert {o["kind"] for o in core} >= {"Deployment", "Service", "ConfigMap"}, target
        distinct.update((yaml.safe_dump(o), o) for o in core)
    for obj in distinct.values():
        kubernetes_validate.validate(obj, version, strict=True)


def test_the_exporter_pod_runs_unprivileged_on_a_read_only_root(target: str) -> None:
    objects = rendered(target)
    pod = find(objects, "Deployment", "smswatch")["spec"]["template"]["spec"]
    exporter = container(objects)
    user = re.search(r"^USER (\d+)", (REPO / "Dockerfile").read_text(), re.M)
    assert user and pod["securityContext"]["runAsUser"] == int(user.group(1))
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    hardened = exporter["securityContext"]
    assert hardened["readOnlyRootFilesystem"] is True
    assert hardened["allowPrivilegeEscalation"] is False
    assert hardened["capabilities"]["drop"] == ["ALL"]
    # every path the process writes is a volume: the state's directory and /tmp
    state = next(a.split("=", 1)[1] for a in exporter["args"] if a.startswith("--state.path="))
    mounts = {m["mountPath"]: m for m in exporter["volumeMounts"]}
    assert str(Path(state).parent) in mounts and "/tmp" in mounts
    assert {e["name"]: e["value"] for e in exporter["env"]}["TMPDIR"] == "/tmp"
    for name in ("requests", "limits"):
        assert set(exporter["resources"][name]) == {"cpu", "memory"}
    probes = {k: exporter[k]["httpGet"] for k in ("livenessProbe", "readinessProbe")}
    assert probes["livenessProbe"] == {"path": "/healthz", "port": "http"}
    assert probes["readinessProbe"] == {"path": "/ready", "port": "http"}
    assert exporter["ports"] == [{"name": "http", "containerPort": 8479}]


def test_base_runs_one_replica_on_sqlite_and_replicas_overlay_two_apart() -> None:
    base = find(rendered("base"), "Deployment", "smswatch")["spec"]
    assert (base["replicas"], base["strategy"]["type"]) == (1, "Recreate")
    volumes = {v["name"]: v for v in base["template"]["spec"]["volumes"]}
    claim = volumes["state"]["persistentVolumeClaim"]["claimName"]
    assert find(rendered("base"), "PersistentVolumeClaim", claim)
    replicas = find(rendered("overlays/replicas"), "Deployment", "smswatch")["spec"]
    assert replicas["replicas"] == 2
    assert replicas["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    apart = replicas["template"]["spec"]["affinity"]["podAntiAffinity"]
    term = apart["requiredDuringSchedulingIgnoredDuringExecution"][0]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"] == replicas["selector"]["matchLabels"]
    assert not [o for o in rendered("overlays/replicas") if o["kind"] == "PersistentVolumeClaim"]


def test_the_disruption_budget_keeps_a_replica_and_never_blocks_one(target: str) -> None:
    objects = rendered(target)
    deployment = find(objects, "Deployment", "smswatch")["spec"]
    budget = find(objects, "PodDisruptionBudget", "smswatch")["spec"]
    assert budget["selector"] == deployment["selector"]
    # one of two replicas stays through a drain; a single replica can still be moved
    assert budget["maxUnavailable"] == 1 and "minAvailable" not in budget


def test_service_monitor_scrapes_the_job_the_rules_select(target: str) -> None:
    objects = rendered(target)
    pods = find(objects, "Deployment", "smswatch")["spec"]["template"]["metadata"]["labels"]
    # the Prometheus Operator names the job after the Service
    service = find(objects, "Service", spec_job())
    assert service["spec"]["selector"].items() <= pods.items()
    monitor = find(objects, "ServiceMonitor")["spec"]
    selected = [
        o
        for o in objects
        if o["kind"] == "Service"
        and monitor["selector"]["matchLabels"].items() <= o["metadata"]["labels"].items()
    ]
    assert selected == [service], "the ServiceMonitor scrapes the exporter only"
    (endpoint,) = monitor["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    assert OPERATOR_DURATION.match(endpoint["interval"])
    interval_ms = load_spec(SPEC).scrape_interval_ms
    assert endpoint["interval"] == f"{interval_ms // 1000}s", "the interval the rules assume"
    if target != "overlays/replicas":  # one pod: a restarted pod continues the same series
        assert {"action": "replace", "targetLabel": "instance", "replacement": "smswatch"} in (
            endpoint["relabelings"]
        )
        assert {"action": "labeldrop", "regex": "pod"} in endpoint["relabelings"]
    else:  # two pods: one series each
        assert "relabelings" not in endpoint


def config_as_the_pod_sees_it(target: str, tmp_path: Path, secrets: dict[str, str]) -> Any:
    """Parse the rendered config with the Secret's keys as the Deployment exposes them: as
    environment variables and as files under the secret volume's mount path."""
    objects = rendered(target)
    exporter = container(objects)
    pod = find(objects, "Deployment", "smswatch")["spec"]["template"]["spec"]
    secret_volume = next(v for v in pod["volumes"] if "secret" in v)
    secret_name = secret_volume["secret"]["secretName"]
    assert {"secretRef": {"name": secret_name, "optional": True}} in exporter["envFrom"]
    mount = next(m for m in exporter["volumeMounts"] if m["name"] == secret_volume["name"])
    mounted = tmp_path / "secrets"
    mounted.mkdir()
    for key, value in secrets.items():
        (mounted / key).write_text(value)
    config_arg = next(a for a in exporter["args"] if a.startswith("--config.file="))
    config_path = Path(config_arg.split("=", 1)[1])
    config_map = next(
        o
        for o in objects
        if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("smswatch-config-")
    )
    text = config_map["data"][config_path.name]
    text = text.replace(mount["mountPath"] + "/", f"{mounted}/")
    env = {e["name"]: e["value"] for e in exporter["env"]} | secrets
    return parse_config(yaml.safe_load(text), env=env, state_path=str(tmp_path / "s.sqlite"))


@pytest.mark.parametrize(
    ("target", "secrets"),
    [("base", dict.fromkeys(BASE_SECRET_KEYS, "x")), ("overlays/simulator", {})],
)
def test_the_config_is_valid_with_the_secrets_the_pod_is_given(
    target: str, secrets: dict[str, str], tmp_path: Path
) -> None:
    config = config_as_the_pod_sees_it(target, tmp_path, secrets)
    spec = load_spec(SPEC)
    sms = {s.name: s.gateway for s in config.sources if s.kind == "sms_gateway"}
    assert spec.sms_sources.items() <= sms.items(), "the rules' SMS sources and gateways"
    acquirers = {s.name for s in config.sources if s.kind == "acquirer"}
    assert set(spec.transaction_sources) <= acquirers, "the rules' transaction sources"
    ruled = set(spec.sms_sources) | set(spec.transaction_sources)
    intervals = {s.poll_interval_ms for s in config.sources if s.name in ruled}
    assert intervals == {spec.poll_interval_ms}, "the poll interval the rules assume"


def test_the_base_config_reads_secrets_from_the_secret_only(tmp_path: Path) -> None:
    config = config_as_the_pod_sees_it(
        "base", tmp_path, {**dict.fromkeys(BASE_SECRET_KEYS, "x"), "SMS_GATEWAY_TOKEN": "tok"}
    )
    assert config.sources[0].auth.secret == "tok"  # from the file of the mounted Secret
    missing = dict.fromkeys(BASE_SECRET_KEYS[1:], "x")
    (tmp_path / "again").mkdir()
    with pytest.raises(ConfigError, match=r"sources\[0\]\.auth\.token_file"):
        config_as_the_pod_sees_it("base", tmp_path / "again", missing)


def test_the_simulator_overlay_runs_the_example_config_against_its_simulator() -> None:
    overlay = KUBERNETES / "overlays" / "simulator" / "config.yaml"
    assert overlay.read_text() == (REPO / "examples" / "simulator.yaml").read_text(), (
        f"cp examples/simulator.yaml {overlay.relative_to(REPO)}"
    )
    objects = rendered("overlays/simulator")
    env = {e["name"]: e["value"] for e in container(objects)["env"]}
    simulator = find(objects, "Service", "smswatch-simulator")
    port = simulator["spec"]["ports"][0]["port"]
    assert env["SMSWATCH_SIM_URL"] == f"http://smswatch-simulator:{port}"
    pod = find(objects, "Deployment", "smswatch-simulator")["spec"]["template"]["spec"]
    (served,) = pod["containers"][0]["ports"]
    assert simulator["spec"]["ports"][0]["targetPort"] == served["name"]
    assert f"--web.listen-address=:{served['containerPort']}" in pod["containers"][0]["args"]


def test_the_replicas_overlay_config_differs_from_the_base_in_its_state_only() -> None:
    base = yaml.safe_load((KUBERNETES / "base" / "config.yaml").read_text())
    replicas = yaml.safe_load((KUBERNETES / "overlays" / "replicas" / "config.yaml").read_text())
    assert {k: v for k, v in base.items() if k != "state"} == {
        k: v for k, v in replicas.items() if k != "state"
    }
    assert replicas["state"]["backend"] == "postgresql"


def test_the_readme_overlay_renders_a_namespaced_release_with_its_own_config(
    tmp_path: Path,
) -> None:
    """The overlay a user writes by deploy/kubernetes/README.md, rendered as it stands there."""
    readme = (KUBERNETES / "README.md").read_text()
    block = re.search(r"```yaml\n\s*# my-smswatch/kustomization.yaml\n(.*?)```", readme, re.S)
    assert block, "the README's example overlay"
    overlay = tmp_path / "my-smswatch"
    overlay.mkdir()
    base = os.path.relpath(KUBERNETES / "base", overlay)  # kustomize takes relative paths only
    text = textwrap.dedent(block.group(1)).replace("../smswatch/deploy/kubernetes/base", base)
    (overlay / "kustomization.yaml").write_text(text)
    (overlay / "config.yaml").write_text("sources: []  # the bank's own\n")
    result = subprocess.run(
        [kubectl(), "kustomize", str(overlay)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    objects = [o for o in yaml.safe_load_all(result.stdout) if o]
    assert {o["metadata"].get("namespace") for o in objects} == {"smswatch"}
    assert all(o["metadata"]["labels"]["release"] == "kube-prometheus-stack" for o in objects)
    deployment = find(tuple(objects), "Deployment", "smswatch")
    assert deployment["spec"]["selector"]["matchLabels"].keys() == {
        "app.kubernetes.io/name",
        "app.kubernetes.io/component",
    }, "selectors stay as they were: a Deployment's selector cannot change"
    (exporter,) = deployment["spec"]["template"]["spec"]["containers"]
    assert exporter["image"] == f"registry.example/smswatch:{__version__}"
    config = find(tuple(objects), "ConfigMap", exporter_config_name(deployment))
    assert config["data"]["config.yaml"].startswith("sources: []")


def exporter_config_name(deployment: dict[str, Any]) -> str:
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    name: str = next(v["configMap"]["name"] for v in volumes if "configMap" in v)
    return name


def test_the_image_tag_is_the_release_version() -> None:
    kustomization = yaml.safe_load((KUBERNETES / "base" / "kustomization.yaml").read_text())
    (image,) = kustomization["images"]
    assert image == {"name": "smswatch", "newTag": __version__}
    assert container(rendered("base"))["image"] == f"smswatch:{__version__}"
