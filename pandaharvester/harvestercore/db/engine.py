"""DB engines: the only place that knows which database sits behind ``DBProxy``.

Modules above this one write SQL in a neutral style: ``:name`` binds (``?`` positional in
``insert_sql`` and row-wise ``executemany``), ``LIMIT n``, plain ``INSERT``/``UPDATE``/``DELETE``.
An engine turns binds into what its driver expects, opens transactions the way its database needs
(SQLite: ``BEGIN IMMEDIATE`` for anything that takes a lock; MariaDB/MySQL: ``START TRANSACTION``
and ``SELECT ... FOR UPDATE SKIP LOCKED`` in the pickers, see ``for_update``), builds the
engine-specific statements (insert-or-ignore, column types, index DDL), introspects the schema, and
says which driver errors are retryable (busy, deadlock, lock wait timeout, lost connection).

- :mod:`.engine_sqlite`: ``SQLiteEngine`` (stdlib ``sqlite3``)
- :mod:`.engine_mysql`: ``MySQLEngine`` (``[db] engine = mariadb`` or ``mysql``; PyMySQL, or
  mysqlclient with ``[db] useMySQLdb = True``)

This module holds what is common: :class:`DBSettings` (from ``[db]``), :func:`make_engine` and
:func:`get_engine` (one shared engine object per database).
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

from pandaharvester.errors import DBError

from .engine_sqlite import IN_CHUNK, MANY_CHUNK, SQLiteEngine, file_problem, is_busy_error

MYSQL_ENGINES = ("mariadb", "mysql")


@dataclass
class DBSettings:
    """What an engine needs to open the DB; built from ``[db]`` by :func:`settings_from_config`.

    SQLite uses ``database_filename`` and ``busy_timeout``; MariaDB/MySQL use ``host``, ``port``,
    ``user``, ``password`` (or ``password_file``, which must be mode 0600), ``schema``,
    ``use_mysqldb``, ``reconnect_timeout`` and ``busy_timeout`` (lock waits, deadlock retries).
    The password is never part of the repr.
    """

    engine: str = "sqlite"
    database_filename: str = ""
    n_connections: int = 10
    busy_timeout: float = 30.0
    verbose: bool = False
    host: str = "localhost"
    port: int = 3306
    user: str = "harvester"
    password: str = field(default="", repr=False)
    password_file: str = ""
    schema: str = "HARVESTER"
    use_mysqldb: bool = False
    reconnect_timeout: float = 300.0
    # the connector module for MariaDB/MySQL: "" = by use_mysqldb; "pymysql", "mysqldb" or
    # "mariadb" (the benchmark compares them)
    driver: str = ""
    # [db] tablePrefix: this instance's tables in a database several instances share
    table_prefix: str = ""

    def identity(self) -> tuple[Any, ...]:
        """What names one database (pools and engines are shared per identity)."""
        if self.engine in MYSQL_ENGINES:
            return ("mysql", self.host, int(self.port), self.schema, self.user, self.password_file,
                    hash(self.password), self.driver or self.use_mysqldb, self.table_prefix)
        return (self.engine, os.path.abspath(self.database_filename) if self.database_filename else "",
                self.table_prefix)

    def get_password(self) -> str:
        """The password: ``password_file``'s first line when set (checked to be mode 0600), else ``password``."""
        if self.password_file:
            return read_password_file(self.password_file)
        return self.password


def password_file_problem(path: str) -> str | None:
    """Why ``path`` cannot be used as a password file (None when it can): missing, unreadable, or
    readable by group/others (must be mode 0600 or 0400). The same check refuses the start."""
    from pandaharvester.harvesterconfig.schema import secret_file_problem

    return secret_file_problem(path)


def read_password_file(path: str) -> str:
    """First line of ``path`` (trailing newline stripped); DBError when it is not a 0600 file."""
    problem = password_file_problem(path)
    if problem is not None:
        raise DBError(f"[db] password_file {path} {problem}")
    with open(path, encoding="utf-8") as handle:
        return handle.readline().rstrip("\r\n")


def settings_from_config() -> DBSettings:
    """Read the ``[db]`` section of the cfg (at call time, never cached)."""
    from pandaharvester.harvesterconfig import harvester_config

    section = harvester_config.db

    def get(name: str, default: Any) -> Any:
        value = getattr(section, name, default)
        return default if value is None or value == "" else value

    return DBSettings(
        engine=str(get("engine", "sqlite")).strip().lower(),
        database_filename=str(getattr(section, "database_filename", "") or ""),
        n_connections=int(get("nConnections", 10)),
        busy_timeout=float(get("busyTimeout", 30)),
        verbose=bool(getattr(section, "verbose", False)),
        host=str(get("host", "localhost")),
        port=int(get("port", 3306)),
        user=str(get("user", "harvester")),
        password=str(get("password", "")),
        password_file=str(get("password_file", "")),
        schema=str(get("schema", "HARVESTER")),
        use_mysqldb=get("useMySQLdb", False) is True,
        reconnect_timeout=float(get("reconnectTimeout", 300)),
        table_prefix=str(getattr(section, "tablePrefix", "") or "").strip(),
    )


def make_engine(settings: DBSettings) -> Any:
    """The engine for ``settings.engine``; a clear DBError for anything not available."""
    if settings.engine in ("sqlite", "sqlite3", ""):
        return SQLiteEngine(settings)
    if settings.engine in MYSQL_ENGINES:
        from .engine_mysql import MySQLEngine

        return MySQLEngine(settings)
    raise DBError(f"[db] engine = {settings.engine!r} is unknown: use sqlite, mariadb or mysql")


_engines: dict[tuple[Any, ...], Any] = {}
_engines_lock = threading.Lock()


def get_engine(settings: DBSettings | None = None) -> Any:
    """Shared engine object per (database, timeouts)."""
    settings = settings or settings_from_config()
    key = settings.identity() + (float(settings.busy_timeout), float(settings.reconnect_timeout))
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            engine = make_engine(settings)
            _engines[key] = engine
        return engine


@contextmanager
def no_capture(engine: Any) -> Iterator[None]:
    saved = engine.capture
    engine.capture = None
    try:
        yield
    finally:
        engine.capture = saved


__all__ = ["DBSettings", "IN_CHUNK", "MANY_CHUNK", "MYSQL_ENGINES", "SQLiteEngine", "file_problem", "get_engine",
           "is_busy_error", "make_engine", "no_capture", "password_file_problem", "read_password_file",
           "settings_from_config"]
