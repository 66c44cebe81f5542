"""The FIFO interface (harvestercore.fifos) on every backend: SQLite, MariaDB (PyMySQL), Redis.

One suite, parametrised over the backends, against real servers (MariaDB on 127.0.0.1:3306,
Redis on 127.0.0.1:6379, started when down); every test has its own SQLite file, database or
key prefix.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from fifo_helpers import BACKENDS, redis_cleanup, scratch_fifo_cfg, unique_title
from pandaharvester.errors import ConfigError
from pandaharvester.harvestercore import fifos
from pandaharvester.harvestercore.work_spec import WorkSpec


def fifo_class(title: str) -> type:
    return type("ScratchFIFO", (fifos.SpecialFIFOBase,), {"titleName": title})


@pytest.fixture(params=BACKENDS)
def fifo_env(request: pytest.FixtureRequest, fresh_home: Any, tmp_path: Path):
    """(backend, make) where ``make()`` gives a FIFO of a fresh title on the backend."""
    backend = request.param
    gen = scratch_fifo_cfg(backend, tmp_path)
    cfg = next(gen)
    fresh_home({"fifo": cfg})
    titles: list[str] = []

    def make(title: str | None = None) -> fifos.FIFOBase:
        title = title or unique_title()
        titles.append(title)
        return fifo_class(title)()

    yield backend, make
    if backend == "redis":
        for title in titles:
            redis_cleanup(title)
    gen.close()


def _items(objs: list[Any]) -> list[Any]:
    return [o.item for o in objs]


def test_lowest_score_first_and_ties_in_put_order(fifo_env: Any) -> None:
    _backend, make = fifo_env
    fifo = make()
    ties = [f"b{i}" for i in range(12)]
    for name, score in [("c", 30.0), ("a", 10.0)] + [(t, 20.0) for t in ties]:
        assert fifo.put(name, score) is True
    assert fifo.size() == 14
    assert [fifo.get().item for _ in range(14)] == ["a", *ties, "c"]
    assert fifo.get() is None
    assert fifo.size() == 0


def test_getlast_takes_the_highest_score_and_default_score_is_now(fifo_env: Any) -> None:
    _backend, make = fifo_env
    fifo = make()
    before = time.time()
    fifo.put("now")
    fifo.put("head", -5.0)
    fifo.put("late", before + 3600)
    assert fifo.getlast().item == "late"
    first = fifo.get()
    assert first.item == "head" and first.score == -5.0
    now_obj = fifo.get()
    assert now_obj.item == "now" and before <= now_obj.score <= time.time()


def test_objects_are_pickled_specs(fifo_env: Any) -> None:
    _backend, make = fifo_env
    fifo = make()
    worker = WorkSpec()
    worker.workerID = 42
    worker.computingSite = "SITE_A"
    worker.workAttributes = {"random": [1, 0.5]}
    fifo.put(("SITE_A", [[worker]]), 1.0)
    raw = fifo.peek()
    assert isinstance(raw.item, bytes)  # peek gives the stored form, as the original's
    queue, chunks = fifo.get().item
    assert queue == "SITE_A" and chunks[0][0].workerID == 42 and chunks[0][0].workAttributes == {"random": [1, 0.5]}
    fifo.put({"raw": True}, 2.0)
    assert fifo.get(decode_item=False).item == pickle.dumps({"raw": True}, -1)


def test_peek_does_not_remove(fifo_env: Any) -> None:
    _backend, make = fifo_env
    fifo = make()
    assert fifo.peek() is None and fifo.peeklast() is None
    fifo.put("x", 5.0)
    fifo.put("y", 7.0)
    first = fifo.peek(skip_item=True)
    assert first.item is None and first.score == 5.0
    assert fifo.peek(decode_item=True).item == "x"
    assert fifo.peeklast(decode_item=True).item == "y"
    assert [o.score for o in fifo.peekmany(maxscore=6.0)] == [5.0]
    assert fifo.peekbyid(first.id, decode_item=True).item == "x"
    assert fifo.size() == 2
    assert fifo.get().item == "x"


def test_timeout_get_waits_for_an_object_then_gives_none(fifo_env: Any) -> None:
    _backend, make = fifo_env
    fifo = make()
    assert fifo.get(timeout=0.3) is None
    putter = threading.Timer(0.3, lambda: fifo_class(fifo.titleName)().put("late", 1.0))
    putter.start()
    try:
        got = fifo.get(timeout=20)
    finally:
        putter.join()
    assert got is not None and got.item == "late"
    assert fifo.get(timeout=0.2) is None


def test_protective_get_then_release_or_restore(fifo_env: Any) -> None:
    _backend, make = fifo_env
    fifo = make()
    fifo.put("a", 1.0)
    fifo.put("b", 2.0)
    taken = fifo.get(protective=True)
    assert taken.item == "a"
    assert fifo.size() == 1 and fifo.peek(decode_item=True).item == "b"
    assert fifo.peekbyid(taken.id, temporary=True, decode_item=True).item == "a"
    assert fifo.peekbyid(taken.id) is None
    fifo.restore()
    assert fifo.size() == 2 and fifo.peek(decode_item=True).item == "a"
    taken = fifo.get(protective=True)
    assert fifo.release([taken.id]) == 1
    fifo.restore()
    assert _items(fifo.getmany()) == ["b"]
    with pytest.raises(TypeError):
        fifo.release(taken.id)


def test_getmany_by_score_range_count_and_temporary(fifo_env: Any) -> None:
    _backend, make = fifo_env
    fifo = make()
    for i in range(10):
        fifo.put(i, float(i))
    assert _items(fifo.getmany(minscore=2, maxscore=5, count=3)) == [2, 3, 4]
    assert _items(fifo.getmany(mode="last", count=2, protective=True)) == [9, 8]
    assert fifo.size() == 5
    # the temporary space: removed from there with temporary=True
    assert _items(fifo.getmany(temporary=True)) == [8, 9]
    fifo.restore()
    assert _items(fifo.getmany()) == [0, 1, 5, 6, 7]


def test_putbyid_update_and_delete(fifo_env: Any) -> None:
    _backend, make = fifo_env
    fifo = make()
    assert fifo.putbyid(101, True, 50.0) is True
    assert fifo.putbyid(101, True, 60.0) is False  # the id is taken
    assert fifo.update(101, score=40.0, cond_score="gt") is False  # not greater than 50
    assert fifo.update(101, score=70.0, cond_score="gt") is True
    assert fifo.peekbyid(101).score == 70.0
    assert fifo.update(101, item=fifo.encode("changed")) is True
    assert fifo.update(101, temporary=1) is True
    assert fifo.size() == 0 and fifo.peekbyid(101, temporary=True).score == 70.0
    assert fifo.update(101, temporary=0) is True
    assert fifo.get().item == "changed"
    assert fifo.update(999, score=1.0) is False
    fifo.putbyid(7, "x", 1.0)
    fifo.putbyid(8, "y", 2.0)
    assert fifo.delete([7, 8, 9]) == 2
    assert fifo.size() == 0


def test_clear_removes_waiting_and_temporary(fifo_env: Any) -> None:
    _backend, make = fifo_env
    fifo = make()
    for i in range(5):
        fifo.put(i, float(i))
    fifo.get(protective=True)
    fifo.clear()
    assert fifo.size() == 0
    fifo.restore()
    assert fifo.size() == 0
    fifo.put("again", 1.0)
    assert fifo.get().item == "again"


def test_two_fifos_do_not_share_objects(fifo_env: Any) -> None:
    _backend, make = fifo_env
    one, two = make(), make()
    one.put("one", 1.0)
    assert two.get() is None and one.size() == 1


@pytest.mark.parametrize("backend", ["mysql", "redis"])
def test_instances_with_their_own_table_prefix_do_not_share_a_fifo(backend: str, fresh_home: Any,
                                                                     tmp_path: Path) -> None:
    # several instances on one MariaDB database or Redis: [db] tablePrefix keeps their FIFOs apart
    gen = scratch_fifo_cfg(backend, tmp_path)
    cfg = next(gen)
    title = unique_title()
    try:
        fresh_home({"fifo": cfg, "db": {"tablePrefix": "A_"}})
        one = fifo_class(title)()
        one.put("of A", 1.0)
        fresh_home({"fifo": cfg, "db": {"tablePrefix": "B_"}})
        two = fifo_class(title)()
        assert two.get() is None and one.size() == 1
        assert one.get().item == "of A"
    finally:
        if backend == "redis":
            redis_cleanup(f"A_{title}")
            redis_cleanup(f"B_{title}")
        gen.close()


_CHILD = r"""
import json, os, sys, time
from pandaharvester.harvestercore.fifos import SpecialFIFOBase
title, mode, go = sys.argv[1], sys.argv[2], sys.argv[3]
fifo = type("ScratchFIFO", (SpecialFIFOBase,), {"titleName": title})()
if mode == "put":
    for i in range(int(go)):
        fifo.put({"n": i}, float(i))
    print(json.dumps([]))
    sys.exit(0)
