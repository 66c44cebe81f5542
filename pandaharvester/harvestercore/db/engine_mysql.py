"""The MariaDB/MySQL engine (``[db] engine = mariadb`` or ``mysql``).

Same interface as :class:`~.engine_sqlite.SQLiteEngine` (see :mod:`.engine`). What differs:

- the connector is PyMySQL, or mysqlclient (``MySQLdb``) with ``[db] useMySQLdb = True`` as in
  the original (``docs/db.md`` has the figures of both and of the MariaDB connector);
- sessions run in autocommit with ``READ COMMITTED``; a write transaction is ``START TRANSACTION``
  ... ``COMMIT``; a read runs without one (each statement sees committed rows, as it would inside
  a READ COMMITTED transaction);
- the connection sets ``CLIENT.FOUND_ROWS`` so an UPDATE's rowcount counts matched rows, as on
  SQLite (the lock re-checks compare it with the number of rows they meant to write);
- ``executemany`` of an UPDATE or DELETE sends its rows' statements ";"-joined, up to
  :data:`MULTI_ROWS` per round trip (``CLIENT.MULTI_STATEMENTS``; the connectors send one round
  trip per row otherwise): the same statements in the same order, rowcounts summed;
- the pickers' id SELECTs end with ``FOR UPDATE SKIP LOCKED`` (:attr:`MySQLEngine.for_update`),
  so two transactions, processes or hosts never pick the same row;
- deadlocks (1213), lock wait timeouts (1205) and lost connections (2006, 2013, ...) are
  retryable: ``db_method`` rolls back and runs the whole method again (reconnecting first);
- tables are InnoDB, ``utf8mb4`` with the binary collation (string comparison as on SQLite),
  timestamps ``DATETIME(6)`` (naive UTC), JSON blobs ``LONGTEXT``, indexed text ``VARCHAR(255)``.
"""

from __future__ import annotations

import importlib
import random
import re
import time
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from pandaharvester.errors import DBError

from ..log_utils import setup_logger
from .engine_sqlite import MANY_CHUNK
from .instance_tables import table_names

if TYPE_CHECKING:
    from .engine import DBSettings

_logger = setup_logger("db_proxy")

# the connector used when [db] useMySQLdb is not True (chosen by the figures in docs/db.md)
DEFAULT_DRIVER = "pymysql"
_MODULES = {"pymysql": "pymysql", "mysqldb": "MySQLdb", "mariadb": "mariadb"}
_PIP = {"pymysql": "PyMySQL (pip install 'pandaharvester[mysql]')",
        "mysqldb": "mysqlclient (apt-get install libmariadb-dev pkg-config; pip install mysqlclient)",
        "mariadb": "mariadb (apt-get install libmariadb-dev; pip install mariadb)"}
_FOUND_ROWS = 2  # CLIENT_FOUND_ROWS, the same value in every connector
_MULTI_STATEMENTS = 1 << 16  # CLIENT_MULTI_STATEMENTS, likewise
# executemany of a statement other than INSERT ... VALUES: the rows' statements go to the server
# ";"-joined, this many per round trip at most (and about this many bytes)
MULTI_ROWS = 500
MULTI_BYTES = 1 << 20
_INSERT_VALUES = re.compile(r"\s*INSERT\b.*\bVALUES\s*\(", re.IGNORECASE | re.DOTALL)

DEADLOCK, LOCK_WAIT_TIMEOUT = 1213, 1205
LOST_CONNECTION = frozenset({2002, 2003, 2006, 2013, 2055, 1927, 4031})
_RETRYABLE = LOST_CONNECTION | {DEADLOCK, LOCK_WAIT_TIMEOUT}
_ACCESS = frozenset({1044, 1045, 1049, 1142, 1143, 1227})
_FULL = frozenset({1021, 1114, 3})

