"""Sequences, cache, commands, process locks, dialogs, queue-config dumps, service metrics,
the proxy pool and the plugin-facing DBInterface."""

from __future__ import annotations

import datetime
import os
import threading

from pandaharvester.harvestercore.command_spec import CommandSpec
from pandaharvester.harvestercore.db_interface import DBInterface
from pandaharvester.harvestercore.db_proxy_pool import DBProxyPool
from pandaharvester.harvestercore.queue_config_dump_spec import QueueConfigDumpSpec
from pandaharvester.harvestercore.service_metrics_spec import ServiceMetricSpec
from pandaharvester.harvestercore.time_utils import naive_utcnow
from test_db_fixtures import (  # noqa: F401
    _module_mariadb, ago, db_engine, db_home, db_overrides, db_settings, make_job, proxy,
)


def test_sequences_are_unique_across_threads(proxy):
    proxy.add_seq_number("SEQ_t", 0)
    proxy.add_seq_number("SEQ_t", 100)  # exists: unchanged
    pool = DBProxyPool()
    got: list[int] = []

    def take() -> None:
        for _ in range(50):
            got.append(pool.get_next_seq_number("SEQ_t"))

    threads = [threading.Thread(target=take) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == list(range(1, 201))


def test_sequence_numbers_reserved_in_bulk(proxy):
    proxy.add_seq_number("SEQ_b", 10)
    assert proxy.get_next_seq_numbers("SEQ_b", 3) == [11, 12, 13]
    assert proxy.get_next_seq_number("SEQ_b") == 14
    assert proxy.get_next_seq_numbers("SEQ_b", 0) == []
    assert proxy.get_next_seq_numbers("SEQ_unknown", 2) == []
    pool = DBProxyPool()
    got: list[int] = []

    def take() -> None:
        for _ in range(20):
            got.extend(pool.get_next_seq_numbers("SEQ_b", 5))
            got.append(pool.get_next_seq_number("SEQ_b"))

    threads = [threading.Thread(target=take) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == list(range(15, 15 + 3 * 20 * 6))


def test_cache(proxy):
    assert proxy.get_cache("nothing.json") is None
    assert proxy.get_cache_last_update_time("k", None) is None
    assert proxy.refresh_cache("k", "s", {"a": 1})
    assert proxy.get_cache("k", "s").data == {"a": 1}
    assert proxy.get_cache("k", "s", from_local_cache=False).data == {"a": 1}
    assert proxy.refresh_cache("k", "s", {"a": 2})
    assert proxy.get_cache("k", "s", from_local_cache=False).data == {"a": 2}
    assert isinstance(proxy.get_cache_last_update_time("k", "s"), datetime.datetime)


def test_commands(proxy):
    specs = []
    for i, (command, ack) in enumerate((("REPORT_WORKER_STATS:Q1", 1), ("SET_N_WORKERS_JOBTYPE:S1", 0),
                                        ("KILL_WORKERS", 0))):
        spec = CommandSpec()
        spec.command_id = i + 1
        spec.command = command
        spec.receiver = "propagator" if i == 0 else "submitter" if i == 1 else "sweeper"
        spec.params = {"x": i}
        spec.ack_requested = ack
        spec.processed = 0
        specs.append(spec)
    assert proxy.store_commands(specs)
    assert proxy.store_commands([])
    got = proxy.get_commands_for_receiver("propagator", "REPORT_WORKER_STATS%")
    assert [c.command_id for c in got] == [1] and got[0].params == {"x": 0}
    assert proxy.get_commands_for_receiver("propagator") == []
    assert [c.command_id for c in proxy.get_commands_for_receiver("submitter", "SET_N_WORKERS_JOBTYPE:S1")] == [2]
    assert proxy.get_commands_ack() == [1]
    assert proxy.clean_processed_commands()
    assert proxy.clean_commands_by_id([1])
    cur = proxy.execute("SELECT command_id FROM command_table")
    assert [r[0] for r in cur.fetchall()] == [3]
    proxy.commit()


def test_process_locks(proxy):
    assert proxy.get_process_lock("cacher", "a", 60) is True
    assert proxy.get_process_lock("cacher", "b", 60) is False
    assert proxy.get_process_lock("cacher", "a", 60) is False  # also for the holder until the interval
    assert proxy.release_process_lock("cacher", "b")
    assert proxy.get_process_lock("cacher", "b", 60) is False
    assert proxy.release_process_lock("cacher", "a")
    assert proxy.get_process_lock("cacher", "b", 60) is True
    proxy.execute("UPDATE lock_table SET lockTime=:t", {":t": ago(61)})
    proxy.commit()
    assert proxy.get_process_lock("cacher", "c", 60) is True
    assert proxy.clean_process_locks()
    assert proxy.get_process_lock("cacher", "d", 60) is True


def test_dialogs(proxy):
    for i in range(5):
        assert proxy.add_dialog_message(f"msg {i}" + "x" * 600, "WARNING", "monitor", f"workerID={i}")
    got = proxy.get_dialog_messages_to_send(3, 60)
    assert len(got) == 3 and all(len(d.diagMessage) == 500 for d in got)
    rest = proxy.get_dialog_messages_to_send(10, 60)
    assert len(rest) == 2
    assert proxy.get_dialog_messages_to_send(10, 60) == []
    assert proxy.delete_dialog_messages([d.diagID for d in got + rest])
    cur = proxy.execute("SELECT COUNT(*) FROM diag_table")
    assert cur.fetchone()[0] == 0
    proxy.commit()


def test_queue_config_dumps(proxy):
    dump = QueueConfigDumpSpec()
    dump.configID = proxy.get_next_seq_number("SEQ_configID")
    dump.set_data({"queueName": "Q1", "a": 1})
    dump.queueName = "Q1"
    dump.creationTime = ago(2 * 86400)
    assert proxy.add_queue_config_dump(dump)
    assert proxy.get_config_id_dump(dump) == dump.configID
    # used by a job: kept even when old
    assert proxy.insert_jobs([make_job(1, configID=dump.configID)])
    assert list(proxy.get_queue_config_dumps()) == [dump.dumpUniqueName]
    proxy.execute("DELETE FROM job_table")
    proxy.commit()
    assert proxy.get_queue_config_dumps() == {}
    assert proxy.get_config_id_dump(dump) is None


def test_service_metrics(proxy):
    spec = ServiceMetricSpec({"rss_mib": 12})
    assert proxy.insert_service_metrics(spec)
    got = proxy.get_service_metrics(ago(60))
    assert len(got) == 1 and got[0][1] == spec.hostName and '"rss_mib": 12' in got[0][2]
    assert proxy.get_service_metrics(naive_utcnow() + datetime.timedelta(seconds=5)) == []
    proxy.execute("UPDATE sm_table SET creationTime=:t", {":t": ago(2 * 86400)})
    proxy.commit()
    assert proxy.clean_service_metrics()
    assert proxy.get_service_metrics(ago(10 * 86400)) == []


def test_pool_is_a_singleton_and_lends_proxies(proxy):
    pool = DBProxyPool()
    assert DBProxyPool() is pool
    assert pool.get_next_seq_number("SEQ_workerID") == 2
    try:
        pool.no_such_method
    except AttributeError as exc:
        assert "no_such_method" in str(exc)
    else:
        raise AssertionError("unknown method accepted")


def test_a_pool_of_one_lends_a_nested_call_an_extra_proxy_instead_of_deadlocking(proxy, db_settings):
    """[db] nConnections = 1 hung the start: make_tables (holding the only proxy) loads the queue
    config, which needs a proxy too (found by tests/reliability/test_fuzz_config.py)."""
    from dataclasses import replace

    DBProxyPool.reset()
    pool = DBProxyPool(settings=replace(db_settings, n_connections=1))
    holding, release, nested_done = threading.Event(), threading.Event(), threading.Event()

    def holder() -> None:  # what DBProxyMethod does for a DB call made inside another one
        outer = pool.get()
        inner = pool.get()
        assert inner is not outer
        pool.put(inner)  # an extra proxy is closed, not pooled
        nested_done.set()
        holding.set()
        release.wait(10)
        pool.put(outer)

    first = threading.Thread(target=holder)
    first.start()
    assert nested_done.wait(10), "the nested get() waited for the proxy its own thread holds"
    waiter = threading.Thread(target=lambda: pool.put(pool.get()))
    waiter.start()
    waiter.join(0.3)
    assert waiter.is_alive()  # still bounded: another thread waits while the only proxy is held
    release.set()
    first.join(10)
    waiter.join(10)
    assert not waiter.is_alive() and pool.pool.qsize() == 1
    DBProxyPool.reset()


def test_db_interface(proxy):
    iface = DBInterface()
    assert proxy.refresh_cache("panda_queues.json", None, {"Q1": {}})
    # plugins get the CacheSpec, as in the original (``c = get_cache(...); c.data[...]``)
    assert iface.get_cache("panda_queues.json").data == {"Q1": {}}
    assert iface.get_cache("missing.json") is None
    assert iface.get_object_lock("obj", 60) is True
    assert iface.get_object_lock("obj", 60) is False
    assert iface.release_object_lock("obj")
    assert iface.get_locked_by() == f"plugin-{os.getpid()}-{threading.get_ident()}"
    # two threads with the same name are two owners: one cannot release the other's lock
    assert iface.get_object_lock("obj2", 60) is True
    other = threading.Thread(target=iface.release_object_lock, args=("obj2",), name=threading.current_thread().name)
    other.start()
    other.join()
    cur = proxy.execute("SELECT lockedBy FROM lock_table WHERE processName='obj2'")
    assert cur.fetchone()[0] == iface.get_locked_by()
    proxy.commit()
    assert iface.add_dialog_message("hello", "DEBUG", "mod")  # below minMessageLevel: not stored
    assert iface.add_dialog_message("boom", "ERROR", "mod", "id")
    assert [d.diagMessage for d in proxy.get_dialog_messages_to_send(10, 60)] == ["boom"]
    assert iface.get_worker_ce_stats("Q1") == {}
    assert iface.get_num_missed_workers("Q1", {}) == 0
    assert iface.get_worker_limits("Q1") == ({"nQueueWorkerCores": None, "nQueueWorkerMemory": None},
                                             {"queue": {"n": 0, "core": 0, "mem": 0},
                                              "running": {"n": 0, "core": 0, "mem": 0}})
    assert iface.get_files_with_group_id("g") == [] and iface.get_file_group_status("g") == set()
