"""What only the MariaDB engine has: lost connections, deadlocks and lock waits retried, the
password file, matched-row counts, DATETIME(6), the mysqlclient connector.

The rest of the DB suite runs on both engines (``tests/test_db_fixtures.py``)."""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time

import pytest

import mariadb_helpers
from pandaharvester.errors import DBError
from pandaharvester.harvestercore.db.engine import DBSettings
from pandaharvester.harvestercore.db_proxy import DBProxy
from test_db_fixtures import (  # noqa: F401
    _module_mariadb, db_engine, db_home, db_overrides, db_settings, insert_workers, make_worker, mariadb_only, proxy,
)

pytestmark = mariadb_only("MariaDB-specific behaviour")


def _connection_id(db: DBProxy) -> int:
    value = db.execute("SELECT CONNECTION_ID()").fetchone()[0]
    db.commit()
    return value


def _kill(connection_id: int) -> None:
    admin = mariadb_helpers.admin_connection()
    try:
        admin.cursor().execute(f"KILL {int(connection_id)}")
    finally:
        admin.close()


def test_killed_connection_is_reopened_by_the_next_call(proxy, caplog):
    insert_workers(proxy, [make_worker(1, status="running")])
    for call in ("read", "write"):
        before = _connection_id(proxy)
        _kill(before)
        caplog.clear()
        if call == "read":
            assert proxy.get_worker_with_id(1).status == "running"
        else:
            assert proxy.get_workers_to_update(10, 0, 600, "mon")  # a picker: START TRANSACTION first
            assert proxy.get_worker_with_id(1).lockedBy == "mon"
        assert _connection_id(proxy) != before
        assert "reconnect" in caplog.text, caplog.text
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


def test_deadlock_is_retried_and_the_update_applied_once(proxy, db_settings, caplog):
    insert_workers(proxy, [make_worker(i, status="running") for i in range(1, 40)])
    holder = DBProxy(settings=db_settings)
    victim = DBProxy(settings=db_settings)
    w1, w2 = victim.get_worker_with_id(1), victim.get_worker_with_id(2)
    for worker in (w1, w2):
        worker.nJobs = 5
    # the holder has written many rows (InnoDB rolls back the smaller transaction) and row 1
    holder.execute("UPDATE work_table SET nCore=2 WHERE workerID>=10")
    holder.execute("UPDATE work_table SET nCore=3 WHERE workerID=1")
    result: list = []
    thread = threading.Thread(target=lambda: result.append(victim.update_workers_bulk([w2, w1])))
    thread.start()
    time.sleep(0.5)  # the victim holds row 2 and waits for row 1
    holder.execute("UPDATE work_table SET nCore=3 WHERE workerID=2")  # a cycle: one of them is rolled back
    holder.commit()
    thread.join(30)
    assert result == [[1, 1]]
    assert "Deadlock" in caplog.text and "retry 1" in caplog.text, caplog.text
    for worker_id in (1, 2):
        stored = proxy.get_worker_with_id(worker_id)
        assert (stored.nJobs, stored.nCore) == (5, 3)
    holder.close()
    victim.close()


def test_lock_wait_timeout_is_retried_then_reported(proxy, db_settings, caplog):
    settings = dataclasses.replace(db_settings, busy_timeout=1.5)
    holder, waiter = DBProxy(settings=settings), DBProxy(settings=settings)
    assert waiter.add_seq_number("SEQ_x", 1)
    holder.execute("UPDATE seq_table SET curVal=curVal+1 WHERE numberName=:n", {":n": "SEQ_x"})
    with pytest.raises(DBError, match="stayed unavailable"):
        waiter.get_next_seq_number("SEQ_x")
    retries = [r.getMessage() for r in caplog.records if r.levelname == "WARNING" and "retry" in r.getMessage()]
    assert retries and "Lock wait timeout" in retries[0], caplog.text
    holder.commit()
    # nothing of the failed calls was applied
    assert waiter.get_next_seq_number("SEQ_x") == 3
    holder.close()
    waiter.close()


