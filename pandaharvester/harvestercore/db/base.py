"""What every per-concern DB module shares: the connection, transactions, the error convention.

Each concern (jobs, workers, files, ...) is a mixin class deriving from :class:`DBModule`;
``DBProxy`` combines them. A public method is wrapped by :func:`db_method`, which gives the
original's error convention (log the error, roll back, return the method's neutral value such
as ``None``, ``False``, ``[]`` or ``{}``) while never swallowing what the caller must see:

- ``DBError`` (bad input: an unknown column, a value that does not fit; an unusable DB file; a
  DB still busy after ``[db] busyTimeout``) propagates;
- "database is locked/busy" errors roll the transaction back and run the method again with
  back-off (each retry is logged), since every method is one transaction;
- an unusable DB file found in the middle of a run (corrupt pages, read-only file or directory,
  disk full) becomes a ``DBError`` naming the file and what to do: retrying cannot help.
"""

from __future__ import annotations

import functools
import random
import sqlite3
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator, Sequence, TypeVar

from pandaharvester.errors import DBError

from .. import core_utils
from ..log_utils import dump_error_message, make_logger, setup_logger
from . import schema
from .engine import IN_CHUNK, file_problem, is_busy_error

_logger = setup_logger("db_proxy")

F = TypeVar("F", bound=Callable[..., Any])


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
            deadline = time.monotonic() + self._engine.busy_timeout
            while True:
                try:
                    return func(self, *args, **kwargs)
                except DBError:
                    if owner:
                        self._abort()
                    raise
                except sqlite3.OperationalError as exc:
                    if not owner:
                        raise
                    self._abort()
                    if not is_busy_error(exc):
                        return self._after_error(name, exc, default)
                    attempt += 1
                    if time.monotonic() >= deadline:
                        _logger.error(f"{name}: {self._engine.path} still busy after {attempt} attempts: {exc}")
                        raise DBError(f"the DB file {self._engine.path} stayed locked for "
                                      f"{self._engine.busy_timeout} s in {name}: another process or thread "
                                      f"holds a long transaction; raise [db] busyTimeout or find it") from exc
                    delay = min(0.05 * (2 ** min(attempt, 6)), 2.0) * random.uniform(0.5, 1.0)
                    _logger.warning(f"{name}: DB busy ({exc}); retry {attempt} in {delay:.2f} s")
                    time.sleep(delay)
                except Exception as exc:
                    if not owner:
                        raise
                    self._abort()
                    return self._after_error(name, exc, default)

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


class DBModule:
    """Connection and transaction plumbing shared by the concern mixins."""

    _engine: Any
    _con: sqlite3.Connection
    cur: sqlite3.Cursor
    _depth: int = 0
    _write_tx: bool = False
    _manual: bool = False  # the open transaction was started by the raw execute() API
    _holds_write_turn: bool = False  # this proxy holds its engine's write turn (see engine.begin)

    def _after_error(self, name: str, exc: BaseException, default: Any) -> Any:
        """Log an error of method ``name``; DBError for an unusable file, else the neutral value."""
        problem = file_problem(self._engine.path, exc)
        if problem is not None:
            _logger.error(f"{name}: {problem}")
            raise problem from exc
        dump_error_message(make_logger(_logger, method_name=name))
        return default() if callable(default) else default

    # ------------------------------------------------------------ transactions
    @contextmanager
    def _tx(self, write: bool = True) -> Iterator[sqlite3.Cursor]:
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
        self._engine.begin(self._con, write)
        self._holds_write_turn = write
        self._depth = 1
        self._write_tx = write
        try:
            yield self.cur
        except BaseException:
            self._abort()
            raise
        try:
            if self._con.in_transaction:
                self._con.execute("COMMIT")
        except BaseException:
            self._abort()
            raise
        self._depth = 0
        self._end_write_turn()

    def _end_manual_read(self) -> None:
        """A read-only transaction left open by raw execute() ends before a method runs (nothing to
        commit; as in the original, where every method committed); a raw write transaction is joined."""
        if self._manual and self._depth and not self._write_tx:
            self._depth = 0
            self._manual = False
            if self._con.in_transaction:
                self._con.execute("COMMIT")

    def _abort(self) -> None:
        self._depth = 0
        self._manual = False
        if self._con.in_transaction:
            try:
                self._con.execute("ROLLBACK")
            except sqlite3.Error as exc:
                _logger.error(f"rollback failed: {exc}")
        self._end_write_turn()

    def _end_write_turn(self) -> None:
        if self._holds_write_turn:
            self._holds_write_turn = False
            self._engine.end_write()

    # ------------------------------------------------------------ statements
    def _exec(self, sql: str, varmap: dict[str, Any] | Sequence[Any] | None = None) -> sqlite3.Cursor:
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
        cls = schema.spec_class(table)
        names = cls.column_names().split(",")
        values = list(spec.values_list())
        schema.check_row(table, cls, names, values)
        cur = self._exec(self._engine.insert_sql(table, names), values)
        return cur.lastrowid

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
