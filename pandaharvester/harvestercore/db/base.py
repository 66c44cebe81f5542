"""What every per-concern DB module shares: the connection, transactions, the error convention,
the statement helpers and the SQL status lists.

Each concern (jobs, workers, files, ...) is a mixin class deriving from :class:`DBModule`;
``DBProxy`` combines them. A mixin uses only what :class:`DBModule` provides and its own
methods, never another mixin's: a helper two concerns need lives here, and a method that spans
concerns (``make_tables``) is the facade's (``docs/db.md``). A public method is wrapped by
:func:`db_method`, which gives the
original's error convention (log the error, roll back, return the method's neutral value such
as ``None``, ``False``, ``[]`` or ``{}``) while never swallowing what the caller must see:

- ``DBError`` (bad input: an unknown column, a value that does not fit; an unusable DB file; a
  DB still busy after ``[db] busyTimeout``) propagates;
- retryable errors (SQLite: "database is locked/busy"; MariaDB: deadlock, lock wait timeout,
  lost connection, which reconnects first) roll the transaction back and run the method again
  with back-off (each retry is logged), since every method is one transaction; a connection lost
  during COMMIT is not retried (the outcome is unknown);
- an unusable DB file found in the middle of a run (corrupt pages, read-only file or directory,
  disk full) becomes a ``DBError`` naming the file and what to do: retrying cannot help; when
  the storage refused the write (disk full, read-only, I/O error, file deleted underneath) it is
  a ``DBStorageError`` with its ``condition``, logged once when it starts (then once a minute),
  and the next call tries again (``db/storage_sqlite.py``).
"""

from __future__ import annotations

import functools
import random
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator, Sequence, TypeVar

from pandaharvester.errors import DBError, DBStorageError

from .. import core_utils, lifecycle
from ..log_utils import dump_error_message, make_logger, setup_logger
from . import schema
from .engine import IN_CHUNK

_logger = setup_logger("db_proxy")

F = TypeVar("F", bound=Callable[..., Any])


class CommitOutcomeUnknown(Exception):
    """The connection was lost during COMMIT: whether the transaction was applied is unknown,
    so the method is not run again (its error is logged and its neutral value returned)."""


def db_method(default: Any = None, token: Callable[..., str] | None = None) -> Callable[[F], F]:
    """Decorator giving a DB method the original's error convention (see module docstring).

    ``default`` is the value returned after an error (a callable is called to make a fresh one).
    """

    def decorator(func: F) -> F:
        name = func.__name__

        @functools.wraps(func)
        def wrapper(self: "DBModule", *args: Any, **kwargs: Any) -> Any:
            self._end_manual_read()
            owner = self._depth == 0
            attempt = 0
            started = time.monotonic()
            while True:
                try:
                    return func(self, *args, **kwargs)
                except DBError:
                    if owner:
                        self._abort()
                    raise
                except Exception as exc:
                    if not owner:
                        raise
                    self._abort()
                    engine = self._engine
                    if not isinstance(exc, engine.errors) or not engine.is_retryable(exc):
                        return self._after_error(name, exc, default)
                    # busy/deadlock/lock wait/lost connection: nothing of this call was kept (the
                    # transaction is rolled back), so the whole method runs again
                    attempt += 1
                    timeout = engine.retry_timeout(exc)
                    if time.monotonic() - started >= timeout:
                        _logger.error(f"{name}: {engine.path} still failing after {attempt} attempts "
                                      f"({timeout} s): {exc}")
                        if engine.name == "sqlite":
                            raise DBError(f"the DB file {engine.path} stayed locked for {timeout} s in {name}: "
                                          f"another process or thread holds a long transaction; raise [db] "
                                          f"busyTimeout or find it") from exc
                        raise DBError(f"the database {engine.path} stayed unavailable for {timeout} s in {name} "
                                      f"({exc}): another process or thread holds a long transaction, or the "
                                      f"server is down; raise [db] busyTimeout/reconnectTimeout or find it") from exc
                    delay = min(0.05 * (2 ** min(attempt, 6)), 2.0) * random.uniform(0.5, 1.0)
                    _logger.warning(f"{name}: {exc}; retry {attempt} in {delay:.2f} s")
                    time.sleep(delay)
                    if engine.is_lost_connection(exc):
                        self._reconnect()

        return wrapper  # type: ignore[return-value]

    return decorator


