"""Writers of one process take turns before BEGIN IMMEDIATE: the turn is always given back."""

from __future__ import annotations

import threading

import pytest

from pandaharvester.errors import DBError
from pandaharvester.harvestercore.db_proxy import DBProxy
from test_db_fixtures import (  # noqa: F401
    _module_mariadb, db_engine, db_home, db_overrides, insert_workers, make_worker, proxy, sqlite_only,
)


def _write_in_thread(worker_id: int, timeout: float) -> list:
    """Set a worker's nJobs from another thread (own connection); [True] once it got through."""
    out: list = []

    def body() -> None:
        other = DBProxy()
        try:
            out.append(other.execute("UPDATE work_table SET nJobs=7 WHERE workerID=:w", {":w": worker_id}).rowcount == 1)
            other.commit()
        except Exception as exc:  # noqa: BLE001 - reported to the test
            out.append(exc)
        finally:
            other.close()

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    thread.join(timeout)
    return out


def test_turn_is_given_back_after_a_failed_write(proxy: DBProxy) -> None:
    insert_workers(proxy, [make_worker(1, status="running")])
    worker = proxy.get_worker_with_id(1)
    worker.nJobs = "not a number"
    with pytest.raises(DBError):
        proxy.update_worker(worker, {"workerID": 1})
    assert _write_in_thread(1, 10) == [True]
    assert proxy.get_worker_with_id(1).nJobs == 7


def test_open_manual_write_holds_the_turn_until_commit(proxy: DBProxy) -> None:
    insert_workers(proxy, [make_worker(1, status="running")])
    proxy.execute("UPDATE work_table SET status='idle' WHERE workerID=1")  # write transaction left open
    assert _write_in_thread(1, 0.5) == []  # the other writer waits for its turn
    proxy.commit()
    assert proxy.get_worker_with_id(1).status == "idle"
    assert _write_in_thread(1, 10) == [True]


def test_rollback_gives_the_turn_back(proxy: DBProxy) -> None:
    insert_workers(proxy, [make_worker(1, status="running")])
    proxy.execute("UPDATE work_table SET status='idle' WHERE workerID=1")
    proxy.rollback()
    assert _write_in_thread(1, 10) == [True]
    assert proxy.get_worker_with_id(1).status == "running"


@sqlite_only("the process-wide write turn in front of BEGIN IMMEDIATE (MariaDB locks rows instead)")
def test_a_busy_turn_ends_in_a_clear_error(proxy: DBProxy) -> None:
    engine = proxy.engine
    saved = engine.busy_timeout
    holder_ready, release = threading.Event(), threading.Event()

    def hold() -> None:
        engine._write_turn.acquire()
        holder_ready.set()
        release.wait(10)
        engine._write_turn.release()

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    holder_ready.wait(5)
    try:
        engine.busy_timeout = 0.2
        with pytest.raises(DBError, match="no write turn"):
            engine.begin(proxy._con, True)
    finally:
        engine.busy_timeout = saved
        release.set()
        thread.join(5)
