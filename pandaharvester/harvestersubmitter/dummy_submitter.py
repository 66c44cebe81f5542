"""Dummy submitter: each worker is a real local process running the dummy pilot.

``submit_workers`` starts ``harvestertest/dummy_pilot.py`` detached (own session and process
group) in the worker's access point; batchID is the pilot's PID. The pilot identity (PID,
process group, process start time) is recorded in ``dummy_pilot_process.json`` in the access
point and in workAttributes, so the monitor and the sweeper can tell the pilot from a process
that reused its PID. When ``DummySweeper`` kills a pilot it first leaves ``dummy_pilot_killed.json``
(as a batch system records that a job was removed), so ``DummyMonitor`` reports it cancelled.
The helpers here are shared with ``DummyMonitor`` and ``DummySweeper``.

Queue-config attributes: ``sleepTime`` (seconds the pilot runs, alias ``workerRunTime``),
``heartbeatInterval``, ``outputFileSize`` (bytes per output file), ``failureRate`` (0..1,
deterministic per workerID), ``failWorkerIDs`` (list), ``failureExitCode``, ``instantMode``
(no process: the pilot's work is done inside ``submit_workers`` and the worker is finished at
once; only the pilot's own files are written, no config file or process record; for
benchmarks), ``uploadLogs`` (False stores file:// URLs for stdout/stderr instead of scheduling
their upload), ``pilotModule`` (module of the pilot script), ``corruptFiles`` (file-name keys
of the reports the pilot writes corrupt, e.g. ``["eventStatusDumpJsonFile"]``: a fault knob).
"""

from __future__ import annotations

import importlib
import importlib.util
import itertools
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any

import psutil

from pandaharvester.harvestercore import core_utils, log_utils
from pandaharvester.harvestercore.plugin_base import PluginBase

_logger = log_utils.setup_logger("dummy_submitter")

PROCESS_FILE = "dummy_pilot_process.json"
KILLED_FILE = "dummy_pilot_killed.json"  # the "batch system's" record that Harvester removed the job
STATUS_FILE = "dummy_pilot_status.json"
CONFIG_FILE = "dummy_pilot_conf.json"
STDOUT_FILE = "dummy_pilot.stdout"
STDERR_FILE = "dummy_pilot.stderr"
DEFAULT_PILOT_MODULE = "pandaharvester.harvestertest.dummy_pilot"

# pilots started by this process, kept so that finished ones are reaped (no zombies)
_children: dict[int, subprocess.Popen] = {}
_children_lock = threading.Lock()
_counter = itertools.count(1)


# ---------------------------------------------------------------------------- process helpers
def reap_children() -> None:
    """Collect the exit status of pilots started here that have ended."""
    with _children_lock:
        for pid, proc in list(_children.items()):
            if proc.poll() is not None:
                del _children[pid]


def read_json(path: str) -> Any:
    """Parsed JSON of ``path``; None if missing. Raises ValueError if it does not parse."""
    try:
        with open(path) as stream:
            text = stream.read()
    except FileNotFoundError:
        return None
    return json.loads(text)


def write_json(path: str, data: Any) -> None:
    """Atomic JSON write (temporary file + ``os.replace``)."""
    tmp = f"{path}.tmp.{os.getpid()}.{threading.get_ident()}"
    text = json.dumps(data)  # one write: json.dump writes every fragment separately
    with open(tmp, "w") as stream:
        stream.write(text)
    os.replace(tmp, path)


def read_process_record(access_point: str) -> dict | None:
    """The pilot identity written at submission, or None. Raises ValueError if corrupt."""
    return read_json(os.path.join(access_point, PROCESS_FILE))


def process_create_time(pid: int) -> float | None:
    """Start time (epoch) of process ``pid``, None if it does not exist."""
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, ProcessLookupError):
        return None


def pilot_is_alive(record: dict | None) -> bool:
    """True while the recorded pilot runs (same PID *and* start time, not a zombie)."""
    if not record or record.get("instant") or not record.get("pid"):
        return False
    reap_children()
    pid = int(record["pid"])
    try:
        proc = psutil.Process(pid)
        if record.get("createTime") is not None and abs(proc.create_time() - float(record["createTime"])) > 1.0:
            return False  # the PID now belongs to another process
        return proc.status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def terminate_pilot(record: dict | None, grace_period: float = 3.0) -> tuple[bool, str]:
    """SIGTERM then (after ``grace_period`` s) SIGKILL the pilot's process group. Idempotent."""
    return terminate_pilots([record], grace_period)[0]


