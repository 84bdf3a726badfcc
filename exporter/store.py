"""The state store (SQLite, or PostgreSQL through `dialect.py`): the only module that speaks SQL.

A poll's records, its cursor advance and its counter deltas commit in one transaction, so a crash
or a restart never loses nor double-counts. Pending messages and receipts live on disk (memory
stays flat however many are pending); counters are read back at start, so exported counters stay
monotonic across restarts. WAL mode lets scrapes read while a poll writes.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from exporter.dialect import STATE_ERRORS, Backend, PostgreSQL
from exporter.errors import StateError
from exporter.quarantine import QuarantinedRecord
from exporter.reconcile import (
    Changes,
    LabelKey,
    Message,
    Receipt,
    StoredTerminal,
    TerminalState,
    terminal_row,
)
from exporter.state_health import READ, WRITE, StateHealth

if TYPE_CHECKING:
    from exporter.config import Config

SCHEMA_VERSION = 2
_SEP = "\x1f"
_CHUNK = 500

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sources (
    name TEXT PRIMARY KEY,
    cursor TEXT NOT NULL DEFAULT '',
    watermark_ms INTEGER NOT NULL DEFAULT -1,
    terminals_watermark_ms INTEGER,
    last_success_ms INTEGER,
    last_poll_ms INTEGER,
    last_error TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS counters (
    metric TEXT NOT NULL, labels TEXT NOT NULL, value REAL NOT NULL,
    PRIMARY KEY (metric, labels)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS gauges (
    metric TEXT NOT NULL, labels TEXT NOT NULL, value REAL NOT NULL,
    PRIMARY KEY (metric, labels)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS messages (
    gateway TEXT NOT NULL,
    message_id TEXT NOT NULL,
    txn_ref TEXT NOT NULL,
    carrier TEXT NOT NULL,
    area TEXT NOT NULL,
    phone TEXT NOT NULL,
    submitted_ms INTEGER NOT NULL,
    seen INTEGER NOT NULL,
    final_status TEXT,
    final_cause TEXT,
    final_code TEXT NOT NULL DEFAULT '',
    final_ms INTEGER,
    events TEXT NOT NULL DEFAULT '',
    acquirer TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (gateway, message_id)
);
CREATE INDEX IF NOT EXISTS messages_by_ref ON messages (txn_ref, submitted_ms, message_id);
CREATE INDEX IF NOT EXISTS messages_by_time_phone ON messages (submitted_ms, substr(phone, -4));
CREATE INDEX IF NOT EXISTS messages_pending ON messages (gateway, submitted_ms)
    WHERE final_status IS NULL;
CREATE TABLE IF NOT EXISTS transactions (
    source TEXT NOT NULL,
    txn_id TEXT NOT NULL,
    rrn TEXT NOT NULL,
    terminal_id TEXT NOT NULL,
    merchant_id TEXT NOT NULL,
    acquirer TEXT NOT NULL,
    amount INTEGER NOT NULL,
    currency TEXT NOT NULL,
    pan TEXT NOT NULL,
    result TEXT NOT NULL,
    response_code TEXT NOT NULL,
    txn_ms INTEGER NOT NULL,
    sms_expected INTEGER NOT NULL,
    original_txn_id TEXT NOT NULL,
    -- receipt reconciliation (NULL state: not a receipt)
    join_key TEXT,
    receipt_acquirer TEXT,
    state TEXT,
    message_id TEXT,
    decide_ms INTEGER,
    outcome TEXT,
    cause TEXT,
    notify_ms INTEGER,
    reversed_ms INTEGER,
    message_gateway TEXT,
    due_ms INTEGER,
    PRIMARY KEY (source, txn_id)
);
CREATE INDEX IF NOT EXISTS receipts_by_key ON transactions (join_key) WHERE state IS NOT NULL;
CREATE INDEX IF NOT EXISTS receipts_due ON transactions (due_ms) WHERE state = 'open';
CREATE INDEX IF NOT EXISTS transactions_by_rrn ON transactions (rrn);
CREATE INDEX IF NOT EXISTS transactions_by_id ON transactions (txn_id);
CREATE INDEX IF NOT EXISTS transactions_by_terminal ON transactions (terminal_id, txn_ms);
CREATE INDEX IF NOT EXISTS transactions_by_time ON transactions (txn_ms);
CREATE TABLE IF NOT EXISTS orphan_reversals (
    source TEXT NOT NULL, original_txn_id TEXT NOT NULL, reversed_ms INTEGER NOT NULL,
    PRIMARY KEY (source, original_txn_id)
);
CREATE TABLE IF NOT EXISTS terminals (
    terminal_id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    merchant_id TEXT NOT NULL,
    acquirer TEXT NOT NULL,
    area TEXT NOT NULL,
    software_version TEXT NOT NULL,
    sms_notice_enabled INTEGER NOT NULL,
    changed_ms INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS terminal_history (
    terminal_id TEXT NOT NULL,
    since_ms INTEGER NOT NULL,
    sms_notice_enabled INTEGER NOT NULL,
    software_version TEXT NOT NULL,
    PRIMARY KEY (terminal_id, since_ms)
) WITHOUT ROWID;
-- who looked up what (support desk): never a full phone number, never a card number
CREATE TABLE IF NOT EXISTS lookup_audit (
    id INTEGER PRIMARY KEY,
    at_ms INTEGER NOT NULL,
    user TEXT NOT NULL,
    method TEXT NOT NULL,
    channel TEXT NOT NULL,
    remote TEXT NOT NULL,
    key_kind TEXT NOT NULL,
    key TEXT NOT NULL,
    from_ms INTEGER,
    to_ms INTEGER,
    results INTEGER NOT NULL,
    status TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS lookup_audit_by_time ON lookup_audit (at_ms);
-- records that parsed but could not be stored (quarantine.py): masked, with the reason
CREATE TABLE IF NOT EXISTS quarantine (
    id INTEGER PRIMARY KEY,
    at_ms INTEGER NOT NULL,
    source TEXT NOT NULL,
    kind TEXT NOT NULL,
    reason TEXT NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS quarantine_by_time ON quarantine (at_ms);
-- when the exporter listened to a push source, on the provider's clock (its Date header)
CREATE TABLE IF NOT EXISTS push_listening (
    source TEXT PRIMARY KEY,
    first_ms INTEGER NOT NULL,      -- the first push ever taken: nothing before was watched
    heard_ms INTEGER NOT NULL,      -- the latest push taken
    gap_from_ms INTEGER             -- not listening since (a restart), until the next push
);
CREATE TABLE IF NOT EXISTS unobserved_windows (
    source TEXT NOT NULL, from_ms INTEGER NOT NULL, to_ms INTEGER NOT NULL,
    PRIMARY KEY (source, from_ms)
) WITHOUT ROWID;
-- the outcome counters' increases per minute and per quarter hour of the exporter's clock
-- (OUTCOME_SPANS), for the landing page's last hour and today
CREATE TABLE IF NOT EXISTS outcome_counts (
    span_ms INTEGER NOT NULL, start_ms INTEGER NOT NULL, metric TEXT NOT NULL,
    labels TEXT NOT NULL, value REAL NOT NULL,
    PRIMARY KEY (span_ms, start_ms, metric, labels)
) WITHOUT ROWID;

-- canary SMS (exporter/probes/): their reports never reach the cardholder tables or counters
CREATE TABLE IF NOT EXISTS canaries (
    canary_id TEXT PRIMARY KEY,     -- also the reference sent with it (txn_ref of its reports)
    gateway TEXT NOT NULL,
    message_id TEXT NOT NULL,       -- the provider's id ('' until the send answered)
    carrier TEXT NOT NULL,
    area TEXT NOT NULL,
    phone TEXT NOT NULL,            -- masked
    nonce TEXT NOT NULL,
    sent_ms INTEGER NOT NULL,
    send_error TEXT NOT NULL DEFAULT '',
    report_status TEXT,             -- first final status reported through the normal path
    report_ms INTEGER,
    handset_ms INTEGER,             -- when the handset's inbox showed the nonce
    verdict TEXT,                   -- NULL while open: delivered | fake_report | failed
    cause TEXT,
    timeline TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS canaries_by_message ON canaries (gateway, message_id);
CREATE INDEX IF NOT EXISTS canaries_by_nonce ON canaries (nonce);
CREATE INDEX IF NOT EXISTS canaries_open ON canaries (sent_ms) WHERE verdict IS NULL;
"""

#: Replicas sharing one state (exporter/leases.py): who holds which lease, with its fencing
#: token, and when each replica was last heard. Not data: a state moved to another database
#: (`copy_from`) leaves them behind, and they are created apart from `_SCHEMA`'s data tables.
_LEASE_SCHEMA = """
CREATE TABLE IF NOT EXISTS leases (
    name TEXT PRIMARY KEY,          -- source:<name> or primary
    holder TEXT NOT NULL DEFAULT '',-- replica id ('' once released)
    token INTEGER NOT NULL,         -- fencing token: bumped by every change of holder
    expires_ms INTEGER NOT NULL,    -- on the database's clock (`Store.db_now_ms`)
    acquired_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS replicas (
    replica TEXT PRIMARY KEY,
    seen_ms INTEGER NOT NULL,       -- last heartbeat, on the database's clock
    started_ms INTEGER NOT NULL
);
"""


