"""DB infrastructure: tables, schema upgrade, file safety, bad input, transactions, engines."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import sqlite3
import stat
import tempfile
import threading

import pytest

from pandaharvester.errors import DBError
from pandaharvester.harvestercore.db import schema
from pandaharvester.harvestercore.db.engine import DBSettings, make_engine
from pandaharvester.harvestercore.db_proxy import DBProxy
from pandaharvester.harvestercore.work_spec import WorkSpec
from test_db_fixtures import (  # noqa: F401
    _module_mariadb, db_engine, db_home, db_overrides, insert_workers, make_job, make_worker, proxy,
    sqlite_only,
)


def _index_names(proxy, table: str) -> set[str]:
    names = proxy.engine.index_names(proxy.cur, table)
    proxy.commit()
    return names


def test_make_tables_creates_every_table_and_index(proxy):
    assert all(proxy.engine.table_exists(proxy.cur, table) for table in schema.TABLES)
    proxy.commit()
    for table in schema.TABLES:
        assert proxy.check_table(schema.spec_class(table), table) == []
    indexes = _index_names(proxy, "work_table")
    assert "idx_status_work_table" in indexes and "idxh_work_status_mod" in indexes
    # sequences made, and a second make_tables keeps them
    assert proxy.get_next_seq_number("SEQ_workerID") == 2
    proxy.make_tables(None, None)
    assert proxy.get_next_seq_number("SEQ_workerID") == 3


@sqlite_only("file permissions of the DB file and its WAL companions")
def test_db_file_is_created_0600(proxy):
    assert proxy.add_seq_number("SEQ_x", 1)  # a write: the WAL files exist now
    for name in (proxy.engine.path, proxy.engine.path + "-wal", proxy.engine.path + "-shm"):
        assert stat.S_IMODE(os.stat(name).st_mode) == 0o600, name


@sqlite_only("file permissions of the DB file and its WAL companions")
def test_existing_db_file_and_wal_files_become_0600(db_home):
    path = str(db_home / "harvester.db")
    other = sqlite3.connect(path)
    other.execute("PRAGMA journal_mode=WAL").fetchall()
    other.execute("CREATE TABLE t (a integer)")
    other.commit()
    for name in (path, path + "-wal", path + "-shm"):
        os.chmod(name, 0o644)
    proxy = DBProxy()
    proxy.make_tables(None, None)
    assert proxy.add_seq_number("SEQ_x", 1)
    for name in (path, path + "-wal", path + "-shm"):
        assert stat.S_IMODE(os.stat(name).st_mode) == 0o600, name
    proxy.close()
    other.close()


def test_schema_upgrade_keeps_rows_and_adds_columns(db_home):
    # tables of an older version: fewer columns, no indexes (the same DDL on both engines)
    proxy = DBProxy()
    for table in ("work_table", "pq_table"):
        proxy.execute(f"DROP TABLE IF EXISTS {table}")
    proxy.execute("CREATE TABLE work_table (workerID integer primary key, status varchar(255), "
                  "computingSite varchar(255))")
    proxy.executemany("INSERT INTO work_table VALUES (?,?,?)", [(1, "running", "Q1"), (2, "submitted", "Q2")])
    proxy.execute("CREATE TABLE pq_table (queueName varchar(255), uniqueName varchar(255) primary key)")
    proxy.execute("INSERT INTO pq_table VALUES ('Q1', 'Q1:ANY:ANY')")
    proxy.commit()
    assert proxy.check_table(WorkSpec, "work_table", get_missing=True)
    proxy.make_tables(None, None)
    assert proxy.check_table(WorkSpec, "work_table") == []
    worker = proxy.get_worker_with_id(1)
    assert worker.status == "running" and worker.computingSite == "Q1" and worker.configID is None
    assert proxy.get_worker_with_id(2).computingSite == "Q2"
    # the new columns work, and old pq rows got jobType='ANY'
    worker.configID = 7
    assert proxy.update_worker(worker) == 1
    assert proxy.get_worker_with_id(1).configID == 7
    cur = proxy.execute("SELECT jobType FROM pq_table")
    assert [r[0] for r in cur.fetchall()] == ["ANY"]
    proxy.commit()
    assert "idx_lastUpdate_work_table" in _index_names(proxy, "work_table")
    proxy.close()


@sqlite_only("a corrupt DB file")
def test_corrupt_db_file_gives_dberror_naming_path(db_home):
    path = db_home / "harvester.db"
    path.write_bytes(b"this is not a sqlite database at all" * 100)
    with pytest.raises(DBError) as err:
        DBProxy()
    assert str(path) in str(err.value) and "move the file away" in str(err.value)


def _open_as_unprivileged(path: str) -> str:
    """Open ``path`` with an engine as a user that is not root (the suite may run as root, who
    may write anything): in a forked child that drops to 'nobody'. Returns the DBError text."""
    def attempt(queue) -> None:
        if os.geteuid() == 0:
            os.setgid(65534)
            os.setuid(65534)
        try:
            make_engine(DBSettings(database_filename=path)).connect()
            queue.put("no error")
        except DBError as exc:
            queue.put(str(exc))
        except Exception as exc:  # anything else is a failure of the test
            queue.put(f"unexpected {exc!r}")

    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=attempt, args=(queue,))
    child.start()
    message = queue.get(timeout=30)
    child.join(timeout=30)
    return message


@pytest.fixture()
def shared_dir():
    """A directory an unprivileged user can reach (pytest's tmp_path is private to root)."""
    path = tempfile.mkdtemp(prefix="harvester-db-", dir="/tmp")
    os.chmod(path, 0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_unwritable_db_file_gives_dberror(shared_dir):
    path = os.path.join(shared_dir, "harvester.db")
    sqlite3.connect(path).close()
    os.chmod(path, 0o400 if os.geteuid() != 0 else 0o600)  # root-owned 0600: not nobody's
    message = _open_as_unprivileged(path)
    assert path in message and "not readable and writable" in message


def test_unwritable_db_directory_gives_dberror(shared_dir):
    path = os.path.join(shared_dir, "harvester.db")
    sqlite3.connect(path).close()
    os.chmod(path, 0o666)
    os.chmod(shared_dir, 0o555)  # WAL needs to create harvester.db-wal/-shm there
    try:
        message = _open_as_unprivileged(path)
    finally:
        os.chmod(shared_dir, 0o777)
    assert path in message and f"directory {shared_dir}" in message and "-wal" in message


@sqlite_only("a DB file corrupted on disk")
def test_db_file_corrupted_while_running_gives_dberror(db_home):
    """Corruption found after start-up (bad pages, valid header) is an error naming the file,
    not a neutral value returned cycle after cycle."""
    path = db_home / "harvester.db"
    proxy = DBProxy()
    proxy.make_tables(None, None)
    insert_workers(proxy, [make_worker(i, status="running", diagMessage="x" * 400) for i in range(1, 200)])
    proxy.close()
    con = sqlite3.connect(path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    # the schema's pages stay intact (they can lie anywhere in the file)
    schema_pages = {r[0] for r in con.execute("SELECT pageno FROM dbstat WHERE name='sqlite_schema'")}
    con.close()
    data = bytearray(path.read_bytes())
    page = 4096
    assert len(data) > 20 * page
    for offset in range(len(data) // page // 2 * page, len(data), page):
        if offset // page + 1 not in schema_pages:
            data[offset:offset + page] = b"\xa5" * page
    path.write_bytes(bytes(data))
    proxy = DBProxy()
    with pytest.raises(DBError) as err:
        proxy.get_workers_to_update(100, 0, 600, "monitor")
    assert str(path) in str(err.value) and "corrupt" in str(err.value) and "move the file away" in str(err.value)
    proxy.close()


def test_missing_directory_gives_dberror(tmp_path):
    settings = DBSettings(database_filename=str(tmp_path / "nodir" / "h.db"))
    with pytest.raises(DBError, match="does not exist"):
        DBProxy(settings=settings)


def test_unknown_engine_is_refused(tmp_path):
    with pytest.raises(DBError, match="unknown: use sqlite, mariadb or mysql"):
        make_engine(DBSettings(engine="oracle", database_filename=str(tmp_path / "x")))
    assert make_engine(DBSettings(engine="mysql")).name == "mysql"


def test_bad_values_and_unknown_columns_raise(proxy):
    worker = make_worker(1)
    insert_workers(proxy, [worker])
    worker.nCore = "eight"
    with pytest.raises(DBError, match="work_table.nCore"):
        proxy.update_worker(worker)
    worker.reset_changed_list()
    worker.diagMessage = "x" * 501
    with pytest.raises(DBError, match="diagMessage"):
        proxy.update_worker(worker)
    worker.reset_changed_list()
    worker.status = "running"
    with pytest.raises(DBError, match="no column 'noSuchColumn'"):
        proxy.update_worker(worker, criteria={"noSuchColumn": 1})
    with pytest.raises(DBError, match="no column"):
        proxy.update_panda_queue_attribute("bogus", 1, queue_name="Q1")
    with pytest.raises(DBError, match="no column"):
        proxy.lock_job_again(1, "bogusTime", "lockedBy", "me")
    # nothing was written by the failed calls
    assert proxy.get_worker_with_id(1).status == "submitted"


def test_lossless_numbers_are_accepted_as_sqlite_stores_them(proxy):
    # values from JSON (CRIC maxtime "86400", a computed 8.0 cores) fit integer columns, as
    # they did in the original: SQLite's affinity stores them as integers
    worker = make_worker(1)
    insert_workers(proxy, [worker])
    worker = proxy.get_worker_with_id(1)
    worker.maxWalltime = "86400"
    worker.nCore = 8.0
    assert proxy.update_worker(worker) == 1
    stored = proxy.get_worker_with_id(1)
    assert (stored.maxWalltime, stored.nCore) == (86400, 8)
    assert type(stored.maxWalltime) is int and type(stored.nCore) is int
    for bad in (8.5, "8 cores", "8.0"):
        worker.nCore = bad
        with pytest.raises(DBError, match="work_table.nCore"):
            proxy.update_worker(worker)
        worker.reset_changed_list()
    assert proxy.get_worker_with_id(1).nCore == 8


def test_one_transaction_per_update_rolls_back_on_error(proxy):
    good = make_job(1)
    bad = make_job(2)
    bad.nCore = "many"
    with pytest.raises(DBError):
        proxy.insert_jobs([good, bad])
    assert proxy.get_job(1) is None
    cur = proxy.execute("SELECT COUNT(*) FROM file_table")
    assert cur.fetchone()[0] == 0
    proxy.commit()
    # the monitor's write: a job and two workers; a bad value in the last worker undoes it all
    assert proxy.insert_jobs([make_job(3, status="running", sub_status="running")])
    insert_workers(proxy, [make_worker(1, status="running"), make_worker(2, status="running")])
    got = proxy.get_workers_to_update(10, 0, 600, "mon")
    workers = sorted((w for q in got.values() for sets in q.values() for s in sets for w in s),
                     key=lambda w: w.workerID)
    job = proxy.get_job(3)
    job.subStatus = "to_transfer"
    workers[0].status = "finished"
    workers[1].nativeExitCode = "not a number"
    with pytest.raises(DBError, match="nativeExitCode"):
        proxy.update_jobs_workers([job], workers, "mon", [[3], [3]])
    assert proxy.get_job(3).subStatus == "running"
    assert proxy.get_worker_with_id(1).status == "running"
    assert proxy.get_workers_with_job_id(3) == []
    # an attribute that is no column, where the API takes column names
    with pytest.raises(DBError, match="no column 'noSuchAttr'"):
        proxy.lock_workers({1: {"lockedBy": "fifo", "noSuchAttr": 1}}, 600)
    assert proxy.get_worker_with_id(1).lockedBy == "mon"


def test_driver_errors_return_the_original_default(proxy, caplog):
    job = make_job(5)
    assert proxy.insert_jobs([job])
    # a duplicate primary key inside one statement: logged, False, nothing half-written
    assert proxy.insert_files([job]) is True
    dup = make_worker(9)
    insert_workers(proxy, [dup])
    assert proxy.insert_workers([make_worker(9)], "x") is False
    assert "UNIQUE constraint failed" in caplog.text or "Duplicate entry '9' for key 'PRIMARY'" in caplog.text


def test_raw_execute_commit_rollback(proxy):
    proxy.execute("INSERT INTO seq_table (numberName, curVal) VALUES (:n, :v)", {":n": "SEQ_test", ":v": 5})
    proxy.rollback()
    assert proxy.get_next_seq_number("SEQ_test") is None
    proxy.executemany("INSERT INTO seq_table (numberName, curVal) VALUES (:n, :v)",
                      [{":n": "SEQ_a", ":v": 1}, {":n": "SEQ_b", ":v": 2}])
    proxy.commit()
    assert proxy.get_next_seq_number("SEQ_b") == 3
    # original-style SQL with FOR UPDATE / INSERT IGNORE is accepted
    cur = proxy.execute("SELECT curVal FROM seq_table WHERE numberName=:n FOR UPDATE", {":n": "SEQ_a"})
    assert cur.fetchone()[0] == 1
    proxy.commit()


def test_raw_execute_read_then_write_as_the_original(proxy):
    # admin scripts written for the original: SELECT, then UPDATE, then commit()
    assert proxy.add_seq_number("SEQ_r", 1)
    cur = proxy.execute("SELECT curVal FROM seq_table WHERE numberName=:n", {":n": "SEQ_r"})
    assert cur.fetchone()[0] == 1
    proxy.execute("UPDATE seq_table SET curVal=:v WHERE numberName=:n", {":v": 5, ":n": "SEQ_r"})
    proxy.commit()
    assert proxy.get_next_seq_number("SEQ_r") == 6
    # a read left open does not block the next method (its own transaction)
    proxy.execute("SELECT curVal FROM seq_table WHERE numberName=:n", {":n": "SEQ_r"}).fetchall()
    assert proxy.get_next_seq_number("SEQ_r") == 7
    # an open raw write transaction is joined by a method and rolled back with it
    proxy.execute("UPDATE seq_table SET curVal=100 WHERE numberName=:n", {":n": "SEQ_r"})
    assert proxy.get_next_seq_number("SEQ_r") == 101
    proxy.rollback()
    assert proxy.get_next_seq_number("SEQ_r") == 8


def _holder_and_waiter(db_home, busy_timeout: float, step: int) -> tuple[DBSettings, DBProxy, DBProxy]:
    """Two connections to one file; the holder keeps a write transaction open (SEQ_x += step)."""
    settings = DBSettings(database_filename=str(db_home / "busy.db"), busy_timeout=busy_timeout)
    holder = DBProxy(settings=settings)
    holder.make_table(schema.spec_class("seq_table"), "seq_table")
    waiter = DBProxy(settings=settings)
    assert waiter.add_seq_number("SEQ_x", 1)
    holder.execute("UPDATE seq_table SET curVal=curVal+:d WHERE numberName=:n", {":d": step, ":n": "SEQ_x"})
    return settings, holder, waiter


@sqlite_only("a busy DB file (MariaDB's lock waits: test_db_mariadb.py)")
def test_busy_db_is_retried_then_reported(db_home, caplog):
    settings, holder, waiter = _holder_and_waiter(db_home, 0.4, 1)
    with pytest.raises(DBError, match="stayed locked"):
        waiter.get_next_seq_number("SEQ_x")
    # each wait is logged as a retry with its back-off, naming the file, before giving up
    retries = [r.getMessage() for r in caplog.records if r.levelname == "WARNING" and "retry" in r.getMessage()]
    assert retries and all(settings.database_filename in m for m in retries), caplog.text
    assert "retry 1 in" in retries[0]
    holder.commit()
    assert waiter.get_next_seq_number("SEQ_x") == 3


@sqlite_only("a busy DB file (MariaDB's lock waits: test_db_mariadb.py)")
def test_busy_db_wait_succeeds_once_released(db_home, caplog):
    _settings, holder, waiter = _holder_and_waiter(db_home, 20, 10)
    releaser = threading.Timer(2.5, holder.commit)
    releaser.start()
    try:
        # waits (longer than one busy slice: retried and logged), then sees the holder's write
        assert waiter.get_next_seq_number("SEQ_x") == 12
    finally:
        releaser.join()
    assert any("retry" in r.getMessage() for r in caplog.records if r.levelname == "WARNING")


def test_make_tables_drops_obsolete_indexes(proxy):
    proxy.execute("CREATE INDEX idx_modificationTime_work_table ON work_table(modificationTime)")
    proxy.commit()
    proxy.make_tables(None, None)
    indexes = _index_names(proxy, "work_table")
    assert "idx_modificationTime_work_table" not in indexes
    assert "idxh_work_status_mod" in indexes and "idx_status_work_table" in indexes


def test_binds_convert_only_what_the_driver_cannot_take():
    import datetime as dt

    from pandaharvester.harvestercore.db.engine import SQLiteEngine

    when = dt.datetime(2024, 5, 6, 7, 8, 9, 10)
    values = ["text", 3, 2.5, None, b"raw", True, False, when]
    expected = ["text", 3, 2.5, None, b"raw", 1, 0, "2024-05-06 07:08:09.000010"]
    assert SQLiteEngine.row_values(values) == expected
    assert SQLiteEngine.binds({f":c{i}": v for i, v in enumerate(values)}) == \
        {f"c{i}": v for i, v in enumerate(expected)}

