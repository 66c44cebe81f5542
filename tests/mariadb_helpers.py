"""The machine's MariaDB for tests: scratch databases, cfg overrides and DBSettings for them.

    from mariadb_helpers import mariadb_database, mariadb_settings

    with mariadb_database() as db_overrides:           # creates hv_<random>, drops it at exit
        harvester_env.activate(home, {"db": db_overrides})   # [db] engine = mariadb, host, port, ...
        proxy = DBProxy()                                     # or DBProxy(settings=mariadb_settings(db_overrides))

The account is the one ``scripts/setup_mariadb.sh`` makes (user ``harvester_test``, password in
a 0600 file, rights on every ``hv_*`` database); without that file, root with an empty password
(the development machine's server). Each database has a random suffix: several checkouts test
on one server at a time. A server that does not answer fails the test (set
``HARVESTER_TEST_NO_MARIADB=1`` to skip the MariaDB variants instead).
"""

from __future__ import annotations

import os
import secrets
from contextlib import contextmanager
from typing import Any, Iterator

import pytest

from pandaharvester.harvestercore.db.engine import DBSettings

HOST = os.environ.get("HARVESTER_TEST_MARIADB_HOST", "127.0.0.1")
PORT = int(os.environ.get("HARVESTER_TEST_MARIADB_PORT", "3306"))
USER = os.environ.get("HARVESTER_TEST_MARIADB_USER", "harvester_test")
PASSWORD_FILE = os.environ.get("HARVESTER_TEST_MARIADB_PASSWORD_FILE", "/etc/panda/harvester_test_mariadb.pw")


def account() -> dict[str, Any]:
    """``[db]`` keys of the test account (user, password_file or password), without the schema."""
    if os.path.exists(PASSWORD_FILE):
        return {"user": USER, "password_file": PASSWORD_FILE}
    return {"user": "root", "password": ""}


def admin_connection(database: str | None = None) -> Any:
    """A PyMySQL connection of the test account (autocommit), for set-up and for tests that act
    from outside harvester (KILL a connection, hold a row lock)."""
    import pymysql

    acc = account()
    password = DBSettings(**acc).get_password()
    try:
        return pymysql.connect(host=HOST, port=PORT, user=acc["user"], password=password, database=database,
                               autocommit=True, connect_timeout=5)
    except pymysql.err.OperationalError as exc:
        if os.environ.get("HARVESTER_TEST_NO_MARIADB"):
            pytest.skip(f"no MariaDB at {HOST}:{PORT} ({exc})")
        pytest.fail(f"MariaDB at {HOST}:{PORT} does not answer ({exc}): run scripts/setup_mariadb.sh "
                    f"(or set HARVESTER_TEST_NO_MARIADB=1 to skip the MariaDB tests)")


def rows(database: str, sql: str) -> list[dict]:
    """Rows of ``sql`` in ``database`` as dicts, read from outside harvester ([] while the tables
    are not made yet)."""
    import pymysql

    con = admin_connection(database)
    try:
        with con.cursor(pymysql.cursors.DictCursor) as cursor:
            cursor.execute(sql)
            return list(cursor.fetchall())
    except pymysql.err.ProgrammingError:
        return []
    finally:
        con.close()


def db_overrides(schema: str, **extra: Any) -> dict[str, Any]:
    """The ``[db]`` cfg overrides for ``schema`` on the test server."""
    return {"engine": "mariadb", "host": HOST, "port": PORT, "schema": schema, **account(), **extra}


def mariadb_settings(overrides: dict[str, Any], **extra: Any) -> DBSettings:
    """DBSettings for ``[db]`` overrides as :func:`mariadb_database` gives them."""
    return DBSettings(engine="mariadb", host=overrides["host"], port=int(overrides["port"]), user=overrides["user"],
                      password=overrides.get("password", ""), password_file=overrides.get("password_file", ""),
                      schema=overrides["schema"], **extra)


def create_database(prefix: str = "hv_") -> str:
    name = f"{prefix}{secrets.token_hex(6)}"
    con = admin_connection()
    try:
        con.cursor().execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    finally:
        con.close()
    return name


def drop_database(name: str) -> None:
    con = admin_connection()
    try:
        con.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
    finally:
        con.close()


@contextmanager
def mariadb_database(prefix: str = "hv_", **extra: Any) -> Iterator[dict[str, Any]]:
    """A scratch database (``hv_<12 hex>``) for the block: yields its ``[db]`` overrides, drops it after."""
    name = create_database(prefix)
    try:
        yield db_overrides(name, **extra)
    finally:
        drop_database(name)
