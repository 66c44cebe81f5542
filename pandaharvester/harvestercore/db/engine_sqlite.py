"""The SQLite engine (stdlib ``sqlite3``): WAL, busy retries, ``BEGIN IMMEDIATE`` for writers.

See :mod:`.engine` for the interface every engine gives the DB modules.
"""

from __future__ import annotations

import datetime
import os
import random
import re
import sqlite3
import threading
import time
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from pandaharvester.errors import DBError

from ..log_utils import setup_logger
from .instance_tables import table_names
from .storage_sqlite import StorageWatch

if TYPE_CHECKING:
    from .engine import DBSettings

_logger = setup_logger("db_proxy")

# chunk size of ``IN (...)`` lists and executemany batches
IN_CHUNK = 500
MANY_CHUNK = 5000

_TS_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
BUSY_SLICE = 1.0
_BUSY_MARKERS = ("database is locked", "database is busy", "database table is locked")


_CORRUPT_MARKERS = ("malformed", "not a database", "file is encrypted")
_UNWRITABLE_MARKERS = ("readonly database", "unable to open", "disk i/o error", "database or disk is full")


def file_problem(path: str, exc: BaseException) -> DBError | None:
    """A DBError naming ``path`` and what to do when ``exc`` says the DB file itself is unusable
    (corrupt, read-only, unreadable, disk full); None for any other error."""
    if not isinstance(exc, sqlite3.DatabaseError):
        return None
    text = str(exc).lower()
    if any(m in text for m in _CORRUPT_MARKERS):
        return DBError(f"the DB file {path} is corrupt ({exc}): stop harvester, move the file away (or restore "
                       f"a backup) and restart; the tables are re-created at start-up")
    if any(m in text for m in _UNWRITABLE_MARKERS):
        return DBError(f"cannot write the DB file {path} ({exc}): the file and its directory must be writable "
                       f"by the harvester user (SQLite creates {os.path.basename(path)}-wal and -shm next to "
                       f"it) and the disk must not be full")
    return None


def is_busy_error(exc: BaseException) -> bool:
    """True for SQLite's transient "database is locked/busy" errors."""
    return isinstance(exc, sqlite3.OperationalError) and any(m in str(exc).lower() for m in _BUSY_MARKERS)


# values the driver takes as they are (most of a row): no call to _adapt for them
_FOR_UPDATE_RE = re.compile(r"\s+FOR\s+UPDATE(\s+SKIP\s+LOCKED|\s+NOWAIT)?", re.I)
_INSERT_IGNORE_RE = re.compile(r"INSERT\s+IGNORE", re.I)

_AS_IS = frozenset({str, int, float, type(None), bytes})


def _adapt(value: Any) -> Any:
    # datetimes are stored as fixed-width text so that string comparison is time comparison
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None and value.year >= 1000:
            return value.isoformat(" ", "microseconds")  # same text as _TS_FORMAT, twice as fast
        return value.strftime(_TS_FORMAT)
    if isinstance(value, bool):
        return int(value)
    return value


def _convert_timestamp(raw: bytes) -> datetime.datetime | None:
    text = raw.decode()
    if len(text) == 26 and text[10] == " " and text[19] == "." and text[20:].isdigit():
        # the fixed-width form _adapt writes: fromisoformat reads it 40x faster than strptime
        try:
            return datetime.datetime.fromisoformat(text)
        except ValueError:
            pass
    for fmt in (_TS_FORMAT, "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S"):
        try:
            return datetime.datetime.strptime(text, fmt)
        except ValueError:
            continue
    return None


# "timestamp" columns come back as datetimes (a superset of the stdlib converter: also accepts the
# ISO "T" form, and gives None instead of raising on a malformed value)
sqlite3.register_converter("timestamp", _convert_timestamp)


