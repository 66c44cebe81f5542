"""WorkerAdjuster.define_num_workers against the real DB (pq_table, work_table, cache_table)."""

from __future__ import annotations

from pandaharvester.harvesterbody.worker_adjuster import WorkerAdjuster
from pandaharvester.harvestercore.plugin_base import PluginBase

from test_agents_helpers import agent_env, make_worker, plugin, queue, store_worker  # noqa: F401

Q = "ADJQ"


class AlwaysThrottler(PluginBase):
    def to_be_throttled(self, queue_config, queue_config_mapper=None):
        return True, "too many missed"


class NeverThrottler(PluginBase):
    def to_be_throttled(self, queue_config, queue_config_mapper=None):
        return False, "fine"


def slot(n_queue=0, n_ready=0, n_running=0, n_new=0, queue_name=Q, rt="ANY", jt="ANY"):
    return {queue_name: {jt: {rt: {"nQueue": n_queue, "nReady": n_ready, "nRunning": n_running,
                                   "nNewWorkers": n_new}}}}


def n_new(result, queue_name=Q, jt="ANY", rt="ANY"):
    return result[queue_name][jt][rt]["nNewWorkers"]


def adjuster(agent_env, overrides=None, **attrs):
    home, mapper, proxy = agent_env(lambda h: {Q: queue(h, **attrs)}, overrides)
    return WorkerAdjuster(mapper), proxy


def test_fills_queue_up_to_n_queue_limit(agent_env):
    adj, _ = adjuster(agent_env, nQueueLimitWorker=5, maxWorkers=100)
    assert n_new(adj.define_num_workers(slot(n_queue=2), Q)) == 3
    assert n_new(adj.define_num_workers(slot(n_queue=5), Q)) == 0
    assert n_new(adj.define_num_workers(slot(n_queue=7), Q)) == 0


def test_max_workers_caps_total(agent_env):
    adj, _ = adjuster(agent_env, nQueueLimitWorker=10, maxWorkers=6)
    assert n_new(adj.define_num_workers(slot(n_queue=1, n_running=3), Q)) == 2
    assert n_new(adj.define_num_workers(slot(n_queue=0, n_running=6), Q)) == 0


def test_max_new_workers_per_cycle_and_submitter_max_new_workers(agent_env):
    adj, _ = adjuster(agent_env, nQueueLimitWorker=50, maxWorkers=100, maxNewWorkersPerCycle=4)
    assert n_new(adj.define_num_workers(slot(), Q)) == 4
    adj, _ = adjuster(agent_env, {"submitter": {"maxNewWorkers": 3}}, nQueueLimitWorker=50, maxWorkers=100,
                      maxNewWorkersPerCycle=0)
    assert n_new(adj.define_num_workers(slot(), Q)) == 3


def test_offline_queue_gets_none(agent_env):
    adj, proxy = adjuster(agent_env, nQueueLimitWorker=5)
    proxy.refresh_cache("panda_queues.json", None, {Q: {"status": "offline"}})
    assert n_new(adj.define_num_workers(slot(), Q)) == 0
    proxy.refresh_cache("panda_queues.json", None, {Q: {"status": "online"}})
    assert n_new(adj.define_num_workers(slot(), Q)) == 5


def test_throttler(agent_env):
    adj, _ = adjuster(agent_env, nQueueLimitWorker=5, throttler=plugin("throttler", "AlwaysThrottler", __name__))
    assert n_new(adj.define_num_workers(slot(), Q)) == 0
    adj, _ = adjuster(agent_env, nQueueLimitWorker=5, throttler=plugin("throttler", "NeverThrottler", __name__))
    assert n_new(adj.define_num_workers(slot(), Q)) == 5


