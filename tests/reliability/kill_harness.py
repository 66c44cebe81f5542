"""kill -9 harness: the real daemon crashed at seeded random moments, restarted each time.

:class:`KillHarness` drives one :class:`e2e_helpers.DaemonRun` (the bundled PanDA emulator, the
daemon as a real process on SQLite or MariaDB, one or several processes) through ``n_kills``
crashes: it starts the daemon, waits a seeded random time, sends SIGKILL to the daemon process
only (as a crash does: the worker processes it started, and in multi-process mode its children,
are left to themselves), and starts it again. Then it lets the last start finish every job,
stops the daemon cleanly and counts, from the EMULATOR's state (:meth:`KillHarness.verdict`):

* ``final_once``: jobs final in PanDA with exactly one applied final report;
* ``lost``: jobs not final (or not known) when the run ends;
* ``duplicated``: jobs handed out more than once (the emulator's dispatch history) or in the job
  list of two workers PanDA was told about;
* ``conflicting``: jobs with final reports of different states, or a final state other than the
  one reported;
* ``orphans``: processes of the instance (dummy pilots, daemon processes) still alive after the
  clean stop, plus pilots that were started but whose worker Harvester lost (no ``work_table`` row
  with that batchID: neither adopted nor cleaned);
* ``locked``: rows of any table with a lock column (``lockedBy``, ``*Lock``) still set after the
  clean stop (but for :data:`INTERVAL_MARKERS`).

The workers are :class:`RandomTimeSubmitter` pilots: real processes that run 1–3 s each (the time
drawn per workerID from the seed). This module is importable by the daemon (``tests/`` is on its
``PYTHONPATH``): the queue config names it as ``reliability.kill_harness``.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

PUSH = "DEMO_PUSH"
FINAL = ("finished", "failed", "cancelled", "closed")
PLUGIN_MODULE = "reliability.kill_harness"
# lock_table rows that are not a process's lock but a once-per-interval marker shared by every
# process (owner "qconf_universal"): "the queue config was reloaded less than updateInterval ago"
INTERVAL_MARKERS = ("qconf_reload",)


# ---------------------------------------------------------------------------- the worker plugin
def _make_random_time_submitter() -> type:
    from pandaharvester.harvestersubmitter.dummy_submitter import DummySubmitter

    class RandomTimeSubmitter(DummySubmitter):
        """DummySubmitter whose pilots run between ``minTime`` and ``maxTime`` seconds, drawn per
        workerID from ``seed`` (the same worker always gets the same time)."""

        def __init__(self, **kwarg: Any) -> None:
            self.minTime = 1.0
            self.maxTime = 3.0
            self.seed = 0
            DummySubmitter.__init__(self, **kwarg)

        def _pilot_conf(self, workspec: Any, fail: bool, file_names: dict[str, str] | None = None) -> dict[str, Any]:
            conf = DummySubmitter._pilot_conf(self, workspec, fail, file_names)
            rng = random.Random(f"{self.seed}-{workspec.workerID}")
            conf["sleepTime"] = rng.uniform(float(self.minTime), float(self.maxTime))
            return conf

    return RandomTimeSubmitter


def __getattr__(name: str) -> Any:  # lazy, so that importing this module needs no cfg
    if name == "RandomTimeSubmitter":
        return _make_random_time_submitter()
    raise AttributeError(name)


def queue_changes(seed: int, min_time: float = 1.0, max_time: float = 3.0, limit: int = 20) -> dict[str, dict]:
    """``DaemonRun(queue_changes=...)`` for the push queue: random-time pilots, ``limit`` queued."""
    return {PUSH: {"submitter": {"name": "RandomTimeSubmitter", "module": PLUGIN_MODULE, "minTime": min_time,
                                 "maxTime": max_time, "seed": seed},
                   "nQueueLimitJob": limit, "nQueueLimitWorker": limit, "maxWorkers": 2 * limit}}


def cfg_changes(lock_interval: float, db: dict | None = None, n_processes: int = 1) -> dict[str, dict]:
    """``DaemonRun(cfg=...)``: every agent's ``lockInterval`` (and the submitter's queue lock) set to
    ``lock_interval``, the ``[db]`` overrides, ``[master] nProcesses``."""
    lock = {"lockInterval": lock_interval}
    cfg: dict[str, dict] = {section: dict(lock) for section in
                            ("monitor", "propagator", "preparator", "stager", "eventfeeder")}
    cfg["submitter"] = {"lockInterval": lock_interval, "queueLockInterval": lock_interval}
    if db:
        cfg["db"] = dict(db)
    if n_processes > 1:
        cfg["master"] = {"nProcesses": n_processes}
    return cfg


# ---------------------------------------------------------------------------- the run
@dataclass
class Verdict:
    """What the run left, counted from the emulator (and the DB for locks and lost workers)."""

    kills: int
    jobs: int
    final_once: int
    lost: int
    duplicated: int
    conflicting: int
    orphans: int
    locked: int
    wall: float
    statuses: dict[str, int] = field(default_factory=dict)
    repeats: int = 0  # identical final reports sent again (harmless: PanDA ignores them)
    interrupted: int = 0  # workers a killed submitter left pending, killed and swept by the sweeper
    details: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        return (f"reliability: kills={self.kills} jobs={self.jobs} final_once={self.final_once} lost={self.lost} "
                f"duplicated={self.duplicated} conflicting={self.conflicting} orphans={self.orphans}")


class KillHarness:
    """Crash ``run``'s daemon ``n_kills`` times (see the module docstring)."""

    def __init__(self, run: Any, *, n_jobs: int, n_kills: int, seed: int, rows: Callable[[str], list[dict]],
                 min_up: float = 0.5, max_up: float = 7.0, drain_timeout: float = 240.0, n_processes: int = 1) -> None:
        self.run = run
        self.n_processes = n_processes
        self.n_jobs = n_jobs
        self.n_kills = n_kills
        self.rng = random.Random(seed)
        self.rows = rows  # SQL (literals only) -> rows of the instance's DB
        self.min_up, self.max_up = min_up, max_up
        self.drain_timeout = drain_timeout
        self.panda_ids: list[int] = []
        self.kills = 0
        self.kill_log: list[tuple[float, int]] = []  # (seconds up, final jobs at the kill)

    def n_final(self) -> int:
        return sum(1 for j in self.run.emulator.jobs(site=PUSH) if j["status"] in FINAL)

    def crash_loop(self) -> None:
        """Start, wait a random time, SIGKILL the daemon only; ``n_kills`` times."""
        for _ in range(self.n_kills):
            self.run.start()
            up = self.rng.uniform(self.min_up, self.max_up)
            time.sleep(up)
            proc = self.run.daemon
            if proc.poll() is not None:
                raise AssertionError(f"the daemon exited by itself ({proc.returncode}) after a restart:\n"
                                     f"{self.run.log_tail()}")
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
            self.kills += 1
            self.kill_log.append((round(up, 2), self.n_final()))

    def drain(self) -> float:
        """Start once more and wait until every job is final in PanDA and no worker is active;
        returns the seconds it took."""
        started = time.monotonic()
        n_up = self._n_up()
        self.run.start()
        # up first (agents started): a stop sent while it starts would not be a clean stop
        self.run.wait_until(lambda: self._n_up() >= n_up + self.n_processes, 60, "the daemon up", interval=0.5)
        self.run.wait_until(lambda: self.n_final() >= self.n_jobs, self.drain_timeout,
                            f"all {self.n_jobs} jobs final in PanDA", interval=1.0)
        self.run.wait_until(self._workers_done, 60, "every worker done in Harvester's DB", interval=1.0)
        return time.monotonic() - started

    def _n_up(self) -> int:
        """How many times a (worker) process of the daemon had started all its agents."""
        return self.run.count_log("master", r"INFO started Sweeper ")

    def _workers_done(self) -> bool:
        active = self.rows("SELECT COUNT(*) AS n FROM work_table WHERE status IN "
                           "('pending','submitted','running','idle','ready')")
        return bool(active) and int(active[0]["n"]) == 0

    def execute(self) -> Verdict:
        started = time.monotonic()
        self.panda_ids = self.run.emulator.add_task(PUSH, self.n_jobs)
        self.crash_loop()
        self.drain()
        code = self.run.stop(timeout=60)
        assert code == 0, f"the clean stop exited with {code}:\n{self.run.log_tail()}"
        time.sleep(1.0)
        return self.verdict(time.monotonic() - started)

    # ------------------------------------------------------------------ counting
    def verdict(self, wall: float) -> Verdict:
        emulator = self.run.emulator
        jobs = {j["panda_id"]: j for j in emulator.jobs(site=PUSH)}
        history = emulator.history(panda_ids=self.panda_ids)
        dispatches: dict[int, list[dict]] = {}
        for d in history["dispatches"]:
            dispatches.setdefault(d["panda_id"], []).append(d)
        reports: dict[int, list[dict]] = {}
        for r in history["final_reports"]:
            reports.setdefault(r["panda_id"], []).append(r)
        owners: dict[int, set] = {}
        for worker in emulator.workers(harvester_id=self.run.harvester_id):
            for panda_id in worker["pandaid_list"] or []:
                owners.setdefault(int(panda_id), set()).add(worker["worker_id"])

        lost = [p for p in self.panda_ids if p not in jobs or jobs[p]["status"] not in FINAL]
        final_once = [p for p in self.panda_ids if p not in lost
                      and sum(r["applied"] for r in reports.get(p, [])) == 1]
        duplicated = sorted({p for p in self.panda_ids if len(dispatches.get(p, [])) > 1 or len(owners.get(p, ())) > 1})
        conflicting = []
        repeats = 0
        for p in self.panda_ids:
            states = {r["job_status"] for r in reports.get(p, [])}
            repeats += max(0, len(reports.get(p, [])) - 1)
            applied = [r for r in reports.get(p, []) if r["applied"]]
            final = jobs.get(p, {}).get("status")
            if len(states) > 1 or (applied and final in ("finished", "failed") and final != applied[0]["job_status"]):
                conflicting.append(p)
        statuses: dict[str, int] = {}
        for j in jobs.values():
            statuses[j["status"]] = statuses.get(j["status"], 0) + 1
        live = live_processes(self.run.home)
        untracked = self.untracked_pilots()
        locked = self.locked_rows()
        return Verdict(
            kills=self.kills, jobs=len(self.panda_ids), final_once=len(final_once), lost=len(lost),
            duplicated=len(duplicated), conflicting=len(conflicting), orphans=len(live) + len(untracked),
            locked=sum(len(v) for v in locked.values()), wall=wall, statuses=statuses, repeats=repeats,
            interrupted=sum(int(n) for n in re.findall(r"deleted (\d+) interrupted submissions", self.run.log("sweeper"))),
            details={"lost": lost[:20], "duplicated": duplicated[:20], "conflicting": conflicting[:20],
                     "not_once": [p for p in self.panda_ids if p not in final_once][:20],
                     "live": live, "untracked": untracked[:20], "locked": locked, "kill_log": self.kill_log})

    def untracked_pilots(self) -> list[dict]:
        """Pilots started (a process record in their access point) whose worker Harvester does not
        know with that batchID: nobody watches them or cleans them up."""
        known = {(int(r["workerID"]), str(r["batchID"])) for r in
                 self.rows("SELECT workerID, batchID FROM work_table")}
        out = []
        for record_file in sorted((self.run.home / "workers").glob("*/dummy_pilot_process.json")):
            try:
                record = json.loads(record_file.read_text())
                worker_id = int(record_file.parent.name)
            except (ValueError, OSError):
                continue
            if (worker_id, str(record.get("pid"))) not in known:
                out.append({"workerID": worker_id, "pid": record.get("pid")})
        return out

    def locked_rows(self) -> dict[str, list]:
        """``{table.column: [row keys]}`` of every lock column still set, in every table."""
        from pandaharvester.harvestercore.db import schema

        found: dict[str, list] = {}
        for table in schema.TABLES:
            columns = [a.split(":")[0] for a in schema.spec_class(table).attributesWithTypes]
            for column in columns:
                if column == "lockedBy" or column.endswith("Lock"):
                    rows = [r for r in self.rows(f"SELECT * FROM {table} WHERE {column} IS NOT NULL")
                            if not (table == "lock_table" and r.get("processName") in INTERVAL_MARKERS)]
                    if rows:
                        found[f"{table}.{column}"] = [{k: v for k, v in r.items() if k in
                                                       ("PandaID", "workerID", "queueName", "processName", "lockedBy",
                                                        column)} for r in rows[:5]] + [f"{len(rows)} rows"]
        return found


def live_processes(home: Path) -> list[dict]:
    """Processes whose working directory is in ``home`` (the emulator's is not): the instance's
    daemon processes (cwd ``home``) and dummy pilots (cwd their access point) still running."""
    import psutil

    home_text = str(Path(home).resolve())
    out = []
    for proc in psutil.process_iter(["pid", "cmdline", "cwd", "status"]):
        try:
            info = proc.info
            if info["status"] == psutil.STATUS_ZOMBIE or proc.pid == os.getpid():
                continue
            cwd = info.get("cwd") or ""
            cmdline = " ".join(info.get("cmdline") or [])
            if cwd == home_text or cwd.startswith(home_text + os.sep):
                out.append({"pid": proc.pid, "cmdline": cmdline[:200]})
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return out
