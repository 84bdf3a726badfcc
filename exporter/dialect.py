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
from dataclasses import dataclass
from functools import lru_cache
from operator import itemgetter
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
#: The one-row table whose count every write transaction on PostgreSQL ticks, under the write
#: lock (`_Translating.foreign_commits`); not part of the state's data.
COMMIT_CLOCK = "commit_clock"
_BEGIN_WRITE = (
    f"BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK}); "
    f"UPDATE {COMMIT_CLOCK} SET commits = commits + 1 RETURNING commits"
)
#: Rows a table takes in (from one process) before it is analyzed, at least (`_Translating._grew`).
ANALYZE_AFTER_ROWS = 1000

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
        # A backlog's pages commit in one batch, each page a savepoint: the original of every
        # database page a savepoint changes is kept for its rollback, in memory rather than
        # written to a temporary file (a page's worth at a time, freed at its release).
        db.execute("PRAGMA temp_store=MEMORY")
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
        """Ordered commits that may be lost at a server crash, like SQLite's NORMAL; write
        transactions tick the commit clock (`data_version`)."""
        self.set_durable(db, False)
        assert isinstance(db, _Translating)
        db.count_commits()

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
        """Changes when another connection's (another replica's) write transaction committed:
        the commit clock (`_Translating.foreign_commits`)."""
        assert isinstance(db, _Translating)
        return db.foreign_commits()

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
        return {row[0] for row in rows} - {COMMIT_CLOCK}


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
        self._column_types: dict[str, dict[str, str]] = {}  # table → column → type
        self._known_rows: dict[str, float] = {}  # table → rows at its last statistics
        self._inserted: dict[str, int] = {}  # table → rows inserted since
        # the commit clock (`foreign_commits`): whether write transactions tick it; the value
        # last accounted for (None: not known); the tick of the write transaction under way
        self._counting = False
        self._seen: int | None = None
        self._pending: int | None = None
        self._foreign = 0

    def count_commits(self) -> None:
        """From now on, every write transaction of this connection ticks the commit clock
        (created when missing, under the write lock: one replica at a time)."""
        with self._conn.transaction():
            self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
            self._conn.execute(
                f"CREATE TABLE IF NOT EXISTS {COMMIT_CLOCK} "
                "(id BIGINT PRIMARY KEY CHECK (id = 1), commits BIGINT NOT NULL)"
            )
            self._conn.execute(
                f"INSERT INTO {COMMIT_CLOCK} (id, commits) VALUES (1, 0) ON CONFLICT DO NOTHING"
            )
        self._counting = True

    def foreign_commits(self) -> int:
        """A number that changes when another connection's write transaction has committed
        since the last call (this connection's own commits leave it as it is).

        Every write transaction ticks the commit clock under the write lock, so the ticks are
        the commits in order: a tick this connection did not make is another's. Inside this
        connection's own write transaction nobody else can commit: what was there when it
        began is already accounted for."""
        self._settle()
        if self._pending is None:
            self._account(int(_one(self.execute(f"SELECT commits FROM {COMMIT_CLOCK}"))))
        return self._foreign

    def _account(self, committed: int) -> None:
        """The commit clock stands at `committed`: ticks beyond those accounted for are
        another connection's commits."""
        if self._seen is not None and committed != self._seen:
            self._foreign += 1
        self._seen = committed

    def _settle(self) -> None:
        """A write transaction that ended without a COMMIT known to have returned (the
        connection was cut) may or may not have ticked: count it as foreign, start afresh."""
        idle = self._conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        if self._pending is not None and (self._conn.broken or idle):
            self._pending = self._seen = None
            self._foreign += 1

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Rows:
        if sql in ("ROLLBACK", "COMMIT"):
            self._in_transaction = False
        elif self._conn.broken:
            if self._in_transaction:  # the rest of a transaction never runs on a new connection
                raise psycopg.OperationalError("connection to the state database lost")
            self._reconnect()
        text = translate(sql)
        writes = sql == "BEGIN IMMEDIATE" and self._counting
        if writes:  # BEGIN, the write lock and the commit clock's tick: one round trip
            self._settle()
            text = _BEGIN_WRITE
        elif len(parameters) > 1 and "IN (" in sql:
            text, parameters = _with_arrays(text, parameters)
        try:
            cursor = self._conn.execute(text, parameters)  # `%%` is `%` with parameters
        except psycopg.OperationalError:
            if not (self._conn.broken and sql.startswith("BEGIN")):
                if writes:  # lock_timeout: the caller's transaction never began
                    self._abandon_begin()
                raise  # a write may have committed before the cut: never run it twice
            self._reconnect()  # a cut found at BEGIN: nothing ran yet
            cursor = self._conn.execute(text, parameters)
        if sql.startswith("BEGIN"):
            self._in_transaction = True
        if writes:
            cursor.nextset()
            cursor.nextset()
            ticked = int(_one(cursor))
            self._account(ticked - 1)
            self._pending = ticked
        elif sql == "BEGIN IMMEDIATE":  # SQLite's write lock, taken at BEGIN: one writer at a time
            try:
                cursor = self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
            except psycopg.Error:  # lock_timeout, a cut: the caller's transaction never began
                self._abandon_begin()
                raise
        elif sql == "COMMIT" and self._pending is not None:
            self._seen, self._pending = self._pending, None  # our own tick: not foreign
        elif sql == "ROLLBACK":
            self._pending = None
        elif text.startswith("SET "):
            self._settings[text.split(" TO ")[0]] = text
        return cursor

    def _abandon_begin(self) -> None:
        """A write transaction failed to begin (its write lock not taken): end what began."""
        self._in_transaction = False
        if not self._conn.broken:
            self._conn.execute("ROLLBACK")

    def _reconnect(self) -> None:
        self._conn.close()
        self._conn = self._connect()
        for setting in self._settings.values():
            self._conn.execute(setting)

    def executemany(self, sql: str, parameters: Sequence[Sequence[Any]], /) -> Rows:
        """Every row in one statement over arrays (`batched`), which PostgreSQL runs many
        times faster than a statement per row; row by row what does not fit that shape."""
        cursor = self._conn.cursor()
        rows = list(parameters)
        if not rows:
            return cursor
        batch = batched(sql)
        types = None if batch is None else self._types(batch)
        if batch is None or types is None:
            cursor.executemany(translate(sql), rows)
            return cursor
        statement = batch.statement(types)
        for run in _runs(rows, batch.unique):
            arrays = _arrays(run, types)
            if arrays is None:  # not one type a column, or rows of other lengths
                cursor.executemany(translate(sql), run)
            else:
                cursor.execute(statement, arrays)
        if batch.inserts:
            self._grew(batch.table, len(rows))
        return cursor

    def _grew(self, table: str, rows: int) -> None:
        """Count rows inserted into `table`; once they outnumber what its statistics knew,
        ANALYZE it (in this transaction, which sees them). Without statistics PostgreSQL takes
        an IN list of keys to match the whole table and scans it (a new or fast-growing state:
        catching up, a migration), where SQLite, as the statements expect, uses the index.
        Growth by doubling keeps this to a few ANALYZEs over a table's life; autovacuum keeps
        the statistics of a table that no longer grows fast."""
        if table not in self._known_rows:
            found = self._conn.execute(
                "SELECT reltuples FROM pg_class WHERE oid = to_regclass(%s)", (table,)
            ).fetchone()
            self._known_rows[table] = max(0.0, float(found[0])) if found else 0.0
            self._inserted[table] = 0
        self._inserted[table] += rows
        if self._inserted[table] > max(ANALYZE_AFTER_ROWS, self._known_rows[table]):
            self._conn.execute(f"ANALYZE {table}")
            self._known_rows[table] += self._inserted[table]
            self._inserted[table] = 0

    def _types(self, batch: Batch) -> list[str] | None:
        """The type of each parameter's column in `batch` (looked up again when a column is
        new here), None when its table or a column is not there (the statement, row by row,
        then fails as it would)."""
        columns = self._column_types.get(batch.table, {})
        if not all(c in columns for c in batch.columns):
            columns = dict(
                self._conn.execute(
                    "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                    "WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped",
                    (batch.table,),
                ).fetchall()
            )
            self._column_types[batch.table] = columns
            if not all(c in columns for c in batch.columns):
                return None
        return [columns[c] for c in batch.columns]

    def close(self) -> None:
        self._conn.close()


