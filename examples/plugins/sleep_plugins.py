"""Worked example from the README: a submitter and a monitor for a tiny "batch system".

The "batch system" runs each worker as a local process (``sleep``, or any command given in the
queue config); its job id is the PID. Put this file on the daemon's PYTHONPATH and use it from
the queue config::

    "submitter": {"module": "sleep_plugins", "name": "SleepSubmitter", "command": ["sleep", "2"]},
    "monitor":   {"module": "sleep_plugins", "name": "SleepMonitor"}
"""

import subprocess
import threading

import psutil

from pandaharvester.harvestercore import core_utils
from pandaharvester.harvestercore.plugin_base import PluginBase
from pandaharvester.harvestercore.work_spec import WorkSpec

_logger = core_utils.setup_logger("sleep_plugins")

# the "batch system's" job table: Popen objects by PID. Keeping them matters: Python reaps the
# children of discarded Popen objects, and their exit status would be lost to the monitor.
_processes: dict[int, subprocess.Popen] = {}
_processes_lock = threading.Lock()


class SleepSubmitter(PluginBase):
    """Starts one local process per worker."""

    def __init__(self, **kwarg):
        self.command = ["sleep", "1"]  # default; the queue config's "command" key overrides it
        PluginBase.__init__(self, **kwarg)

    def submit_workers(self, workspec_list):
        """One (success, diagnostic) per worker, in the same order; set batchID on success."""
        results = []
        for workspec in workspec_list:
            log = self.make_logger(_logger, f"workerID={workspec.workerID}", method_name="submit_workers")
            try:
                # an argument list, never a shell string built from data
                process = subprocess.Popen(list(self.command), start_new_session=True,
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            except OSError as exc:
                log.error(f"cannot start {self.command}: {exc}")
                results.append((False, f"cannot start {self.command}: {exc}"))
                continue
            with _processes_lock:
                _processes[process.pid] = process
            workspec.batchID = str(process.pid)
            log.debug(f"started batchID={workspec.batchID}")
            results.append((True, ""))
        return results


class SleepMonitor(PluginBase):
    """Reports running while the process lives, then finished (exit 0) or failed."""

    def check_workers(self, workspec_list):
        """(True, [(new status, diagnostic)]) with one entry per worker, in the same order."""
        statuses = []
        for workspec in workspec_list:
            pid = int(workspec.batchID)
            with _processes_lock:
                process = _processes.get(pid)
            if process is None:
                # started by an earlier daemon process: we can see it run, not how it ended
                if psutil.pid_exists(pid):
                    statuses.append((WorkSpec.ST_running, ""))
                else:
                    statuses.append((WorkSpec.ST_failed, f"process {pid} is gone and its exit status is unknown"))
                continue
            exit_code = process.poll()
            if exit_code is None:
                statuses.append((WorkSpec.ST_running, ""))
                continue
            with _processes_lock:
                _processes.pop(pid, None)
            workspec.nativeExitCode = exit_code
            if exit_code == 0:
                statuses.append((WorkSpec.ST_finished, ""))
            else:
                statuses.append((WorkSpec.ST_failed, f"exit code {exit_code}"))
        return True, statuses
