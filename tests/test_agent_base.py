"""AgentBase: the cycle every agent shares (timing line, full batch, exceptions, stop, lockInterval)."""

from __future__ import annotations

import logging
import re
import threading
import time
from pathlib import Path

import pytest

from pandaharvester.harvesterbody.agent_base import AgentBase
from pandaharvester.harvestercore import core_utils


class ScriptedAgent(AgentBase):
    """Runs a list of behaviours, one per cycle (True = full batch, Exception = raise)."""

    cfg_section = "no_such_section_for_tests"
    log_name = "agenttest"
    default_sleep_time = 30

    def __init__(self, script=(), single_mode=False, sleep=None):
        super().__init__(single_mode)
        self.script = list(script)
        self.calls = 0
        if sleep is not None:
            self.default_sleep_time = sleep

    def run_cycle(self):
        self.calls += 1
        step = self.script.pop(0) if self.script else False
        if isinstance(step, BaseException):
            raise step
        if callable(step):
            return step()
        return step


def wait_until(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


@pytest.fixture()
def log_dir(tmp_path: Path):
    directory = tmp_path / "logs"
    core_utils.configure_logging(str(directory), default_level="DEBUG")  # the cycle's "done" line is DEBUG
    yield directory
    core_utils.configure_logging(None)


def log_text(directory: Path, name: str = "agenttest") -> str:
    path = directory / f"panda-{name}.log"
    return path.read_text() if path.exists() else ""


def test_single_mode_runs_exactly_one_cycle(log_dir):
    agent = ScriptedAgent([True, True], single_mode=True)
    agent.start()
    agent.join(5)
    assert not agent.is_alive()
    assert agent.calls == 1 and agent.nCycles == 1
    assert agent.terminated(100) is True  # at once in single mode


def test_full_batch_runs_again_without_sleeping(log_dir):
    agent = ScriptedAgent([True, True, True, False], sleep=30)
    started = time.monotonic()
    agent.start()
    assert wait_until(lambda: agent.calls >= 4, timeout=2)
    assert time.monotonic() - started < 2  # sleepTime is 30 s: only full batches made it this fast
    time.sleep(0.2)
    assert agent.calls == 4  # the partial batch made it sleep
    agent.stop()
    agent.join(2)
    assert not agent.is_alive()


def test_exception_in_cycle_is_logged_and_thread_survives(log_dir):
    agent = ScriptedAgent([RuntimeError("boom in cycle"), False, False], sleep=0.05)
    agent.start()
    assert wait_until(lambda: agent.calls >= 3)
    assert agent.is_alive()
    agent.stop()
    agent.join(2)
    text = log_text(log_dir)
    assert "RuntimeError boom in cycle" in text
    assert "Traceback" in text
    assert text.count("done : took") >= 3


def test_stop_event_ends_sleep_fast(log_dir):
    event = threading.Event()
    agent = ScriptedAgent(sleep=60)
    agent.set_stop_event(event)
    agent.start()
    assert wait_until(lambda: agent.nCycles >= 1)
    time.sleep(0.05)
    started = time.monotonic()
    event.set()
    agent.join(2)
    assert not agent.is_alive()
    assert time.monotonic() - started < 1.0
    assert agent.nCycles == 1


def test_done_line_goes_to_the_agents_own_log_file(log_dir):
    agent = ScriptedAgent(single_mode=True)
    agent.start()
    agent.join(5)
    lines = [line for line in log_text(log_dir).splitlines() if "done : took" in line]
    assert len(lines) == 1
    assert re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} panda\.log\.agenttest: DEBUG run <id=\S+> done : took \d+\.\d+ sec$",
                    lines[0]), lines[0]
    assert agent.get_pid() in lines[0]


def test_lock_interval_warning(log_dir, fresh_home):
    fresh_home({"monitor": {"lockInterval": 0}})

    class SlowAgent(ScriptedAgent):
        cfg_section = "monitor"

    agent = SlowAgent([lambda: time.sleep(0.05)], single_mode=True)
    agent.start()
    agent.join(5)
    text = log_text(log_dir)
    assert re.search(r"WARNING run <id=\S+> cycle took \d+\.\d s > \[monitor\] lockInterval=0 s: other threads "
                     r"may pick the same rows; raise \[monitor\] lockInterval or lower \[monitor\] maxWorkers", text), text


def test_no_lock_interval_warning_when_fast(log_dir, fresh_home):
    fresh_home({"monitor": {"lockInterval": 600}})

    class FastAgent(ScriptedAgent):
        cfg_section = "monitor"

    agent = FastAgent(single_mode=True)
    agent.start()
    agent.join(5)
    assert "done : took" in log_text(log_dir)
    assert "lockInterval" not in log_text(log_dir)


def test_sleep_time_from_cfg(fresh_home):
    fresh_home({"monitor": {"sleepTime": 7}})

    class CfgAgent(ScriptedAgent):
        cfg_section = "monitor"

    assert CfgAgent().sleep_time() == 7
    assert ScriptedAgent().sleep_time() == 30  # section absent: class default


def test_get_pid_format():
    agent = ScriptedAgent(single_mode=True)
    agent.start()
    agent.join(5)
    assert re.fullmatch(rf"{re.escape(agent.hostname)}_{agent.os_pid}-[0-9a-f]+", agent.get_pid())
    assert agent.get_pid().endswith(format(agent.ident, "x"))


