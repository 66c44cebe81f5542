"""Faulty plugins: a plugin that raises, hangs past its time limit, answers in the wrong shape or
with fewer results than workers costs its own queue a diagnostic, never the other queues.

Unit level (real SQLite DB, the real Monitor cycle over two queues, plugins loaded by name from
``reliability.plugin_fault_plugins``) and on the real daemon (emulator + daemon processes, two
push queues, one whose monitor or submitter hangs for ever).

What happens to a hung call (``pandaharvester/harvesterbody/plugin_calls.py``): after its
``callTimeout`` it is abandoned; its daemon thread runs on, its reply is discarded (WARNING) when
it returns; until then the same plugin on that queue and role is not called again.
"""

from __future__ import annotations

import threading
import time

import pytest

from pandaharvester.harvesterbody import plugin_calls
from pandaharvester.harvesterbody.agent_base import AgentBase
from pandaharvester.harvesterbody.monitor import Monitor
from reliability import plugin_fault_plugins as faulty
from test_agents_helpers import agent_env, make_job, make_worker, plugin, queue, set_job, sql  # noqa: F401
from test_agents_helpers import store_worker

MOD = "reliability.plugin_fault_plugins"
BAD, GOOD = "FAULTQ", "GOODQ"
LIMIT = 0.5  # seconds: the callTimeout of the hanging plugin in the unit tests


@pytest.fixture(autouse=True)
def clean_calls():
    plugin_calls.reset()
    faulty.reset()
    yield
    faulty.reset()  # lets any hung test call return: its thread ends
    for thread in threading.enumerate():
        if thread.name.endswith("-plugin-abandoned"):
            thread.join(10)
    plugin_calls.reset()


@pytest.fixture()
def two_queues(agent_env):
    """``make(mode, **monitor keys)`` -> (mapper, proxy, {queue: [workerID, ...]}): FAULTQ's monitor
    fails in ``mode``; GOODQ's is the same plugin answering normally. Two running workers each."""

    def make(mode: str, overrides: dict | None = None, **monitor_keys):
        bad = plugin("monitor", "FaultyMonitor", MOD, mode=mode, hangName=BAD, **monitor_keys)
        good = plugin("monitor", "FaultyMonitor", MOD, mode="ok", hangName=GOOD)
        home, mapper, proxy = agent_env(lambda h: {BAD: queue(h, monitor=bad), GOOD: queue(h, monitor=good)},
                                        overrides)
        workers = {name: [add_worker(proxy, home, name) for _ in range(2)] for name in (BAD, GOOD)}
        return mapper, proxy, workers

    return make


def add_worker(proxy, home, site: str) -> int:
    job = make_job(site, sub_status="submitted", status="running")
    assert proxy.insert_jobs([job])
    set_job(proxy, job.PandaID, lockedBy="submitter")
    worker = make_worker(site, status="running")
    worker.accessPoint = str(home / "workers" / str(worker.workerID))
    worker = store_worker(proxy, worker, [proxy.get_job(job.PandaID)])
    set_job(proxy, job.PandaID, lockedBy=None)
    return worker.workerID


def diag_of(worker_id: int) -> str:
    return sql("SELECT diagMessage FROM work_table WHERE workerID=:w", {":w": worker_id})[0][0] or ""


def cycle(mapper) -> float:
    """One Monitor cycle (single mode, in this thread); its duration in seconds."""
    start = time.monotonic()
    agent = Monitor(mapper, single_mode=True)
    agent.run_one_cycle()
    assert agent.nCycles == 1 and agent.fatalError is None
    return time.monotonic() - start


def errors_naming(caplog, *words: str) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelname == "ERROR" and all(word in r.getMessage() for word in words)]


