"""Several processes of one instance (``[master] nProcesses = 2``) against the PanDA emulator.

The work is shared through the DB's row locks and never duplicated (push and pull queues, counted
from the emulator's state and the Harvester DB); the work only one process may do is done once
per interval (counted from the emulator: heartbeats, cacher fetches, command fetches, service
metrics); signals reach every process, and they stop together (no orphan, a dead worker process
stops the instance with status 1).

The DB engine is a parameter: :data:`DB_ENGINES` lists the engines these tests run on (SQLite
and MariaDB), and :class:`Engine` gives the cfg overrides of each and reads the instance's tables.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

import psutil
import pytest

import mariadb_helpers
from e2e_helpers import REPO, TESTS_DIR, DaemonRun, daemon_run, wait_until  # noqa: F401

DB_ENGINES = ["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)]

PUSH = "DEMO_PUSH"
PULL = "DEMO_PULL"
FINAL = ("finished", "failed", "cancelled", "missed")
N_JOBS = 40
PULL_LIMIT = 4
PULL_CHANGES = {"submitter": {"sleepTime": 300}, "nQueueLimitWorker": PULL_LIMIT, "maxWorkers": 8,
                "monitor": {"name": "QueuedMonitor", "module": "e2e_helpers"}}


@dataclass
class Engine:
    """One DB engine of the tests: its name, the cfg overrides that put an instance on it, and
    a reader of the instance's tables (the checks read the DB as well as the emulator)."""

    name: str
    cfg: dict[str, dict]

    def rows(self, run: DaemonRun, sql: str) -> list[dict]:
        """Rows of ``sql`` (no parameters: literals only, the same text on every engine)."""
        if self.name == "sqlite":
            return run.db_rows(sql)
        return mariadb_helpers.rows(self.cfg["db"]["schema"], sql)


@pytest.fixture(params=DB_ENGINES)
def db_engine(request) -> Engine:
    """Each DB engine of :data:`DB_ENGINES` in turn (MariaDB: a scratch database of its own on the
    test server, :mod:`mariadb_helpers`, dropped after)."""
    if request.param == "sqlite":
        yield Engine("sqlite", {"db": {"engine": "sqlite"}})
        return
    with mariadb_helpers.mariadb_database() as overrides:
        yield Engine(request.param, {"db": overrides})


def _cfg(engine: Engine, **sections: dict) -> dict[str, dict]:
    cfg = {section: dict(values) for section, values in engine.cfg.items()}
    cfg.setdefault("master", {})["nProcesses"] = 2
    for section, values in sections.items():
        cfg.setdefault(section, {}).update(values)
    return cfg


def _workers_pids(run: DaemonRun, n: int = 2) -> list[int]:
    """pids of the master's worker processes, once all ``n`` run."""
    master = psutil.Process(run.daemon.pid)
    return run.wait_until(lambda: [p.pid for p in master.children()] if len(master.children()) == n else None,
                          30, f"{n} worker processes")


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _workers(run: DaemonRun, engine: Engine, site_prefix: str) -> list[dict]:
    return [w for w in engine.rows(run, "SELECT workerID, status, computingSite FROM work_table")
            if str(w["computingSite"]).startswith(site_prefix)]


def _live_pull(run: DaemonRun, engine: Engine) -> dict[str, int]:
    counts = {f"{PULL}/SCORE": 0, f"{PULL}/MCORE": 0}
    for w in _workers(run, engine, PULL):
        if w["status"] not in FINAL:
            counts[w["computingSite"]] += 1
    return counts