@dataclass(frozen=True)
class Batch:
    """A statement the store runs for many rows, as one statement over one array per
    parameter: `template` (PostgreSQL's) unnests them; `statement` gives it their types."""

    table: str
    #: The column each parameter is stored in or compared with (its array's type).
    columns: tuple[str, ...]
    #: Positions of the parameters that must not repeat within one statement (an upsert's
    #: conflict key, an UPDATE's row key): rows with a repeated key go to a next statement,
    #: so that they apply in order, as row by row.
    unique: tuple[int, ...]
    template: str
    #: Whether it inserts rows (the table grows: `_Translating._grew`).
    inserts: bool = False

    def statement(self, types: Sequence[str]) -> str:
        """The statement with each array's element type (its column's type) filled in."""
        text = self.template
        for i, kind in enumerate(types):
            text = text.replace(_array(i), f"%b::{kind}[]")
        return text


def _array(i: int) -> str:
    """Where parameter `i`'s array goes in a `Batch.template` (with its type in `statement`)."""
    return f"%b::<{i}>[]"


_INSERT_ROWS = re.compile(
    r"INSERT (?:OR (?:IGNORE|REPLACE) )?INTO (\w+) \(([^)]*)\) VALUES \(([?,\s]*)\)(.*)", re.S
)
_UPDATE_ROWS = re.compile(r"UPDATE (\w+) SET (.*) WHERE (.*)", re.S)
_DELETE_ROWS = re.compile(r"DELETE FROM (\w+) WHERE (.*)", re.S)
_PARAMETER = re.compile(r"\s*(\w+)\s*=\s*\?\s*")
_CONFLICT = re.compile(r"ON CONFLICT \(([^)]*)\)")