def dynamic_plugin_change() -> bool:
    """``[master] dynamic_plugin_change`` (True, the original's default, when no cfg is loaded)."""
    try:
        return core_utils.dynamic_plugin_change()
    except Exception:
        return True


def chunks(values: Sequence[Any] | Iterable[Any], size: int = IN_CHUNK) -> Iterator[list[Any]]:
    """Consecutive lists of at most ``size`` values (for ``IN (...)`` lists)."""
    batch: list[Any] = []
    for value in values:
        batch.append(value)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def in_binds(prefix: str, values: Sequence[Any], varmap: dict[str, Any]) -> str:
    """``:p0,:p1,...`` for ``values``, adding them to ``varmap``."""
    keys = []
    for i, value in enumerate(values):
        key = f":{prefix}{i}"
        varmap[key] = value
        keys.append(key)
    return ",".join(keys)


def sql_list(values: Iterable[str]) -> str:
    """``('a','b')``: a set of :mod:`lifecycle` statuses as an SQL literal list, for the query
    strings built at import (literals keep each query's text, and so its plan, fixed)."""
    items = tuple(values)
    for value in items:
        if not value or not value.replace("_", "").isalnum():
            raise ValueError(f"not a status name for an SQL list: {value!r}")
    return "(" + ",".join(f"'{value}'" for value in items) + ")"


# the status lists of the DB modules' SQL, from lifecycle's sets
SQL_WORKERS_ACTIVE = sql_list(lifecycle.WORKER_ACTIVE)
SQL_WORKERS_FINAL = sql_list(lifecycle.WORKER_FINAL)
SQL_WORKERS_ENDED = sql_list(lifecycle.WORKER_ENDED)
SQL_WORKERS_EVENT_FEEDABLE = sql_list(lifecycle.WORKER_EVENT_FEEDABLE)
SQL_WORKERS_COUNTED = sql_list(lifecycle.WORKER_COUNTED)
SQL_WORKERS_QUEUED_OR_RUNNING = sql_list(lifecycle.WORKER_QUEUED + (lifecycle.WORKER_RUNNING,))
SQL_JOBS_STARTING_OR_RUNNING = sql_list((lifecycle.JOB_STARTING, lifecycle.JOB_RUNNING))
SQL_EVENTS_TO_REPORT = sql_list(lifecycle.EVENT_TO_REPORT)
SQL_INPUT_TYPES = sql_list(lifecycle.INPUT_TYPES)


