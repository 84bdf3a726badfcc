"""Fixtures shared by the whole suite (helpers live in harness.py)."""

from __future__ import annotations

import shutil

import pytest


@pytest.fixture(scope="session")
def promtool() -> str:
    """Path of Debian's promtool (installed by .ci/run)."""
    path = shutil.which("promtool")
    assert path, "promtool not found: install Debian's prometheus package (see .ci/run)"
    return path
