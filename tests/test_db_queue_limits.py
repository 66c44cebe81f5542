"""PanDA's SET_N_WORKERS_JOBTYPE in pq_table (set_queue_limit) and the worker statistics of a site.

The real server sends real job types (``{"managed": {"SCORE": 3, "MCORE": 2}}``), often mixed with
the job types Harvester reported (``"ANY"``). A unified queue served by pseudo-queues
``PQ/SCORE``, ``PQ/MCORE`` must get each resource type's share in the pseudo-queue of that
resource type.
"""

from __future__ import annotations

import logging
import types

from test_db_fixtures import (  # noqa: F401
    _module_mariadb, db_engine, db_home, db_overrides, insert_workers, make_worker, proxy,
)

SITE = "UPQ"


class _Mapper:
    def __init__(self, *configs):
        self.queues = {c.queueName: c for c in configs}

    def get_queue(self, name):
        return self.queues.get(name)


def _queue(name: str, site: str | None = None, resource_type: str | None = None):
    site_name, _, rt = name.partition("/")
    rt = resource_type or rt or "ANY"
    # uniqueName as QueueConfig.set_unique_name makes it: with the prodSourceLabel, not the job type
    return types.SimpleNamespace(queueName=name, siteName=site or site_name, resourceType=rt, jobType="ANY",
                                 prodSourceLabel="managed", uniqueName=f"{name}:{rt}:managed", maxWorkers=20,
                                 nQueueLimitWorker=10)


def _unified(proxy, *resource_types: str) -> None:
    configs = [_queue(f"{SITE}/{rt}") for rt in resource_types]
    assert proxy.fill_panda_queue_table([c.queueName for c in configs], _Mapper(*configs))


def _rows(proxy, site: str = SITE) -> list[tuple]:
    cur = proxy.execute("SELECT queueName, jobType, resourceType, nNewWorkers, uniqueName FROM pq_table "
                        "WHERE siteName=:s ORDER BY queueName, jobType", {":s": site})
    rows = [tuple(r) for r in cur.fetchall()]
    proxy.commit()
    return rows


def _slots(proxy, site: str = SITE) -> dict:
    proxy.update_panda_queue_attribute("submitTime", None, site_name=site)
    current, got_site, _res_map = proxy.get_queues_to_submit(60, 600, "sub", 300)
    assert got_site == site
    assert proxy.release_site(site, "sub")
    return {(q, jt, rt): c["nNewWorkers"] for q, by_jt in current.items() for jt, by_rt in by_jt.items()
            for rt, c in by_rt.items()}


def test_real_job_type_goes_to_the_pseudo_queue_of_each_resource_type(proxy):
    _unified(proxy, "SCORE", "MCORE")
    ret = proxy.set_queue_limit(SITE, {"managed": {"SCORE": 3, "MCORE": 2}})
    assert ret == {"managed": {"SCORE": 3, "MCORE": 2}}
    assert _rows(proxy) == [
        ("UPQ/MCORE", "ANY", "MCORE", 0, "UPQ/MCORE:MCORE:ANY"),
        ("UPQ/MCORE", "managed", "MCORE", 2, "UPQ/MCORE:MCORE:managed"),
        ("UPQ/SCORE", "ANY", "SCORE", 0, "UPQ/SCORE:SCORE:ANY"),
        ("UPQ/SCORE", "managed", "SCORE", 3, "UPQ/SCORE:SCORE:managed"),
    ]
    assert _slots(proxy) == {("UPQ/SCORE", "ANY", "SCORE"): 0, ("UPQ/SCORE", "managed", "SCORE"): 3,
                             ("UPQ/MCORE", "ANY", "MCORE"): 0, ("UPQ/MCORE", "managed", "MCORE"): 2}
    # the next command updates those rows in place (and resets what it does not name)
    assert proxy.set_queue_limit(SITE, {"managed": {"MCORE": 5}}) == {"managed": {"MCORE": 5}}
    assert _slots(proxy) == {("UPQ/SCORE", "ANY", "SCORE"): 0, ("UPQ/SCORE", "managed", "SCORE"): 0,
                             ("UPQ/MCORE", "ANY", "MCORE"): 0, ("UPQ/MCORE", "managed", "MCORE"): 5}
    assert len(_rows(proxy)) == 4


def test_rows_filled_by_an_older_version_are_rekeyed(proxy):
    # an older version keyed the catch-all row <queue>:<rt>:<prodSourceLabel>: the "managed" row
    # PanDA's first command needs would collide with it and be lost
    proxy.execute("INSERT INTO pq_table (queueName, siteName, resourceType, jobType, uniqueName, nNewWorkers) "
                  "VALUES ('UPQ/SCORE', 'UPQ', 'SCORE', 'ANY', 'UPQ/SCORE:SCORE:managed', 0)")
    proxy.commit()
    _unified(proxy, "SCORE")
    assert [r[4] for r in _rows(proxy)] == ["UPQ/SCORE:SCORE:ANY"]
    assert proxy.set_queue_limit(SITE, {"managed": {"SCORE": 2}}) == {"managed": {"SCORE": 2}}
    assert _slots(proxy) == {("UPQ/SCORE", "ANY", "SCORE"): 0, ("UPQ/SCORE", "managed", "SCORE"): 2}