def _signal_pilot(record: dict, sig: signal.Signals) -> str | None:
    """Send ``sig`` to the pilot's process group; an error message, or None (sent, or already gone)."""
    pid = int(record["pid"])
    pgid = int(record.get("pgid") or pid)
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass
    except PermissionError as exc:
        return f"cannot signal process group {pgid} of pilot PID={pid}: {exc}"
    return None


def terminate_pilots(records: list[dict | None], grace_period: float = 3.0) -> list[tuple[bool, str]]:
    """Bulk kill, as a batch system's: SIGTERM every live pilot at once, wait up to ``grace_period`` s
    for all of them, then SIGKILL the survivors. One ``(ok, diag)`` per record, in order."""
    results: list[tuple[bool, str] | None] = [None] * len(records)
    live: dict[int, dict] = {}
    for index, record in enumerate(records):
        if pilot_is_alive(record):
            live[index] = record  # type: ignore[assignment]
        else:
            results[index] = (True, "already gone")
    for sig, wait in ((signal.SIGTERM, grace_period), (signal.SIGKILL, 5.0)):
        for index in list(live):
            error = _signal_pilot(live[index], sig)
            if error is not None:
                results[index] = (False, error)
                del live[index]
        deadline = time.monotonic() + wait
        while live:
            for index in list(live):
                if not pilot_is_alive(live[index]):
                    results[index] = (True, f"pilot PID={live.pop(index)['pid']} ended after {sig.name}")
            if not live or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
    for index, record in live.items():
        results[index] = (False, f"pilot PID={record['pid']} still alive after SIGKILL")
    return [result or (False, "pilot state unknown") for result in results]


def pilot_script_path(module_name: str = DEFAULT_PILOT_MODULE) -> str:
    """File path of the pilot script (it is run by path, so it needs no package on sys.path)."""
    spec = importlib.util.find_spec(module_name)
    if spec is None or not spec.origin:
        raise FileNotFoundError(f"pilot module {module_name!r} not found; check the submitter's pilotModule")
    return spec.origin


