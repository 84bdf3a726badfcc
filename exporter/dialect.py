"""The SQL dialects the state store speaks: SQLite (as written) and PostgreSQL (translated).

The store writes its statements once, in SQLite's dialect with `?` parameters. A `Backend`
opens its connections and does what differs beyond the statements' text: connection settings
(PRAGMAs), durable commits, the schema's creation, the errors it raises. `PostgreSQL` also
translates each statement once (cached): placeholders, `INSERT OR IGNORE`/`OR REPLACE`,
two-argument `max`/`min`, `substr(x, -n)`, the reserved column name `user`, and in the schema
BIGINT for every INTEGER (milliseconds overflow 32 bits), DOUBLE PRECISION for REAL, BYTEA for
BLOB, identity keys and byte-order ("C") collation, so that ORDER BY sorts as SQLite does.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from functools import lru_cache
from typing import Any, Protocol

import psycopg
import psycopg.conninfo


class StateUnavailable(Exception):
    """The state database is known to be down: the attempt was not made (see
    `state_health.StateHealth`), so that a push or a poll fails at once instead of waiting."""


#: What a state database raises when it is unreachable, locked, full or refuses a statement.
STATE_ERRORS: tuple[type[Exception], ...] = (sqlite3.Error, psycopg.Error, StateUnavailable)
#: What a database raises when it is not available: unreachable, restarting, locked past the
#: wait, full, read-only, a statement or lock wait past its bound; or known down already.
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    sqlite3.OperationalError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
    StateUnavailable,
)
#: What storing a value a database cannot hold raises (beyond Python's own encode errors).
UNSTORABLE_ERRORS: tuple[type[Exception], ...] = (
    sqlite3.IntegrityError,
    sqlite3.InterfaceError,
    sqlite3.DataError,
    sqlite3.ProgrammingError,
    psycopg.DataError,
    psycopg.IntegrityError,
)

BACKENDS = ("sqlite", "postgresql")
#: The PostgreSQL advisory lock a write transaction holds until it ends, as SQLite's
#: `BEGIN IMMEDIATE` holds the file's write lock: writers (threads, processes, replicas) take
#: turns, and what a transaction reads before it writes is what the last commit left.
WRITE_LOCK = 0x736D_7377  # "smsw"

#: Client-side bounds of a PostgreSQL connection (libpq parameters; a DSN's own win): a
#: connect gives up after `connect_timeout` s, a request the server's host does not acknowledge
#: within `tcp_user_timeout` ms breaks the connection, and keepalives find a silent peer of an
#: idle connection within about 11 s. Without them a scrape, a push or a poll could wait for
#: minutes on a database cut off by the network.
CONNECTION_BOUNDS: dict[str, str] = {
    "connect_timeout": "3",
    "tcp_user_timeout": "10000",
    "keepalives": "1",
    "keepalives_idle": "5",
    "keepalives_interval": "2",
    "keepalives_count": "3",
}
#: Server-side bounds of every session (ms), set at connect (`options`, before the DSN's own):
#: a statement, a wait for a lock (the write lock above, like SQLite's busy_timeout of 10 s),
#: and a transaction left idle (a replica paused or cut off inside one: the server ends its
#: session, which frees the write lock it held, instead of holding up every other replica).
SESSION_BOUNDS: dict[str, int] = {
    "statement_timeout": 60_000,
    "lock_timeout": 10_000,
    "idle_in_transaction_session_timeout": 30_000,
}


class Rows(Protocol):
    """What a statement returns: its rows and how many rows it changed."""

    def fetchone(self) -> Any:
        """The next row, or None."""

    def fetchall(self) -> list[Any]:
        """The remaining rows."""

    def fetchmany(self, size: int, /) -> list[Any]:
        """At most `size` of the remaining rows."""

    def __iter__(self) -> Iterator[Any]:
        """The remaining rows, one by one."""

    @property
    def rowcount(self) -> int:
        """Rows changed by an INSERT, UPDATE or DELETE."""

    @property
    def description(self) -> Any:
        """The columns of a SELECT (their names first)."""


class Connection(Protocol):
    """The part of a DB-API connection the store uses (autocommit; explicit BEGIN/COMMIT)."""

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Rows:
        """Run one statement."""

    def executemany(self, sql: str, parameters: Sequence[Sequence[Any]], /) -> Rows:
        """Run one statement for each row of parameters."""

    def close(self) -> None:
        """Close the connection."""


class Backend:
    """SQLite: one state file. Statements run as written."""

    name = "sqlite"

    def __init__(self, location: str, busy_timeout_ms: int = 10_000) -> None:
        """`location`: the state file's path (or `:memory:`); `busy_timeout_ms`: how long a
        statement waits for a lock another process holds before it fails ("database is
        locked"), which bounds a push or a poll on a locked file."""
        self.location = location
        self.busy_timeout_ms = busy_timeout_ms

    def connect(self) -> Connection:
        """A new connection in autocommit mode (transactions are explicit)."""
        return sqlite3.connect(self.location, check_same_thread=False, isolation_level=None)

    def prepare_writer(self, db: Connection) -> None:
        """Settings of the connection that writes."""
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        # Random-keyed index inserts (RRNs) thrash SQLite's default 2 MB page cache once the
        # file grows; 64 MB keeps ingest flat and memory well bounded.
        db.execute("PRAGMA cache_size=-65536")
        db.execute("PRAGMA foreign_keys=ON")
        db.execute(f"PRAGMA busy_timeout={self.busy_timeout_ms}")

    def prepare_reader(self, db: Connection) -> None:
        """Settings of a connection that only reads."""
        db.execute(f"PRAGMA busy_timeout={self.busy_timeout_ms}")

    def create_schema(self, db: Connection, schema: str) -> None:
        """Create what is missing of `schema` (statements separated by `;`)."""
        db.executescript(schema)  # type: ignore[attr-defined]

    def set_durable(self, db: Connection, durable: bool) -> None:
        """Whether a commit returns only once it is on disk (else: ordered, maybe lost)."""
        db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")

    def data_version(self, db: Connection) -> int:
        """A number that changes when another connection commits (`Store.foreign_writes`)."""
        return int(db.execute("PRAGMA data_version").fetchone()[0])

    def continue_ids(self, db: Connection, table: str) -> None:
        """After rows were copied in with their ids: new rows' ids follow the largest
        (SQLite's INTEGER PRIMARY KEY always does)."""

    def tables(self, db: Connection) -> set[str]:
        """The names of the tables in the state."""
        return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}


