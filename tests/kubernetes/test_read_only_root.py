"""The exporter as the Deployment runs it, on a read-only root filesystem: only the state volume
and /tmp (an emptyDir) are writable, as `readOnlyRootFilesystem: true` leaves them in the pod.

No container runtime runs here: the test gives the process private user and mount namespaces
(no privileges needed where user namespaces are enabled) whose root is remounted read-only,
binds a fresh directory over /tmp and the pod's directory over /media (an empty directory of
the root), and runs the container's args with the config and state paths moved there.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from kustomize import container, rendered

from exporter.simulator.server import SimulatorServer
from exporter.simulator.settings import settings_from_options

from harness import free_port, http_get, parse_exposition, stop_processes, wait_until

#: The source tree is bound at /media/src, read-only, before /tmp is covered: a checkout that
#: lives under /tmp (a CI clone) would vanish with it. In the image the package is installed.
MOUNTS = """set -e
mount --make-rprivate /
mount --bind "$POD" /media
mount --bind "$SRC" /media/src
mount -o remount,bind,ro /media/src
mount -o remount,bind,ro /
mount --bind /media/tmp /tmp
exec "$@"
"""


def test_the_exporter_serves_with_a_read_only_root(tmp_path: Path) -> None:
    objects = rendered("overlays/simulator")
    exporter = container(objects)
    config_map = next(
        o
        for o in objects
        if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("smswatch-config-")
    )
    pod = tmp_path / "pod"  # seen as /media by the process
    for name in ("config", "state", "tmp", "src"):
        (pod / name).mkdir(parents=True)
    (pod / "config" / "config.yaml").write_text(config_map["data"]["config.yaml"])

    args = []
    for arg in exporter["args"]:
        flag, _, value = arg.partition("=")
        if flag == "--config.file":
            value = "/media/config/config.yaml"
        elif flag == "--state.path":
            value = "/media/state/" + Path(value).name
        elif flag == "--web.listen-address":
            port = free_port()
            value = f"127.0.0.1:{port}"
        args.append(f"{flag}={value}" if value else flag)
    simulator = SimulatorServer(settings_from_options(seed=7, speed=60.0), "127.0.0.1", 0)
    simulator.start()
    env = {e["name"]: e["value"] for e in exporter["env"]}
    env |= {"SMSWATCH_SIM_URL": simulator.url, "POD": str(pod), "PATH": "/usr/bin:/bin"}
    env |= {"SRC": str(Path(__file__).resolve().parents[2]), "PYTHONPATH": "/media/src"}
    process = subprocess.Popen(
        [
            "unshare",
            "--user",
            "--map-root-user",
            "--mount",
            "sh",
            "-c",
            MOUNTS,
            "sh",
            sys.executable,
            "-m",
            "exporter",
            *args,
        ],
        env=env,
        cwd="/",
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "exporter.log").open("wb"),
    )
    try:
        base = f"http://127.0.0.1:{port}"
        _, body = wait_until(lambda: (r := http_get(f"{base}/ready"))[0] == 200 and r, 30, "ready")
        assert "source sms: polled, up" in body, body
        assert "source acquirer: polled, up" in body, body
        metrics = parse_exposition(http_get(f"{base}/metrics")[1])
        accepted = (
            "smswatch_records_total",
            frozenset({("source", "sms"), ("result", "accepted")}),
        )
        assert metrics[accepted] > 0, "committed to the state on the volume"
    finally:
        stop_processes(process)
        simulator.stop()
    log = (tmp_path / "exporter.log").read_text()
    assert process.returncode == 0, log
    assert "Read-only file system" not in log, log
    assert (pod / "state" / "state.sqlite").stat().st_size > 0
