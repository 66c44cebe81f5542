"""End-to-end helpers: the PanDA emulator and the Harvester daemon as real processes.

``DaemonRun`` makes an instance home (``harvestertest.instance``), writes the cfg and the queue
config the demo uses (``demo.cfg_overrides`` / ``demo.queue_config``, with per-test changes),
starts the emulator and ``python -m pandaharvester.harvesterbody.master --foreground`` in its own
process group, and stops everything (daemon, leftover dummy pilots, emulator) on ``close()``.
The ``daemon_run`` fixture is a factory that guarantees ``close()``.

This module is also importable by the daemon (``PYTHONPATH`` includes ``tests/``), so the test
plugins below can be named in a queue config (``"module": "e2e_helpers"``).
"""

from __future__ import annotations

import copy
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

TESTS_DIR = Path(__file__).resolve().parent
REPO = TESTS_DIR.parent


# ---------------------------------------------------------------------------- test plugins
# (imported inside the daemon: keep the imports of pandaharvester local to the classes)
def _dummy_monitor_cls() -> type:
    from pandaharvester.harvestermonitor.dummy_monitor import DummyMonitor

    return DummyMonitor


def _make_flaky_monitor() -> type:
    DummyMonitor = _dummy_monitor_cls()

    class FlakyMonitor(DummyMonitor):
        """``check_workers`` raises for the first ``nFailures`` calls (counted in a file), then is DummyMonitor."""

        def __init__(self, **kwarg: Any) -> None:
            self.nFailures = 3
            self.counterFile = ""
            DummyMonitor.__init__(self, **kwarg)

        def check_workers(self, workspec_list: list) -> Any:
            path = Path(self.counterFile)
            n = int(path.read_text()) if path.exists() else 0
            path.write_text(str(n + 1))
            if n < int(self.nFailures):
                raise RuntimeError(f"FlakyMonitor deliberate failure {n + 1}/{self.nFailures}")
            return DummyMonitor.check_workers(self, workspec_list)

    return FlakyMonitor


def _make_queued_monitor() -> type:
    DummyMonitor = _dummy_monitor_cls()
    from pandaharvester.harvestercore.work_spec import WorkSpec

    class QueuedMonitor(DummyMonitor):
        """A batch system that never starts the pilots: a live pilot stays ``submitted`` (queued)."""

        def check_workers(self, workspec_list: list) -> Any:
            ok, replies = DummyMonitor.check_workers(self, workspec_list)
            return ok, [((WorkSpec.ST_submitted if s == WorkSpec.ST_running else s), d) for s, d in replies]

    return QueuedMonitor


def __getattr__(name: str) -> Any:  # module-level lazy classes, so importing this file needs no cfg
    if name == "FlakyMonitor":
        return _make_flaky_monitor()
    if name == "QueuedMonitor":
        return _make_queued_monitor()
    raise AttributeError(name)


# ---------------------------------------------------------------------------- the run
def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.3, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns a truthy value (returned); AssertionError on timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last value {last!r})")