def test_update_rowcount_counts_matched_rows(proxy):
    """An UPDATE that changes nothing still counts its row (CLIENT.FOUND_ROWS), as on SQLite:
    the lock re-checks compare the count with the rows they meant to write."""
    insert_workers(proxy, [make_worker(1, status="running")])
    assert proxy.execute("UPDATE work_table SET status='running' WHERE workerID=1").rowcount == 1
    proxy.commit()
    worker = proxy.get_worker_with_id(1)
    worker.status = "running"
    worker.force_update("status")
    assert proxy.update_worker(worker, {"workerID": 1}) == 1


def test_timestamps_are_datetime6_naive_utc(proxy):
    worker = make_worker(1, status="running")
    insert_workers(proxy, [worker])
    cur = proxy.execute("SELECT column_type FROM information_schema.columns WHERE table_schema=DATABASE() "
                        "AND table_name='work_table' AND column_name='modificationTime'")
    assert cur.fetchone()[0] == "datetime(6)"
    proxy.commit()
    stored = proxy.get_worker_with_id(1)
    assert stored.modificationTime == worker.modificationTime and stored.modificationTime.tzinfo is None


def test_mysqlclient_connector(db_settings):
    """``[db] useMySQLdb = True`` (the original's switch) works through mysqlclient."""
    pytest.importorskip("MySQLdb", reason="mysqlclient is installed by scripts/setup_mariadb.sh")
    db = DBProxy(settings=dataclasses.replace(db_settings, use_mysqldb=True))
    assert db.engine.driver == "mysqldb"
    db.make_tables(None, None)
    insert_workers(db, [make_worker(1, status="running"), make_worker(2, status="running")])
    got = db.get_workers_to_update(10, 0, 600, "mon")
    assert sorted(w.workerID for q in got.values() for s in q.values() for ws in s for w in ws) == [1, 2]
    assert db.execute("UPDATE work_table SET status='running' WHERE workerID=1").rowcount == 1
    db.commit()
    db.close()


def test_password_file_must_be_0600(tmp_path, db_overrides, fresh_home):
    from pandaharvester.harvesterbody.master_cli import check_config

    password = DBSettings(**mariadb_helpers.account()).get_password()
    pw_file = tmp_path / "db.pw"
    pw_file.write_text(password + "\n")
    os.chmod(pw_file, 0o644)
    overrides = {k: v for k, v in db_overrides.items() if k not in ("password", "password_file")}
    fresh_home({"db": dict(overrides, password_file=str(pw_file), database_filename="")})
    problems, _warnings = check_config()
    lines = [p for p in problems if "password_file" in p]
    assert len(lines) == 1 and "mode 0644" in lines[0] and f"chmod 600 {pw_file}" in lines[0], problems
    assert password not in "\n".join(problems)
    with pytest.raises(DBError, match="chmod 600"):
        DBProxy()
    os.chmod(pw_file, 0o600)
    problems, _warnings = check_config()
    assert not problems, problems  # and no SQLite file is asked for with engine = mariadb
    db = DBProxy()
    assert _connection_id(db) > 0
    db.close()


def test_password_is_never_logged(tmp_path, db_overrides, caplog):
    secret = "s3cret-" + os.urandom(4).hex()
    pw_file = tmp_path / "wrong.pw"
    pw_file.write_text(secret + "\n")
    os.chmod(pw_file, 0o600)
    settings = mariadb_helpers.mariadb_settings(dict(db_overrides, password_file=str(pw_file)),
                                                reconnect_timeout=0, verbose=True)
    with caplog.at_level(logging.DEBUG), pytest.raises(DBError) as err:
        DBProxy(settings=settings)
    assert "refused access" in str(err.value) and settings.user in str(err.value)
    shown = str(err.value) + repr(err.value) + repr(settings) + caplog.text
    assert secret not in shown
    assert err.value.__cause__ is None  # no driver traceback (with the connect arguments) chained


def test_forked_child_leaves_the_parents_connection_alone(proxy, caplog):
    """A child of fork that closes (or garbage-collects) a proxy it inherited must not end the
    parent's session: the parent goes on on the same connection, without reconnecting."""
    before = _connection_id(proxy)
    pid = os.fork()
    if pid == 0:  # the child
        try:
            proxy.close()
            proxy.__del__()
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    caplog.clear()
    assert _connection_id(proxy) == before
    assert "reconnect" not in caplog.text