# ------------------------------------------------------------------ every fault: own queue only
@pytest.mark.parametrize("mode, diag_words", [
    ("raise", ["FaultyMonitor.check_workers raised RuntimeError", "deliberate failure"]),
    ("shape", ["queue 'FAULTQ', monitor plugin", "FaultyMonitor.check_workers", "not a (bool, statuses) pair"]),
    ("short", ["queue 'FAULTQ', monitor plugin", "FaultyMonitor.check_workers", "returned 1 reply for 2 workers"]),
    ("hang", ["FaultyMonitor.check_workers on queue 'FAULTQ' (monitor plugin) did not return within 0.5 s"]),
])
def test_a_faulty_monitor_costs_its_own_queue_a_diagnostic_only(two_queues, caplog, mode, diag_words):
    mapper, _proxy, workers = two_queues(mode, callTimeout=LIMIT)
    took = cycle(mapper)
    assert took < LIMIT + 5, f"the cycle took {took:.1f} s"
    for worker_id in workers[GOOD]:
        assert diag_of(worker_id) == "checked by FaultyMonitor", "the other queue was not checked"
    for worker_id in workers[BAD]:
        diag = diag_of(worker_id)
        missing = [word for word in diag_words if word not in diag]
        assert not missing, f"diag {diag!r} lacks {missing}"
    assert errors_naming(caplog, "FaultyMonitor", BAD), "no ERROR line naming the plugin and the queue"


def test_a_hung_call_is_abandoned_then_not_called_again_until_it_returns(two_queues, caplog):
    mapper, _proxy, workers = two_queues("hang", callTimeout=LIMIT)
    threads_before = threading.active_count()
    first = cycle(mapper)
    assert LIMIT <= first < LIMIT + 5
    assert plugin_calls.stats() == {"abandoned": 1, "blocked": 0, "late_returns": 0, "hung": 1}
    abandoned = [t for t in threading.enumerate() if t.name.endswith("-plugin-abandoned")]
    assert len(abandoned) == 1 and abandoned[0].daemon and abandoned[0].is_alive()
    # the next cycles do not wait and do not call the hung plugin again: no thread piles up
    for _ in range(4):
        assert cycle(mapper) < LIMIT, "a cycle waited for the hung plugin again"
    assert faulty.CALLS[BAD] == 1 and faulty.CALLS[GOOD] == 5
    assert plugin_calls.stats()["blocked"] == 4
    assert threading.active_count() <= threads_before + 2  # the abandoned thread + this thread's helper
    for worker_id in workers[BAD]:
        assert "not called: its previous call, abandoned after 0.5 s, still runs" in diag_of(worker_id)
    for worker_id in workers[GOOD]:
        assert diag_of(worker_id) == "checked by FaultyMonitor"
    # the hung call returns: its reply is discarded, its thread ends, the plugin is called again
    faulty.release(BAD)
    abandoned[0].join(10)
    assert not abandoned[0].is_alive(), "the abandoned thread did not end after its call returned"
    assert plugin_calls.stats() == {"abandoned": 1, "blocked": 4, "late_returns": 1, "hung": 0}
    late = [r.getMessage() for r in caplog.records if r.levelname == "WARNING" and "abandoned call FaultyMonitor" in r.getMessage()]
    assert len(late) == 1 and "FaultyMonitor.check_workers on queue 'FAULTQ'" in late[0]
    assert "its reply is discarded" in late[0]
    cycle(mapper)
    assert faulty.CALLS[BAD] == 2
    for worker_id in workers[BAD]:
        assert diag_of(worker_id) == "checked by FaultyMonitor"


def test_hung_calls_on_two_queues_cost_one_time_limit_each_once(agent_env):
    """Two queues hang: the first cycle waits once per queue, later cycles not at all."""
    hangs = {name: plugin("monitor", "FaultyMonitor", MOD, mode="hang", hangName=name, callTimeout=LIMIT)
             for name in ("HANG1", "HANG2")}
    home, mapper, proxy = agent_env(lambda h: {name: queue(h, monitor=conf) for name, conf in hangs.items()})
    for name in hangs:
        add_worker(proxy, home, name)
    assert 2 * LIMIT <= cycle(mapper) < 2 * LIMIT + 5
    assert cycle(mapper) < LIMIT
    assert plugin_calls.stats()["abandoned"] == 2 and plugin_calls.stats()["hung"] == 2