def test_slave_mode_panda_sets_depth(agent_env):
    adj, _ = adjuster(agent_env, map_type="NoJob", runMode="slave", nQueueLimitWorker=10, maxWorkers=100)
    assert n_new(adj.define_num_workers(slot(n_new=4), Q)) == 4
    assert n_new(adj.define_num_workers(slot(n_queue=3, n_new=4), Q)) == 1  # depth, not increment
    assert n_new(adj.define_num_workers(slot(n_queue=0, n_new=0), Q)) == 0
    assert n_new(adj.define_num_workers(slot(n_queue=0, n_new=30), Q)) == 10  # still capped by the limit


def test_nojob_pull_queue_limited_by_activated_jobs(agent_env):
    adj, proxy = adjuster(agent_env, map_type="NoJob", nQueueLimitWorker=10, maxWorkers=100)
    proxy.refresh_cache("job_statistics.json", None, {Q: {"activated": 3}})
    assert n_new(adj.define_num_workers(slot(), Q)) == 3
    assert n_new(adj.define_num_workers(slot(n_queue=2), Q)) == 1
    proxy.refresh_cache("job_statistics.json", None, {Q: {"activated": 50}})
    assert n_new(adj.define_num_workers(slot(), Q)) == 10
    adj, proxy = adjuster(agent_env, {"submitter": {"activateWorkerFactor": 0.5}}, map_type="NoJob",
                          nQueueLimitWorker=10, maxWorkers=100)
    proxy.refresh_cache("job_statistics.json", None, {Q: {"activated": 8}})
    assert n_new(adj.define_num_workers(slot(), Q)) == 4


def test_unified_queue_scales_over_resource_types(agent_env):
    adj, _ = adjuster(agent_env, nQueueLimitWorker=4, maxWorkers=100)
    static = {Q: {"managed": {rt: {"nQueue": 0, "nReady": 0, "nRunning": 0, "nNewWorkers": 0}
                              for rt in ("SCORE", "MCORE")}}}
    result = adj.define_num_workers(static, Q)
    per_rt = {rt: n_new(result, jt="managed", rt=rt) for rt in ("SCORE", "MCORE")}
    assert sum(per_rt.values()) == 4, per_rt  # each slot alone would take 4
    assert all(v >= 1 for v in per_rt.values()), per_rt


class RaisingThrottler(PluginBase):
    def to_be_throttled(self, queue_config, queue_config_mapper=None):
        raise RuntimeError("throttler DB gone")


def test_raising_throttler_blocks_only_its_queue(agent_env):
    home, mapper, _proxy = agent_env(lambda h: {
        Q: queue(h, nQueueLimitWorker=5, throttler=plugin("throttler", "RaisingThrottler", __name__)),
        "ADJQ2": queue(h, nQueueLimitWorker=2)})
    static = {**slot(), **slot(queue_name="ADJQ2")}
    result = WorkerAdjuster(mapper).define_num_workers(static, Q)
    assert result is not None, "one raising throttler must not cost the other queues their workers"
    assert n_new(result) == 0
    assert n_new(result, queue_name="ADJQ2") == 2


def test_pseudo_queue_uses_unified_pq_name_for_panda_data(agent_env):
    pseudo = "ADJPQ/SCORE"
    home, mapper, proxy = agent_env(lambda h: {pseudo: queue(h, map_type="NoJob", nQueueLimitWorker=10,
                                                             maxWorkers=100)})
    assert mapper.get_queue(pseudo).siteName == "ADJPQ"
    adj = WorkerAdjuster(mapper)
    # PanDA knows the unified PQ, not the pseudo-queue: its activated jobs and its status apply
    proxy.refresh_cache("job_statistics.json", None, {"ADJPQ": {"activated": 3}})
    assert n_new(adj.define_num_workers(slot(queue_name=pseudo, rt="SCORE"), pseudo), queue_name=pseudo,
                 rt="SCORE") == 3
    proxy.refresh_cache("panda_queues.json", None, {"ADJPQ": {"status": "offline"}})
    assert n_new(adj.define_num_workers(slot(queue_name=pseudo, rt="SCORE"), pseudo), queue_name=pseudo,
                 rt="SCORE") == 0
