"""Release at start of the row locks held by this host's dead processes (db/lock_recovery.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from pandaharvester.harvestercore.db.lock_recovery import LOCK_COLUMNS, owner_pattern, owner_pid, pid_is_dead
from pandaharvester.harvestercore.db_proxy import DBProxy
from pandaharvester.harvestercore.time_utils import naive_utcnow
from test_db_fixtures import (  # noqa: F401
    _module_mariadb, db_engine, db_home, db_overrides, insert_workers, make_job, make_worker, proxy,
)

HOST = "edge-01.example.org"


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.fixture()
def live_child():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield child.pid
    child.kill()
    child.wait()


def test_owner_strings_of_this_host_only_give_their_pid():
    pattern = owner_pattern(HOST)
    assert owner_pid(f"monitor-{HOST}_4242-7f3a", pattern) == 4242
    assert owner_pid(f"{HOST}_17-ab", pattern) == 17  # process-lock style, no section
    assert owner_pid(f"event_feeder-{HOST}_9-1", pattern) == 9
    assert owner_pid(f"monitor-other.example.org_4242-7f3a", pattern) is None
    assert owner_pid(f"monitor-{HOST}x_4242-7f3a", pattern) is None
    assert owner_pid(f"monitor-x{HOST}_4242-7f3a", pattern) is None
    assert owner_pid("garbage", pattern) is None


def test_dead_means_gone_or_ourselves(live_child):
    assert pid_is_dead(_dead_pid())
    assert pid_is_dead(os.getpid())  # before the agents start, a lock with our pid is a previous run's
    assert not pid_is_dead(live_child)
    assert not pid_is_dead(os.getppid())


def _lock_everything(proxy: DBProxy, owners: list[str]) -> None:
    """One worker and one job per owner, every lock column of both set to that owner."""
    workers = [make_worker(100 + i, status="running") for i in range(len(owners))]
    insert_workers(proxy, workers)
    assert proxy.insert_jobs([make_job(5000 + i, status="running", sub_status="running")
                              for i in range(len(owners))])
    for i, owner in enumerate(owners):
        for table, column in LOCK_COLUMNS:
            if table == "work_table":
                proxy.execute(f"UPDATE work_table SET {column}=:o WHERE workerID=:w", {":o": owner, ":w": 100 + i})
            elif table == "job_table":
                proxy.execute(f"UPDATE job_table SET {column}=:o WHERE PandaID=:p", {":o": owner, ":p": 5000 + i})
    proxy.commit()


def _locks(proxy: DBProxy) -> dict[str, list]:
    found = {}
    for table, column in LOCK_COLUMNS:
        proxy.execute(f"SELECT {column} FROM {table} WHERE {column} IS NOT NULL ORDER BY {column}")
        found[f"{table}.{column}"] = [row[0] for row in proxy.cur.fetchall()]
        proxy.commit()
    return found


def test_only_the_dead_processes_of_this_host_lose_their_locks(proxy, live_child):
    dead = _dead_pid()
    owners = [f"monitor-{HOST}_{dead}-1a",         # this host, process gone: released
              f"submitter-{HOST}_{os.getpid()}-2b",  # this host, this process (a previous run's pid): released
              f"monitor-{HOST}_{live_child}-3c",  # this host, a live process (another process of the instance)
              f"monitor-other-host_{dead}-4d"]    # another host: never touched
    _lock_everything(proxy, owners)
    proxy.execute("INSERT INTO pq_table (siteName, uniqueName, lockedBy) VALUES ('Q1', 'Q1', :o)", {":o": owners[0]})
    proxy.commit()

    released = proxy.release_dead_locks(HOST)

    kept = sorted(owners[2:])
    assert released == {**{f"{t}.{c}": 2 for t, c in LOCK_COLUMNS if t != "pq_table"}, "pq_table.lockedBy": 1}
    assert _locks(proxy) == {**{f"{t}.{c}": kept for t, c in LOCK_COLUMNS if t != "pq_table"},
                             "pq_table.lockedBy": []}
    assert proxy.release_dead_locks(HOST) == {}  # nothing left to release


def test_released_workers_are_picked_again_at_once(proxy):
    dead = _dead_pid()
    _lock_everything(proxy, [f"monitor-{HOST}_{dead}-1a"])
    # locked a moment ago: with a 600 s lockInterval nobody may take it ...
    proxy.execute("UPDATE work_table SET modificationTime=:t", {":t": naive_utcnow()})
    proxy.commit()
    assert proxy.get_workers_to_update(10, 0, 600, "monitor-new") == {}
    # ... until the dead owner's lock is released
    assert proxy.release_dead_locks(HOST)
    got = proxy.get_workers_to_update(10, 0, 600, "monitor-new")
    assert [w.workerID for q in got.values() for sets in q.values() for s in sets for w in s] == [100]
