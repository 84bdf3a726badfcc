"""A real PostgreSQL server for the tests: Debian's binaries, a temporary cluster on a free
loopback port, run as an unprivileged user (PostgreSQL refuses to run as root)."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

#: The user the server runs as when the tests run as root.
SERVER_USER = "nobody"


def binaries() -> Path | None:
    """The directory of the newest installed PostgreSQL's initdb and postgres, if any."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[4])
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb and shutil.which("postgres") else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """One PostgreSQL cluster; `database()` gives each test a fresh, empty state."""

    def __init__(self, bindir: Path) -> None:
        """Create the cluster and start the server (stopped by `stop`)."""
        self.directory = Path(tempfile.mkdtemp(prefix="smswatch-pg-"))
        self.port = _free_port()
        self._count = 0
        as_user: dict[str, Any] = {}
        if os.geteuid() == 0:  # the server's processes drop root (no runuser in between)
            user = pwd.getpwnam(SERVER_USER)
            os.chown(self.directory, user.pw_uid, user.pw_gid)
            as_user = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
        data = self.directory / "data"
        subprocess.run(
            [
                *(str(bindir / "initdb"), "-D", str(data), "-U", "postgres"),
                *("--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"),
            ],
            check=True,
            capture_output=True,
            **as_user,
        )
        self._command = [
            *(str(bindir / "postgres"), "-D", str(data), "-p", str(self.port)),
            *("-k", str(self.directory), "-c", "listen_addresses=127.0.0.1"),
            # durability is not under test here: no fsync keeps the suite fast
            *("-c", "fsync=off", "-c", "full_page_writes=off"),
        ]
        self._as_user = as_user
        self.admin_dsn = self._dsn("postgres")
        self._start()
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute("CREATE DATABASE states")

    def _start(self) -> None:
        self._process = subprocess.Popen(
            self._command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            **self._as_user,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                psycopg.connect(self.admin_dsn, connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise
                time.sleep(0.05)

    def restart(self) -> None:
        """Stop the server (its clients' connections are cut) and start it again."""
        self._shut_down()
        self._start()

    def database(self) -> str:
        """The DSN of a new, empty state: a schema of its own in one shared database (a
        schema is several times faster to make than a database)."""
        self._count += 1
        name = f"state_{self._count}"
        with psycopg.connect(self._dsn("states"), autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {name}")
        return f"{self._dsn('states')}?options=-csearch_path%3D{name}"

    def _dsn(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        """Stop the server (fast shutdown) and delete the cluster."""
        self._shut_down()
        with contextlib.suppress(OSError):
            shutil.rmtree(self.directory)

    def _shut_down(self) -> None:
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGINT)  # fast shutdown
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