class PostgreSQL(Backend):
    """PostgreSQL: one database (a libpq connection string or URI); statements translated."""

    name = "postgresql"

    def __init__(self, dsn: str, password: str = "") -> None:
        """`password` joins the DSN's parameters when given (never written in the DSN)."""
        super().__init__(dsn)
        self._password = password
        self._version = 0

    def connect(self) -> Connection:
        """A new connection in autocommit mode (transactions are explicit)."""
        return _Translating(lambda: psycopg.connect(self.conninfo(), autocommit=True))

    def conninfo(self) -> str:
        """The DSN with the password and the bounds (`CONNECTION_BOUNDS`, `SESSION_BOUNDS`)
        the DSN does not set itself."""
        given = psycopg.conninfo.conninfo_to_dict(self.location)
        extra: dict[str, str] = {k: v for k, v in CONNECTION_BOUNDS.items() if k not in given}
        bounds = " ".join(f"-c {name}={ms}" for name, ms in SESSION_BOUNDS.items())
        extra["options"] = f"{bounds} {given.get('options') or ''}".strip()
        if self._password:
            extra["password"] = self._password
        return psycopg.conninfo.make_conninfo(self.location, **extra)

    def prepare_writer(self, db: Connection) -> None:
        """Ordered commits that may be lost at a server crash, like SQLite's NORMAL."""
        self.set_durable(db, False)

    def prepare_reader(self, db: Connection) -> None:
        """Nothing to set: a read transaction is REPEATABLE READ (one snapshot)."""

    def create_schema(self, db: Connection, schema: str) -> None:
        """Create what is missing, one replica at a time (under the write lock: concurrent
        `CREATE ... IF NOT EXISTS` may collide in PostgreSQL)."""
        db.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(schema):
                db.execute(statement)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def set_durable(self, db: Connection, durable: bool) -> None:
        """`synchronous_commit` for this connection's next commits."""
        db.execute(f"SET synchronous_commit TO {'on' if durable else 'off'}")

    def data_version(self, db: Connection) -> int:
        """Changes at every call: what another replica committed is never known here, so a
        cache keyed on it is always dropped (correct, only slower)."""
        self._version += 1
        return self._version

    def continue_ids(self, db: Connection, table: str) -> None:
        """Move the identity column's sequence past the largest id copied in."""
        db.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table} "
            "HAVING max(id) IS NOT NULL"
        )

    def tables(self, db: Connection) -> set[str]:
        """The names of the tables in the current schema."""
        rows = db.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        )
        return {row[0] for row in rows}