class Plugin:
    def good(self, value, scale=1):
        return value * scale

    def bad(self, _value):
        raise ValueError("plugin broke")


def test_call_plugin_captures_exceptions(log_dir):
    agent = ScriptedAgent()
    log = agent.make_logger(agent.logger, "workerID=12", method_name="check", send_dialog=False)
    assert agent.call_plugin(log, Plugin(), "good", 3, scale=2) == (True, 6)
    ok, text = agent.call_plugin(log, Plugin(), "bad", 3)
    assert ok is False
    assert text == "Plugin.bad raised ValueError: plugin broke"
    assert "check <workerID=12>" in log_text(log_dir) and "plugin broke" in log_text(log_dir)
    assert agent.call_plugin(log, Plugin(), "missing", default=(None, "skipped")) == (True, (None, "skipped"))
    assert agent.call_plugin(log, Plugin(), "missing") == (False, "Plugin has no method missing")


class DialogStore:
    def __init__(self):
        self.messages = []

    def add_dialog_message(self, message, level, module_name, identifier=None):
        self.messages.append((message, level, module_name))


def test_make_logger_sends_dialogs_at_warning_and_above(log_dir):
    agent = ScriptedAgent()
    store = DialogStore()
    agent.dbInterface = store
    log = agent.make_logger(agent.logger, "PandaID=42")
    log.debug("quiet")
    log.warning("loud")
    assert store.messages == [("test_make_logger_sends_dialogs_at_warning_and_above <PandaID=42> loud",
                               "WARNING", "agenttest")]
    agent.make_logger(agent.logger, "x", send_dialog=False).error("not stored")
    assert len(store.messages) == 1


def test_process_locks_are_remembered_and_released():
    class FakeDB:
        def __init__(self):
            self.locks = {}

        def get_process_lock(self, name, owner, interval):
            if self.locks.get(name, owner) != owner:
                return False
            self.locks[name] = owner
            return True

        def release_process_lock(self, name, owner):
            if self.locks.get(name) == owner:
                del self.locks[name]

    agent = ScriptedAgent()
    agent.dbProxy = FakeDB()
    agent.dbProxy.locks["taken"] = "someone else"
    assert agent.acquire_process_lock("cacher", 60) is True
    assert agent.acquire_process_lock("taken", 60) is False
    assert set(agent.heldProcessLocks) == {"cacher"}
    agent.release_process_locks()
    assert agent.dbProxy.locks == {"taken": "someone else"}


def test_process_lock_taken_before_the_thread_started_is_released_at_stop(log_dir):
    """A lock an agent takes in the master's thread (``pre_execute``: the CredManager's first
    check) is released at the clean stop, after the agent's own thread ran: it was left behind
    (owner ``<host>_<pid>-<master thread>`` while the release used the agent thread's ident)."""
    db = FakeLockDB()
    agent = ScriptedAgent(single_mode=True)
    agent.dbProxy = db
    assert agent.acquire_process_lock("credmanager", 60) is True  # before start(): the caller's thread
    taken_by = db.locks["credmanager"]
    agent.start()
    agent.join(5)
    assert agent.ident is not None and format(agent.ident, "x") not in taken_by
    agent.release_process_locks()
    assert db.locks == {}, f"lock left behind after the stop: {db.locks}"
    assert agent.acquire_process_lock("cacher", 60) and agent.heldProcessLocks["cacher"] == agent.get_pid()
    agent.release_process_lock("cacher")
    assert db.locks == {}


class FakeLockDB:
    """Named locks with owners, as ``lock_table`` holds them."""

    def __init__(self):
        self.locks = {}

    def get_process_lock(self, name, owner, interval):
        if self.locks.get(name, owner) != owner:
            return False
        self.locks[name] = owner
        return True

    def release_process_lock(self, name, owner):
        if self.locks.get(name) == owner:
            del self.locks[name]


def test_run_cycle_must_be_implemented(log_dir):
    class Lazy(AgentBase):
        log_name = "agenttest"

    agent = Lazy(single_mode=True)
    agent.start()
    agent.join(5)
    assert "must implement run_cycle()" in log_text(log_dir)
    logging.getLogger("panda.log.agenttest").handlers[0].flush()


def test_lock_interval_warning_names_keys_that_exist():
    """What the warning tells the operator to change must be keys of the agent's cfg section."""
    import configparser

    from pandaharvester.harvesterbody.event_feeder import EventFeeder
    from pandaharvester.harvesterbody.monitor import Monitor
    from pandaharvester.harvesterbody.preparator import Preparator
    from pandaharvester.harvesterbody.propagator import Propagator
    from pandaharvester.harvesterbody.stager import Stager
    from pandaharvester.harvesterbody.submitter import Submitter
    from pandaharvester.harvestertest.instance import template_path

    template = configparser.ConfigParser(interpolation=None)
    template.optionxform = str
    template.read(template_path())
    for agent in (Monitor, Propagator, Preparator, Stager, Submitter, EventFeeder):
        for key in ("lockInterval",) + agent.batch_keys:
            assert template.has_option(agent.cfg_section, key), (agent.__name__, agent.cfg_section, key)
