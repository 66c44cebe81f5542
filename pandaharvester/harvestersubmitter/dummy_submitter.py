"""Dummy submitter: each worker is a real local process running the dummy pilot.

``submit_workers`` starts ``harvestertest/dummy_pilot.py`` detached (own session and process
group) in the worker's access point; batchID is the pilot's PID. The pilot identity (PID,
process group, process start time) is recorded in ``dummy_pilot_process.json`` in the access
point and in workAttributes, so the monitor and the sweeper can tell the pilot from a process
that reused its PID. When ``DummySweeper`` kills a pilot it first leaves ``dummy_pilot_killed.json``
(as a batch system records that a job was removed), so ``DummyMonitor`` reports it cancelled.
That "batch system" is :mod:`pandaharvester.harvesterbatch.dummy`, shared with ``DummyMonitor`` and
``DummySweeper``; its names are still importable from here.

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
import itertools
import logging
import os
import socket
from typing import Any

from pandaharvester.harvesterbatch.dummy import (  # noqa: F401  (the helpers' old home: re-exported)
    CONFIG_FILE,
    DEFAULT_PILOT_MODULE,
    KILLED_FILE,
    PROCESS_FILE,
    STATUS_FILE,
    STDERR_FILE,
    STDOUT_FILE,
    pilot_is_alive,
    pilot_script_path,
    process_create_time,
    read_json,
    read_process_record,
    reap_children,
    start_pilot,
    terminate_pilot,
    terminate_pilots,
    write_json,
)
from pandaharvester.harvestercore import core_utils, log_utils
from pandaharvester.harvestercore.payload_interaction import payload_file_names
from pandaharvester.harvestercore.plugin_base import PluginBase

_logger = log_utils.setup_logger("dummy_submitter")

_counter = itertools.count(1)


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
            file_names = payload_file_names()
        return {"sleepTime": float(self.sleepTime), "heartbeatInterval": float(self.heartbeatInterval),
                "outputFileSize": int(self.outputFileSize), "fail": fail, "failureExitCode": int(self.failureExitCode),
                "workerID": workspec.workerID, "mapType": workspec.mapType, "requestEvents": bool(self.requestEvents),
                "instant": bool(self.instantMode), "fileNames": file_names,
                "corruptFiles": list(self.corruptFiles or [])}

    def submit_workers(self, workspec_list: list) -> list[tuple[bool, str]]:
        """Start a pilot per worker; sets batchID (the PID), submissionHost and log files."""
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
        record = start_pilot(access_point, os.path.join(access_point, CONFIG_FILE), self.pilotModule,
                             workspec.submissionHost, fail)
        workspec.batchID = str(record["pid"])
        workspec.set_work_attributes({"dummyPilotPid": record["pid"], "dummyPilotCreateTime": record["createTime"]})
        self._set_log_files(workspec, record["stdout"], record["stderr"], tmp_log)
        tmp_log.debug(f"started pilot PID={record['pid']} sleepTime={self.sleepTime} fail={fail}")
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
