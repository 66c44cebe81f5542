"""MySQL/MariaDB FIFO backend over PyMySQL: one table ``<titleName>_FIFO`` per FIFO (with
``[db] tablePrefix`` in front when it is set).

Server keys (the FIFO's section first, then ``[fifo]``, as the original): ``db_host`` (default
127.0.0.1), ``db_port`` (3306), ``db_user``, ``db_password``, ``db_schema``; ``[fifo]
reconnectTimeout`` (300 s). A dequeue selects its rows ``FOR UPDATE SKIP LOCKED`` and removes
(or moves) them in the same transaction, so two processes never get the same object. One
connection per thread and process; a lost connection is reopened (with backoff, up to
reconnectTimeout) and the statement retried. The password is never logged.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any, Callable

from pandaharvester.errors import ConfigError
from pandaharvester.harvesterconfig import harvester_config
from pandaharvester.harvestercore import log_utils
from pandaharvester.harvesterfifo.base_fifo import COND_SCORE_SQL, BaseFifo, check_ids, check_mode

_logger = log_utils.setup_logger("mysql_fifo")
# server gone away, lost connection, cannot connect, server shutdown; deadlock / lock wait timeout
_RECONNECT_CODES = {2003, 2006, 2013, 2055, 1053}
_RETRY_CODES = {1205, 1213}


class MysqlFifo(BaseFifo):
    """The FIFO in a MySQL/MariaDB table (see the module docstring)."""

    def __init__(self, **kwarg: Any) -> None:
        super().__init__(**kwarg)
        try:
            import pymysql
        except ImportError:
            raise ConfigError("fifoModule = pandaharvester.harvesterfifo.mysql_fifo needs PyMySQL: "
                              "pip install 'pandaharvester[mysql]'") from None
        self._pymysql = pymysql
        self.host, self._where = self.setting("db_host", "127.0.0.1")
        self.port = int(self.setting("db_port", 3306)[0])
        self.user = self.setting("db_user", "harvester")[0]
        self._password = self.setting("db_password", "")[0]
        self.schema = self.setting("db_schema", "HARVESTER")[0]
        self.reconnectTimeout = float(self.setting("reconnectTimeout", 300)[0])
        self.tableName = f"{self.instance_prefix()}{self.titleName}_FIFO"
        self._local = threading.local()
        try:
            self._connect()
        except pymysql.MySQLError as exc:
            raise ConfigError(f"{self._where} db_host = {self.host!r}, db_port = {self.port}, db_user = "
                              f"{self.user!r}, db_schema = {self.schema!r}: cannot connect to MySQL/MariaDB for the "
                              f"{self.titleName} FIFO: {exc.args[-1] if exc.args else exc}; start the server or fix "
                              f"these keys") from None
        self._run(lambda cur: cur.execute(
            f"CREATE TABLE IF NOT EXISTS `{self.tableName}` (id BIGINT NOT NULL AUTO_INCREMENT, item LONGBLOB, "
            f"score DOUBLE, temporary TINYINT NOT NULL DEFAULT 0, PRIMARY KEY (id), "
            f"KEY score_index (temporary, score)) ENGINE=InnoDB"))

    def fifo_section_values(self) -> dict[str, Any]:
        try:
            return {
                "db_host": getattr(harvester_config.fifo, "db_host", None),
                "db_port": getattr(harvester_config.fifo, "db_port", None),
                "db_user": getattr(harvester_config.fifo, "db_user", None),
                "db_password": getattr(harvester_config.fifo, "db_password", None),
                "db_schema": getattr(harvester_config.fifo, "db_schema", None),
                "reconnectTimeout": getattr(harvester_config.fifo, "reconnectTimeout", None),
            }
        except AttributeError:  # no [fifo] section
            return {}

    # ------------------------------------------------------------ connection
    def _connect(self) -> Any:
        conn = self._pymysql.connect(host=self.host, port=self.port, user=self.user, password=self._password,
                                     database=self.schema, autocommit=False, connect_timeout=10, charset="utf8mb4",
                                     client_flag=self._pymysql.constants.CLIENT.FOUND_ROWS)
        with conn.cursor() as cur:
            cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
        conn.commit()
        self._local.conn = conn
        self._local.pid = os.getpid()
        return conn

    def _conn(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "pid", None) != os.getpid():
            conn = self._connect()
        return conn

    def _run(self, work: Callable[[Any], Any]) -> Any:
        """``work(cursor)`` in one transaction, committed; rolled back and retried after a
        deadlock, or after reopening a lost connection (backoff, up to reconnectTimeout)."""
        start = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            conn = None
            try:
                conn = self._conn()
                with conn.cursor() as cur:
                    result = work(cur)
                conn.commit()
                return result
            except self._pymysql.MySQLError as exc:
                code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
                lost = code in _RECONNECT_CODES or isinstance(exc, self._pymysql.err.InterfaceError)
                if conn is not None:
                    try:
                        conn.rollback()
                    except Exception:
                        lost = True
                if not (lost or code in _RETRY_CODES) or time.monotonic() - start > self.reconnectTimeout:
                    raise
                if lost:
                    self._local.conn = None
                wait = min(30.0, 0.1 * 2 ** min(attempt, 8))
                log_utils.make_logger(_logger, f"table={self.tableName}", method_name="run").warning(
                    f"{'connection lost' if lost else 'deadlock'} ({code}): retry {attempt} in {wait:.1f} s")
                time.sleep(wait)

    def _cond(self, minscore: float | None, maxscore: float | None, temporary: bool) -> tuple[str, list[Any]]:
        cond, params = ["temporary = %s"], [1 if temporary else 0]
        if minscore is not None:
            cond.append("score >= %s")
            params.append(float(minscore))
        if maxscore is not None:
            cond.append("score <= %s")
            params.append(float(maxscore))
        return " AND ".join(cond), params

    # ------------------------------------------------------------ interface
    def size(self) -> int:
        def work(cur: Any) -> int:
            cur.execute(f"SELECT COUNT(*) FROM `{self.tableName}` WHERE temporary = 0")
            return int(cur.fetchone()[0])

        return self._run(work)

    def put(self, item: bytes, score: float) -> bool:
        return self._run(lambda cur: cur.execute(f"INSERT INTO `{self.tableName}` (item, score) VALUES (%s, %s)",
                                                 (item, score))) == 1

    def putbyid(self, id: Any, item: bytes, score: float) -> bool:
        return self._run(lambda cur: cur.execute(f"INSERT IGNORE INTO `{self.tableName}` (id, item, score) "
                                                 f"VALUES (%s, %s, %s)", (id, item, score))) == 1

    def _pop_many(self, mode: str, minscore: float | None, maxscore: float | None, count: int | None,
                  protective: bool, temporary: bool) -> list[tuple]:
        check_mode(mode)
        where, params = self._cond(minscore, maxscore, temporary)
        order = "DESC" if mode == "last" else "ASC"
        limit = f" LIMIT {int(count)}" if count is not None else ""

        def work(cur: Any) -> list[tuple]:
            cur.execute(f"SELECT id, item, score FROM `{self.tableName}` WHERE {where} ORDER BY score {order}, "
                        f"id {order}{limit} FOR UPDATE SKIP LOCKED", params)
            rows = cur.fetchall()
            ids = [r[0] for r in rows]
            if ids:
                marks = ",".join(["%s"] * len(ids))
                if protective and not temporary:
                    cur.execute(f"UPDATE `{self.tableName}` SET temporary = 1 WHERE id IN ({marks})", ids)
                else:
                    cur.execute(f"DELETE FROM `{self.tableName}` WHERE id IN ({marks})", ids)
            return [(r[0], bytes(r[1]) if r[1] is not None else None, r[2]) for r in rows]

        return self._run(work)

    def _pop(self, mode: str, timeout: float | None, protective: bool) -> tuple | None:
        def attempt() -> tuple | None:
            got = self._pop_many(mode, None, None, 1, protective, False)
            return got[0] if got else None

        return self.wait_for(attempt, timeout)

    def get(self, timeout: float | None = None, protective: bool = False) -> tuple | None:
        return self._pop("first", timeout, protective)

    def getlast(self, timeout: float | None = None, protective: bool = False) -> tuple | None:
        return self._pop("last", timeout, protective)

    def getmany(self, mode: str = "first", minscore: float | None = None, maxscore: float | None = None,
                count: int | None = None, protective: bool = False, temporary: bool = False) -> list[tuple]:
        return self._pop_many(mode, minscore, maxscore, count, protective, temporary)

    def peekmany(self, mode: str = "first", minscore: float | None = None, maxscore: float | None = None,
                 count: int | None = None, skip_item: bool = False) -> list[tuple]:
        check_mode(mode)
        where, params = self._cond(minscore, maxscore, False)
        order = "DESC" if mode == "last" else "ASC"
        limit = f" LIMIT {int(count)}" if count is not None else ""
        columns = "id, NULL, score" if skip_item else "id, item, score"

        def work(cur: Any) -> list[tuple]:
            cur.execute(f"SELECT {columns} FROM `{self.tableName}` WHERE {where} ORDER BY score {order}, id {order}"
                        f"{limit}", params)
            return [(r[0], bytes(r[1]) if r[1] is not None else None, r[2]) for r in cur.fetchall()]

        return self._run(work)

    def peek(self, skip_item: bool = False) -> tuple | None:
        got = self.peekmany("first", count=1, skip_item=skip_item)
        return got[0] if got else None

    def peeklast(self, skip_item: bool = False) -> tuple | None:
        got = self.peekmany("last", count=1, skip_item=skip_item)
        return got[0] if got else None

    def peekbyid(self, id: Any, temporary: bool = False, skip_item: bool = False) -> tuple | None:
        columns = "id, NULL, score" if skip_item else "id, item, score"

        def work(cur: Any) -> tuple | None:
            cur.execute(f"SELECT {columns} FROM `{self.tableName}` WHERE id = %s AND temporary = %s",
                        (id, 1 if temporary else 0))
            row = cur.fetchone()
            return None if row is None else (row[0], bytes(row[1]) if row[1] is not None else None, row[2])

        return self._run(work)

    def clear(self) -> None:
        self._run(lambda cur: cur.execute(f"DELETE FROM `{self.tableName}`"))

    def delete(self, ids: list | tuple) -> int:
        check_ids(ids)
        if not ids:
            return 0
        marks = ",".join(["%s"] * len(ids))
        return self._run(lambda cur: cur.execute(f"DELETE FROM `{self.tableName}` WHERE id IN ({marks})", list(ids)))

    def restore(self, ids: list | tuple | None = None) -> int:
        check_ids(ids, allow_none=True)
        if ids is None:
            return self._run(lambda cur: cur.execute(f"UPDATE `{self.tableName}` SET temporary = 0 "
                                                     f"WHERE temporary != 0"))
        if not ids:
            return 0
        marks = ",".join(["%s"] * len(ids))
        return self._run(lambda cur: cur.execute(f"UPDATE `{self.tableName}` SET temporary = 0 WHERE temporary != 0 "
                                                 f"AND id IN ({marks})", list(ids)))

    def update(self, id: Any, item: bytes | None = None, score: float | None = None, temporary: int | None = None,
               cond_score: str | None = None) -> bool:
        sets, params = [], []
        if item is not None:
            sets.append("item = %s")
            params.append(item)
        if score is not None:
            sets.append("score = %s")
            params.append(score)
        if temporary is not None:
            sets.append("temporary = %s")
            params.append(1 if temporary else 0)
        if not sets:
            return False
        sql = f"UPDATE `{self.tableName}` SET {', '.join(sets)} WHERE id = %s"
        params.append(id)
        if cond_score in COND_SCORE_SQL and score is not None:
            sql += " AND " + COND_SCORE_SQL[cond_score].format(p="%s")
            params.append(score)
        return self._run(lambda cur: cur.execute(sql, params)) >= 1