while not os.path.exists(go):
    time.sleep(0.01)
got = []
while True:
    obj = fifo.get(timeout=1.0, protective=(mode == "protective"))
    if obj is None:
        break
    got.append(obj.item["n"])
    if mode == "protective":
        fifo.release([obj.id])
print(json.dumps(got))
"""


def _child(title: str, mode: str, arg: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", _CHILD, title, mode, arg], stdout=subprocess.PIPE, text=True)


@pytest.mark.parametrize("mode", ["plain", "protective"])
def test_two_processes_never_get_the_same_object(fifo_env: Any, tmp_path: Path, mode: str) -> None:
    _backend, make = fifo_env
    fifo = make()
    n = 600
    for i in range(n):
        fifo.put({"n": i}, float(i))
    go = tmp_path / f"go-{mode}"
    children = [_child(fifo.titleName, mode, str(go)) for _ in range(2)]
    time.sleep(1.0)  # both started and waiting
    go.write_text("go")
    results = []
    for child in children:
        out, _ = child.communicate(timeout=300)
        assert child.returncode == 0
        results.append(json.loads(out))
    first, second = (set(r) for r in results)
    assert not first & second, f"{len(first & second)} objects dequeued by both processes"
    assert sorted(results[0] + results[1]) == list(range(n))
    assert fifo.size() == 0


def test_objects_survive_a_process_restart(fifo_env: Any) -> None:
    backend, make = fifo_env
    if backend == "redis":
        pytest.skip("the test Redis runs without persistence (--save '' --appendonly no)")
    fifo = make()
    child = _child(fifo.titleName, "put", "3")
    child.communicate(timeout=120)
    assert child.returncode == 0
    again = fifo_class(fifo.titleName)()
    assert [again.get().item["n"] for _ in range(3)] == [0, 1, 2]


def test_sqlite_file_is_private_and_in_wal_mode(fresh_home: Any, tmp_path: Path) -> None:
    cfg = next(scratch_fifo_cfg("sqlite", tmp_path))
    fresh_home({"fifo": cfg})
    fifo = fifo_class("walcheck")()
    path = tmp_path / "walcheck_fifo.db"
    assert path.stat().st_mode & 0o777 == 0o600
    import sqlite3

    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    fifo.put("x", 1.0)


# ------------------------------------------------------------------ bad configuration
def test_unknown_fifo_module_is_one_clear_error(fresh_home: Any) -> None:
    fresh_home({"fifo": {"fifoModule": "pandaharvester.harvesterfifo.nosuch_fifo", "fifoClass": "NoSuchFifo"}})
    with pytest.raises(ConfigError) as info:
        fifos.BenchmarkFIFO()
    assert str(info.value).startswith("[fifo] fifoModule = 'pandaharvester.harvesterfifo.nosuch_fifo': no such module")
    assert "sqlite_fifo.SqliteFifo" in str(info.value)


def test_unknown_fifo_class_names_the_monitor_section(fresh_home: Any, tmp_path: Path) -> None:
    fresh_home({"monitor": {"fifoEnable": "True", "fifoModule": "pandaharvester.harvesterfifo.sqlite_fifo",
                            "fifoClass": "SqlightFifo"}})
    with pytest.raises(ConfigError) as info:
        fifos.MonitorFIFO()
    assert str(info.value).startswith("[monitor] fifoClass = 'SqlightFifo': module "
                                      "pandaharvester.harvesterfifo.sqlite_fifo has no such class")


def test_unreachable_redis_is_one_clear_error(fresh_home: Any) -> None:
    fresh_home({"fifo": {"fifoModule": "pandaharvester.harvesterfifo.redis_fifo", "fifoClass": "RedisFifo",
                         "redisHost": "127.0.0.1", "redisPort": "1"}})
    with pytest.raises(ConfigError) as info:
        fifos.BenchmarkFIFO()
    assert str(info.value).startswith("[fifo] redisHost = '127.0.0.1', redisPort = 1: cannot reach Redis for the "
                                      "benchmark FIFO")


def test_unreachable_mariadb_is_one_clear_error_without_the_password(fresh_home: Any) -> None:
    fresh_home({"fifo": {"fifoModule": "pandaharvester.harvesterfifo.mysql_fifo", "fifoClass": "MysqlFifo",
                         "db_host": "127.0.0.1", "db_port": "1", "db_user": "someone", "db_password": "s3cr3t-pw",
                         "db_schema": "HARVESTER"}})
    with pytest.raises(ConfigError) as info:
        fifos.BenchmarkFIFO()
    text = str(info.value)
    assert text.startswith("[fifo] db_host = '127.0.0.1', db_port = 1, db_user = 'someone', db_schema = "
                           "'HARVESTER': cannot connect to MySQL/MariaDB for the benchmark FIFO")
    assert "s3cr3t-pw" not in text and "\n" not in text


def test_unwritable_sqlite_file_is_one_clear_error(fresh_home: Any, tmp_path: Path) -> None:
    fresh_home({"fifo": {"fifoModule": "pandaharvester.harvesterfifo.sqlite_fifo", "fifoClass": "SqliteFifo",
                         "database_filename": str(tmp_path / "no" / "such" / "dir" / "$(TITLE).db")}})
    with pytest.raises(ConfigError) as info:
        fifos.BenchmarkFIFO()
    assert str(info.value).startswith("[fifo] database_filename = ")
    assert "cannot open the benchmark FIFO file" in str(info.value)


def test_monitor_fifo_disabled_by_default(fresh_home: Any) -> None:
    fresh_home()
    fifo = fifos.MonitorFIFO()
    assert fifo.enabled is False and fifo.fifo is None
    assert fifos.MonitorEventFIFO().enabled is False
