"""SQLite state of the emulator: one file, WAL, a small connection pool, one write lock.

Everything the emulator knows lives here so that a restart on the same file loses nothing.
Row helpers return plain dicts; JSON columns are decoded by the callers that need them.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS tasks(
    task_id INTEGER PRIMARY KEY, site TEXT, prod_source_label TEXT, n_jobs INTEGER,
    params TEXT, creation_time REAL);
CREATE TABLE IF NOT EXISTS jobs(
    panda_id INTEGER PRIMARY KEY, task_id INTEGER, jobset_id INTEGER, site TEXT, status TEXT,
    prod_source_label TEXT, resource_type TEXT, job_type TEXT, core_count INTEGER,
    attempt_nr INTEGER, command TEXT DEFAULT 'NULL', harvester_id TEXT, worker_id INTEGER,
    node TEXT, spec TEXT, final_target TEXT, holding_since REAL, n_changes INTEGER DEFAULT 0,
    n_reports INTEGER DEFAULT 0, sub_status TEXT, report TEXT, creation_time REAL,
    modification_time REAL, state_change_time REAL, n_sent INTEGER DEFAULT 0);
CREATE INDEX IF NOT EXISTS jobs_site_status ON jobs(site, status);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status);
CREATE TABLE IF NOT EXISTS event_ranges(
    event_range_id TEXT PRIMARY KEY, panda_id INTEGER, task_id INTEGER, jobset_id INTEGER,
    start_event INTEGER, last_event INTEGER, lfn TEXT, guid TEXT, scope TEXT, status TEXT,
    n_changes INTEGER DEFAULT 0, modification_time REAL);
CREATE INDEX IF NOT EXISTS er_job ON event_ranges(panda_id, status);
CREATE TABLE IF NOT EXISTS instances(
    harvester_id TEXT PRIMARY KEY, owner TEXT, host TEXT, first_seen REAL, last_heartbeat REAL,
    n_heartbeats INTEGER DEFAULT 0, data TEXT, command_sites TEXT);
CREATE TABLE IF NOT EXISTS workers(
    harvester_id TEXT, worker_id INTEGER, status TEXT, computing_site TEXT, resource_type TEXT,
    job_type TEXT, n_core INTEGER, n_jobs INTEGER, batch_id TEXT, pandaid_list TEXT, data TEXT,
    n_updates INTEGER DEFAULT 0, last_update REAL, PRIMARY KEY(harvester_id, worker_id));
CREATE TABLE IF NOT EXISTS commands(
    command_id INTEGER PRIMARY KEY AUTOINCREMENT, harvester_id TEXT, command TEXT, params TEXT,
    ack_requested INTEGER, status TEXT, creation_time REAL, sent_time REAL);
CREATE TABLE IF NOT EXISTS queue_depth(
    site TEXT, job_type TEXT, resource_type TEXT, n INTEGER, update_time REAL,
    PRIMARY KEY(site, job_type, resource_type));
CREATE TABLE IF NOT EXISTS worker_stats(
    harvester_id TEXT, panda_queue TEXT, statistics TEXT, update_time REAL,
    PRIMARY KEY(harvester_id, panda_queue));
CREATE TABLE IF NOT EXISTS service_metrics(
    harvester_id TEXT, digest TEXT, creation_time TEXT, hostname TEXT, metrics TEXT,
    received REAL, PRIMARY KEY(harvester_id, digest));
CREATE TABLE IF NOT EXISTS dialogs(
    harvester_id TEXT, diag_id TEXT, data TEXT, received REAL, PRIMARY KEY(harvester_id, diag_id));
CREATE TABLE IF NOT EXISTS instance_configs(
    harvester_id TEXT PRIMARY KEY, queues TEXT, cfg TEXT, queue_config TEXT);
CREATE TABLE IF NOT EXISTS dispatches(
    id INTEGER PRIMARY KEY AUTOINCREMENT, panda_id INTEGER, attempt_nr INTEGER, harvester_id TEXT,
    worker_id INTEGER, node TEXT, time REAL);
CREATE INDEX IF NOT EXISTS dispatches_job ON dispatches(panda_id);
CREATE TABLE IF NOT EXISTS final_reports(
    id INTEGER PRIMARY KEY AUTOINCREMENT, panda_id INTEGER, attempt_nr INTEGER, job_status TEXT,
    harvester_id TEXT, prior_status TEXT, applied INTEGER, message TEXT, time REAL);
CREATE INDEX IF NOT EXISTS final_reports_job ON final_reports(panda_id);
CREATE TABLE IF NOT EXISTS uploads(
    id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT, name TEXT, path TEXT, size INTEGER,
    received REAL);
"""

FIRST_PANDA_ID = 4000000001
FIRST_TASK_ID = 30000001


class Store:
    """Thread-safe access to the emulator's SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
            os.close(fd)
        self._idle: list[sqlite3.Connection] = []
        self._pool_lock = threading.Lock()
        self._lock = threading.RLock()
        with self._lock, self._conn() as con:
            con.executescript(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        con.row_factory = sqlite3.Row
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")
        con.execute("PRAGMA busy_timeout=30000")
        return con

    @contextmanager
    def _conn(self) -> Iterator[sqlite3.Connection]:
        """Borrow a pooled connection (request threads are short-lived, connections are not)."""
        with self._pool_lock:
            con = self._idle.pop() if self._idle else None
        if con is None:
            con = self._connect()
        try:
            yield con
        finally:
            with self._pool_lock:
                if len(self._idle) < 16:
                    self._idle.append(con)
                    con = None
            if con is not None:
                con.close()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction under the process-wide write lock."""
        with self._lock, self._conn() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            else:
                con.execute("COMMIT")

    def query(self, sql: str, args: tuple | list = ()) -> list[dict]:
        """Run a read query; rows as dicts."""
        with self._conn() as con:
            return [dict(r) for r in con.execute(sql, args).fetchall()]

    def scalar(self, sql: str, args: tuple | list = ()) -> Any:
        """First column of the first row, or None."""
        with self._conn() as con:
            row = con.execute(sql, args).fetchone()
        return None if row is None else row[0]

    # ---------------------------------------------------------------- ids
    @staticmethod
    def next_id(con: sqlite3.Connection, key: str, first: int, count: int = 1) -> int:
        """Reserve ``count`` ids of sequence ``key``; returns the first one."""
        row = con.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        start = int(row[0]) if row else first
        con.execute("INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", (key, str(start + count)))
        return start

    @staticmethod
    def get_meta(con: sqlite3.Connection, key: str, default: Any = None) -> Any:
        """A JSON value from the meta table."""
        row = con.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    @staticmethod
    def set_meta(con: sqlite3.Connection, key: str, value: Any) -> None:
        """Store a JSON value in the meta table."""
        con.execute("INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", (key, json.dumps(value)))

    def close(self) -> None:
        """Close the pooled connections."""
        with self._pool_lock:
            idle, self._idle = self._idle, []
        for con in idle:
            con.close()


def now() -> float:
    """Wall-clock seconds (stored as REAL)."""
    return time.time()
