"""SQLite FIFO backend: one file per FIFO (``[fifo] database_filename``, ``$(TITLE)`` replaced by
the FIFO's title), WAL journal, created 0600. A dequeue is one write transaction (``BEGIN
IMMEDIATE``), so two processes never get the same object. One connection per thread and process.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from typing import Any

from pandaharvester.errors import ConfigError
from pandaharvester.harvesterconfig import harvester_config
from pandaharvester.harvesterfifo.base_fifo import COND_SCORE_SQL, BaseFifo, check_ids, check_mode

_CREATE = ("CREATE TABLE IF NOT EXISTS queue_table (id INTEGER PRIMARY KEY, item BLOB, score REAL, "
           "temporary INTEGER DEFAULT 0)")
_INDEX = "CREATE INDEX IF NOT EXISTS score_index ON queue_table (temporary, score)"


class SqliteFifo(BaseFifo):
    """The FIFO in a SQLite file (see the module docstring)."""

    def __init__(self, **kwarg: Any) -> None:
        super().__init__(**kwarg)
        filename, where = self.setting("database_filename")
        filename = str(filename).replace("$(TITLE)", self.titleName).replace("$(AGENT)", self.titleName)
        self.db_path = os.path.abspath(filename)
        self._local = threading.local()
        try:
            if not os.path.exists(self.db_path):
                os.close(os.open(self.db_path, os.O_CREAT | os.O_WRONLY, 0o600))
            os.chmod(self.db_path, 0o600)
            conn = self._conn()
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(_CREATE)
            conn.execute(_INDEX)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"{where} database_filename = {filename!r}: cannot open the {self.titleName} FIFO "
                              f"file {self.db_path}: {exc}; use a writable local directory") from exc

    def fifo_section_values(self) -> dict[str, Any]:
        try:
            return {
                "database_filename": getattr(harvester_config.fifo, "database_filename", None),
            }
        except AttributeError:  # no [fifo] section
            return {}

    # ------------------------------------------------------------ connection
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "pid", None) != os.getpid():
            conn = sqlite3.connect(self.db_path, timeout=60, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
            self._local.pid = os.getpid()
        return conn

    def _write(self, work: Any) -> Any:
        """``work(conn)`` in one write transaction (committed, or rolled back when it raises)."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = work(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    @staticmethod
    def _record(row: Any, skip_item: bool = False) -> tuple | None:
        if row is None:
            return None
        if skip_item:
            return row[0], None, row[1]
        return row[0], bytes(row[1]) if row[1] is not None else None, row[2]

    @staticmethod
    def _where(mode: str, minscore: float | None, maxscore: float | None, temporary: bool
               ) -> tuple[str, list[Any]]:
        check_mode(mode)
        cond, params = ["temporary = ?"], [1 if temporary else 0]
        if minscore is not None:
            cond.append("score >= ?")
            params.append(float(minscore))
        if maxscore is not None:
            cond.append("score <= ?")
            params.append(float(maxscore))
        return " AND ".join(cond), params

    # ------------------------------------------------------------ interface
    def size(self) -> int:
        return self._conn().execute("SELECT COUNT(*) FROM queue_table WHERE temporary = 0").fetchone()[0]

    def put(self, item: bytes, score: float) -> bool:
        cur = self._conn().execute("INSERT INTO queue_table (item, score) VALUES (?, ?)",
                                   (sqlite3.Binary(item), score))
        return cur.rowcount == 1

    def putbyid(self, id: Any, item: bytes, score: float) -> bool:
        cur = self._conn().execute("INSERT OR IGNORE INTO queue_table (id, item, score) VALUES (?, ?, ?)",
                                   (id, sqlite3.Binary(item), score))
        return cur.rowcount == 1

    def _pop_many(self, mode: str, minscore: float | None, maxscore: float | None, count: int | None,
                  protective: bool, temporary: bool) -> list[tuple]:
        where, params = self._where(mode, minscore, maxscore, temporary)
        order = "DESC" if mode == "last" else "ASC"
        limit = f" LIMIT {int(count)}" if count is not None else ""

        def work(conn: sqlite3.Connection) -> list[tuple]:
            rows = conn.execute(f"SELECT id, item, score FROM queue_table WHERE {where} ORDER BY score {order}, id "
                                f"{order}{limit}", params).fetchall()
            ids = [(r[0],) for r in rows]
            if protective and not temporary:
                conn.executemany("UPDATE queue_table SET temporary = 1 WHERE id = ?", ids)
            else:
                conn.executemany("DELETE FROM queue_table WHERE id = ?", ids)
            return [self._record(r) for r in rows]

        return self._write(work)

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
        where, params = self._where(mode, minscore, maxscore, False)
        order = "DESC" if mode == "last" else "ASC"
        limit = f" LIMIT {int(count)}" if count is not None else ""
        columns = "id, score" if skip_item else "id, item, score"
        rows = self._conn().execute(f"SELECT {columns} FROM queue_table WHERE {where} ORDER BY score {order}, "
                                    f"id {order}{limit}", params).fetchall()
        return [self._record(r, skip_item) for r in rows]  # type: ignore[misc]

    def peek(self, skip_item: bool = False) -> tuple | None:
        got = self.peekmany("first", count=1, skip_item=skip_item)
        return got[0] if got else None

    def peeklast(self, skip_item: bool = False) -> tuple | None:
        got = self.peekmany("last", count=1, skip_item=skip_item)
        return got[0] if got else None

    def peekbyid(self, id: Any, temporary: bool = False, skip_item: bool = False) -> tuple | None:
        columns = "id, score" if skip_item else "id, item, score"
        row = self._conn().execute(f"SELECT {columns} FROM queue_table WHERE id = ? AND temporary = ?",
                                   (id, 1 if temporary else 0)).fetchone()
        return self._record(row, skip_item)

    def clear(self) -> None:
        self._write(lambda conn: conn.execute("DELETE FROM queue_table"))

    def delete(self, ids: list | tuple) -> int:
        check_ids(ids)
        if not ids:
            return 0
        return self._write(lambda conn: conn.executemany("DELETE FROM queue_table WHERE id = ?",
                                                         [(i,) for i in ids]).rowcount)

    def restore(self, ids: list | tuple | None = None) -> int:
        check_ids(ids, allow_none=True)
        if ids is None:
            return self._write(lambda conn: conn.execute("UPDATE queue_table SET temporary = 0 "
                                                         "WHERE temporary != 0").rowcount)
        return self._write(lambda conn: conn.executemany("UPDATE queue_table SET temporary = 0 WHERE id = ? AND "
                                                         "temporary != 0", [(i,) for i in ids]).rowcount)

    def update(self, id: Any, item: bytes | None = None, score: float | None = None, temporary: int | None = None,
               cond_score: str | None = None) -> bool:
        sets, params = [], []
        if item is not None:
            sets.append("item = ?")
            params.append(sqlite3.Binary(item))
        if score is not None:
            sets.append("score = ?")
            params.append(score)
        if temporary is not None:
            sets.append("temporary = ?")
            params.append(1 if temporary else 0)
        if not sets:
            return False
        sql = f"UPDATE queue_table SET {', '.join(sets)} WHERE id = ?"
        params.append(id)
        if cond_score in COND_SCORE_SQL and score is not None:
            sql += " AND " + COND_SCORE_SQL[cond_score].format(p="?")
            params.append(score)
        return self._conn().execute(sql, params).rowcount >= 1