class _Translating:
    """A psycopg connection that takes statements in SQLite's dialect, and connects again when
    the server was lost (restarted, failed over): a transaction or statement under way fails;
    the next BEGIN (or statement outside a transaction) runs on a new connection with the same
    session settings. While the server stays away, each such attempt connects again (bounded
    by `CONNECTION_BOUNDS`) and fails."""

    def __init__(self, connect: Callable[[], psycopg.Connection[Any]]) -> None:
        self._connect = connect
        self._conn = connect()
        self._settings: dict[str, str] = {}  # SET statements by what they set, replayed
        self._in_transaction = False

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Rows:
        if sql in ("ROLLBACK", "COMMIT"):
            self._in_transaction = False
        elif self._conn.broken:
            if self._in_transaction:  # the rest of a transaction never runs on a new connection
                raise psycopg.OperationalError("connection to the state database lost")
            self._reconnect()
        text = translate(sql)
        try:
            cursor = self._conn.execute(text, parameters)  # `%%` is `%` with parameters
        except psycopg.OperationalError:
            if not (self._conn.broken and sql.startswith("BEGIN")):
                raise  # a write may have committed before the cut: never run it twice
            self._reconnect()  # a cut found at BEGIN: nothing ran yet
            cursor = self._conn.execute(text, parameters)
        if sql.startswith("BEGIN"):
            self._in_transaction = True
        if sql == "BEGIN IMMEDIATE":  # SQLite's write lock, taken at BEGIN: one writer at a time
            try:
                cursor = self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
            except psycopg.Error:  # lock_timeout, a cut: the caller's transaction never began
                self._in_transaction = False
                if not self._conn.broken:
                    self._conn.execute("ROLLBACK")
                raise
        elif text.startswith("SET "):
            self._settings[text.split(" TO ")[0]] = text
        return cursor

    def _reconnect(self) -> None:
        self._conn.close()
        self._conn = self._connect()
        for setting in self._settings.values():
            self._conn.execute(setting)

    def executemany(self, sql: str, parameters: Sequence[Sequence[Any]], /) -> Rows:
        cursor = self._conn.cursor()
        rows = list(parameters)
        if rows:
            cursor.executemany(translate(sql), rows)
        return cursor

    def close(self) -> None:
        self._conn.close()


#: Key columns of the tables written with `INSERT OR REPLACE` (their upsert's conflict target).
_KEYS: dict[str, tuple[str, ...]] = {
    "meta": ("key",),
    "gauges": ("metric", "labels"),
    "terminals": ("terminal_id",),
    "unobserved_windows": ("source", "from_ms"),
}
_STATEMENT_REWRITES: dict[str, str] = {
    "BEGIN IMMEDIATE": "BEGIN",
    # reads see one snapshot, as in SQLite's read transactions
    "BEGIN": "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
}
_REPLACE = re.compile(r"INSERT OR REPLACE INTO (\w+) \(([^)]*)\)(.*)", re.S)
_IGNORE = re.compile(r"INSERT OR IGNORE INTO (.*)", re.S)
_PAIR_FUNCTIONS = {"max": "greatest", "min": "least"}