@dataclass(frozen=True)
class LeaseRow:
    """One lease as committed: its holder ('' when free), fencing token and expiry (ms on the
    database's clock)."""

    name: str
    holder: str
    token: int
    expires_ms: int


#: Counters also kept per span of time (`outcome_counts`), with the positions of the labels
#: kept: final SMS by gateway, status and cause; decided receipts by acquirer, outcome and cause.
MINUTE_COUNTERS: dict[str, tuple[int, ...]] = {
    "smswatch_sms_messages_total": (0, 3, 4),
    "smswatch_receipts_total": (0, 1, 2),
}
MINUTE_MS = 60_000
QUARTER_MS = 15 * MINUTE_MS
#: The spans kept and for how long: minutes for two hours (the last hour, to the minute), and
#: quarter hours for two days ("today" reaches back at most 25 hours, and local midnight is on
#: a quarter hour in every time zone in use).
OUTCOME_SPANS: dict[int, int] = {MINUTE_MS: 2 * 3_600_000, QUARTER_MS: 2 * 86_400_000}

_MESSAGE_COLUMNS = (
    "message_id, gateway, txn_ref, carrier, area, phone, submitted_ms, seen, "
    "final_status, final_cause, final_code, final_ms, events, acquirer"
)
_TERMINAL_ROW_COLUMNS = (
    "source, merchant_id, acquirer, area, software_version, sms_notice_enabled, changed_ms, "
    "last_seen_ms"
)
_RECEIPT_COLUMNS = (
    "txn_id, join_key, receipt_acquirer, terminal_id, txn_ms, state, message_id, decide_ms, "
    "outcome, cause, notify_ms, reversed_ms, source, message_gateway, due_ms, acquirer"
)


def encode_labels(values: Sequence[str]) -> str:
    """Label values as stored: joined with the unit separator."""
    return _SEP.join(values)


def decode_labels(text: str) -> tuple[str, ...]:
    """The inverse of `encode_labels`."""
    return tuple(text.split(_SEP)) if text else ()


def _chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


def _marks(n: int) -> str:
    return ",".join("?" * n)


def _message(row: sqlite3.Row | tuple[object, ...]) -> Message:
    message = Message(*row)
    message.stored = True
    return message


def _receipt(row: sqlite3.Row | tuple[object, ...]) -> Receipt:
    return Receipt(*row)


def _unlisted(rows: Sequence[tuple[Any, ...]]) -> list[tuple[str, str, int]]:
    """(gateway, code, times seen) from the unlisted-codes counter's rows."""
    out = []
    for labels, value in rows:
        gateway, code = (*decode_labels(str(labels)), "", "")[:2]
        out.append((gateway, code, int(value)))
    return out


#: The receipt columns of a transaction row, in the order `_receipt_values` gives them.
_RECEIPT_STATE_COLUMNS = (
    "join_key, receipt_acquirer, state, message_id, decide_ms, outcome, cause, notify_ms, "
    "reversed_ms, message_gateway, due_ms"
)
_NO_RECEIPT = (None,) * 11


def _receipt_values(r: Receipt) -> tuple[object, ...]:
    """A receipt's values for `_RECEIPT_STATE_COLUMNS`."""
    return (
        r.join_key,
        r.acquirer,
        r.state,
        r.message_id,
        r.decide_ms,
        r.outcome,
        r.cause,
        r.notify_ms,
        r.reversed_ms,
        r.message_gateway,
        r.due_ms,
    )


@dataclass(frozen=True)
class SourceState:
    """Where a source's feed stands, as committed."""

    name: str
    cursor: str
    watermark_ms: int
    terminals_watermark_ms: int | None
    last_success_ms: int | None
    last_poll_ms: int | None
    last_error: str


@dataclass(frozen=True)
class StoredTransaction:
    """One retained transaction as the support desk sees it (masked, with its receipt state)."""

    txn_id: str
    rrn: str
    terminal_id: str
    merchant_id: str
    acquirer: str
    amount: int
    currency: str
    pan: str
    result: str
    response_code: str
    txn_ms: int
    sms_expected: bool
    original_txn_id: str
    join_key: str | None
    state: str | None  # None: not a receipt; open | decided | reversed
    message_id: str | None
    decide_ms: int | None
    outcome: str | None
    cause: str | None
    notify_ms: int | None
    reversed_ms: int | None
    #: The terminal's SMS notice setting and software version at `txn_ms`, when known.
    terminal_notice: bool | None = None
    terminal_software: str | None = None
    #: The acquirer source that reported it (transaction ids are unique per source only).
    source: str = ""
    #: The gateway of the linked message (message ids are unique per gateway only).
    message_gateway: str | None = None


@dataclass(frozen=True)
class StoredMessage:
    """One retained message with its timeline text (`reconcile.parse_timeline` reads it)."""

    message_id: str
    gateway: str
    txn_ref: str
    carrier: str
    area: str
    phone: str
    submitted_ms: int
    final_status: str | None
    final_cause: str | None
    final_code: str
    final_ms: int | None
    events: str
    acquirer: str = ""


@dataclass(frozen=True)
class LookupRows:
    """What one lookup found: transactions (oldest first), their messages by reference."""

    transactions: list[StoredTransaction]
    messages: dict[str, list[StoredMessage]]
    truncated: bool


@dataclass(frozen=True)
class PageView:
    """What a page for people reads of the committed state, in one read transaction."""

    sources: list[SourceState]
    #: (gateway, code, times seen) of provider codes no table knew, most seen first.
    unlisted: list[tuple[str, str, int]]
    #: Per (metric, labels) of `MINUTE_COUNTERS`: the increase since each asked start.
    increases: dict[tuple[str, tuple[str, ...]], list[float]]


@dataclass(frozen=True)
class AuditEntry:
    """One support-desk lookup: who, when, with which key, how many results."""

    at_ms: int
    user: str
    method: str  # token | basic | session | cli
    channel: str  # api | page | cli
    remote: str
    key_kind: str  # rrn | txn_id | terminal | phone_last4
    key: str  # never a full phone number
    from_ms: int | None
    to_ms: int | None
    results: int
    status: str  # ok | bad_request


#: What a scrape reads of the committed state: counter rows, gauge rows (metric, encoded
#: labels, value) and the sources' states.
Snapshot = tuple[list[tuple[str, str, float]], list[tuple[str, str, float]], list[SourceState]]

_TRANSACTION_COLUMNS = (
    "txn_id, rrn, terminal_id, merchant_id, acquirer, amount, currency, pan, result, "
    "response_code, txn_ms, sms_expected, original_txn_id, join_key, state, message_id, "
    "decide_ms, outcome, cause, notify_ms, reversed_ms, source, message_gateway"
)
_TRANSACTION_FIELDS = tuple(_TRANSACTION_COLUMNS.split(", "))
#: One fixed statement per lookup key: nothing but parameters ever reaches the SQL.
_LOOKUP_SQL: dict[str, str] = {
    "rrn": f"SELECT {_TRANSACTION_COLUMNS} FROM transactions WHERE rrn = ? "
    "ORDER BY txn_ms, txn_id, source LIMIT ?",
    "txn_id": f"SELECT {_TRANSACTION_COLUMNS} FROM transactions WHERE txn_id = ? "
    "ORDER BY txn_ms, source LIMIT ?",
    "terminal": f"SELECT {_TRANSACTION_COLUMNS} FROM transactions WHERE terminal_id = ? "
    "AND txn_ms BETWEEN ? AND ? ORDER BY txn_ms, txn_id LIMIT ?",
    # messages by (submitted_ms, last 4 digits of the masked phone), then their receipts by the
    # join key, which is the transaction's rrn or its txn_id (both indexed)
    "phone_last4": "WITH refs (ref) AS (SELECT DISTINCT txn_ref FROM messages "
    "WHERE submitted_ms BETWEEN ? AND ? AND substr(phone, -4) = ? AND txn_ref != '' LIMIT ?) "
    f"SELECT {_TRANSACTION_COLUMNS} FROM transactions "
    "WHERE rrn IN (SELECT ref FROM refs) AND join_key = rrn "
    f"UNION SELECT {_TRANSACTION_COLUMNS} FROM transactions "
    "WHERE txn_id IN (SELECT ref FROM refs) AND join_key = txn_id "
    "ORDER BY txn_ms, txn_id LIMIT ?",
}
_AUDIT_COLUMNS = (
    "at_ms, user, method, channel, remote, key_kind, key, from_ms, to_ms, results, status"
)