# ------------------------------------------------------------------------------------------ work shared
def test_two_processes_share_the_work_without_duplicates(daemon_run, db_engine):  # noqa: F811
    """Push: every job final once, dispatched once, one worker each; pull: the queue depth is
    met, never overshot; both processes did work."""
    run = daemon_run(only_queues=[PUSH, f"{PULL}/SCORE", f"{PULL}/MCORE"],
                     queue_changes={f"{PULL}/SCORE": PULL_CHANGES, f"{PULL}/MCORE": PULL_CHANGES},
                     cfg=_cfg(db_engine, jobfetcher={"maxJobs": 5}))
    panda_ids = run.emulator.add_task(PUSH, N_JOBS)
    run.demo.set_queue_depth(run.emulator, PULL, {"SCORE": 3, "MCORE": 2})
    run.start()
    run.wait_until(lambda: all(j["status"] == "finished" for j in run.jobs(PUSH)), 90,
                   "all push jobs finished in PanDA")
    jobs = run.emulator.jobs(site=PUSH)
    assert sorted(j["panda_id"] for j in jobs) == sorted(panda_ids)  # 0 lost
    dispatched_twice = {j["panda_id"]: j["n_sent"] for j in jobs if j["n_sent"] != 1}
    assert not dispatched_twice, f"jobs dispatched more than once: {dispatched_twice}"
    # one job row and one worker per job in Harvester, every worker final
    job_rows = db_engine.rows(run, "SELECT PandaID, COUNT(*) AS n FROM job_table GROUP BY PandaID")
    assert sorted(r["PandaID"] for r in job_rows) == sorted(panda_ids) and {r["n"] for r in job_rows} == {1}
    links = db_engine.rows(run, "SELECT jw.PandaID, jw.workerID FROM jw_table jw JOIN work_table w "
                                f"ON w.workerID = jw.workerID WHERE w.computingSite = '{PUSH}'")
    by_job: dict[int, set] = {}
    for link in links:
        by_job.setdefault(link["PandaID"], set()).add(link["workerID"])
    assert set(by_job) == set(panda_ids)
    assert {len(w) for w in by_job.values()} == {1}, {k: v for k, v in by_job.items() if len(v) > 1}
    assert len({w for ws in by_job.values() for w in ws}) == N_JOBS
    run.wait_until(lambda: {w["status"] for w in _workers(run, db_engine, PUSH)} == {"finished"}, 30,
                   "push workers finished")
    # pull: live (queued) workers meet the depth and stay there over several cycles of both processes
    expected = {f"{PULL}/SCORE": 3, f"{PULL}/MCORE": 2}
    run.wait_until(lambda: _live_pull(run, db_engine) == expected, 30, f"live pull workers == {expected}")
    time.sleep(4)
    assert _live_pull(run, db_engine) == expected
    # both processes worked: each submitted workers and fetched jobs in its own log files
    for index in (0, 1):
        submitted = re.findall(r"submitted (\d+) workers", run.process_log("submitter", index))
        assert submitted and sum(map(int, submitted)) > 0, f"process p{index} submitted nothing"
        assert re.search(r"got [1-9]\d* jobs", run.process_log("job_fetcher", index)), f"p{index} fetched no jobs"
    assert run.stop() == 0


# ------------------------------------------------------------------------------------------ singletons
def test_instance_work_done_once_per_interval(daemon_run, db_engine):  # noqa: F811
    """Start-up message and heartbeat, cacher, command fetch, worker statistics and service
    metrics: once per interval for the instance, not once per process."""
    run = daemon_run(only_queues=[PUSH], cfg=_cfg(
        db_engine,
        commandmanager={"sleepTime": 2},
        cacher={"sleepTime": 2, "refreshInterval": 10, "data": "resource_types||panda_server:get_resource_types"},
        service_monitor={"active": True, "sleepTime": 3}))
    run.start()
    _workers_pids(run)
    t0 = time.monotonic()
    run.wait_until(lambda: db_engine.rows(run, "SELECT 1 FROM sm_table"), 30, "a service metrics sample")
    time.sleep(9)
    samples = db_engine.rows(run, "SELECT COUNT(*) AS n FROM sm_table")[0]["n"]
    elapsed = time.monotonic() - t0 + 3  # the processes started a little before t0
    state = run.emulator.state()
    calls, heartbeats = state["faults"]["calls"], state["heartbeats"][run.harvester_id]
    # one start-up message for the instance (PanDA refuses the very first one: sent again once)
    assert heartbeats["n_heartbeats"] == 1 and calls.get("harvester/heartbeat") == 2, (heartbeats, calls)
    assert heartbeats["data"].get("startTime"), heartbeats
    # the forced refresh at start, once (refreshInterval is 10 minutes)
    assert calls.get("metaconfig/get_resource_types") == 1, calls
    assert calls.get("harvester/report_worker_statistics") == 1, calls  # every 300 s
    assert calls.get("harvester/acquire_commands", 0) <= elapsed / 2 + 2, (calls, elapsed)
    assert 1 <= samples <= elapsed / 3 + 1, (samples, elapsed)
    assert run.stop() == 0


# ------------------------------------------------------------------------------------------ life cycle
def test_signals_reach_every_process_and_they_stop_together(daemon_run, db_engine):  # noqa: F811
    run = daemon_run(only_queues=[PUSH], cfg=_cfg(db_engine))
    run.start()
    pids = _workers_pids(run)
    assert int(run.pid_file.read_text().split()[0]) == run.daemon.pid  # the pid file is the master's
    run.wait_until(lambda: all("started Sweeper" in run.process_log("master", i) for i in (0, 1)), 30,
                   "both processes running their agents")
    os.kill(run.daemon.pid, signal.SIGHUP)
    run.wait_until(lambda: all("got SIGHUP: reopened log files" in run.process_log("master", i) for i in (0, 1)),
                   15, "SIGHUP passed on to both worker processes")
    os.kill(run.daemon.pid, signal.SIGTERM)
    assert run.daemon.wait(60) == 0
    assert all(_gone(pid) for pid in pids), "a worker process outlived the master"
    assert not run.pid_file.exists()
    for index in (0, 1):
        assert re.search(r"got SIGTERM: stopping", run.process_log("master", index)), index