@lru_cache(maxsize=4096)
def translate(sql: str) -> str:
    """One statement in SQLite's dialect (as the store writes it) in PostgreSQL's."""
    text = sql.strip()
    if text in _STATEMENT_REWRITES:
        return _STATEMENT_REWRITES[text]
    if text.upper().startswith("CREATE"):
        text = _ddl(text)
    text = re.sub(r"\bUPDATE OR IGNORE\b", "UPDATE", text)
    replace = _REPLACE.match(text)
    if replace:
        table, columns, rest = replace.groups()
        names = [c.strip() for c in columns.split(",")]
        keys = _KEYS[table]
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in names if c not in keys)
        text = f"INSERT INTO {table} ({columns}){rest} ON CONFLICT ({', '.join(keys)}) " + (
            f"DO UPDATE SET {updates}" if updates else "DO NOTHING"
        )
    ignore = _IGNORE.match(text)
    if ignore:
        text = f"INSERT INTO {ignore.group(1)} ON CONFLICT DO NOTHING"
    text = _qualify_upsert(text)
    text = _pair_functions(text)
    text = re.sub(r"\bsubstr\((\w+), -(\d+)\)", r"right(\1, \2)", text)
    text = re.sub(r"\bAS INTEGER\b", "AS BIGINT", text)
    text = re.sub(r'(?<!")\buser\b(?!")', '"user"', text)
    return text.replace("%", "%%").replace("?", "%s")


_UPSERT = re.compile(r"INSERT INTO (\w+) .* DO UPDATE SET ", re.S)
_SQL_WORDS = frozenset(
    [
        "CASE",
        "WHEN",
        "THEN",
        "ELSE",
        "END",
        "AS",
        "BIGINT",
        "INTEGER",
        "NULL",
        "AND",
        "OR",
        "NOT",
        "IS",
        "EXCLUDED",
        "excluded",
    ]
)


def _qualify_upsert(text: str) -> str:
    """Columns in `DO UPDATE SET a = <expression>` expressions named with their table: in
    PostgreSQL a bare name there is ambiguous (the row stored, or EXCLUDED's)."""
    match = _UPSERT.match(text)
    if match is None:
        return text
    table, head, tail = match.group(1), text[: match.end()], text[match.end() :]

    def qualify(expression: str) -> str:
        return re.sub(
            r"(?<![.\w'])([A-Za-z_]\w*)\b(?![.(\w])",
            lambda m: m.group(1) if m.group(1) in _SQL_WORDS else f"{table}.{m.group(1)}",
            expression,
        )

    parts = re.split(r"(\b\w+ = )", tail)  # column = expression, column = expression ...
    return head + "".join(p if i % 2 else qualify(p) for i, p in enumerate(parts))


def _ddl(text: str) -> str:
    """Column types and table options of a CREATE statement."""
    text = re.sub(r"\bWITHOUT ROWID\b", "", text)
    text = re.sub(
        r"\bINTEGER PRIMARY KEY\b", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", text
    )
    text = re.sub(r"\bINTEGER\b", "BIGINT", text)
    text = re.sub(r"\bREAL\b", "DOUBLE PRECISION", text)
    text = re.sub(r"\bBLOB\b", "BYTEA", text)
    return re.sub(r"\bTEXT\b", 'TEXT COLLATE "C"', text)


def _pair_functions(text: str) -> str:
    """`max(a, b)`/`min(a, b)` (SQLite's scalar forms) as `greatest`/`least`; the
    one-argument aggregates stay."""
    out: list[str] = []
    pos = 0
    for match in re.finditer(r"\b(max|min)\(", text):
        start = match.end()
        depth, i, comma = 1, start, False
        while i < len(text) and depth:
            ch = text[i]
            if ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
            elif ch == "," and depth == 1:
                comma = True
            i += 1
        if comma:
            out.append(text[pos : match.start()] + _PAIR_FUNCTIONS[match.group(1)] + "(")
            pos = start
    out.append(text[pos:])
    return "".join(out)


def _statements(schema: str) -> Iterator[str]:
    """The statements of a schema script (comments dropped); `execute` translates them."""
    plain = re.sub(r"--[^\n]*", "", schema)
    for statement in plain.split(";"):
        if statement.strip():
            yield statement
