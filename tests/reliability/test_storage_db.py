"""The DB layer when the storage under the SQLite file fails: disk full, read-only file, DB file
deleted underneath. Real SQLite on a real small filesystem made by the test (tmpfs, loop ext4).

What is checked: the write is refused with a DBStorageError naming the file and the condition,
logged as one line (not once per call); nothing half-written; the next write after the condition
clears goes through with no restart; ``PRAGMA integrity_check`` is ok; a deleted file is put back
in place from the open connection with every row.
"""

from __future__ import annotations

import re
import sqlite3
import time
from pathlib import Path

import pytest
from figures import record

from pandaharvester.errors import DBStorageError
from pandaharvester.harvestercore.db.engine import DBSettings
from pandaharvester.harvestercore.db_proxy import DBProxy
from pandaharvester.harvestercore.db_proxy_pool import DBProxyPool
from storage_fs import small_fs  # noqa: F401
from test_db_fixtures import make_job


@pytest.fixture()
def db_on(fresh_home):
    """``db_on(directory)`` -> (settings, pool) for a DB file ``directory/harvester.db`` with its tables."""
    home = fresh_home()
    pools: list[DBProxyPool] = []

    def make(directory: Path, n_connections: int = 3) -> tuple[DBSettings, DBProxyPool]:
        settings = DBSettings(database_filename=str(directory / "harvester.db"), n_connections=n_connections,
                              busy_timeout=5)
        proxy = DBProxy(settings=settings)
        for table in ("job_table", "file_table", "work_table", "jw_table", "seq_table", "lock_table"):
            from pandaharvester.harvestercore.db import schema

            proxy.make_table(schema.spec_class(table), table)
        proxy.close()
        pool = DBProxyPool(settings=settings)
        pools.append(pool)
        return settings, pool

    yield make
    DBProxyPool.reset()
    assert home


def db_log(caplog) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if r.levelno >= 30)


def integrity(path: str) -> str:
    con = sqlite3.connect(path)
    try:
        return con.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        con.close()


def job_ids(path: str) -> list[int]:
    con = sqlite3.connect(path)
    try:
        return [r[0] for r in con.execute("SELECT PandaID FROM job_table ORDER BY PandaID")]
    finally:
        con.close()


def big_jobs(start: int, n: int) -> list:
    return [make_job(start + i, n_in=2, jobParams={"blob": "x" * 20000}) for i in range(n)]


def test_disk_full_refuses_the_write_once_then_recovers(small_fs, db_on, caplog):  # noqa: F811
    fs = small_fs("tmpfs", size_mb=4)
    settings, pool = db_on(fs.mountpoint)
    assert pool.insert_jobs(big_jobs(1, 5))
    before = db_log(caplog)
    fs.fill()
    errors: list[DBStorageError] = []
    written = 5
    for batch in range(6):  # some may still fit in pages SQLite already has
        try:
            pool.insert_jobs(big_jobs(100 + 10 * batch, 10))
            written += 10
        except DBStorageError as exc:
            errors.append(exc)
    assert errors, "the writes never hit the full disk"
    exc = errors[0]
    assert exc.condition == "disk full" and exc.path == settings.database_filename
    assert settings.database_filename in str(exc) and "free space" in str(exc)
    new_lines = db_log(caplog)[len(before):]
    assert len(re.findall(r"disk full \(", new_lines)) == 1, new_lines  # one line, not one per call
    assert "Traceback" not in new_lines
    # nothing half-written: a refused batch left no job and no file
    ids = job_ids(settings.database_filename)
    assert len(ids) == written and all(len([i for i in ids if 100 + 10 * b <= i < 110 + 10 * b]) in (0, 10)
                                       for b in range(6))
    fs.free()
    cleared = time.monotonic()
    assert pool.insert_jobs(big_jobs(1000, 3))
    took = time.monotonic() - cleared
    assert "writable again after" in db_log(caplog)[len(before):]
    assert integrity(settings.database_filename) == "ok"
    assert len(job_ids(settings.database_filename)) == written + 3
    record(f"reliability: storage db-layer condition=disk_full refused={len(errors)} recover_s={took:.3f}")


