"""Fixtures of the alerting tests: the Debian tools they run."""

from __future__ import annotations

import shutil

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "slow: minutes-long end-to-end test (deselect with -m 'not slow')"
    )


def _tool(name: str, package: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} not found: install Debian's {package} package (see .ci/run)"
    return path


@pytest.fixture(scope="session")
def amtool() -> str:
    return _tool("amtool", "prometheus-alertmanager")


@pytest.fixture(scope="session")
def alertmanager_bin() -> str:
    return _tool("prometheus-alertmanager", "prometheus-alertmanager")


@pytest.fixture(scope="session")
def prometheus_bin() -> str:
    return _tool("prometheus", "prometheus")