class DaemonRun:
    """One Harvester daemon + PanDA emulator under ``home`` (see the module docstring)."""

    def __init__(self, home: Path, *, worker_seconds: float = 1.0, queues: dict | None = None,
                 queue_changes: dict[str, dict] | None = None, cfg: dict[str, dict] | None = None,
                 only_queues: list[str] | None = None,
                 queue_maker: Callable[[Path, float], dict] | None = None,
                 emulator_kwargs: dict[str, Any] | None = None, harvester_id: str | None = None) -> None:
        from pandaharvester.harvestertest import demo

        self.demo = demo
        self.harvester_id = harvester_id or demo.HARVESTER_ID
        self.home = Path(home).resolve()
        (self.home / "logs").mkdir(parents=True, exist_ok=True)
        self.worker_seconds = worker_seconds
        make_queues = queue_maker or demo.queue_config  # (home, worker_seconds) -> queue config dict
        self.queues = queues if queues is not None else make_queues(self.home, worker_seconds)
        if only_queues is not None:
            self.queues = {k: v for k, v in self.queues.items() if k in only_queues}
        for name, changes in (queue_changes or {}).items():
            for key, value in changes.items():
                if isinstance(value, dict) and isinstance(self.queues[name].get(key), dict):
                    self.queues[name][key] = dict(self.queues[name][key], **value)
                else:
                    self.queues[name][key] = value
        self.cfg_changes = cfg or {}
        self.emulator_kwargs = emulator_kwargs or {}  # more start_emulator() keywords (sent_timeout, faults)
        self.pid_file = self.home / "panda_harvester.pid"
        self.emulator: Any = None
        self.owns_emulator = True  # False: another run's emulator (several instances on one PanDA)
        self.daemon: subprocess.Popen | None = None
        self.n_starts = 0

    # ------------------------------------------------------------------ set-up
    def start_emulator(self) -> Any:
        from pandaharvester.harvestertest.panda_emulator.launcher import start_emulator

        self.emulator = start_emulator(self.home / "emulator", extra_args=["--holding-delay", "0.3"],
                                       **self.emulator_kwargs)
        self.write_config()
        return self.emulator

    def use_emulator(self, emulator: Any) -> None:
        """Serve the PanDA of another run (several instances on one server); it is not stopped here."""
        self.emulator, self.owns_emulator = emulator, False
        self.write_config()

    def write_config(self) -> None:
        """The cfg (pointing at the emulator) and the queue config of the instance."""
        from pandaharvester.harvestertest import instance

        overrides = copy.deepcopy(self.demo.cfg_overrides(self.emulator.base_url))
        overrides["master"]["harvester_id"] = self.harvester_id
        for section, values in self.cfg_changes.items():
            overrides.setdefault(section, {}).update(values)
        instance.write_cfg(self.home, overrides, harvester_id=self.harvester_id)
        instance.write_queue_config(self.home, self.queues)

    def start(self) -> subprocess.Popen:
        """Start the daemon (the emulator first if needed)."""
        if self.emulator is None:
            self.start_emulator()
        env = dict(os.environ, PANDA_HOME=str(self.home), PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(TESTS_DIR), str(REPO), env.get("PYTHONPATH")) if p)
        command = [sys.executable, "-m", "pandaharvester.harvesterbody.master", "--foreground",
                   "--pid", str(self.pid_file)]
        self.n_starts += 1
        with open(self.home / "logs" / f"daemon.{self.n_starts}.out", "wb") as out:
            self.daemon = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT,
                                           start_new_session=True, cwd=str(self.home))
        return self.daemon

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM the daemon and wait; SIGKILL its process group if it does not exit. Returns its exit code."""
        proc = self.daemon
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._kill_group(proc)
        return proc.returncode

    def restart(self) -> subprocess.Popen:
        self.stop()
        return self.start()

    @staticmethod
    def _kill_group(proc: subprocess.Popen) -> None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            pass

    def kill_pilots(self) -> None:
        """Kill dummy pilots still running (they live in their own sessions)."""
        from pandaharvester.harvestersubmitter.dummy_submitter import terminate_pilot

        for record_file in (self.home / "workers").glob("*/dummy_pilot_process.json"):
            try:
                terminate_pilot(json.loads(record_file.read_text()), 0.5)
            except (ValueError, OSError):
                pass

    def close(self) -> None:
        try:
            if self.daemon is not None and self.daemon.poll() is None:
                self.stop(timeout=15)
        finally:
            try:
                self.kill_pilots()
            finally:
                if self.emulator is not None and self.owns_emulator:
                    self.emulator.stop()

    # ------------------------------------------------------------------ inspection
    def alive(self) -> bool:
        return self.daemon is not None and self.daemon.poll() is None

    def assert_alive(self) -> None:
        assert self.alive(), f"daemon exited with {self.daemon.returncode}:\n{self.log_tail('daemon')}"

    def wait_until(self, predicate: Callable[[], Any], timeout: float, what: str = "condition",
                   interval: float = 0.3) -> Any:
        def checked() -> Any:
            self.assert_alive()
            return predicate()

        try:
            return wait_until(checked, timeout, interval, what)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- emulator state: {self.emulator.state()}") from None

    def wait_panda_sees_killed(self, site: str, timeout: float = 20) -> None:
        """PanDA is told: the workers cancelled, their jobs ended (failed, as Harvester reports killed jobs)."""
        self.wait_until(lambda: all(w["status"] == "cancelled"
                                    for w in self.emulator.workers(harvester_id=self.harvester_id)),
                        timeout, "PanDA sees the workers cancelled")
        self.wait_until(lambda: all(j["status"] in ("failed", "cancelled") for j in self.jobs(site)), timeout,
                        "jobs of killed workers final in PanDA")

    def log(self, agent: str) -> str:
        """Text of ``logs/panda-<agent>.log`` and, with several processes (``[master] nProcesses``),
        of each ``logs/panda-<agent>-p<K>.log`` ('' if none)."""
        logs = self.home / "logs"
        paths = [logs / f"panda-{agent}.log", *sorted(logs.glob(f"panda-{agent}-p[0-9]*.log"))]
        return "".join(path.read_text(errors="replace") for path in paths if path.exists())

    def process_log(self, agent: str, index: int) -> str:
        """Text of worker process ``index``'s ``logs/panda-<agent>-p<index>.log`` ('' if missing)."""
        path = self.home / "logs" / f"panda-{agent}-p{index}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def log_tail(self, name: str = "daemon", n: int = 3000) -> str:
        if name == "daemon":
            path = self.home / "logs" / f"daemon.{self.n_starts}.out"
            return path.read_text(errors="replace")[-n:] if path.exists() else ""
        return self.log(name)[-n:]

    def count_log(self, agent: str, pattern: str) -> int:
        return len(re.findall(pattern, self.log(agent)))

    def db_rows(self, sql: str, args: tuple = ()) -> list[dict]:
        """Rows of the Harvester DB (read-only connection)."""
        path = self.home / "harvester.db"
        if not path.exists():
            return []
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        try:
            con.row_factory = sqlite3.Row
            return [dict(r) for r in con.execute(sql, args).fetchall()]
        except sqlite3.OperationalError:
            return []  # tables not made yet
        finally:
            con.close()

    def workers(self, site_prefix: str | None = None) -> list[dict]:
        rows = self.db_rows("SELECT workerID, status, computingSite, resourceType, batchID, killTime "
                            "FROM work_table ORDER BY workerID")
        if site_prefix is not None:
            rows = [r for r in rows if str(r["computingSite"]).startswith(site_prefix)]
        return rows

    def jobs(self, site: str | None = None) -> list[dict]:
        return self.emulator.jobs(**({"site": site} if site else {}))


def make_daemon_run_fixture():  # pragma: no cover - used as a pytest fixture
    import pytest

    @pytest.fixture()
    def daemon_run(tmp_path: Path):
        """Factory: ``daemon_run(**DaemonRun kwargs)`` -> DaemonRun (emulator started); all closed at the end."""
        runs: list[DaemonRun] = []

        def make(**kwargs: Any) -> DaemonRun:
            run = DaemonRun(tmp_path / f"home{len(runs)}", **kwargs)
            runs.append(run)
            run.start_emulator()
            return run

        yield make
        for run in runs:
            run.close()

    return daemon_run


daemon_run = make_daemon_run_fixture()