def test_limits_of_pseudo_queues_follow_the_queue_config(proxy):
    # a pseudo-queue's own row is its resource type's row (there is no catch-all row to find)
    score = _queue(f"{SITE}/SCORE")
    _unified(proxy, "SCORE")
    proxy.set_queue_limit(SITE, {"managed": {"SCORE": 2}})
    score.nQueueLimitWorker, score.maxWorkers = 3, 7
    assert proxy.fill_panda_queue_table([score.queueName], _Mapper(score))
    cur = proxy.execute("SELECT jobType, nQueueLimitWorker, maxWorkers FROM pq_table ORDER BY jobType")
    assert [tuple(r) for r in cur.fetchall()] == [("ANY", 3, 7), ("managed", 3, 7)]
    proxy.commit()
    assert len(_rows(proxy)) == 2  # refreshed, not inserted again


def test_any_and_real_job_types_mixed(proxy):
    # the real server answers with every job type Harvester reported (ANY) plus the real ones
    _unified(proxy, "SCORE", "MCORE")
    ret = proxy.set_queue_limit(SITE, {"ANY": {"SCORE": 1, "MCORE": 0}, "managed": {"SCORE": 4, "MCORE": 2},
                                       "user": {"SCORE": 1}})
    assert ret == {"ANY": {"SCORE": 1, "MCORE": 0}, "managed": {"SCORE": 4, "MCORE": 2}, "user": {"SCORE": 1}}
    assert _slots(proxy) == {("UPQ/SCORE", "ANY", "SCORE"): 1, ("UPQ/SCORE", "managed", "SCORE"): 4,
                             ("UPQ/SCORE", "user", "SCORE"): 1,
                             ("UPQ/MCORE", "ANY", "MCORE"): 0, ("UPQ/MCORE", "managed", "MCORE"): 2}


def test_resource_type_without_a_pseudo_queue_is_not_applied(proxy, caplog):
    _unified(proxy, "SCORE", "MCORE")
    with caplog.at_level(logging.WARNING, logger="panda.log.db_proxy"):
        ret = proxy.set_queue_limit(SITE, {"managed": {"SCORE": 2, "SCORE_HIMEM": 3, "MCORE_HIMEM": 0}})
    # no pseudo-queue UPQ/SCORE_HIMEM: the share is not given to a queue of another resource type
    assert ret == {"managed": {"SCORE": 2}}
    assert {(q, jt, rt) for q, jt, rt, _n, _u in _rows(proxy)} == {
        ("UPQ/SCORE", "ANY", "SCORE"), ("UPQ/SCORE", "managed", "SCORE"), ("UPQ/MCORE", "ANY", "MCORE")}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings  # a zero share is nothing lost: no warning for MCORE_HIMEM
    assert "siteName=UPQ" in warnings[0] and "jobType=managed resourceType=SCORE_HIMEM" in warnings[0]
    assert "UPQ/SCORE_HIMEM" in warnings[0] and "UPQ/MCORE, UPQ/SCORE" in warnings[0]


def test_catch_all_queue_of_the_site_takes_other_resource_types(proxy):
    # a unified queue served by one catch-all queue (the original's layout) plus a pseudo-queue
    configs = [_queue("UPQ", resource_type="ANY"), _queue("UPQ/MCORE")]
    assert proxy.fill_panda_queue_table([c.queueName for c in configs], _Mapper(*configs))
    proxy.set_queue_limit(SITE, {"managed": {"SCORE": 3, "MCORE": 2, "SCORE_HIMEM": 1}})
    assert _slots(proxy) == {("UPQ", "ANY", "ANY"): 0, ("UPQ", "managed", "SCORE"): 3,
                             ("UPQ", "managed", "SCORE_HIMEM"): 1,
                             ("UPQ/MCORE", "ANY", "MCORE"): 0, ("UPQ/MCORE", "managed", "MCORE"): 2}


def test_push_queue_with_a_real_job_type(proxy):
    # a plain queue whose name differs from its PanDA site: the new row belongs to that queue
    configs = [_queue("Q1", site="S1", resource_type="ANY")]
    assert proxy.fill_panda_queue_table(["Q1"], _Mapper(*configs))
    assert proxy.set_queue_limit("S1", {"managed": {"SCORE": 5}}) == {"managed": {"SCORE": 5}}
    assert _rows(proxy, "S1") == [("Q1", "ANY", "ANY", 0, "Q1:ANY:ANY"), ("Q1", "managed", "SCORE", 5,
                                                                          "Q1:SCORE:managed")]
    assert _slots(proxy, "S1") == {("Q1", "ANY", "ANY"): 0, ("Q1", "managed", "SCORE"): 5}


def test_site_stats_count_each_worker_once_by_its_own_types(proxy):
    _unified(proxy, "SCORE", "MCORE")
    proxy.set_queue_limit(SITE, {"ANY": {"SCORE": 0}, "managed": {"SCORE": 3, "MCORE": 2}})
    insert_workers(proxy, [make_worker(1, status="running", site="UPQ/SCORE", jobType="managed", resourceType="SCORE"),
                           make_worker(2, status="submitted", site="UPQ/SCORE", jobType="managed",
                                       resourceType="SCORE"),
                           make_worker(3, status="submitted", site="UPQ/MCORE", jobType="managed",
                                       resourceType="MCORE"),
                           make_worker(4, status="finished", site="UPQ/MCORE", resourceType="MCORE")])
    stats = proxy.get_worker_stats(SITE)
    assert stats == {
        "ANY": {"SCORE": {"running": 0, "submitted": 0, "finished": 0, "to_submit": 0},
                "MCORE": {"running": 0, "submitted": 0, "finished": 1, "to_submit": 0}},
        "managed": {"SCORE": {"running": 1, "submitted": 1, "finished": 0, "to_submit": 3},
                    "MCORE": {"running": 0, "submitted": 1, "finished": 0, "to_submit": 2}},
    }