class Store:
    """One state (a SQLite file or a PostgreSQL database); a write connection for polls and
    read connections for scrapes and pages."""

    def __init__(
        self, path: str, clock: Callable[[], float] = time.time, backend: Backend | None = None
    ) -> None:
        """`clock` (Unix seconds) dates the polls (`record_poll`); a backtest passes its
        simulated clock. `backend`: the database (default: SQLite, the file at `path`)."""
        self.path = path
        self.clock = clock
        self._backend = backend or Backend(path)
        if path != ":memory:" and self._backend.name == "sqlite":
            parent = Path(path).parent
            try:
                parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StateError(f"cannot create state directory {parent}: {exc.strerror}") from exc
        self._lock = threading.RLock()
        #: The thread whose `batch` is open (its transactions are savepoints of the batch).
        self._batch_thread: int | None = None
        self._read_lock = threading.Lock()
        self._pages_lock = threading.Lock()
        self._outcomes_pruned_at = -1
        #: This process's view of the database's health (`smswatch_state_up`, commit latency).
        self.health = StateHealth()
        #: Counter deltas that could not be written while the database was down: they commit
        #: with the next transaction that does (`tally`).
        self._deferred: Counter[LabelKey] = Counter()
        self._deferred_lock = threading.Lock()
        try:
            self._db = self._backend.connect()
            self._backend.prepare_writer(self._db)
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
            )
            self._migrate()
            self._backend.create_schema(self._db, _SCHEMA)
            self._backend.create_schema(self._db, _LEASE_SCHEMA)
            self._check_version()
            self._reader = self._backend.connect()
            self._backend.prepare_reader(self._reader)
            # pages people read (the landing page) have their own connection: a page being
            # built never holds up a scrape, nor a scrape a page
            self._pages = self._backend.connect()
            self._backend.prepare_reader(self._pages)
        except STATE_ERRORS as exc:
            what = "file" if self._backend.name == "sqlite" else "database"
            raise StateError(f"cannot open state {what} {path}: {exc}") from exc

    def _check_version(self) -> None:
        row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None:
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
        elif int(row[0]) != SCHEMA_VERSION:
            raise StateError(
                f"state file {self.path} has schema version {row[0]}, this smswatch expects "
                f"{SCHEMA_VERSION}"
            )

    def _migrate(self) -> None:
        """Bring an older state file to `SCHEMA_VERSION`, in one transaction (or not at all)."""
        row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        version = int(row[0]) if row is not None else (1 if self._tables() else SCHEMA_VERSION)
        if version >= SCHEMA_VERSION:
            return  # a fresh file, the current one, or a newer one (`_check_version` refuses it)
        with self.transaction():
            if version == 1:
                self._migrate_v1()
            self._db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )

    def _tables(self) -> set[str]:
        """The names of the tables that hold data (not `meta`)."""
        return self._backend.tables(self._db) - {"meta"}

    def _migrate_v1(self) -> None:
        """Version 1 → 2: message ids scoped by gateway, transaction ids by acquirer source.

        The tables are rebuilt with their new keys and copied. Version 1 had one namespace, so
        each linked receipt's message is found by id alone; the acquirer source of version 1
        transactions is not known here and stays '' until `adopt_unscoped` assigns it.
        """
        db = self._db
        old = tuple(
            t for t in ("messages", "transactions", "orphan_reversals") if t in self._tables()
        )
        columns = {row[1] for row in db.execute("PRAGMA table_info(messages)")}
        if columns and "events" not in columns:  # added within version 1
            db.execute("ALTER TABLE messages ADD COLUMN events TEXT NOT NULL DEFAULT ''")
        indexes = db.execute(
            f"SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
            f"AND tbl_name IN ({_marks(len(old))})",
            old,
        ).fetchall()
        for (name,) in indexes:
            db.execute(f'DROP INDEX "{name}"')
        for table in old:
            db.execute(f"ALTER TABLE {table} RENAME TO {table}_v1")
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                db.execute(statement)
        for table in {"messages", "transactions", "orphan_reversals"} - set(old):
            db.execute(f"ALTER TABLE {table} RENAME TO {table}_v1")  # empty, as just created
            for statement in _SCHEMA.split(";"):
                if f"TABLE IF NOT EXISTS {table} " in statement:
                    db.execute(statement)
        db.execute(
            "INSERT INTO messages (gateway, message_id, txn_ref, carrier, area, phone, "
            "submitted_ms, seen, final_status, final_cause, final_code, final_ms, events) "
            "SELECT gateway, message_id, txn_ref, carrier, area, phone, submitted_ms, seen, "
            "final_status, final_cause, final_code, final_ms, events FROM messages_v1"
        )
        shared = (
            "txn_id, rrn, terminal_id, merchant_id, acquirer, amount, currency, pan, result, "
            "response_code, txn_ms, sms_expected, original_txn_id, join_key, receipt_acquirer, "
            "state, message_id, decide_ms, outcome, cause, notify_ms, reversed_ms"
        )
        db.execute(
            f"INSERT INTO transactions (source, {shared}, message_gateway, due_ms) "
            f"SELECT '', {shared}, (SELECT m.gateway FROM messages_v1 m "
            "WHERE m.message_id = t.message_id), decide_ms FROM transactions_v1 t"
        )
        db.execute(
            "INSERT INTO orphan_reversals (source, original_txn_id, reversed_ms) "
            "SELECT '', original_txn_id, reversed_ms FROM orphan_reversals_v1"
        )
        for table in ("messages", "transactions", "orphan_reversals"):
            db.execute(f"DROP TABLE {table}_v1")

    def adopt_unscoped(self, sources: dict[str, tuple[str, ...]]) -> int:
        """Give transactions from before scoping (source '') their acquirer source.

        `sources` maps each acquirer source to its acquirer values, first source first: a row
        goes to the source that lists its acquirer, else to the first source. Returns the number
        of rows adopted.
        """
        if not sources:
            return 0
        with self.transaction():
            row = self._db.execute("SELECT 1 FROM transactions WHERE source = '' LIMIT 1")
            if row.fetchone() is None:
                return 0
            adopted = 0
            for name, acquirers in sources.items():
                cur = self._db.execute(
                    "UPDATE OR IGNORE transactions SET source = ? WHERE source = '' "
                    f"AND acquirer IN ({_marks(len(acquirers))})",
                    (name, *acquirers),
                )
                adopted += cur.rowcount
            first = next(iter(sources))
            cur = self._db.execute(
                "UPDATE OR IGNORE transactions SET source = ? WHERE source = ''", (first,)
            )
            self._db.execute(
                "UPDATE OR IGNORE orphan_reversals SET source = ? WHERE source = ''", (first,)
            )
            return adopted + cur.rowcount

    def close(self) -> None:
        """Close both connections."""
        with self._lock, self._read_lock, self._pages_lock:
            self._db.close()
            self._reader.close()
            self._pages.close()

    # ------------------------------------------------------------------ transactions

    @contextmanager
    def transaction(self) -> Iterator[Store]:
        """One atomic unit: everything inside commits together or not at all.

        While the database is down it fails at once (`StateUnavailable`) but for one probe per
        `StateHealth.retry_s`; counter deltas kept while it was down (`tally`) commit with it.
        Inside this thread's `batch` it is a savepoint, committed with the batch."""
        if self._batch_thread == threading.get_ident():
            with self.savepoint():
                yield self
            return
        with self.health.attempt(WRITE), self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self
                deferred = self._take_deferred()
                try:
                    self._add("counters", deferred)
                    started = time.perf_counter()
                    self._db.execute("COMMIT")
                except BaseException:
                    self._defer(deferred)
                    raise
                self.health.observe_commit(time.perf_counter() - started)
            except BaseException:
                # also after a failed COMMIT (SQLite keeps the transaction open then); on a lost
                # connection the ROLLBACK fails too, and the first error is the one to tell
                with suppress(*STATE_ERRORS):
                    self._db.execute("ROLLBACK")
                raise

    @contextmanager
    def batch(self) -> Iterator[None]:
        """One commit for the transactions this thread runs inside (each a savepoint of it).

        For a backlog read page after page: a page's rows share the database pages of its
        neighbours', and written once for several feed pages they cost a fraction of the
        writes. When a transaction inside fails, the ones before it still commit, as they
        would have one by one, and the failure is raised after the commit. Other threads'
        transactions wait for the batch, so it must stay short (see `Poller`)."""
        failure: BaseException | None = None
        with self.transaction():
            self._batch_thread = threading.get_ident()
            try:
                yield
            except BaseException as exc:
                failure = exc
            finally:
                self._batch_thread = None
        if failure is not None:
            raise failure

    def _take_deferred(self) -> Counter[LabelKey]:
        with self._deferred_lock:
            deferred, self._deferred = self._deferred, Counter()
        return deferred

    def _defer(self, deltas: Counter[LabelKey]) -> None:
        with self._deferred_lock:
            self._deferred.update(deltas)

    def tally(self, deltas: Counter[LabelKey]) -> None:
        """Add counter deltas now (alone: autocommit), or, while the database is down, with the
        next transaction that commits: what is counted during an outage is kept in memory until
        then (lost only if the process ends first). Never raises a state error."""
        try:
            with self.health.attempt(WRITE):
                self.add_counters(deltas)
        except STATE_ERRORS:
            self._defer(deltas)

    def writable(self) -> bool:
        """Whether a commit can work now: at once True while commits work; while they fail, a
        tiny write transaction (at most one per `StateHealth.retry_s`) says whether they work
        again. A poll asks before it fetches what it could not commit."""
        if not self.health.failing(WRITE):
            return True
        try:
            with self.transaction():
                self._db.execute("UPDATE meta SET value = value WHERE key = 'schema_version'")
        except STATE_ERRORS:
            return False
        return True

    @contextmanager
    def durable(self) -> Iterator[None]:
        """Commits inside are on disk when they return (synchronous=FULL), not only ordered.

        For what cannot be read again once acknowledged: pushes, consuming pulls. Elsewhere
        NORMAL stays (WAL: a power loss may drop the last commits, never corrupt the file; a
        re-read of the feed brings them back)."""
        with self.health.attempt(WRITE), self._lock:
            self._backend.set_durable(self._db, True)
            try:
                yield
            finally:
                self._backend.set_durable(self._db, False)

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A nested unit inside a transaction: on an exception only its own writes roll back."""
        self._db.execute("SAVEPOINT one_record")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK TO one_record")
            self._db.execute("RELEASE one_record")
            raise
        else:
            self._db.execute("RELEASE one_record")

    def run(self, step: Callable[[Store], T]) -> T:
        """Run `step` inside one transaction and return its result."""
        with self.transaction():
            return step(self)

    # ------------------------------------------------------------------ StateView (reads)

    def _rows_in(self, sql: str, keys: Sequence[str]) -> list[tuple[Any, ...]]:
        """Rows of `sql` (with `{marks}` for the IN list) for every key, in chunks."""
        rows: list[tuple[Any, ...]] = []
        for chunk in _chunks(list(keys)):
            rows += self._db.execute(sql.format(marks=_marks(len(chunk))), chunk).fetchall()
        return rows

    def messages(self, gateway: str, ids: Sequence[str]) -> dict[str, Message]:
        """A gateway's messages by id."""
        sql = (
            f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE gateway = ? "
            "AND message_id IN ({marks})"
        )
        return {row[0]: _message(row) for row in self._scoped_rows(sql, gateway, ids)}

    def messages_by_ref(self, txn_refs: Sequence[str]) -> dict[str, list[Message]]:
        """Every retained message (any gateway) by txn_ref, earliest submitted first."""
        sql = (
            f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE txn_ref IN ({{marks}}) "
            "ORDER BY txn_ref, submitted_ms, message_id"
        )
        out: dict[str, list[Message]] = {}
        for row in self._rows_in(sql, txn_refs):
            out.setdefault(row[2], []).append(_message(row))
        return out

    def receipts_by_key(self, join_keys: Sequence[str]) -> dict[str, list[Receipt]]:
        """Every retained receipt (any state, any source) by join key."""
        sql = (
            f"SELECT {_RECEIPT_COLUMNS} FROM transactions "
            "WHERE state IS NOT NULL AND join_key IN ({marks})"
        )
        out: dict[str, list[Receipt]] = {}
        for row in self._rows_in(sql, join_keys):
            out.setdefault(row[1], []).append(_receipt(row))
        return out

    def receipts(self, source: str, txn_ids: Sequence[str]) -> dict[str, Receipt]:
        """A source's receipts in any state by transaction id."""
        sql = (
            f"SELECT {_RECEIPT_COLUMNS} FROM transactions "
            "WHERE state IS NOT NULL AND source = ? AND txn_id IN ({marks})"
        )
        return {row[0]: _receipt(row) for row in self._scoped_rows(sql, source, txn_ids)}

    def known_transactions(self, source: str, txn_ids: Sequence[str]) -> set[str]:
        """Which of a source's transaction ids are already stored."""
        sql = "SELECT txn_id FROM transactions WHERE source = ? AND txn_id IN ({marks})"
        return {row[0] for row in self._scoped_rows(sql, source, txn_ids)}

    def orphan_reversals(self, source: str, txn_ids: Sequence[str]) -> dict[str, int]:
        """A source's reversals that arrived before their original transaction."""
        sql = (
            "SELECT original_txn_id, reversed_ms FROM orphan_reversals "
            "WHERE source = ? AND original_txn_id IN ({marks})"
        )
        return {row[0]: row[1] for row in self._scoped_rows(sql, source, txn_ids)}

    def _scoped_rows(self, sql: str, scope: str, keys: Sequence[str]) -> list[tuple[Any, ...]]:
        """Rows of `sql` (a scope parameter, then `{marks}` for the IN list), in chunks."""
        rows: list[tuple[Any, ...]] = []
        for chunk in _chunks(list(keys)):
            rows += self._db.execute(
                sql.format(marks=_marks(len(chunk))), (scope, *chunk)
            ).fetchall()
        return rows

    def messages_to_give_up(self, gateway: str, before_ms: int, limit: int) -> list[Message]:
        """Messages without final status submitted strictly before `before_ms`."""
        rows = self._db.execute(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE final_status IS NULL "
            "AND gateway = ? AND submitted_ms < ? ORDER BY submitted_ms LIMIT ?",
            (gateway, before_ms, limit),
        )
        return [_message(row) for row in rows]

    def receipts_due(self, before_ms: int, limit: int) -> list[Receipt]:
        """Open receipts that may be decided strictly before `before_ms` (`Receipt.due_ms`)."""
        rows = self._db.execute(
            f"SELECT {_RECEIPT_COLUMNS} FROM transactions WHERE state = 'open' "
            "AND due_ms < ? ORDER BY due_ms LIMIT ?",
            (before_ms, limit),
        )
        return [_receipt(row) for row in rows]

    def terminal_state_at(self, terminal_id: str, at_ms: int) -> TerminalState | None:
        """The terminal's state at `at_ms`: the latest change at or before it, else the first."""
        row = self._db.execute(
            "SELECT sms_notice_enabled, software_version FROM terminal_history "
            "WHERE terminal_id = ? AND since_ms <= ? ORDER BY since_ms DESC LIMIT 1",
            (terminal_id, at_ms),
        ).fetchone()
        if row is None:
            row = self._db.execute(
                "SELECT sms_notice_enabled, software_version FROM terminal_history "
                "WHERE terminal_id = ? ORDER BY since_ms LIMIT 1",
                (terminal_id,),
            ).fetchone()
        return None if row is None else TerminalState(bool(row[0]), row[1])

    def stored_terminals(self, terminal_ids: Sequence[str]) -> dict[str, StoredTerminal]:
        """Inventory rows and recorded history instants of these terminals, one query per
        table and chunk (terminals with neither are left out)."""
        rows = {
            row[0]: tuple(row[1:])
            for row in self._rows_in(
                f"SELECT terminal_id, {_TERMINAL_ROW_COLUMNS} FROM terminals "
                "WHERE terminal_id IN ({marks})",
                terminal_ids,
            )
        }
        history: dict[str, set[int]] = {}
        for terminal_id, since_ms in self._rows_in(
            "SELECT terminal_id, since_ms FROM terminal_history WHERE terminal_id IN ({marks})",
            terminal_ids,
        ):
            history.setdefault(terminal_id, set()).add(since_ms)
        return {
            terminal_id: StoredTerminal(
                rows.get(terminal_id), frozenset(history.get(terminal_id, ()))
            )
            for terminal_id in rows.keys() | history.keys()
        }

    def terminal(self, terminal_id: str) -> TerminalState | None:
        """The terminal's current state."""
        row = self._db.execute(
            "SELECT sms_notice_enabled, software_version FROM terminals WHERE terminal_id = ?",
            (terminal_id,),
        ).fetchone()
        return None if row is None else TerminalState(bool(row[0]), row[1])

    # ------------------------------------------------------------------ support-desk lookups

    def lookup(
        self, kind: str, value: str, from_ms: int = 0, to_ms: int = 0, limit: int = 100
    ) -> LookupRows:
        """Transactions by one key (`_LOOKUP_SQL`), with their messages, in one read snapshot.

        `terminal` and `phone_last4` take the time range [from_ms, to_ms]; at most `limit`
        transactions are returned, `truncated` says when there were more.
        """
        sql = _LOOKUP_SQL[kind]
        params: tuple[object, ...]
        if kind == "terminal":
            params = (value, from_ms, to_ms, limit + 1)
        elif kind == "phone_last4":
            params = (from_ms, to_ms, value, 10 * (limit + 1), limit + 1)
        else:
            params = (value, limit + 1)
        with self._read_lock:
            self._reader.execute("BEGIN")
            try:
                rows = self._reader.execute(sql, params).fetchall()
                truncated = len(rows) > limit
                transactions = [self._stored_transaction(row) for row in rows[:limit]]
                refs = sorted({t.join_key or t.rrn for t in transactions if t.join_key or t.rrn})
                messages: dict[str, list[StoredMessage]] = {}
                for chunk in _chunks(refs):
                    for row in self._reader.execute(
                        f"SELECT {_MESSAGE_COLUMNS} FROM messages "
                        f"WHERE txn_ref IN ({_marks(len(chunk))}) "
                        "ORDER BY submitted_ms, message_id",
                        chunk,
                    ):
                        message = StoredMessage(*(row[:7] + row[8:]))
                        messages.setdefault(message.txn_ref, []).append(message)
            finally:
                self._reader.execute("COMMIT")
        return LookupRows(transactions, messages, truncated)

    def _stored_transaction(self, row: tuple[Any, ...]) -> StoredTransaction:
        state = (
            self._reader.execute(
                "SELECT sms_notice_enabled, software_version FROM terminal_history "
                "WHERE terminal_id = ? AND since_ms <= ? ORDER BY since_ms DESC LIMIT 1",
                (row[2], row[10]),
            ).fetchone()
            or self._reader.execute(
                "SELECT sms_notice_enabled, software_version FROM terminal_history "
                "WHERE terminal_id = ? ORDER BY since_ms LIMIT 1",
                (row[2],),
            ).fetchone()
        )
        fields: dict[str, Any] = dict(zip(_TRANSACTION_FIELDS, row, strict=True))
        fields["sms_expected"] = bool(fields["sms_expected"])
        if state is not None:
            fields["terminal_notice"], fields["terminal_software"] = bool(state[0]), state[1]
        return StoredTransaction(**fields)

    def add_audit(self, entry: AuditEntry) -> None:
        """Record one lookup (its own small transaction)."""
        with self._lock:
            self._db.execute(
                f"INSERT INTO lookup_audit ({_AUDIT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    entry.at_ms,
                    entry.user,
                    entry.method,
                    entry.channel,
                    entry.remote,
                    entry.key_kind,
                    entry.key,
                    entry.from_ms,
                    entry.to_ms,
                    entry.results,
                    entry.status,
                ),
            )

    def audit_entries(self, from_ms: int, to_ms: int) -> list[AuditEntry]:
        """Recorded lookups with `from_ms <= at_ms < to_ms`, oldest first."""
        rows = self._reader_rows(
            f"SELECT {_AUDIT_COLUMNS} FROM lookup_audit WHERE at_ms >= ? AND at_ms < ? "
            "ORDER BY at_ms, id",
            (from_ms, to_ms),
        )
        return [AuditEntry(*row) for row in rows]  # type: ignore[arg-type]

    def prune_horizon_ms(self) -> int:
        """The latest prune's horizon (-1 before the first prune)."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'prune_horizon_ms'").fetchone()
        return -1 if row is None else int(row[0])

    def stay_counted(self, name: str, cursor: str) -> int:
        """How many invalid records a source already counted from `cursor` on pages that
        answered without `next_cursor` (0 when it moved on since)."""
        row = self._db.execute(
            "SELECT value FROM meta WHERE key = ?", (f"stay_invalid:{name}",)
        ).fetchone()
        if row is None:
            return 0
        stayed_at, counted = json.loads(row[0])
        return int(counted) if stayed_at == cursor else 0

    def set_stay_counted(self, name: str, cursor: str | None, counted: int) -> None:
        """Remember (inside the page's transaction) the invalid records counted from `cursor`,
        where the source stays; `None`: it moved on, forget."""
        key = f"stay_invalid:{name}"
        if cursor is None:
            self._db.execute("DELETE FROM meta WHERE key = ?", (key,))
            return
        self._db.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
            (key, json.dumps([cursor, counted])),
        )

    def prune_audit(self, before_ms: int) -> int:
        """Delete audit records older than `before_ms` (their own, longer retention)."""
        with self._lock:
            cur = self._db.execute("DELETE FROM lookup_audit WHERE at_ms < ?", (before_ms,))
            return cur.rowcount

    # ------------------------------------------------------------------ writes

    def apply(self, changes: Changes, source: str, at_ms: int | None = None) -> None:
        """Write one step's changes (inside a transaction); `at_ms` (Unix ms, default: the
        store's clock) is the exporter's now, the minute its outcome counts are kept under."""
        db = self._db
        if changes.messages:
            fresh = [m for m in changes.messages.values() if not m.stored]
            known = [m for m in changes.messages.values() if m.stored]
            db.executemany(
                f"INSERT INTO messages ({_MESSAGE_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [
                    (
                        m.message_id,
                        m.gateway,
                        m.txn_ref,
                        m.carrier,
                        m.area,
                        m.phone,
                        m.submitted_ms,
                        m.seen,
                        m.final_status,
                        m.final_cause,
                        m.final_code,
                        m.final_ms,
                        m.events,
                        m.acquirer,
                    )
                    for m in fresh
                ],
            )
            db.executemany(
                "UPDATE messages SET seen=?, final_status=?, final_cause=?, final_code=?, "
                "final_ms=?, events=? WHERE gateway=? AND message_id=?",
                [
                    (
                        m.seen,
                        m.final_status,
                        m.final_cause,
                        m.final_code,
                        m.final_ms,
                        m.events,
                        m.gateway,
                        m.message_id,
                    )
                    for m in known
                ],
            )
            for m in fresh:
                m.stored = True
        # A receipt opened in this step is written with its transaction's row, in one insert;
        # only receipts that were stored before are updated.
        inserted: set[tuple[str, str]] = set()
        if changes.transactions:
            receipts = changes.receipts
            rows = []
            for t in changes.transactions:
                r = receipts.get((source, t.txn_id))
                if r is not None:
                    inserted.add((source, t.txn_id))
                rows.append(
                    (
                        source,
                        t.txn_id,
                        t.rrn,
                        t.terminal_id,
                        t.merchant_id,
                        t.acquirer,
                        t.amount,
                        t.currency,
                        t.pan,
                        t.result,
                        t.response_code,
                        t.txn_ms,
                        int(t.sms_expected),
                        t.original_txn_id,
                        *(_NO_RECEIPT if r is None else _receipt_values(r)),
                    )
                )
            db.executemany(
                "INSERT INTO transactions (source, txn_id, rrn, terminal_id, merchant_id, "
                "acquirer, amount, currency, pan, result, response_code, txn_ms, sms_expected, "
                f"original_txn_id, {_RECEIPT_STATE_COLUMNS}) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                rows,
            )
        if changes.receipts:
            stored = [r for key, r in changes.receipts.items() if key not in inserted]
            still_open = [r for r in stored if r.state == "open"]
            # A receipt's join key and acquirer never change, nor does an open one's state:
            # its update leaves them (and the index by join key) alone.
            db.executemany(
                "UPDATE transactions SET message_id=?, decide_ms=?, outcome=?, cause=?, "
                "notify_ms=?, reversed_ms=?, message_gateway=?, due_ms=? "
                "WHERE source=? AND txn_id=?",
                [(*_receipt_values(r)[3:], r.source, r.txn_id) for r in still_open],
            )
            db.executemany(
                "UPDATE transactions SET join_key=?, receipt_acquirer=?, state=?, message_id=?, "
                "decide_ms=?, outcome=?, cause=?, notify_ms=?, reversed_ms=?, message_gateway=?, "
                "due_ms=? WHERE source=? AND txn_id=?",
                [(*_receipt_values(r), r.source, r.txn_id) for r in stored if r.state != "open"],
            )
        if changes.orphan_reversals:
            db.executemany(
                "INSERT INTO orphan_reversals (source, original_txn_id, reversed_ms) "
                "VALUES (?, ?, ?) ON CONFLICT (source, original_txn_id) DO UPDATE SET "
                "reversed_ms = min(reversed_ms, excluded.reversed_ms)",
                [(source, k, v) for k, v in changes.orphan_reversals.items()],
            )
        if changes.resolved_orphans:
            db.executemany(
                "DELETE FROM orphan_reversals WHERE source = ? AND original_txn_id = ?",
                [(source, k) for k in changes.resolved_orphans],
            )
        if changes.terminals:
            db.executemany(
                f"INSERT OR REPLACE INTO terminals (terminal_id, {_TERMINAL_ROW_COLUMNS}) "
                "VALUES (?,?,?,?,?,?,?,?,?)",
                [(t.terminal_id, *terminal_row(t, source)) for t in changes.terminals],
            )
        if changes.terminal_history:
            db.executemany(
                "INSERT OR IGNORE INTO terminal_history (terminal_id, since_ms, "
                "sms_notice_enabled, software_version) VALUES (?,?,?,?)",
                [
                    (terminal_id, since_ms, int(enabled), version)
                    for terminal_id, since_ms, enabled, version in changes.terminal_history
                ],
            )
        self.add_counters(changes.counters)
        self._add_outcome_counts(
            changes.counters, int(self.clock() * 1000) if at_ms is None else at_ms
        )
        self._add("gauges", changes.gauges)
        records: Counter[LabelKey] = Counter()
        for result, n in changes.records.items():
            records[("smswatch_records_total", (source, result))] += n
        self.add_counters(records)

    def _add(self, table: str, deltas: Counter[LabelKey]) -> None:
        rows = [(metric, encode_labels(labels), v) for (metric, labels), v in deltas.items() if v]
        if rows:
            self._db.executemany(
                f"INSERT INTO {table} (metric, labels, value) VALUES (?, ?, ?) "
                "ON CONFLICT (metric, labels) DO UPDATE SET value = value + excluded.value",
                rows,
            )

    def _add_outcome_counts(self, deltas: Counter[LabelKey], at_ms: int) -> None:
        """Add the deltas of `MINUTE_COUNTERS` to the minute and the quarter hour of `at_ms`
        (dropping spans past their keeping once a minute)."""
        kept: Counter[tuple[str, str]] = Counter()
        for (metric, labels), value in deltas.items():
            positions = MINUTE_COUNTERS.get(metric)
            if positions is not None and value:
                kept[(metric, encode_labels([labels[i] for i in positions]))] += value
        if not kept:
            return
        self._db.executemany(
            "INSERT INTO outcome_counts (span_ms, start_ms, metric, labels, value) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (span_ms, start_ms, metric, labels) "
            "DO UPDATE SET value = value + excluded.value",
            [
                (span, at_ms - at_ms % span, metric, labels, value)
                for span in OUTCOME_SPANS
                for (metric, labels), value in kept.items()
            ],
        )
        minute = at_ms - at_ms % MINUTE_MS
        if minute != self._outcomes_pruned_at:
            self._outcomes_pruned_at = minute
            for span, keep_ms in OUTCOME_SPANS.items():
                self._db.execute(
                    "DELETE FROM outcome_counts WHERE span_ms = ? AND start_ms < ?",
                    (span, minute - keep_ms),
                )

    def add_counters(self, deltas: Counter[LabelKey]) -> None:
        """Add deltas to counters (inside a transaction, or alone: autocommit)."""
        with self._lock:
            self._add("counters", deltas)

    def set_gauges(self, metric: str, values: dict[tuple[str, ...], float]) -> None:
        """Replace every series of a gauge metric."""
        self._db.execute("DELETE FROM gauges WHERE metric = ?", (metric,))
        self._db.executemany(
            "INSERT INTO gauges (metric, labels, value) VALUES (?, ?, ?)",
            [(metric, encode_labels(k), v) for k, v in values.items()],
        )

    def set_gauge(self, metric: str, labels: tuple[str, ...], value: float) -> None:
        """Set one gauge series."""
        self._db.execute(
            "INSERT OR REPLACE INTO gauges (metric, labels, value) VALUES (?, ?, ?)",
            (metric, encode_labels(labels), value),
        )

    # ------------------------------------------------------------------ sources

    def source_state(self, name: str) -> SourceState:
        """The committed position of a source (a fresh one starts at the beginning)."""
        row = self._db.execute(
            "SELECT name, cursor, watermark_ms, terminals_watermark_ms, last_success_ms, "
            "last_poll_ms, last_error FROM sources WHERE name = ?",
            (name,),
        ).fetchone()
        if row is None:
            return SourceState(name, "", -1, None, None, None, "")
        return SourceState(*row)

    def advance_source(self, name: str, cursor: str, watermark_ms: int) -> None:
        """Move a source's cursor and watermark (inside the page's transaction).

        An empty cursor means "stay": the stored cursor is kept, never reset to the beginning.
        """
        self._db.execute(
            "INSERT INTO sources (name, cursor, watermark_ms) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET cursor = "
            "CASE WHEN excluded.cursor = '' THEN cursor ELSE excluded.cursor END, "
            "watermark_ms = max(watermark_ms, excluded.watermark_ms)",
            (name, cursor, watermark_ms),
        )

    def set_terminals_watermark(self, name: str, watermark_ms: int) -> None:
        """Record up to when a source's terminal inventory is known."""
        self._db.execute(
            "INSERT INTO sources (name, terminals_watermark_ms) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET terminals_watermark_ms = "
            "max(coalesce(terminals_watermark_ms, -1), excluded.terminals_watermark_ms)",
            (name, watermark_ms),
        )

    def record_poll(self, name: str, ok: bool, error: str) -> None:
        """Record the end of a poll: its time, and the last success when it succeeded."""
        now_ms = int(self.clock() * 1000)
        with self._lock:
            self._db.execute(
                "INSERT INTO sources (name, last_poll_ms, last_success_ms, last_error) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
                "last_poll_ms = excluded.last_poll_ms, "
                "last_success_ms = coalesce(excluded.last_success_ms, last_success_ms), "
                "last_error = excluded.last_error",
                (name, now_ms, now_ms if ok else None, error),
            )

    def watermark(self, names: Sequence[str], with_terminals: Sequence[str]) -> int:
        """The minimum committed watermark over sources (terminal inventories included)."""
        marks: list[int] = []
        for name in names:
            state = self.source_state(name)
            marks.append(state.watermark_ms)
            if name in with_terminals:
                marks.append(
                    -1 if state.terminals_watermark_ms is None else state.terminals_watermark_ms
                )
        return min(marks) if marks else -1

    # ------------------------------------------------------------------ push listening

    def open_push_gap(self, name: str) -> None:
        """At start: the exporter was not listening to a push source since the last push it
        took (its own downtime); the gap closes with the next push (`hear_push`)."""
        with self.transaction():
            self._db.execute(
                "UPDATE push_listening SET gap_from_ms = heard_ms "
                "WHERE source = ? AND gap_from_ms IS NULL",
                (name,),
            )

    def hear_push(self, name: str, at_ms: int, received_ms: int) -> int:
        """Record a push taken at provider time `at_ms` (inside its transaction), and when it
        was received (its last success). Returns the ms of the unobserved gap it closes."""
        row = self._db.execute(
            "SELECT heard_ms, gap_from_ms FROM push_listening WHERE source = ?", (name,)
        ).fetchone()
        gap = 0
        if row is None:
            self._db.execute(
                "INSERT INTO push_listening (source, first_ms, heard_ms) VALUES (?, ?, ?)",
                (name, at_ms, at_ms),
            )
        else:
            heard_ms, gap_from_ms = row
            if gap_from_ms is not None:
                gap = max(0, at_ms - gap_from_ms)
                if gap:
                    self._db.execute(
                        "INSERT OR REPLACE INTO unobserved_windows (source, from_ms, to_ms) "
                        "VALUES (?, ?, ?)",
                        (name, gap_from_ms, at_ms),
                    )
            self._db.execute(
                "UPDATE push_listening SET heard_ms = ?, gap_from_ms = NULL WHERE source = ?",
                (max(heard_ms, at_ms), name),
            )
        self._db.execute(
            "INSERT INTO sources (name, last_success_ms) VALUES (?, ?) ON CONFLICT (name) "
            "DO UPDATE SET last_success_ms = max(coalesce(last_success_ms, 0), "
            "excluded.last_success_ms)",
            (name, received_ms),
        )
        return gap

    def unobserved_windows(self, names: Sequence[str]) -> list[tuple[int, int]]:
        """Times `[from, to)` (provider clock, ms) in which any of these push sources was not
        watched: before its first push, its closed gaps, and a gap still open."""
        never, forever = -(2**62), 2**62
        windows: list[tuple[int, int]] = []
        for name in names:
            row = self._db.execute(
                "SELECT first_ms, gap_from_ms FROM push_listening WHERE source = ?", (name,)
            ).fetchone()
            if row is None:
                return [(never, forever)]
            windows.append((never, row[0]))
            if row[1] is not None:
                windows.append((row[1], forever))
            windows.extend(
                (int(a), int(b))
                for a, b in self._db.execute(
                    "SELECT from_ms, to_ms FROM unobserved_windows WHERE source = ?", (name,)
                )
            )
        return windows

    def pending_oldest_ms(self, gateway: str) -> int | None:
        """Submit time of the oldest message without final status."""
        row = self._db.execute(
            "SELECT min(submitted_ms) FROM messages WHERE final_status IS NULL AND gateway = ?",
            (gateway,),
        ).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def foreign_writes(self) -> int:
        """A number that changes whenever another connection (another process) has committed
        to the state since the last call; this store's own commits leave it as it is (on
        PostgreSQL: another connection's write transaction, see `dialect.COMMIT_CLOCK`)."""
        with self._lock:  # not in the middle of another thread's transaction
            return self._backend.data_version(self._db)

    def terminal_groups(self, source: str) -> list[tuple[str, bool, str, int]]:
        """(acquirer, sms_notice_enabled, software_version, how many) of a source's terminals."""
        rows = self._db.execute(
            "SELECT acquirer, sms_notice_enabled, software_version, count(*) FROM terminals "
            "WHERE source = ? GROUP BY acquirer, sms_notice_enabled, software_version",
            (source,),
        )
        return [(row[0], bool(row[1]), row[2], row[3]) for row in rows]

    def update_gauge(self, metric: str, values: dict[tuple[str, ...], float]) -> int:
        """Set these series of a gauge, writing only those whose stored value differs; returns
        how many were written (series not in `values` stay as they are)."""
        stored = dict(
            self._db.execute("SELECT labels, value FROM gauges WHERE metric = ?", (metric,))
        )
        rows = [
            (metric, labels, value)
            for labels, value in ((encode_labels(k), v) for k, v in values.items())
            if stored.get(labels) != value
        ]
        self._db.executemany(
            "INSERT OR REPLACE INTO gauges (metric, labels, value) VALUES (?, ?, ?)", rows
        )
        return len(rows)

    def label_values(self, metric: str, position: int) -> set[str]:
        """Distinct values of one label of a stored counter."""
        rows = self._reader_rows("SELECT labels FROM counters WHERE metric = ?", (metric,))
        return {decode_labels(str(row[0]))[position] for row in rows}

    # ------------------------------------------------------------------ reads for scrapes

    def _reader_rows(self, sql: str, params: Sequence[object] = ()) -> list[tuple[object, ...]]:
        with self._read_lock:
            return list(self._reader.execute(sql, params))

    def snapshot(self) -> Snapshot:
        """Counters, gauges and source states as committed, read in one read transaction."""
        with self.health.attempt(READ), self._read_lock:
            self._reader.execute("BEGIN")
            try:
                counters = [
                    tuple(r)
                    for r in self._reader.execute("SELECT metric, labels, value FROM counters")
                ]
                gauges = [
                    tuple(r)
                    for r in self._reader.execute("SELECT metric, labels, value FROM gauges")
                ]
                sources = [
                    SourceState(*r)
                    for r in self._reader.execute(
                        "SELECT name, cursor, watermark_ms, terminals_watermark_ms, "
                        "last_success_ms, last_poll_ms, last_error FROM sources"
                    )
                ]
            finally:
                self._reader.execute("COMMIT")
        return counters, gauges, sources

    def page_view(self, starts_ms: Sequence[int], now_ms: int) -> PageView:
        """Sources, unlisted codes and the outcome counters' increase from each of `starts_ms`
        until `now_ms` (whole minutes of the exporter's clock: a start inside a minute counts
        that minute), in one short read transaction of the pages' own connection.

        The quarter hours between a start and now are read as such, the minutes only at the
        ends: a day is about 100 rows per series, however many records the state holds. A
        start more than two hours back must be on a quarter hour (local midnights are)."""
        from exporter.classify import UNLISTED_CODES

        now_quarter = now_ms - now_ms % QUARTER_MS
        ranges: list[tuple[int, int, int, int]] = []  # (start's index, span, from, until)
        for index, start in enumerate(starts_ms):
            first = start - start % MINUTE_MS
            quarters = -(-first // QUARTER_MS) * QUARTER_MS  # the first whole quarter
            if quarters >= now_quarter:  # within the current quarter hour: minutes only
                ranges.append((index, MINUTE_MS, first, now_ms + 1))
                continue
            ranges.append((index, MINUTE_MS, first, quarters))
            ranges.append((index, QUARTER_MS, quarters, now_quarter))
            ranges.append((index, MINUTE_MS, now_quarter, now_ms + 1))
        with self._pages_lock:
            self._pages.execute("BEGIN")
            try:
                sources = [
                    SourceState(*r)
                    for r in self._pages.execute(
                        "SELECT name, cursor, watermark_ms, terminals_watermark_ms, "
                        "last_success_ms, last_poll_ms, last_error FROM sources"
                    )
                ]
                unlisted = self._pages.execute(
                    "SELECT labels, value FROM counters WHERE metric = ? ORDER BY value DESC",
                    (UNLISTED_CODES,),
                ).fetchall()
                increases: dict[tuple[str, tuple[str, ...]], list[float]] = {}
                for index, span, since, until in ranges:
                    for metric, labels, value in self._pages.execute(
                        "SELECT metric, labels, sum(value) FROM outcome_counts "
                        "WHERE span_ms = ? AND start_ms >= ? AND start_ms < ? "
                        "GROUP BY metric, labels",
                        (span, since, until),
                    ):
                        key = (metric, decode_labels(labels))
                        increases.setdefault(key, [0.0] * len(starts_ms))[index] += value
            finally:
                self._pages.execute("COMMIT")
        return PageView(
            sources=sources,
            unlisted=_unlisted(unlisted),
            increases=increases,
        )

    # ------------------------------------------------------------------ leases (replicas)

    def db_now_ms(self) -> int:
        """Now on the one clock every replica judges leases by: the PostgreSQL server's
        (replicas on different hosts), or this host's wall clock for a SQLite file (its
        replicas share the host). Never the exporter's (maybe simulated) clock."""
        if self._backend.name == "postgresql":
            with self._lock:
                row = self._db.execute(
                    "SELECT CAST(extract(epoch FROM clock_timestamp()) * 1000 AS BIGINT)"
                ).fetchone()
            return int(row[0])
        return int(time.time() * 1000)

    def limit_idle_transactions(self, ms: int) -> None:
        """PostgreSQL ends a transaction of this store's writer that waits on its client for
        longer than `ms` (a replica paused inside one), so its write lock does not hold every
        replica's writes up; the paused replica's commit then fails. SQLite: nothing to set
        (its replicas share a host; a paused writer holds the file's lock until it resumes)."""
        if self._backend.name == "postgresql":
            with self._lock:
                self._db.execute(f"SET idle_in_transaction_session_timeout TO {int(ms)}")

    def leases(self) -> dict[str, LeaseRow]:
        """Every lease as committed (inside a write transaction: as the last commit left it)."""
        with self._lock:
            rows = self._db.execute("SELECT name, holder, token, expires_ms FROM leases").fetchall()
        return {r[0]: LeaseRow(r[0], r[1], int(r[2]), int(r[3])) for r in rows}

    def heartbeat(self, replica: str, now_ms: int) -> None:
        """Say that `replica` is alive at `now_ms` (database clock; inside a transaction)."""
        self._db.execute(
            "INSERT INTO replicas (replica, seen_ms, started_ms) VALUES (?, ?, ?) "
            "ON CONFLICT (replica) DO UPDATE SET seen_ms = excluded.seen_ms",
            (replica, now_ms, now_ms),
        )

    def replicas_seen(self, since_ms: int) -> list[str]:
        """Replicas heard at or after `since_ms`, sorted; older heartbeats are forgotten."""
        self._db.execute("DELETE FROM replicas WHERE seen_ms < ?", (since_ms,))
        rows = self._db.execute("SELECT replica FROM replicas ORDER BY replica").fetchall()
        return [r[0] for r in rows]

    def forget_replica(self, replica: str) -> None:
        """Drop a replica's heartbeat (it stopped, or was found dead)."""
        self._db.execute("DELETE FROM replicas WHERE replica = ?", (replica,))

    def take_lease(
        self, name: str, replica: str, now_ms: int, ttl_ms: int, holder_dead: bool = False
    ) -> int | None:
        """Acquire or renew lease `name` for `replica` until `now_ms + ttl_ms` (inside a write
        transaction); returns its fencing token, or None while another replica holds it.

        Renewing keeps the token; taking a free, expired or dead holder's lease bumps it, so
        every page committed under the previous token is refused from then on."""
        row = self._db.execute(
            "SELECT holder, token, expires_ms FROM leases WHERE name = ?", (name,)
        ).fetchone()
        until = now_ms + ttl_ms
        if row is None:
            self._db.execute(
                "INSERT INTO leases (name, holder, token, expires_ms, acquired_ms) "
                "VALUES (?, ?, 1, ?, ?)",
                (name, replica, until, now_ms),
            )
            return 1
        holder, token, expires_ms = str(row[0]), int(row[1]), int(row[2])
        if holder == replica and expires_ms > now_ms:
            self._db.execute("UPDATE leases SET expires_ms = ? WHERE name = ?", (until, name))
            return token
        if holder and expires_ms > now_ms and not holder_dead:
            return None
        self._db.execute(
            "UPDATE leases SET holder = ?, token = ?, expires_ms = ?, acquired_ms = ? "
            "WHERE name = ?",
            (replica, token + 1, until, now_ms, name),
        )
        return token + 1

    def release_lease(self, name: str, replica: str, token: int) -> bool:
        """Give up a lease still held under `token` (inside a write transaction): free at
        once for another replica. Returns whether it was still held."""
        cur = self._db.execute(
            "UPDATE leases SET holder = '', expires_ms = 0 "
            "WHERE name = ? AND holder = ? AND token = ?",
            (name, replica, token),
        )
        return cur.rowcount > 0

    def lease_is_current(self, name: str, replica: str, token: int) -> bool:
        """The fencing check, inside the committing transaction (under the write lock):
        `replica` still holds `name` under `token`, unexpired on the database's clock."""
        row = self._db.execute(
            "SELECT holder, token, expires_ms FROM leases WHERE name = ?", (name,)
        ).fetchone()
        return (
            row is not None
            and row[0] == replica
            and int(row[1]) == token
            and int(row[2]) > self.db_now_ms()
        )

    # ------------------------------------------------------------------ quarantine

    def add_quarantined(self, entries: Sequence[QuarantinedRecord]) -> None:
        """Keep refused records for inspection (inside the page's transaction)."""
        self._db.executemany(
            "INSERT INTO quarantine (at_ms, source, kind, reason, record) VALUES (?,?,?,?,?)",
            [(e.at_ms, e.source, e.kind, e.reason, e.record) for e in entries],
        )

    def quarantined_records(self, source: str, records: Sequence[str]) -> set[str]:
        """Which of these quarantine texts a source already keeps."""
        found: set[str] = set()
        for start in range(0, len(records), 500):
            chunk = list(records[start : start + 500])
            rows = self._db.execute(
                "SELECT record FROM quarantine WHERE source = ? AND record IN "
                f"({','.join('?' * len(chunk))})",
                (source, *chunk),
            ).fetchall()
            found.update(row[0] for row in rows)
        return found

    def quarantined(self, limit: int = 100, source: str = "") -> list[QuarantinedRecord]:
        """The most recently quarantined records, newest first (of one source, or all)."""
        rows = self._reader_rows(
            "SELECT at_ms, source, kind, reason, record FROM quarantine "
            "WHERE ? = '' OR source = ? ORDER BY at_ms DESC, id DESC LIMIT ?",
            (source, source, limit),
        )
        return [QuarantinedRecord(*row) for row in rows]  # type: ignore[arg-type]

    # ------------------------------------------------------------------ terminals

    def retire_terminals(self, source: str, present: set[str]) -> int:
        """Drop a source's terminals absent from its latest full inventory (decommissioned).

        Their history stays, so past receipts still read the state they had."""
        known = [
            row[0]
            for row in self._db.execute(
                "SELECT terminal_id FROM terminals WHERE source = ?", (source,)
            )
        ]
        gone = [(terminal_id,) for terminal_id in known if terminal_id not in present]
        self._db.executemany("DELETE FROM terminals WHERE terminal_id = ?", gone)
        return len(gone)

    def prune(self, before_ms: int) -> int:
        """Delete decided transactions, final messages, reversals still without their original
        and quarantined records older than `before_ms`.

        `before_ms` becomes the prune horizon (`prune_horizon_ms`): records older than it are
        refused from then on, since what would dedup them may be gone.
        """
        with self.transaction():
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES ('prune_horizon_ms', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = "
                "max(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))",
                (str(before_ms),),
            )
            removed_extra = 0
            for sql in (
                "DELETE FROM orphan_reversals WHERE reversed_ms < ?",
                "DELETE FROM quarantine WHERE at_ms < ?",
            ):
                removed_extra += self._db.execute(sql, (before_ms,)).rowcount
            cur = self._db.execute(
                "DELETE FROM transactions WHERE txn_ms < ? AND (state IS NULL OR state != 'open')",
                (before_ms,),
            )
            removed = cur.rowcount
            cur = self._db.execute(
                "DELETE FROM messages WHERE submitted_ms < ? AND final_status IS NOT NULL",
                (before_ms,),
            )
            return removed + cur.rowcount + removed_extra

    # ------------------------------------------------------------------ canary probes

    def add_canary(self, canary: CanaryRow) -> None:
        """Record a canary before it is sent, so that its reports are known as canary ones."""
        with self._lock:
            self._db.execute(
                "INSERT INTO canaries (canary_id, gateway, message_id, carrier, area, phone, "
                "nonce, sent_ms, timeline) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    canary.canary_id,
                    canary.gateway,
                    canary.message_id,
                    canary.carrier,
                    canary.area,
                    canary.phone,
                    canary.nonce,
                    canary.sent_ms,
                    json.dumps(canary.timeline),
                ),
            )

    def canaries_among(
        self, gateway: str, message_ids: Sequence[str], refs: Sequence[str]
    ) -> dict[str, CanaryRow]:
        """The canaries of a gateway known by one of these message ids or references, by
        whichever of the two matched (both keys present when both did)."""
        found: dict[str, CanaryRow] = {}
        ids = sorted({m for m in message_ids if m})
        for row in self._scoped_rows(
            f"SELECT {_CANARY_COLUMNS} FROM canaries WHERE gateway = ? "
            "AND message_id IN ({marks})",
            gateway,
            ids,
        ):
            canary = _canary(row)
            found[canary.message_id] = canary
        for row in self._rows_in(
            f"SELECT {_CANARY_COLUMNS} FROM canaries WHERE canary_id IN ({{marks}})",
            sorted({r for r in refs if r}),
        ):
            canary = _canary(row)
            if canary.gateway == gateway:
                found[canary.canary_id] = canary
        return found

    def canary(self, canary_id: str) -> CanaryRow | None:
        """One canary as committed (read connection: what another process wrote shows too)."""
        rows = self._reader_rows(
            f"SELECT {_CANARY_COLUMNS} FROM canaries WHERE canary_id = ?", (canary_id,)
        )
        return _canary(rows[0]) if rows else None

    def open_canaries(self) -> list[CanaryRow]:
        """Canaries without a verdict, oldest first."""
        rows = self._db.execute(
            f"SELECT {_CANARY_COLUMNS} FROM canaries WHERE verdict IS NULL ORDER BY sent_ms"
        ).fetchall()
        return [_canary(row) for row in rows]

    def update_canary(self, canary: CanaryRow) -> None:
        """Write a canary's progress (inside a transaction)."""
        self._db.execute(
            "UPDATE canaries SET message_id = ?, send_error = ?, report_status = ?, "
            "report_ms = ?, handset_ms = ?, verdict = ?, cause = ?, timeline = ? "
            "WHERE canary_id = ?",
            (
                canary.message_id,
                canary.send_error,
                canary.report_status,
                canary.report_ms,
                canary.handset_ms,
                canary.verdict,
                canary.cause,
                json.dumps(canary.timeline),
                canary.canary_id,
            ),
        )

    def canaries_by_nonce(self, nonces: Sequence[str]) -> dict[str, CanaryRow]:
        """Canaries by the nonce their body carried."""
        sql = f"SELECT {_CANARY_COLUMNS} FROM canaries WHERE nonce IN ({{marks}})"
        return {c.nonce: c for c in (_canary(row) for row in self._rows_in(sql, list(nonces)))}

    def prune_canaries(self, before_ms: int) -> int:
        """Forget decided canaries sent before `before_ms`."""
        with self.transaction():
            return self._db.execute(
                "DELETE FROM canaries WHERE sent_ms < ? AND verdict IS NOT NULL", (before_ms,)
            ).rowcount

    # ------------------------------------------------------------------ moving a state

    def copy_from(self, other: Store, batch: int = 5000) -> dict[str, int]:
        """Copy every row of `other`'s state into this one, which must hold no data yet: read
        in one snapshot of `other`, written in one transaction here (all or nothing). Returns
        the rows copied per table."""
        copied: dict[str, int] = {}
        with self.transaction(), other._read_lock:
            for table in _TABLES:
                if self._db.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone() is not None:
                    raise StateError(f"the target state already holds data (table {table})")
            other._reader.execute("BEGIN")
            try:
                for table in ("meta", *_TABLES):
                    cursor = other._reader.execute(f"SELECT * FROM {table}")
                    columns = [d[0] for d in cursor.description]
                    verb = "INSERT OR REPLACE" if table == "meta" else "INSERT"
                    sql = (
                        f"{verb} INTO {table} ({', '.join(columns)}) "
                        f"VALUES ({_marks(len(columns))})"
                    )
                    copied[table] = 0
                    while rows := cursor.fetchmany(batch):
                        self._db.executemany(sql, [tuple(row) for row in rows])
                        copied[table] += len(rows)
                    if table in _TABLES_WITH_ID:
                        self._backend.continue_ids(self._db, table)
            finally:
                other._reader.execute("COMMIT")
        return copied

    def row_counts(self) -> dict[str, int]:
        """How many rows each table holds, as committed."""
        return {
            table: int(self._reader_rows(f"SELECT count(*) FROM {table}")[0][0])  # type: ignore[call-overload]
            for table in ("meta", *_TABLES)
        }

    def open_receipts(self) -> list[Receipt]:
        """Every open receipt, by due time then source and transaction id."""
        receipts = self.receipts_due(2**62, 2**62)
        return sorted(receipts, key=lambda r: (r.due_ms or 0, r.source, r.txn_id))