@lru_cache(maxsize=1024)
def batched(sql: str) -> Batch | None:
    """`sql` (SQLite's dialect, as the store writes it) as one statement for many rows, when
    it has a shape that keeps each row's meaning: `INSERT [OR IGNORE|REPLACE] INTO t (columns)
    VALUES (?, ...) [ON CONFLICT ...]`, `UPDATE t SET c = ?, ... WHERE k = ? AND ...` and
    `DELETE FROM t WHERE k = ? AND ...` (every parameter a whole value of one column).
    Inserts keep the rows' order (identity ids are given in it)."""
    text = " ".join(sql.split())
    insert = _INSERT_ROWS.fullmatch(text)
    if insert:
        table, names, marks, _ = insert.groups()
        columns = tuple(c.strip() for c in names.split(","))
        if marks.count("?") != len(columns) or marks.replace("?", "").replace(",", "").strip():
            return None
        plain = translate(text)  # upsert clauses, quoting, placeholders as for one row
        values = re.search(r"VALUES \((%s,?\s*)+\)", plain)
        if values is None:
            return None
        conflict = _CONFLICT.search(plain)
        upsert = "DO UPDATE" in plain
        keys = [c.strip() for c in conflict.group(1).split(",")] if conflict and upsert else []
        if any(k not in columns for k in keys):
            return None
        names_v = ", ".join(f"p{i}" for i in range(len(columns)))
        select = (
            f"SELECT {', '.join(f'v.p{i}' for i in range(len(columns)))} FROM unnest("
            + ", ".join(_array(i) for i in range(len(columns)))
            + f") WITH ORDINALITY AS v({names_v}, n) ORDER BY v.n"
        )
        template = plain[: values.start()] + select + plain[values.end() :]
        return Batch(table, columns, tuple(columns.index(k) for k in keys), template, True)
    update = _UPDATE_ROWS.fullmatch(text)
    delete = _DELETE_ROWS.fullmatch(text)
    if update:
        table, assignments, condition = update.groups()
        sets = [_PARAMETER.fullmatch(a) for a in assignments.split(",")]
    elif delete:
        table, condition = delete.groups()
        sets = []
    else:
        return None
    wheres = [_PARAMETER.fullmatch(c) for c in re.split(r"\s+AND\s+", condition)]
    if not all(sets) or not all(wheres):
        return None
    columns = tuple(m.group(1) for m in (*sets, *wheres) if m is not None)
    arrays = ", ".join(_array(i) for i in range(len(columns)))
    names_v = ", ".join(f"p{i}" for i in range(len(columns)))
    match = " AND ".join(
        f"{table}.{_quoted(c)} = v.p{len(sets) + i}" for i, c in enumerate(columns[len(sets) :])
    )
    if update:
        assigned = ", ".join(f"{_quoted(c)} = v.p{i}" for i, c in enumerate(columns[: len(sets)]))
        template = (
            f"UPDATE {table} SET {assigned} FROM unnest({arrays}) AS v({names_v}) WHERE {match}"
        )
        return Batch(table, columns, tuple(range(len(sets), len(columns))), template)
    template = f"DELETE FROM {table} USING unnest({arrays}) AS v({names_v}) WHERE {match}"
    return Batch(table, columns, (), template)