def test_read_only_file_refuses_the_write_then_recovers(small_fs, db_on, caplog):  # noqa: F811
    fs = small_fs("ext4", size_mb=16)
    settings, pool = db_on(fs.mountpoint)
    assert pool.insert_jobs(big_jobs(1, 3))
    path = Path(settings.database_filename)
    fs.make_immutable(path, Path(str(path) + "-wal"))
    with pytest.raises(DBStorageError) as info:
        pool.insert_jobs(big_jobs(10, 3))
    assert info.value.condition == "read-only", info.value
    assert str(path) in str(info.value) and "chattr -i" in str(info.value)
    # reads still work (the agents' read-only look-ups go on)
    assert len(pool.get_jobs()) == 3
    fs.make_mutable()
    cleared = time.monotonic()
    assert pool.insert_jobs(big_jobs(10, 3))
    took = time.monotonic() - cleared
    assert integrity(str(path)) == "ok" and len(job_ids(str(path))) == 6
    record(f"reliability: storage db-layer condition=read_only recover_s={took:.3f}")


def test_read_only_remount_is_refused_while_the_db_is_open(small_fs, db_on, caplog):  # noqa: F811
    """Why the read-only case uses chattr: the kernel refuses to remount a filesystem read-only
    while a process has a file open for writing, which a running harvester always has."""
    fs = small_fs("tmpfs", size_mb=4)
    _settings, pool = db_on(fs.mountpoint)
    assert pool.insert_jobs(big_jobs(1, 1))
    result = fs.remount("ro")
    if result.returncode == 0:
        fs.remount("rw")
    assert result.returncode != 0 and "busy" in result.stderr, result


def test_deleted_file_is_restored_in_place_with_every_row(small_fs, db_on, caplog):  # noqa: F811
    fs = small_fs("tmpfs", size_mb=8)
    settings, pool = db_on(fs.mountpoint, n_connections=3)
    assert pool.insert_jobs(big_jobs(1, 4))
    path = Path(settings.database_filename)
    before = db_log(caplog)
    path.unlink()
    deleted = time.monotonic()
    assert pool.insert_jobs(big_jobs(10, 2))  # found at the write's BEGIN, restored, then written
    took = time.monotonic() - deleted
    assert path.exists() and oct(path.stat().st_mode & 0o777) == "0o600"
    assert job_ids(str(path)) == [1, 2, 3, 4, 10, 11]
    assert integrity(str(path)) == "ok"
    lines = db_log(caplog)[len(before):]
    assert "database file deleted" in lines and "restored in place" in lines, lines
    assert pool.insert_jobs(big_jobs(20, 1)) and 20 in job_ids(str(path))
    record(f"reliability: storage db-layer condition=deleted restore_s={took:.3f}")


def test_deleted_directory_refuses_writes_until_it_is_back(small_fs, db_on, tmp_path, caplog):  # noqa: F811
    fs = small_fs("tmpfs", size_mb=8)
    directory = fs.mountpoint / "db"
    directory.mkdir()
    settings, pool = db_on(directory)
    assert pool.insert_jobs(big_jobs(1, 2))
    for name in ("harvester.db", "harvester.db-wal", "harvester.db-shm"):
        (directory / name).unlink(missing_ok=True)
    directory.rmdir()
    with pytest.raises(DBStorageError) as info:
        pool.insert_jobs(big_jobs(10, 1))
    assert info.value.condition == "database file deleted"
    assert settings.database_filename in str(info.value)
    assert len(pool.get_jobs()) == 2  # reads go on from the open (deleted) file
    directory.mkdir()
    cleared = time.monotonic()
    assert pool.insert_jobs(big_jobs(10, 1))
    took = time.monotonic() - cleared
    assert job_ids(settings.database_filename) == [1, 2, 10]
    assert integrity(settings.database_filename) == "ok"
    record(f"reliability: storage db-layer condition=deleted_dir recover_s={took:.3f}")


def test_replaced_file_state_is_saved_and_the_new_file_used(small_fs, db_on, caplog):  # noqa: F811
    """A file put at the path (say, a backup) is what a restart would use: harvester saves the state it
    had next to it and goes on with the new file; neither is damaged by the other's -wal."""
    fs = small_fs("tmpfs", size_mb=8)
    settings, pool = db_on(fs.mountpoint)
    path = Path(settings.database_filename)
    assert pool.insert_jobs(big_jobs(1, 1))
    backup = fs.mountpoint / "backup.db"
    src, dst = sqlite3.connect(path), sqlite3.connect(backup)
    src.backup(dst)
    src.close()
    dst.close()
    assert pool.insert_jobs(big_jobs(2, 1))
    backup.replace(path)
    assert pool.insert_jobs(big_jobs(10, 1))
    saved = list(fs.mountpoint.glob("harvester.db.harvester-*"))
    assert len(saved) == 1 and job_ids(str(saved[0])) == [1, 2] and integrity(str(saved[0])) == "ok"
    assert job_ids(str(path)) == [1, 10] and integrity(str(path)) == "ok"