# a quoted string, a literal %, a ? marker or a :name bind (not ::name, not inside a word)
_TOKEN = re.compile(r"'(?:[^'\\]|\\.|'')*'|\"(?:[^\"\\]|\\.)*\"|`[^`]*`|%|\?|(?<![:\w]):([A-Za-z_]\w*)")


def _translate_token(match: re.Match) -> str:
    text = match.group(0)
    if text[0] in "'\"`":
        return text.replace("%", "%%")
    if text == "%":
        return "%%"
    if text == "?":
        return "%s"
    return f"%({match.group(1)})s"


def translate(sql: str) -> str:
    """``:name`` → ``%(name)s``, ``?`` → ``%s``, a literal ``%`` → ``%%`` (quoted text kept)."""
    return _TOKEN.sub(_translate_token, sql)


def error_code(exc: BaseException) -> int | None:
    """The server/client error number of a connector exception (None when it has none)."""
    code = getattr(exc, "errno", None)
    if isinstance(code, int) and code > 0:
        return code
    args = getattr(exc, "args", ())
    if args and isinstance(args[0], int):
        return args[0]
    return None


def _adapt(value: Any) -> Any:
    return int(value) if isinstance(value, bool) else value


class MySQLEngine:
    """MariaDB 10.6+ / MySQL 8 through PyMySQL or mysqlclient; one connection per ``DBProxy``."""

    name = "mysql"
    ts_type = "DATETIME(6)"
    for_update = " FOR UPDATE SKIP LOCKED"
    positional = "%s"

    def __init__(self, settings: DBSettings):
        self.settings = settings
        self.driver = settings.driver or ("mysqldb" if settings.use_mysqldb else DEFAULT_DRIVER)
        if self.driver not in _MODULES:
            raise DBError(f"unknown MariaDB connector {self.driver!r}: use one of {', '.join(_MODULES)}")
        try:
            self.module = importlib.import_module(_MODULES[self.driver])
        except ImportError as exc:
            raise DBError(f"[db] engine = {settings.engine} needs the {_MODULES[self.driver]} module: install "
                          f"{_PIP[self.driver]}" + (" or set [db] useMySQLdb = False" if self.driver == "mysqldb"
                                                    else "")) from exc
        self.errors: tuple[type[BaseException], ...] = (self.module.Error,)
        self.path = f"{settings.user}@{settings.host}:{settings.port}/{settings.schema}"
        self.busy_timeout = max(float(settings.busy_timeout), 0.1)
        self.reconnect_timeout = max(float(settings.reconnect_timeout), 0.0)
        self.capture: list[str] | None = None
        self._sql_cache: dict[str, str] = {}
        # [db] tablePrefix (None: the tables' names as written)
        self.tables = table_names(settings.table_prefix)

    # ------------------------------------------------------------ connection
    def _open(self) -> Any:
        s = self.settings
        kwargs: dict[str, Any] = dict(host=s.host, port=int(s.port), user=s.user, password=s.get_password(),
                                      database=s.schema, client_flag=self._client_flag(), autocommit=True,
                                      connect_timeout=10)
        if self.driver != "mariadb":
            kwargs["charset"] = "utf8mb4"
        return self.module.connect(**kwargs)

    def _client_flag(self) -> int:
        """FOUND_ROWS always; MULTI_STATEMENTS where :meth:`executemany` joins statements."""
        return _FOUND_ROWS | (_MULTI_STATEMENTS if self.joins_statements else 0)

    @property
    def joins_statements(self) -> bool:
        """True when :meth:`executemany` sends an UPDATE/DELETE's rows ";"-joined (PyMySQL,
        mysqlclient; the MariaDB connector has its own bulk protocol)."""
        return self.driver in ("pymysql", "mysqldb")

    def connect(self, read_only: bool = False) -> Any:
        """A session in autocommit, READ COMMITTED, UTC; retried while the server is unreachable
        (up to ``[db] reconnectTimeout``, a warning per retry); DBError for what retrying cannot fix."""
        deadline = time.monotonic() + self.reconnect_timeout
        attempt = 0
        while True:
            try:
                con = self._open()
                cur = con.cursor()
                cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
                cur.execute(f"SET SESSION innodb_lock_wait_timeout = {max(1, int(self.busy_timeout))}")
                cur.execute("SET SESSION time_zone = '+00:00'")
                if read_only:
                    cur.execute("SET SESSION TRANSACTION READ ONLY")
                cur.close()
                return con
            except self.errors as exc:
                problem = self.problem(exc)
                if problem is not None:
                    raise problem from None
                attempt += 1
                if not self.is_lost_connection(exc) or time.monotonic() >= deadline:
                    raise DBError(f"cannot connect to the database {self.path}: {exc}; check that the server runs "
                                  f"and [db] host, port, user, schema") from None
                delay = min(0.2 * (2 ** min(attempt, 5)), 5.0) * random.uniform(0.5, 1.0)
                _logger.warning(f"connecting to {self.path}: {exc}; retry {attempt} in {delay:.2f} s")
                time.sleep(delay)

    def discard(self, con: Any) -> None:
        """Drop a connection inherited through fork without ending its session (no QUIT sent: the
        parent still uses it); PyMySQL closes its socket copy, the C connectors' objects are left."""
        if self.driver == "pymysql":
            con._force_close()

    # ------------------------------------------------------------ SQL helpers
    def sql(self, sql: str) -> str:
        """The driver's form of a neutral statement (cached)."""
        out = self._sql_cache.get(sql)
        if out is None:
            out = translate(sql if self.tables is None else self.tables.sql(sql))
            if len(self._sql_cache) > 20000:
                self._sql_cache.clear()
            self._sql_cache[sql] = out
        return out

    @staticmethod
    def binds(varmap: dict[str, Any] | None) -> dict[str, Any]:
        if not varmap:
            return {}
        return {(k[1:] if k[:1] == ":" else k): _adapt(v) for k, v in varmap.items()}

    @staticmethod
    def row_values(values: Sequence[Any]) -> list[Any]:
        return [_adapt(v) for v in values]

    @staticmethod
    def insert_sql(table: str, columns: Sequence[str], ignore: bool = False) -> str:
        verb = "INSERT IGNORE" if ignore else "INSERT"
        return f"{verb} INTO {table} ({','.join(columns)}) VALUES ({','.join('?' * len(columns))})"

    @staticmethod
    def convert_raw(sql: str) -> str:
        """A statement of the raw execute API as the original wrote it for MariaDB: kept as it is."""
        return sql

    def column_ddl(self, spec_type: str, indexed: bool = False) -> str:
        """Spec attribute type → MariaDB DDL (``indexed``: the column is in an index or the key,
        so ``text`` becomes ``VARCHAR(255)``: InnoDB cannot index TEXT without a prefix)."""
        low = spec_type.split("/")[0].strip().lower()
        base = low.split()[0] if low else "text"
        primary = "primary key" in low
        if base.startswith(("integer", "int", "bigint")):
            ddl = "BIGINT"
        elif base.startswith("varchar"):
            ddl = base.upper()
        elif base.startswith(("timestamp", "datetime")):
            ddl = self.ts_type
        elif base.startswith(("blob", "longtext")):
            ddl = "LONGTEXT"
        elif base.startswith(("real", "float", "double")):
            ddl = "DOUBLE"
        else:
            ddl = "VARCHAR(255)" if (indexed or primary or "unique" in low) else "TEXT"
        if "not null" in low or primary:
            ddl += " NOT NULL"
        if "autoincrement" in low or "auto_increment" in low:
            ddl += " AUTO_INCREMENT"
        if primary:
            ddl += " PRIMARY KEY"
        elif "unique" in low:
            ddl += " UNIQUE"
        return ddl

    def column_type(self, spec_type: str) -> str:
        return self.column_ddl(spec_type)

    @staticmethod
    def table_options() -> str:
        return " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"

    @staticmethod
    def drop_index_sql(name: str, table: str) -> str:
        return f"DROP INDEX {name} ON {table}"

    @staticmethod
    def create_index_sql(name: str, table: str, columns: Sequence[str], unique: bool) -> str:
        return f"CREATE {'UNIQUE INDEX' if unique else 'INDEX'} {name} ON {table}({','.join(columns)})"

    def table_columns(self, cur: Any, table: str) -> dict[str, str]:
        self.execute(cur, "SELECT column_name, column_type FROM information_schema.columns "
                          "WHERE table_schema=DATABASE() AND table_name=:n", {":n": self._physical(table)})
        return {row[0]: row[1] for row in cur.fetchall()}

    def _physical(self, table: str) -> str:
        return table if self.tables is None else self.tables.physical(table)

    def table_exists(self, cur: Any, table: str) -> bool:
        self.execute(cur, "SELECT 1 FROM information_schema.tables WHERE table_schema=DATABASE() AND table_name=:n",
                     {":n": self._physical(table)})
        return cur.fetchone() is not None

    def index_names(self, cur: Any, table: str) -> set[str]:
        self.execute(cur, "SELECT DISTINCT index_name FROM information_schema.statistics "
                          "WHERE table_schema=DATABASE() AND table_name=:n", {":n": self._physical(table)})
        names = {row[0] for row in cur.fetchall()} - {"PRIMARY"}
        return names if self.tables is None else {self.tables.logical(name) for name in names}

    def explain(self, cur: Any, sql: str, varmap: dict[str, Any] | None = None) -> list[str]:
        """``EXPLAIN`` of ``sql``, one line per table: ``table=<t> type=<access> key=<index> ...``
        (``type=ALL`` is a full scan)."""
        self.execute(cur, "EXPLAIN " + sql, varmap)
        names = [d[0].lower() for d in cur.description]
        lines = []
        for row in cur.fetchall():
            info = dict(zip(names, row))
            lines.append(f"table={info.get('table')} type={info.get('type')} "
                         f"possible_keys={info.get('possible_keys')} key={info.get('key')} rows={info.get('rows')} "
                         f"extra={info.get('extra')}")
        return lines

    # ------------------------------------------------------------ errors, transactions
    def is_retryable(self, exc: BaseException) -> bool:
        """Deadlock, lock wait timeout, lost connection: the whole transaction may run again."""
        return self.is_lost_connection(exc) or error_code(exc) in _RETRYABLE

    def is_lost_connection(self, exc: BaseException) -> bool:
        if error_code(exc) in LOST_CONNECTION:
            return True
        # a connection closed under the connector (PyMySQL: InterfaceError(0, ''))
        interface = getattr(self.module, "InterfaceError", ())
        return isinstance(exc, interface) if interface else False

    def retry_timeout(self, exc: BaseException) -> float:
        return self.reconnect_timeout if self.is_lost_connection(exc) else self.busy_timeout

    def problem(self, exc: BaseException) -> DBError | None:
        """A DBError for what retrying cannot fix: access denied, unknown schema, disk/table full,
        a value too long for its column."""
        code = error_code(exc)
        if code in _ACCESS:
            return DBError(f"the database {self.path} refused access ({exc}): create the schema and grant the user "
                           f"ALL on it (README: Moving a site from SQLite to MariaDB), or fix [db] user, "
                           f"password/password_file, schema")
        if code in _FULL:
            return DBError(f"the database {self.path} cannot store more ({exc}): free disk space on the DB server")
        if code == 1406:
            return DBError(f"a value does not fit its column in {self.path} ({exc}): shorten it before storing")
        return None

    @staticmethod
    def in_transaction(con: Any) -> bool:
        return True

    def _run(self, con: Any, statement: str) -> None:
        if self.driver == "mariadb":
            cur = con.cursor()
            cur.execute(statement)
            cur.close()
        else:
            con.query(statement)

    def begin(self, con: Any, write: bool) -> None:
        """``START TRANSACTION`` for a write; a read runs in autocommit (nothing to send)."""
        if write:
            self._run(con, "START TRANSACTION")

    def upgrade(self, con: Any) -> None:
        """A read of the raw API goes on with a write: from here on it is a transaction."""
        self._run(con, "START TRANSACTION")

    @staticmethod
    def end_write() -> None:
        """Nothing to give back: rows are locked by the server, no process-wide write turn."""

    @staticmethod
    def commit(con: Any, write: bool = True) -> None:
        if write:
            con.commit()

    @staticmethod
    def rollback(con: Any) -> None:
        con.rollback()

    @staticmethod
    def plain_cursor(con: Any) -> Any:
        return con.cursor()

    # ------------------------------------------------------------ execution
    def execute(self, cur: Any, sql: str, varmap: dict[str, Any] | Sequence[Any] | None = None) -> Any:
        if self.capture is not None:
            self.capture.append(sql)
        if isinstance(varmap, dict) or varmap is None:
            cur.execute(self.sql(sql), self.binds(varmap))
        else:
            cur.execute(self.sql(sql), self.row_values(varmap))
        return cur

    def executemany(self, cur: Any, sql: str, rows: Iterable[Any]) -> int:
        """executemany in batches (multi-row INSERTs for INSERT statements, ";"-joined statements
        for the others, see :meth:`_joined`); rows matched in total."""
        if self.capture is not None:
            self.capture.append(sql)
        statement = self.sql(sql)
        if self.joins_statements and not _INSERT_VALUES.match(statement):
            return self._joined(cur, statement, rows)
        total = 0
        batch: list[Any] = []

        def flush() -> int:
            cur.executemany(statement, batch)
            return max(cur.rowcount, 0)

        for row in rows:
            batch.append(self.binds(row) if isinstance(row, dict) else self.row_values(row))
            if len(batch) >= MANY_CHUNK:
                total += flush()
                batch = []
        if batch:
            total += flush()
        return total

    def insert_ids(self, cur: Any, sql: str, rows: Sequence[Sequence[Any]]) -> list[Any]:
        """An INSERT per row of ``rows``, in order, ";"-joined as in :meth:`_joined` (one by one
        with the MariaDB connector); the new rowid of each (each statement's insert id)."""
        if self.capture is not None:
            self.capture.append(sql)
        statement = self.sql(sql)
        if not self.joins_statements:
            ids = []
            for values in rows:
                cur.execute(statement, self.row_values(values))
                ids.append(cur.lastrowid)
            return ids
        ids = []
        for start in range(0, len(rows), MULTI_ROWS):
            cur.execute(";".join(cur.mogrify(statement, self.row_values(values))
                                 for values in rows[start:start + MULTI_ROWS]))
            ids.append(cur.lastrowid)
            while cur.nextset():
                ids.append(cur.lastrowid)
        return ids

    def _joined(self, cur: Any, statement: str, rows: Iterable[Any]) -> int:
        """``statement`` once per row, up to :data:`MULTI_ROWS` rows (or about :data:`MULTI_BYTES`)
        per round trip as one ";"-joined query, each row's values quoted by the connector as in
        ``execute``; the rows matched by all of them. The server runs them in order and stops at
        the first error, which is raised here (the caller's transaction then rolls back)."""
        total = 0
        parts: list[str] = []
        size = 0

        def flush() -> int:
            cur.execute(";".join(parts))
            matched = max(cur.rowcount, 0)
            while cur.nextset():
                matched += max(cur.rowcount, 0)
            return matched

        for row in rows:
            text = cur.mogrify(statement, self.binds(row) if isinstance(row, dict) else self.row_values(row))
            parts.append(text)
            size += len(text)
            if len(parts) >= MULTI_ROWS or size >= MULTI_BYTES:
                total += flush()
                parts, size = [], 0
        if parts:
            total += flush()
        return total