_CANARY_COLUMNS = (
    "canary_id, gateway, message_id, carrier, area, phone, nonce, sent_ms, send_error, "
    "report_status, report_ms, handset_ms, verdict, cause, timeline"
)


@dataclass
class CanaryRow:
    """One canary SMS and what is known of its two proofs of delivery."""

    canary_id: str
    gateway: str
    message_id: str
    carrier: str
    area: str
    phone: str  # masked
    nonce: str
    sent_ms: int
    send_error: str = ""
    report_status: str | None = None
    report_ms: int | None = None
    handset_ms: int | None = None
    verdict: str | None = None
    cause: str | None = None
    #: (at_ms, what, detail) in the order they were learned.
    timeline: list[list[Any]] = field(default_factory=list)


def _canary(row: Sequence[Any]) -> CanaryRow:
    values = list(row)
    timeline = values.pop()
    canary = CanaryRow(*values)
    canary.timeline = json.loads(timeline) if timeline else []
    return canary


_TABLES = tuple(re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", _SCHEMA)[1:])  # meta aside
_TABLES_WITH_ID = tuple(
    re.findall(r"CREATE TABLE IF NOT EXISTS (\w+) \(\s*id INTEGER PRIMARY KEY", _SCHEMA)
)


def open_store(config: Config, clock: Callable[[], float] = time.time) -> Store:
    """The store `config` names: its SQLite file, or its PostgreSQL database."""
    if config.state_backend == "postgresql":
        backend = PostgreSQL(config.state_dsn, config.state_password)
        return Store(config.state_dsn, clock, backend)
    return Store(config.state_path, clock)