# ---------------------------------------------------------------------------- plugin
class DummySubmitter(PluginBase):
    """Starts one dummy pilot process per worker (or fakes it at once in instant mode)."""

    def __init__(self, **kwarg: Any) -> None:
        self.sleepTime = 3.0
        self.heartbeatInterval = 1.0
        self.outputFileSize = 1024
        self.failureRate = 0.0
        self.failWorkerIDs: list[int] = []
        self.failureExitCode = 65
        self.instantMode = False
        self.uploadLogs = True
        self.requestEvents = False
        self.pilotModule = DEFAULT_PILOT_MODULE
        self.corruptFiles: list[str] = []
        PluginBase.__init__(self, **kwarg)
        if "workerRunTime" in kwarg and "sleepTime" not in kwarg:
            self.sleepTime = kwarg["workerRunTime"]

    def should_fail(self, workspec: Any) -> bool:
        """Deterministic failure knob: listed workerIDs, or a hash of workerID below failureRate."""
        worker_id = workspec.workerID
        if worker_id is not None and int(worker_id) in {int(i) for i in self.failWorkerIDs or []}:
            return True
        rate = float(self.failureRate or 0)
        if rate <= 0:
            return False
        key = int(worker_id) if worker_id is not None else next(_counter)
        return ((key * 2654435761) % 2**32) / 2**32 < rate

    def _pilot_conf(self, workspec: Any, fail: bool, file_names: dict[str, str] | None = None) -> dict[str, Any]:
        if file_names is None:
            from pandaharvester.harvestermessenger.base_messenger import payload_file_names

            file_names = payload_file_names()
        return {"sleepTime": float(self.sleepTime), "heartbeatInterval": float(self.heartbeatInterval),
                "outputFileSize": int(self.outputFileSize), "fail": fail, "failureExitCode": int(self.failureExitCode),
                "workerID": workspec.workerID, "mapType": workspec.mapType, "requestEvents": bool(self.requestEvents),
                "instant": bool(self.instantMode), "fileNames": file_names,
                "corruptFiles": list(self.corruptFiles or [])}

    def submit_workers(self, workspec_list: list) -> list[tuple[bool, str]]:
        """Start a pilot per worker; sets batchID (the PID), submissionHost and log files."""
        from pandaharvester.harvestermessenger.base_messenger import payload_file_names

        tmp_log = self.make_logger(_logger, method_name="submit_workers")
        tmp_log.debug(f"start nWorkers={len(workspec_list)} instantMode={self.instantMode}")
        reap_children()
        ret_list = []
        file_names = payload_file_names()  # the cfg's names, once per batch
        host = socket.gethostname()
        entries = []  # the workers with jobs, logged in one line rather than one line per job
        debug = tmp_log.isEnabledFor(logging.DEBUG)
        for workspec in workspec_list:
            jobspec_list = workspec.get_jobspec_list() or []
            if jobspec_list and debug:
                entries.append(f"workerID={workspec.workerID} nCore={workspec.nCore} "
                               f"minRamCount={workspec.minRamCount} "
                               + log_utils.ids_text("PandaID", (job.PandaID for job in jobspec_list)))
            try:
                ret_list.append(self._submit_one(workspec, file_names, host))
            except Exception as exc:
                core_utils.dump_error_message(tmp_log)
                ret_list.append((False, f"dummy pilot could not be started: {type(exc).__name__}: {exc}"))
        if entries:
            tmp_log.debug(f"workers with jobs: {', '.join(entries)}")
        tmp_log.debug("done")
        return ret_list

    def _submit_one(self, workspec: Any, file_names: dict[str, str] | None = None, host: str | None = None
                    ) -> tuple[bool, str]:
        access_point = workspec.get_access_point()
        if not access_point:
            return False, "worker has no accessPoint: set messenger.accessPoint in the queue config"
        if not os.path.isdir(access_point):  # the messenger made it: one stat rather than makedirs' three calls
            os.makedirs(access_point, exist_ok=True)
        fail = self.should_fail(workspec)
        conf = self._pilot_conf(workspec, fail, file_names)
        workspec.submissionHost = host or socket.gethostname()
        workspec.nodeID = workspec.submissionHost
        if self.instantMode:
            # no config file: the pilot gets its config in memory, nobody else reads it
            return self._run_instant(workspec, access_point, conf)
        tmp_log = self.make_logger(_logger, f"workerID={workspec.workerID}", method_name="submit_workers")
        write_json(os.path.join(access_point, CONFIG_FILE), conf)
        stdout_path = os.path.join(access_point, STDOUT_FILE)
        stderr_path = os.path.join(access_point, STDERR_FILE)
        command = [sys.executable, pilot_script_path(self.pilotModule), "--access-point", access_point,
                   "--config", os.path.join(access_point, CONFIG_FILE)]
        with open(stdout_path, "ab") as out, open(stderr_path, "ab") as err:
            proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=access_point,
                                    start_new_session=True, close_fds=True)
        with _children_lock:
            _children[proc.pid] = proc
        record = {"pid": proc.pid, "pgid": proc.pid, "createTime": process_create_time(proc.pid),
                  "submitTime": time.time(), "host": workspec.submissionHost, "instant": False,
                  "stdout": stdout_path, "stderr": stderr_path, "fail": fail}
        write_json(os.path.join(access_point, PROCESS_FILE), record)
        workspec.batchID = str(proc.pid)
        workspec.set_work_attributes({"dummyPilotPid": proc.pid, "dummyPilotCreateTime": record["createTime"]})
        self._set_log_files(workspec, stdout_path, stderr_path, tmp_log)
        tmp_log.debug(f"started pilot PID={proc.pid} sleepTime={self.sleepTime} fail={fail}")
        return True, ""

    def _run_instant(self, workspec: Any, access_point: str, conf: dict[str, Any]) -> tuple[bool, str]:
        """The pilot's whole run, here and now. No process record is written: there is no process to
        watch or kill, and the pilot's final status file (always written, the monitor reads it) says
        how the worker ended; without a record the sweeper finds the pilot "already gone"."""
        pilot_module = importlib.import_module(self.pilotModule)
        pilot = pilot_module.DummyPilot(access_point, conf, log=lambda _text: None)
        pilot.run()
        workspec.batchID = f"instant-{workspec.workerID if workspec.workerID is not None else next(_counter)}"
        return True, ""

    def _set_log_files(self, workspec: Any, stdout_path: str, stderr_path: str, tmp_log: Any) -> None:
        if self.uploadLogs:
            try:
                workspec.set_log_file("stdout", stdout_path)
                workspec.set_log_file("stderr", stderr_path)
                return
            except Exception as exc:  # no cfg for the cache URL: fall back to local URLs
                tmp_log.debug(f"log upload not available ({exc}); using file:// URLs")
        workspec.set_work_attributes({"stdOut": f"file://{stdout_path}", "stdErr": f"file://{stderr_path}"})