_IN_LIST = re.compile(r"(?<!NOT )\bIN \(\s*%s(?:\s*,\s*%s)*\s*\)")
#: The array type of the values an IN list of parameters may hold (one Python type for all).
_ARRAY_TYPES: dict[type, str] = {str: "text", int: "bigint"}


@lru_cache(maxsize=1024)
def _in_lists(text: str) -> tuple[tuple[int, int], ...]:
    """The parameters (first, how many) of each `IN (%s, ...)` list of `text`, in order."""
    lists = []
    for match in _IN_LIST.finditer(text):
        lists.append((text.count("%s", 0, match.start()), match.group(0).count("%s")))
    return tuple(lists)


def _with_arrays(text: str, parameters: Sequence[Any]) -> tuple[str, Sequence[Any]]:
    """`text` with each `IN (%s, %s, ...)` list of parameters as `= ANY(%b::type[])`, one
    array parameter (the same rows, NULLs alike): one statement text whatever the number of
    keys, parsed and planned once (psycopg caches neither a text of over 50 parameters nor a
    text per number of keys), instead of hundreds of parameters each time. A list whose values
    are not all of one of `_ARRAY_TYPES` stays as it is."""
    lists = _in_lists(text)
    if not lists:
        return text, parameters
    types = []
    for first, count in lists:
        kinds = {type(v) for v in parameters[first : first + count]}
        if len(kinds) != 1 or (kind := _ARRAY_TYPES.get(kinds.pop())) is None:
            return text, parameters
        types.append(kind)
    values: list[Any] = []
    pieces = []
    position = done = 0
    for (first, count), kind, match in zip(lists, types, _IN_LIST.finditer(text), strict=True):
        values += parameters[done:first]
        values.append(list(parameters[first : first + count]))
        done = first + count
        pieces.append(text[position : match.start()] + f"= ANY(%b::{kind}[])")
        position = match.end()
    values += parameters[done:]
    return "".join(pieces) + text[position:], values


def _one(rows: Rows) -> Any:
    """The one value of a statement that returns one row."""
    row = rows.fetchone()
    if row is None:
        raise psycopg.DataError("the statement returned no row")
    return row[0]


def _quoted(column: str) -> str:
    return f'"{column}"' if column == "user" else column


def _runs(rows: list[Sequence[Any]], unique: tuple[int, ...]) -> Iterator[list[Sequence[Any]]]:
    """`rows` in order, cut where a row repeats the key (`unique` positions) of an earlier
    row of the same run."""
    if not unique:
        yield rows
        return
    keys = list(map(itemgetter(*unique), rows))
    if len(set(keys)) == len(keys):
        yield rows  # the common case: no key twice
        return
    run: list[Sequence[Any]] = []
    seen: set[Any] = set()
    for row, key in zip(rows, keys, strict=True):
        if key in seen:
            yield run
            run, seen = [], set()
        seen.add(key)
        run.append(row)
    yield run


def _arrays(rows: list[Sequence[Any]], types: list[str]) -> list[list[Any]] | None:
    """One list per column of `rows`, or None when a column holds values of more than one
    type (an array has one), a text holds NUL, or a row has another length: such rows go row
    by row."""
    if any(len(row) != len(types) for row in rows):
        return None
    arrays = []
    for column, kind in zip(zip(*rows, strict=True), types, strict=True):
        found = set(map(type, column))
        found.discard(type(None))
        if kind == "double precision" and found <= {int, float}:
            try:
                column = tuple(v if v is None else float(v) for v in column)
            except OverflowError:  # beyond a double: refused row by row, as it would be
                return None
        elif len(found) > 1:
            return None
        elif found == {str} and "\x00" in "".join(filter(None, column)):
            return None  # refused one by one, with psycopg's own words (as row by row)
        arrays.append(list(column))
    return arrays


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