class SQLiteEngine:
    """SQLite (stdlib ``sqlite3``): WAL, busy timeout, ``BEGIN IMMEDIATE`` for writers.

    One engine object per DB file; each ``DBProxy`` owns one connection made by :meth:`connect`
    and uses it from one thread at a time.
    """

    name = "sqlite"
    ts_type = "timestamp"
    errors: tuple[type[BaseException], ...] = (sqlite3.Error,)
    # no row lock clause: BEGIN IMMEDIATE serialises the pickers
    for_update = ""
    # the stdlib driver's positional marker (insert_sql, raw executemany with rows)
    positional = "?"

    def __init__(self, settings: DBSettings):
        self.settings = settings
        self.path = settings.database_filename
        if not self.path:
            raise DBError("[db] database_filename is empty: set it to the path of the Harvester SQLite file "
                          "in panda_harvester.cfg")
        self.busy_timeout = max(float(settings.busy_timeout), 0.1)
        # SQLite's own busy handler waits at most this long per attempt; the retry loop around it
        # (back-off, a warning per retry) runs until busy_timeout, so waits show up in the log
        self.busy_slice = min(BUSY_SLICE, self.busy_timeout / 4)
        # writers of this process take turns here before BEGIN IMMEDIATE: a waiting thread is woken
        # as soon as the writer before it commits, instead of sleeping in SQLite's busy handler
        # (which polls with growing sleeps of up to 100 ms); other processes still meet at the file
        # lock. Re-entrant: a thread writing through a second connection meets SQLite's lock as before
        self._write_turn = threading.RLock()
        # statements captured by tests (EXPLAIN QUERY PLAN checks); None = off
        self.capture: list[str] | None = None
        # [db] tablePrefix (None: the tables' names as written)
        self.tables = table_names(settings.table_prefix)
        # the file's identity and write condition (disk full, read-only, deleted underneath, ...)
        self.storage = StorageWatch(self.path)
        # connection id -> total_changes at BEGIN, kept while a condition lasts (see commit)
        self._changes_at_begin: dict[int, int] = {}

    # ------------------------------------------------------------ connection
    def _prepare_file(self) -> None:
        directory = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(directory):
            raise DBError(f"directory of the DB file {self.path} does not exist: create {directory} "
                          f"or change [db] database_filename")
        try:
            read_only_fs = bool(os.statvfs(directory).f_flag & os.ST_RDONLY)
        except OSError:
            read_only_fs = False
        if read_only_fs:
            raise DBError(f"the DB file {self.path}: read-only: the filesystem of {directory} is mounted read-only; "
                          f"remount it read-write (mount -o remount,rw) or change [db] database_filename")
        if not os.path.exists(self.path):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
                os.close(fd)
            except OSError as exc:
                raise DBError(f"cannot create the DB file {self.path}: {exc.strerror}; make {directory} "
                              f"writable for the harvester user or change [db] database_filename") from exc
        elif not os.access(self.path, os.R_OK | os.W_OK):
            raise DBError(f"the DB file {self.path} is not readable and writable by this user: fix its "
                          f"ownership/permissions (chmod 600, owned by the harvester user)")
        if not os.access(directory, os.W_OK | os.X_OK):
            raise DBError(f"the directory {directory} of the DB file {self.path} is not writable by this user: "
                          f"SQLite creates {os.path.basename(self.path)}-wal and -shm there; make it writable "
                          f"for the harvester user or change [db] database_filename")

    def connect(self, read_only: bool = False) -> sqlite3.Connection:
        """Open a connection with WAL and the busy timeout; DBError naming the path on failure
        (DBStorageError when the file the other connections use was deleted or replaced: a new
        file is never made next to it)."""
        if not read_only:
            lost = self.storage.lost()
            if lost is not None:
                raise lost
            self._prepare_file()
        try:
            if read_only:
                uri = "file:" + os.path.abspath(self.path) + "?mode=ro"
                con = sqlite3.connect(uri, uri=True, timeout=self.busy_slice,
                                      detect_types=sqlite3.PARSE_DECLTYPES, check_same_thread=False,
                                      isolation_level=None)
            else:
                con = sqlite3.connect(self.path, timeout=self.busy_slice,
                                      detect_types=sqlite3.PARSE_DECLTYPES, check_same_thread=False,
                                      isolation_level=None)
            con.row_factory = sqlite3.Row
            con.execute(f"PRAGMA busy_timeout = {int(self.busy_slice * 1000)}")
            if not read_only:
                self._retry(lambda: con.execute("PRAGMA journal_mode = WAL").fetchone(), "journal_mode")
                con.execute("PRAGMA synchronous = NORMAL")
            # touch the schema: a corrupt file fails here, not in the middle of an agent cycle
            self._retry(lambda: con.execute("SELECT count(*) FROM sqlite_master").fetchone(), "opening")
        except sqlite3.DatabaseError as exc:
            if is_busy_error(exc):
                raise DBError(f"the DB file {self.path} stayed locked for {self.busy_timeout} s while "
                              f"opening it: another process holds a long transaction") from exc
            problem = file_problem(self.path, exc)
            if problem is not None:
                raise problem from exc
            raise DBError(f"cannot use the DB file {self.path}: {exc}. If the file is corrupt, stop "
                          f"harvester, move the file away (or restore a backup) and restart: the tables are "
                          f"re-created at start-up") from exc
        if not read_only:
            # also a file made by an older version or by hand, and its WAL companions
            for path in (self.path, self.path + "-wal", self.path + "-shm"):
                try:
                    os.chmod(path, 0o600)
                except OSError:  # a companion that does not exist (yet): SQLite copies the mode
                    pass
            if self.storage.identity is None:
                self.storage.remember()
        return con

    @staticmethod
    def discard(con: sqlite3.Connection) -> None:
        """Drop a connection inherited through fork (nothing to do: the file is not touched)."""

    # ------------------------------------------------------------ SQL helpers
    @staticmethod
    def binds(varmap: dict[str, Any] | None) -> dict[str, Any]:
        """``{":name": value}`` → the driver's mapping (datetimes as fixed-width text)."""
        if not varmap:
            return {}
        return {(k[1:] if k[:1] == ":" else k): v if type(v) in _AS_IS else _adapt(v) for k, v in varmap.items()}

    @staticmethod
    def row_values(values: Sequence[Any]) -> list[Any]:
        return [v if type(v) in _AS_IS else _adapt(v) for v in values]

    def insert_sql(self, table: str, columns: Sequence[str], ignore: bool = False) -> str:
        """Positional INSERT for ``columns`` (``INSERT OR IGNORE`` when ``ignore``)."""
        verb = "INSERT OR IGNORE" if ignore else "INSERT"
        return f"{verb} INTO {table} ({','.join(columns)}) VALUES ({','.join('?' * len(columns))})"

    def column_ddl(self, spec_type: str, indexed: bool = False) -> str:
        """DDL type of a column (``indexed``: the column is in an index; no difference on SQLite)."""
        return self.column_type(spec_type)

    def table_options(self) -> str:
        """Text after ``CREATE TABLE t (...)``."""
        return ""

    @staticmethod
    def drop_index_sql(name: str, table: str) -> str:
        return f"DROP INDEX IF EXISTS {name}"

    @staticmethod
    def create_index_sql(name: str, table: str, columns: Sequence[str], unique: bool) -> str:
        kind = "UNIQUE INDEX" if unique else "INDEX"
        return f"CREATE {kind} IF NOT EXISTS {name} ON {table}({','.join(columns)})"

    @staticmethod
    def convert_raw(sql: str) -> str:
        """A statement of the raw execute API written for MariaDB, as SQLite takes it (row lock
        clauses dropped: the write lock covers them; ``INSERT IGNORE`` → ``INSERT OR IGNORE``)."""
        sql = _FOR_UPDATE_RE.sub(" ", sql)
        return _INSERT_IGNORE_RE.sub("INSERT OR IGNORE", sql)

    def column_type(self, spec_type: str) -> str:
        """Spec attribute type (``integer primary key``, ``varchar(500)``, ``timestamp``...) → DDL."""
        spec_type = spec_type.split("/")[0].strip()
        low = spec_type.lower()
        if low.startswith("varchar"):
            return "text"
        if low.startswith("timestamp"):
            return self.ts_type
        return re.sub("auto_increment", "autoincrement", spec_type, flags=re.I)

    def _physical(self, table: str) -> str:
        return table if self.tables is None else self.tables.physical(table)

    def table_columns(self, cur: sqlite3.Cursor, table: str) -> dict[str, str]:
        rows = cur.execute(f"PRAGMA table_info({self._physical(table)})").fetchall()
        return {row[1]: row[2] for row in rows}

    def table_exists(self, cur: sqlite3.Cursor, table: str) -> bool:
        row = cur.execute("SELECT name FROM sqlite_master WHERE type='table' AND name=:n",
                          {"n": self._physical(table)}).fetchone()
        return row is not None

    def index_names(self, cur: sqlite3.Cursor, table: str) -> set[str]:
        rows = cur.execute("SELECT name FROM sqlite_master WHERE type='index' AND tbl_name=:n",
                           {"n": self._physical(table)}).fetchall()
        names = {row[0] for row in rows}
        return names if self.tables is None else {self.tables.logical(name) for name in names}

    def explain(self, cur: sqlite3.Cursor, sql: str, varmap: dict[str, Any] | None = None) -> list[str]:
        """The query plan lines of ``sql`` (used by the index tests)."""
        if self.tables is not None:
            sql = self.tables.sql(sql)
        rows = cur.execute("EXPLAIN QUERY PLAN " + sql, self.binds(varmap)).fetchall()
        return [row[-1] for row in rows]

    # ------------------------------------------------------------ errors, transactions
    @staticmethod
    def is_retryable(exc: BaseException) -> bool:
        """True for an error after which the whole transaction may run again (busy/locked)."""
        return is_busy_error(exc)

    @staticmethod
    def is_lost_connection(exc: BaseException) -> bool:
        """True when the connection itself is gone (never on SQLite)."""
        return False

    def problem(self, exc: BaseException) -> DBError | None:
        """A DBError saying what to do when ``exc`` means the DB is unusable (retrying now cannot
        help): a DBStorageError when the storage refused the write (it may clear later)."""
        return self.storage.classify(exc) or file_problem(self.path, exc)

    def retry_timeout(self, exc: BaseException) -> float:
        """Seconds a method keeps retrying after the retryable ``exc``."""
        return self.busy_timeout

    @staticmethod
    def in_transaction(con: sqlite3.Connection) -> bool:
        return con.in_transaction

    def commit(self, con: sqlite3.Connection, write: bool = True) -> None:
        if con.in_transaction:
            if write and self.storage.condition is not None:
                changed = con.total_changes != self._changes_at_begin.get(id(con))
                con.execute("COMMIT")
                if changed:  # a write that wrote something went through (an empty one proves nothing)
                    self.storage.ok()
                return
            con.execute("COMMIT")

    @staticmethod
    def rollback(con: sqlite3.Connection) -> None:
        if con.in_transaction:
            con.execute("ROLLBACK")

    @staticmethod
    def upgrade(con: sqlite3.Connection) -> None:
        """A read transaction of the raw API goes on with a write: SQLite takes the lock by itself."""

    @staticmethod
    def plain_cursor(con: sqlite3.Connection) -> sqlite3.Cursor:
        """A cursor giving plain tuples (no ``sqlite3.Row``: fewer objects for large reads)."""
        cur = con.cursor()
        cur.row_factory = None
        return cur

    # ------------------------------------------------------------ execution with retries
    def _retry(self, func: Any, what: str) -> Any:
        """Run ``func`` again on busy errors with exponential back-off, up to the busy timeout."""
        deadline = time.monotonic() + self.busy_timeout
        attempt = 0
        while True:
            try:
                return func()
            except sqlite3.OperationalError as exc:
                if not is_busy_error(exc):
                    raise
                attempt += 1
                if time.monotonic() >= deadline:
                    _logger.error(f"{what}: {self.path} still busy after {attempt} attempts "
                                  f"({self.busy_timeout} s); giving up: {exc}")
                    raise DBError(f"the DB file {self.path} stayed locked for {self.busy_timeout} s "
                                  f"({what}): another process or thread holds a long transaction; raise "
                                  f"[db] busyTimeout or find the stuck process") from exc
                delay = min(0.05 * (2 ** min(attempt, 6)), 2.0) * random.uniform(0.5, 1.0)
                _logger.warning(f"{what}: {self.path} busy ({exc}); retry {attempt} in {delay:.2f} s")
                time.sleep(delay)

    def begin(self, con: sqlite3.Connection, write: bool) -> None:
        """Open a transaction: ``BEGIN IMMEDIATE`` takes the write lock now (so SELECT-then-UPDATE
        inside it is atomic across threads and processes); readers use a deferred BEGIN."""
        stmt = "BEGIN IMMEDIATE" if write else "BEGIN"
        if not write:
            self._retry(lambda: con.execute(stmt), stmt)
            return
        if not self._write_turn.acquire(timeout=self.busy_timeout):
            raise DBError(f"no write turn on the DB file {self.path} within {self.busy_timeout} s: another thread "
                          f"of this process holds a long write transaction; raise [db] busyTimeout or find it "
                          f"(SIGUSR1 writes every thread's stack to panda-master.log)")
        try:
            lost = self.storage.lost()  # one stat: SQLite writes on into a deleted file
            if lost is not None:
                self.storage.report("begin", lost)
                raise lost
            self._retry(lambda: con.execute(stmt), stmt)
            if self.storage.condition is not None:
                self._changes_at_begin[id(con)] = con.total_changes
        except BaseException:
            self._write_turn.release()
            raise

    def end_write(self) -> None:
        """Give the write turn taken by ``begin(con, write=True)`` back (after COMMIT or ROLLBACK)."""
        try:
            self._write_turn.release()
        except RuntimeError:  # given back by another thread than the one that took it (close at shutdown)
            pass

    def execute(self, cur: sqlite3.Cursor, sql: str, varmap: dict[str, Any] | Sequence[Any] | None = None
                ) -> sqlite3.Cursor:
        if self.capture is not None:
            self.capture.append(sql)
        if self.tables is not None:
            sql = self.tables.sql(sql)
        if isinstance(varmap, dict) or varmap is None:
            return cur.execute(sql, self.binds(varmap))
        return cur.execute(sql, self.row_values(varmap))

    def executemany(self, cur: sqlite3.Cursor, sql: str, rows: Iterable[Any]) -> int:
        """executemany in batches; returns the total number of rows changed."""
        if self.capture is not None:
            self.capture.append(sql)
        if self.tables is not None:
            sql = self.tables.sql(sql)
        total = 0
        batch: list[Any] = []

        def flush() -> int:
            cur.executemany(sql, batch)
            return max(cur.rowcount, 0)

        for row in rows:
            batch.append(self.binds(row) if isinstance(row, dict) else self.row_values(row))
            if len(batch) >= MANY_CHUNK:
                total += flush()
                batch = []
        if batch:
            total += flush()
        return total


