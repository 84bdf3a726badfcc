"""Fixtures shared by the whole suite (helpers live in harness.py)."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest
from postgresql_server import Server, binaries

from exporter.config import Config
from exporter.dialect import BACKENDS

from harness import StateBackend


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
    """The DSN of a new, empty state on the session's PostgreSQL server."""
    return postgresql_server.database()


@pytest.fixture(params=BACKENDS)
def on_backend(request: pytest.FixtureRequest) -> Callable[[Config], Config]:
    """Runs a test once per state backend: gives a config its state on that backend (SQLite:
    as it is; PostgreSQL: a new database on the session's server)."""
    if request.param == "sqlite":
        return lambda config: config
    dsn = request.getfixturevalue("postgresql_dsn")
    return lambda config: replace(config, state_backend="postgresql", state_dsn=dsn)


@pytest.fixture(params=BACKENDS)
def state_backend(request: pytest.FixtureRequest) -> StateBackend:
    """Runs an end-to-end test once per state backend: where its `smswatch run` processes keep
    their state (PostgreSQL: a new schema on the session's server)."""
    if request.param == "sqlite":
        return StateBackend("sqlite")
    return StateBackend("postgresql", request.getfixturevalue("postgresql_dsn"))