class _QueryCounter:
    """Counts the queries (round trips) a PyMySQL connection sends."""

    def __init__(self, con) -> None:
        self.con, self.n = con, 0
        self._query = con.query

        def query(sql, unbuffered=False):
            self.n += 1
            return self._query(sql, unbuffered)

        con.query = query

    def close(self) -> None:
        self.con.query = self._query


@pytest.mark.parametrize("driver", ["pymysql", "mysqldb"])
def test_executemany_update_is_one_round_trip_per_500_rows(proxy, db_settings, driver):
    """An UPDATE's executemany goes ";"-joined (the connectors send a round trip per row):
    1,200 rows in 3 round trips, each row written with its own values, rows matched summed
    (missing rows not counted)."""
    from pandaharvester.harvestercore.db import engine_mysql

    if driver == "mysqldb":
        pytest.importorskip("MySQLdb", reason="mysqlclient is installed by scripts/setup_mariadb.sh")
    db = DBProxy(settings=dataclasses.replace(db_settings, driver=driver))
    assert db.insert_workers([make_worker(i, status="running") for i in range(1, 1201)], "submitter")
    rows = [{":n": i % 7, ":c": f"s'{i}", ":id": i} for i in range(1, 1201)] + [{":n": 1, ":c": "x", ":id": 99999}]
    counter = _QueryCounter(db._con) if driver == "pymysql" else None
    with db._tx():
        matched = db._many("UPDATE work_table SET nJobs=:n, computingSite=:c WHERE workerID=:id", rows)
    assert matched == 1200
    if counter is not None:
        assert counter.n == 1 + 3  # START TRANSACTION, then 3 x (up to) 500 statements
        counter.close()
    assert engine_mysql.MULTI_ROWS == 500
    stored = dict((r[0], (r[1], r[2])) for r in db.execute("SELECT workerID, nJobs, computingSite FROM work_table")
                  .fetchall())
    db.commit()
    assert all(stored[i] == (i % 7, f"s'{i}") for i in range(1, 1201))
    db.close()


def test_joined_executemany_error_rolls_back_every_row(proxy):
    """A row failing in the middle of a joined batch: the error comes back (a value too long is
    a DBError), nothing of the method is kept, and the connection serves the next call."""
    assert proxy.insert_workers([make_worker(i, status="running") for i in range(1, 801)], "submitter")
    workers = [proxy.get_worker_with_id(i) for i in range(1, 801)]
    for worker in workers:
        worker.nJobs, worker.computingSite = 3, "Q2"  # one column set: one executemany of 800 rows
    workers[650].computingSite = "x" * 300  # does not fit VARCHAR(255): the 651st statement fails
    with pytest.raises(DBError, match="does not fit"):
        proxy.update_workers_bulk(workers)
    assert proxy.execute("SELECT COUNT(*) FROM work_table WHERE nJobs=3").fetchone()[0] == 0
    proxy.commit()
    workers[650].computingSite = "Q2"
    assert proxy.update_workers_bulk(workers) == [1] * 800
    assert proxy.get_worker_with_id(800).nJobs == 3


def _isolation(db: DBProxy) -> str:
    value = db.execute("SELECT @@SESSION.tx_isolation").fetchone()[0]
    db.commit()
    return value


def test_every_connection_is_read_committed_reconnects_included(proxy):
    """READ COMMITTED on each new session (the server's default is REPEATABLE READ, whose gap
    locks would make two processes' SKIP LOCKED pickers and range updates wait on each other),
    also on the one a lost connection is replaced by."""
    admin = mariadb_helpers.admin_connection()
    cur = admin.cursor()
    cur.execute("SELECT @@GLOBAL.tx_isolation")
    assert cur.fetchone()[0] == "REPEATABLE-READ"  # what a session would get without the SET
    admin.close()
    assert _isolation(proxy) == "READ-COMMITTED"
    before = _connection_id(proxy)
    _kill(before)
    assert proxy.get_workers_to_update(10, 0, 600, "mon") == {}  # reconnects
    assert _connection_id(proxy) != before
    assert _isolation(proxy) == "READ-COMMITTED"