# ------------------------------------------------------------------ the call itself
def call(mode: str, role: str | None = "monitor", **keys):
    plugin_obj = faulty.FaultyMonitor(mode=mode, hangName="direct", queueName="DIRECTQ", **keys)
    agent = AgentBase()
    log = agent._own_log("test")
    return agent.call_plugin(log, plugin_obj, "check_workers", [], role=role)


def test_a_call_in_time_gives_the_same_reply_and_errors_as_an_inline_call():
    assert call("ok", callTimeout=5) == call("ok", callTimeout=0) == (True, (True, []))
    ok, message = call("raise", callTimeout=5)
    assert not ok and message == "FaultyMonitor.check_workers raised RuntimeError: FaultyMonitor deliberate failure"
    with pytest.raises(SystemExit):  # not an Exception: ends the agent thread, as inline
        call("exit", callTimeout=5)
    assert plugin_calls.stats()["abandoned"] == 0


def test_calls_with_a_limit_run_on_one_reused_helper_thread_and_without_one_inline():
    caller = threading.current_thread().name
    call("thread", callTimeout=0)
    call("thread", callTimeout=5)
    call("thread", callTimeout=5)
    assert faulty.THREADS[0] == caller
    assert faulty.THREADS[1] == faulty.THREADS[2] == f"{caller}-plugin"


def test_the_time_limit_comes_from_the_plugin_else_the_cfg_and_the_messenger_has_none_by_default():
    with_limit = faulty.FaultyMonitor(callTimeout=7)
    without = faulty.FaultyMonitor()
    assert plugin_calls.resolve_timeout(with_limit, "monitor", 3600) == 7
    assert plugin_calls.resolve_timeout(without, "monitor", 3600) == 3600
    assert plugin_calls.resolve_timeout(without, "monitor", 0) == 0
    assert plugin_calls.resolve_timeout(without, "messenger", 3600) == 0
    assert plugin_calls.resolve_timeout(with_limit, "messenger", 3600) == 7
    assert AgentBase.cfg_value("master", "pluginCallTimeout") == 3600  # the cfg template's default


def test_queue_level_limit_goes_to_every_plugin_unless_the_plugin_sets_its_own(tmp_path):
    from test_queue_config_helpers import full_queue, load
    from test_queue_config_helpers import plugin as qplugin

    mapper = load(tmp_path, {"Q": full_queue(pluginCallTimeout=120, monitor=qplugin(callTimeout=30))})
    config = mapper.get_queue("Q")
    assert config.monitor["callTimeout"] == 30
    assert config.submitter["callTimeout"] == config.messenger["callTimeout"] == 120


@pytest.mark.parametrize("attrs, key, shown", [
    ({"pluginCallTimeout": "soon"}, "pluginCallTimeout", "got str 'soon'"),
    ({"pluginCallTimeout": -1}, "pluginCallTimeout", "got int -1"),
    ({"submitter": {"callTimeout": True}}, "submitter.callTimeout", "got bool True"),
])
def test_a_bad_time_limit_in_the_queue_config_is_one_error_naming_queue_and_key(tmp_path, attrs, key, shown):
    from test_queue_config_helpers import full_queue, load

    entry = full_queue()
    for name, value in attrs.items():
        entry[name] = dict(entry[name], **value) if isinstance(value, dict) else value
    mapper = load(tmp_path, {"BADQ": entry, "OKQ": full_queue()})
    assert list(mapper.get_all_queues()) == ["OKQ"]
    [error] = [str(e) for e in mapper.errors]
    assert "BADQ" in error and key in error and "must be a number of seconds >= 0" in error and shown in error


def test_a_bad_cfg_time_limit_is_one_line(fresh_home):
    from pandaharvester.harvesterconfig import schema

    fresh_home({"master": {"pluginCallTimeout": "long"}})
    [line] = schema.validate()
    assert "[master] pluginCallTimeout = 'long': must be a number from 0 to 1,000,000,000 (seconds)" in line