class DBModule:
    """Connection, transactions and statement helpers shared by the concern mixins."""

    _engine: Any  # SQLiteEngine or MySQLEngine (db/engine.py)
    _con: Any
    cur: Any
    read_only: bool = False
    _depth: int = 0
    _write_tx: bool = False
    _manual: bool = False  # the open transaction was started by the raw execute() API
    _holds_write_turn: bool = False  # this proxy holds its engine's write turn (see engine.begin)

    def _after_error(self, name: str, exc: BaseException, default: Any) -> Any:
        """Log an error of method ``name``; DBError for an unusable file, else the neutral value."""
        problem = self._engine.problem(exc) if isinstance(exc, self._engine.errors) else None
        if problem is not None:
            storage = getattr(self._engine, "storage", None)
            if isinstance(problem, DBStorageError) and storage is not None:
                storage.report(name, problem)  # once when it starts, then once a minute
            else:
                _logger.error(f"{name}: {problem}")
            raise problem from exc
        dump_error_message(make_logger(_logger, method_name=name))
        return default() if callable(default) else default

    # ------------------------------------------------------------ transactions
    @contextmanager
    def _tx(self, write: bool = True) -> Iterator[Any]:
        """One transaction (joined when already inside one); commit at the end, rollback on error."""
        if self._depth > 0:
            if write and not self._write_tx:
                raise DBError("internal: a write was attempted inside a read transaction")
            self._depth += 1
            try:
                yield self.cur
            finally:
                self._depth -= 1
            return
        self._begin(write)
        self._depth = 1
        self._write_tx = write
        try:
            yield self.cur
        except BaseException:
            self._abort()
            raise
        try:
            self._engine.commit(self._con, write)
        except BaseException as exc:
            self._abort()
            if isinstance(exc, self._engine.errors) and self._engine.is_lost_connection(exc):
                raise CommitOutcomeUnknown(f"connection to {self._engine.path} lost during COMMIT: the "
                                           f"outcome is unknown, not retried ({exc})") from exc
            raise
        self._depth = 0
        self._end_write_turn()

    def _begin(self, write: bool) -> None:
        """Open a transaction; a connection found lost here is opened again (nothing was done in
        it yet, so this is always safe), retried up to ``[db] reconnectTimeout``."""
        started = time.monotonic()
        attempt = 0
        while True:
            try:
                self._engine.begin(self._con, write)
                self._holds_write_turn = write
                return
            except self._engine.errors as exc:
                if not self._engine.is_lost_connection(exc):
                    raise
                attempt += 1
                if time.monotonic() - started >= self._engine.retry_timeout(exc):
                    raise
                _logger.warning(f"begin: connection to {self._engine.path} lost ({exc}); reconnect {attempt}")
                self._reconnect()

    def _reconnect(self) -> None:
        """Replace the connection (after the server dropped it); the engine retries while it is down."""
        try:
            self._con.close()
        except Exception:  # already closed by the server
            pass
        self._con = self._engine.connect(read_only=self.read_only)
        self.cur = self._con.cursor()
        _logger.info(f"reconnected to {self._engine.path}")

    def _pick_ids(self, table: str, id_col: str, cond: str, order: str, varmap: dict[str, Any], limit: int
                  ) -> list[Any]:
        """:meth:`_pick_rows` giving the ids only."""
        return [row[0] for row in self._pick_rows(table, id_col, id_col, cond, order, varmap, limit)]

    def _pick_rows(self, table: str, columns: str, id_col: str, cond: str, order: str, varmap: dict[str, Any],
                   limit: int) -> list[tuple]:
        """``columns`` (the id first) of up to ``limit`` rows meeting ``cond`` in ``order``
        (``ORDER BY ...``), row-locked for this write transaction when the engine locks rows: a
        picker's id SELECT.

        SQLite: one SELECT (BEGIN IMMEDIATE holds the write lock). MariaDB: candidate ids in order
        read without locks (2 x ``limit``, then 8 x when too many were taken by others), locked by
        :meth:`_lock_rows`. A locking read of the ordered range itself would lock every row it
        sorts, and reads past the end of an empty range; this way only the rows returned are locked."""
        if not self._for_update():
            return [tuple(r) for r in self._exec(f"SELECT {columns} FROM {table} WHERE {cond} {order} "
                                                 f"LIMIT {int(limit)}", varmap).fetchall()]
        taken: list[tuple] = []
        tried: set[Any] = set()
        for factor in (2, 8):
            sql = f"SELECT {id_col} FROM {table} WHERE {cond} {order} LIMIT {int(limit * factor)}"
            candidates = [r[0] for r in self._exec(sql, varmap).fetchall()]
            fresh = [c for c in candidates if c not in tried]
            tried.update(fresh)
            taken += self._lock_rows(table, columns, id_col, cond, fresh, varmap, limit - len(taken))
            if len(taken) >= limit or len(candidates) < limit * factor:
                break
        return taken

    def _lock_rows(self, table: str, columns: str, id_col: str, cond: str, candidates: Sequence[Any],
                   varmap: dict[str, Any], limit: int) -> list[tuple]:
        """``columns`` of up to ``limit`` of ``candidates`` (in their order) still meeting ``cond``,
        locked with ``FOR UPDATE SKIP LOCKED`` by primary key, batch by batch: rows other
        transactions hold are skipped, ``cond`` is checked again on the locked (latest) rows."""
        lock = self._for_update()
        taken: list[tuple] = []
        pos = 0
        while len(taken) < limit and pos < len(candidates):
            batch = list(candidates[pos:pos + min(limit - len(taken), IN_CHUNK)])
            pos += len(batch)
            vm = dict(varmap)
            keys = in_binds("pick_", batch, vm)
            # by primary key only: through another index InnoDB would lock (and skip) rows of the scan
            rows = {r[0]: tuple(r) for r in self._exec(f"SELECT {columns} FROM {table} FORCE INDEX (PRIMARY) "
                                                       f"WHERE {id_col} IN ({keys}) AND {cond}{lock}", vm).fetchall()}
            taken += [rows[row_id] for row_id in batch if row_id in rows]
        return taken

    def _for_update(self) -> str:
        """The clause ending a picker's id SELECT: row locks skipping rows other transactions
        hold (``FOR UPDATE SKIP LOCKED`` on MariaDB/MySQL); empty on SQLite (BEGIN IMMEDIATE)."""
        return self._engine.for_update

    def _end_manual_read(self) -> None:
        """A read-only transaction left open by raw execute() ends before a method runs (nothing to
        commit; as in the original, where every method committed); a raw write transaction is joined."""
        if self._manual and self._depth and not self._write_tx:
            self._depth = 0
            self._manual = False
            self._engine.commit(self._con, False)

    def _abort(self) -> None:
        self._depth = 0
        self._manual = False
        try:
            self._engine.rollback(self._con)
        except Exception as exc:
            if isinstance(exc, self._engine.errors) and self._engine.is_lost_connection(exc):
                # the server rolled the transaction back; the next call reconnects
                _logger.debug(f"rollback on a lost connection: {exc}")
            else:
                _logger.error(f"rollback failed: {exc}")
        self._end_write_turn()

    def _end_write_turn(self) -> None:
        if self._holds_write_turn:
            self._holds_write_turn = False
            self._engine.end_write()

    # ------------------------------------------------------------ statements
    def _exec(self, sql: str, varmap: dict[str, Any] | Sequence[Any] | None = None) -> Any:
        return self._engine.execute(self.cur, sql, varmap)

    def _many(self, sql: str, rows: Iterable[Any]) -> int:
        return self._engine.executemany(self.cur, sql, rows)

    def _select_specs(self, table: str, where: str, varmap: dict[str, Any] | None = None, slim: bool = False,
                      suffix: str = "") -> list[Any]:
        cls = schema.spec_class(table)
        sql = f"SELECT {cls.column_names(slim=slim)} FROM {table} WHERE {where} {suffix}"
        rows = self._exec(sql, varmap).fetchall()
        make = cls.from_values
        return [make(tuple(row), slim=slim) for row in rows]

    def _select_specs_in(self, table: str, column: str, values: Sequence[Any], extra: str = "",
                         varmap: dict[str, Any] | None = None, slim: bool = False) -> list[Any]:
        """Specs whose ``column`` is in ``values`` (chunked ``IN``)."""
        result = []
        for batch in chunks(list(values)):
            vm = dict(varmap or {})
            keys = in_binds("in_", batch, vm)
            result += self._select_specs(table, f"{column} IN ({keys}) {extra}", vm, slim=slim)
        return result

    def _ids_in(self, sql_template: str, values: Sequence[Any], varmap: dict[str, Any] | None = None
                ) -> list[Any]:
        """Rows of ``sql_template.format(ids=...)`` over chunks of ``values``."""
        rows: list[Any] = []
        for batch in chunks(list(values)):
            vm = dict(varmap or {})
            keys = in_binds("in_", batch, vm)
            rows += self._exec(sql_template.format(ids=keys), vm).fetchall()
        return rows

    def _update_in(self, sql_template: str, values: Sequence[Any], varmap: dict[str, Any] | None = None) -> int:
        n = 0
        for batch in chunks(list(values)):
            vm = dict(varmap or {})
            keys = in_binds("in_", batch, vm)
            n += max(self._exec(sql_template.format(ids=keys), vm).rowcount, 0)
        return n

    def _insert_specs(self, table: str, specs: Iterable[Any], ignore: bool = False) -> int:
        cls = schema.spec_class(table)
        names = cls.column_names().split(",")
        rows = []
        for spec in specs:
            values = list(spec.values_list())
            schema.check_row(table, cls, names, values)
            rows.append(values)
        if not rows:
            return 0
        return self._many(self._engine.insert_sql(table, names, ignore=ignore), rows)

    def _insert_spec(self, table: str, spec: Any) -> int | None:
        """Insert one spec; returns the new rowid (autoincrement ids)."""
        return self._insert_rows_ids(table, [self._spec_row(table, spec)])[0]

    @staticmethod
    def _spec_row(table: str, spec: Any) -> list[Any]:
        """The values ``spec`` has now, in column order, checked for the table."""
        cls = schema.spec_class(table)
        values = list(spec.values_list())
        schema.check_row(table, cls, cls.column_names().split(","), values)
        return values

    def _insert_rows_ids(self, table: str, rows: Sequence[Sequence[Any]]) -> list[Any]:
        """INSERT ``rows`` (from :meth:`_spec_row`), a statement each, in order; their new rowids.
        On MariaDB the statements go ";"-joined (``MySQLEngine.insert_ids``), elsewhere one by one."""
        if not rows:
            return []
        sql = self._engine.insert_sql(table, schema.spec_class(table).column_names().split(","))
        insert_ids = getattr(self._engine, "insert_ids", None)
        if insert_ids is None:
            return [self._exec(sql, list(values)).lastrowid for values in rows]
        return insert_ids(self.cur, sql, rows)

    def _update_changes(self, table: str, spec: Any, where: str, where_map: dict[str, Any],
                        skip: Iterable[str] = ()) -> int | None:
        """UPDATE the changed attributes of ``spec``; None when nothing changed."""
        cls = schema.spec_class(table)
        varmap = dict(spec.values_map(only_changed=True))
        for name in skip:
            varmap.pop(f":{name}", None)
        if not varmap:
            return None
        schema.check_map(table, cls, varmap)
        sets = ",".join(f"{key[1:]}={key}" for key in varmap)
        for key in where_map:
            if key in varmap:
                raise DBError(f"internal: bind {key} used both in SET and WHERE of {table}")
        varmap.update(where_map)
        return max(self._exec(f"UPDATE {table} SET {sets} WHERE {where}", varmap).rowcount, 0)

    def _bulk_or_each(self, bulk: Callable[[], list[Any]], each: Callable[[], list[Any]], what: str) -> list[Any]:
        """``bulk()`` (the writes of many items, a statement per kind of write) inside a savepoint;
        when it fails, its writes are undone and ``each()`` (item by item, each in its own
        savepoint: a failing item alone is left out) runs instead, so the outcome is the
        one-by-one path's. A retryable error (deadlock, lost connection, busy) is raised: the whole
        transaction is gone and ``db_method`` runs the method again."""
        self._exec("SAVEPOINT bulk_write")
        try:
            result = bulk()
        except Exception as exc:
            if isinstance(exc, self._engine.errors) and self._engine.is_retryable(exc):
                raise
            self._exec("ROLLBACK TO SAVEPOINT bulk_write")
            self._exec("RELEASE SAVEPOINT bulk_write")
            _logger.warning(f"{what}: the bulk write failed ({type(exc).__name__}: {exc}); writing item by item")
            return each()
        self._exec("RELEASE SAVEPOINT bulk_write")
        return result

    @contextmanager
    def _savepoint(self, name: str = "one_job") -> Iterator[None]:
        """A nested transaction inside the caller's: on error only its own writes are undone."""
        self._exec(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            self._exec(f"ROLLBACK TO SAVEPOINT {name}")
            self._exec(f"RELEASE SAVEPOINT {name}")
            raise
        self._exec(f"RELEASE SAVEPOINT {name}")

    def _changes_by_columns(self, table: str, specs: Iterable[Any], key: str, extra: dict[str, Any] | None
                            ) -> dict[tuple[str, ...], list[tuple[int, dict[str, Any]]]]:
        """The changed columns of ``specs`` as bind maps ``(position, varmap)`` grouped by the set
        of columns (``:<key>_key`` holds the spec's key, ``extra`` is added); unchanged specs left out."""
        cls = schema.spec_class(table)
        groups: dict[tuple[str, ...], list[tuple[int, dict[str, Any]]]] = {}
        own_bind, key_bind = f":{key}", f":{key}_key"
        for index, spec in enumerate(specs):
            varmap = spec.values_map(only_changed=True)
            varmap.pop(own_bind, None)
            if not varmap:
                continue
            schema.check_map(table, cls, varmap)
            columns = tuple(varmap)
            varmap[key_bind] = getattr(spec, key)
            if extra:
                varmap.update(extra)
            groups.setdefault(columns, []).append((index, varmap))
        return groups

    @staticmethod
    def _key_where(key: str, cond: str) -> str:
        """``key=:<key>_key``, ANDed with ``cond`` when given."""
        return f"{key}=:{key}_key AND {cond}" if cond else f"{key}=:{key}_key"

    def _bulk_update_sql(self, table: str, columns: Sequence[str], key: str, cond: str) -> str:
        return f"UPDATE {table} SET {','.join(f'{k[1:]}={k}' for k in columns)} WHERE {self._key_where(key, cond)}"

    def _update_specs_bulk(self, table: str, specs: Iterable[Any], key: str, cond: str = "",
                           extra: dict[str, Any] | None = None) -> int:
        """UPDATE the changed attributes of many specs by ``key``; one executemany per set of changed
        columns. ``cond`` (SQL ANDed to the key test) with its ``extra`` binds narrows the rows written."""
        n = 0
        for columns, members in self._changes_by_columns(table, specs, key, extra).items():
            n += self._many(self._bulk_update_sql(table, columns, key, cond), [varmap for _i, varmap in members])
        return n

    def _update_changes_bulk(self, table: str, specs: Sequence[Any], key: str, cond: str = "",
                             extra: dict[str, Any] | None = None) -> list[int | None]:
        """:meth:`_update_specs_bulk` answering per spec: rows updated, None when nothing changed.
        The same key twice keeps the one-by-one order (one :meth:`_update_changes` each)."""
        extra = extra or {}
        if len({getattr(spec, key) for spec in specs}) != len(specs):
            where = self._key_where(key, cond)
            return [self._update_changes(table, spec, where, {f":{key}_key": getattr(spec, key), **extra},
                                         skip=(key,)) for spec in specs]
        result: list[int | None] = [None] * len(specs)
        for columns, members in self._changes_by_columns(table, specs, key, extra).items():
            sql = self._bulk_update_sql(table, columns, key, cond)
            if self._many(sql, [varmap for _i, varmap in members]) == len(members):
                for index, _varmap in members:
                    result[index] = 1
            else:  # some rows are gone: count them one by one (the same values again, so idempotent)
                for index, varmap in members:
                    result[index] = max(self._exec(sql, varmap).rowcount, 0)
        return result

    def _criteria(self, table: str, criteria: dict[str, Any] | None, varmap: dict[str, Any]) -> str:
        """Extra ``AND col=:col_cr`` terms for the original's ``criteria`` argument."""
        if not criteria:
            return ""
        schema.check_column_names(table, schema.spec_class(table), criteria)
        terms = []
        for key, value in criteria.items():
            varmap[f":{key}_cr"] = value
            terms.append(f"AND {key}=:{key}_cr")
        return " " + " ".join(terms)
