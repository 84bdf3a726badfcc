"""Fixtures shared by the whole suite (helpers live in harness.py)."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator

import pytest
from postgresql_server import Server, binaries


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """`cli.main` (run in-process by the report and dashboard tests) points the root logger at
    the captured stderr of that test; put it back, or a later test's exporter logs into a
    closed capture stream ("--- Logging error --- I/O operation on closed file")."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(scope="session")
def promtool() -> str:
    """Path of Debian's promtool (installed by .ci/run)."""
    path = shutil.which("promtool")
    assert path, "promtool not found: install Debian's prometheus package (see .ci/run)"
    return path


@pytest.fixture(scope="session")
def postgresql_server() -> Iterator[Server]:
    """A real PostgreSQL server for the whole session (Debian's `postgresql`, see .ci/run)."""
    bindir = binaries()
    if bindir is None:
        pytest.skip("PostgreSQL's initdb/postgres not installed (Debian package postgresql)")
    server = Server(bindir)
    yield server
    server.stop()


@pytest.fixture
def postgresql_dsn(postgresql_server: Server) -> str:
    """The DSN of a new, empty database on the session's PostgreSQL server."""
    return postgresql_server.database()
