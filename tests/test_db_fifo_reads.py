"""DBProxy.get_workers_to_update_by_ids: the monitor FIFO's lock of the workers it dequeued."""

from __future__ import annotations

import mariadb_helpers
from test_db_fixtures import (  # noqa: F401
    _module_mariadb, ago, db_engine, db_home, db_overrides, insert_workers, make_worker, mariadb_only, proxy,
)


def test_locks_the_active_unlocked_workers_and_skips_stale_copies(proxy):
    insert_workers(proxy, [make_worker(1, status="running"), make_worker(2, status="submitted"),
                           make_worker(3, status="finished"), make_worker(4, status="running"),
                           make_worker(5, status="running")])
    proxy.execute("UPDATE work_table SET lockedBy='other', modificationTime=:t WHERE workerID=4", {":t": ago(10)})
    proxy.execute("UPDATE work_table SET lockedBy='dead', modificationTime=:t WHERE workerID=5", {":t": ago(7200)})
    worker = proxy.get_worker_with_id(2)
    worker.set_work_params({"lastCheckAt": 2000.0})
    proxy.update_worker(worker)
    proxy.commit()
    got = proxy.get_workers_to_update_by_ids([1, 2, 3, 4, 5, 99], 600, "monitor-me",
                                             stamps={1: 1000.0, 2: 1500.0})
    ids = sorted(ws[0].workerID for ws in got["Q1"][None])
    # 2: its copy (1500) is older than the stored lastCheckAt (2000); 3 final; 4 locked by another;
    # 5's lock expired; 99 unknown
    assert ids == [1, 5]
    rows = dict(proxy.execute("SELECT workerID, lockedBy FROM work_table").fetchall())
    proxy.commit()
    assert rows == {1: "monitor-me", 2: None, 3: None, 4: "other", 5: "monitor-me"}
    # the copy as new as the stored stamp is valid
    got = proxy.get_workers_to_update_by_ids([2], 600, "monitor-me", stamps={2: 2000.0})
    assert [ws[0].workerID for ws in got["Q1"][None]] == [2]


@mariadb_only("row locks of another transaction exist only on MariaDB (SQLite has one writer)")
def test_a_worker_another_transaction_holds_is_skipped_not_taken_twice(proxy, db_overrides):
    """Two processes dequeuing the same worker from a shared FIFO: while another connection holds
    the row (it is locking it), this pick skips it instead of stamping it a second time."""
    insert_workers(proxy, [make_worker(1, status="running"), make_worker(2, status="running")])
    other = mariadb_helpers.admin_connection(db_overrides["schema"])
    try:
        cur = other.cursor()
        cur.execute("START TRANSACTION")
        cur.execute("SELECT workerID FROM work_table WHERE workerID=1 FOR UPDATE")
        got = proxy.get_workers_to_update_by_ids([1, 2], 600, "monitor-me")
        assert sorted(ws[0].workerID for ws in got["Q1"][None]) == [2]
        other.rollback()
    finally:
        other.close()
    rows = dict(proxy.execute("SELECT workerID, lockedBy FROM work_table").fetchall())
    proxy.commit()
    assert rows == {1: None, 2: "monitor-me"}