def test_stop_signal_to_every_process_at_once_stops_cleanly(daemon_run, db_engine):  # noqa: F811
    """As systemd's stop (the whole cgroup) or a terminal's Ctrl-C (the process group): each
    worker gets the signal itself and the master's stop on its pipe, and still stops cleanly."""
    run = daemon_run(only_queues=[PUSH], cfg=_cfg(db_engine))
    run.start()
    pids = _workers_pids(run)
    run.wait_until(lambda: all("started Sweeper" in run.process_log("master", i) for i in (0, 1)), 30,
                   "both processes running their agents")
    os.killpg(run.daemon.pid, signal.SIGTERM)
    assert run.daemon.wait(60) == 0, run.log_tail()
    assert all(_gone(pid) for pid in pids)
    assert "again while stopping" not in run.log_tail()
    assert all("terminated" in run.process_log("master", i) for i in (0, 1))


def test_dead_worker_process_stops_the_instance(daemon_run, db_engine):  # noqa: F811
    run = daemon_run(only_queues=[PUSH], cfg=_cfg(db_engine))
    run.start()
    first, second = _workers_pids(run)
    os.kill(second, signal.SIGKILL)
    assert run.daemon.wait(60) == 1
    wait_until(lambda: _gone(first), 10, what="the other worker process stopped")
    assert re.search(r"CRITICAL worker process p1 \(pid \d+\) exited with status -9", run.log("master")), \
        run.log("master")[-2000:]
    assert not run.pid_file.exists()


def test_worker_processes_stop_when_the_master_is_killed(daemon_run, db_engine):  # noqa: F811
    run = daemon_run(only_queues=[PUSH], cfg=_cfg(db_engine))
    run.start()
    pids = _workers_pids(run)
    os.kill(run.daemon.pid, signal.SIGKILL)
    run.daemon.wait(10)
    wait_until(lambda: all(_gone(pid) for pid in pids), 60, what="worker processes stopped after the master died")
    for index in (0, 1):
        assert "the master process is gone" in run.process_log("master", index)


# ------------------------------------------------------------------------------------------ uWSGI
UWSGI = shutil.which("uwsgi", path=os.path.dirname(sys.executable))
UWSGI_INI = REPO / "templates" / "panda" / "panda_harvester-uwsgi.ini.rpmnew.template"


@pytest.mark.skipif(UWSGI is None, reason="uWSGI is not installed in this environment (pip install uWSGI)")
def test_uwsgi_ini_runs_the_agents_in_every_worker(daemon_run, db_engine):  # noqa: F811
    """The original's way: ``uwsgi --ini panda_harvester-uwsgi.ini`` (2 processes) does the work
    once, in both workers, and stops on ``q`` written to its master fifo."""
    run = daemon_run(only_queues=[PUSH], cfg=db_engine.cfg)
    panda_ids = run.emulator.add_task(PUSH, 12)
    fifo = run.home / "uwsgi.fifo"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = dict(os.environ, PANDA_HOME=str(run.home), SITE_PACKAGES_PATH=str(REPO), VIRTUAL_ENV=sys.prefix,
               userName=pwd.getpwuid(os.getuid()).pw_name, groupName=grp.getgrgid(os.getgid()).gr_name,
               uwsgiSocket=f"127.0.0.1:{port}", PIDFILE=str(run.pid_file), UWSGI_FIFO=str(fifo),
               PYTHONPATH=os.pathsep.join([str(TESTS_DIR), str(REPO)]))
    run.n_starts += 1
    with open(run.home / "logs" / f"daemon.{run.n_starts}.out", "wb") as out:
        run.daemon = subprocess.Popen([UWSGI, "--ini", str(UWSGI_INI)], env=env, stdout=out,
                                      stderr=subprocess.STDOUT, start_new_session=True, cwd=str(run.home))
    run.wait_until(lambda: all("started Sweeper" in run.process_log("master", i) for i in (0, 1)), 60,
                   "both uWSGI workers running their agents")
    workers = psutil.Process(run.daemon.pid).children()
    assert len(workers) == 2
    run.wait_until(lambda: all(j["status"] == "finished" for j in run.jobs(PUSH)), 60, "all push jobs finished")
    jobs = run.emulator.jobs(site=PUSH)
    assert sorted(j["panda_id"] for j in jobs) == sorted(panda_ids)
    assert {j["n_sent"] for j in jobs} == {1}
    assert run.emulator.state()["heartbeats"][run.harvester_id]["n_heartbeats"] == 1
    fifo.write_text("q")
    assert run.daemon.wait(60) == 0
    assert all(_gone(w.pid) for w in workers)
    for index in (0, 1):
        assert "uWSGI worker exiting: stopping the agents" in run.process_log("master", index)
