"""Messenger over a shared file system: the reference worker <-> Harvester protocol.

Each worker has an access point (a directory, ``workspec.get_access_point()``; for MultiJobs
workers one sub-directory per PandaID). Harvester and the worker exchange JSON files there;
names come from ``[payload_interaction]`` (see :mod:`.base_messenger`):

Harvester writes                          the worker writes
- jobSpecFile {PandaID: jobParams}        - workerAttributesFile {attr: value} (jobStatus, ...)
- xmlPoolCatalogFile (input PFC)          - jobReportFile (any JSON; becomes job metaData)
- pandaIDsFile [PandaID, ...]             - eventStatusDumpJsonFile {PandaID: [file/event dicts]}
- eventRangesFile {PandaID: [ranges]}     - jobRequestFile {"nJobs": n}
                                          - eventRequestFile {PandaID: params}
                                          - updateEventsFile {PandaID: [event dicts]}
                                          - killWorkerFile, heartbeatFile (presence / mtime)

Files this side reads and must not lose are renamed to ``<name>.read`` before parsing and only
removed or archived once consumed; a file that does not parse is kept and retried next cycle
with an error naming the file and the worker. The reports that carry a job's outputs and end
state (outputs dump, worker attributes, job report) are used whole or not at all
(:mod:`.shared_file_reports`); :meth:`SharedFileMessenger.get_unreadable_reports` names those
that cannot be used, and the monitor holds their jobs. Files written here are written atomically
(temporary file + ``os.replace``) so a worker never reads half a file.
"""

from __future__ import annotations

import datetime
import fnmatch
import json
import os
import shutil
import uuid
from typing import Any
from urllib.parse import urlencode

from pandaharvester.harvestercore import core_utils, log_utils, time_utils
from pandaharvester.harvestercore.work_spec import WorkSpec

from .base_messenger import BaseMessenger
# the file helpers live in shared_file_io; imported here too, their old home
from .shared_file_io import (ACCESS_POINT_MODE, LOG_PATTERNS, SECRET_FILE_MODE, load_json,  # noqa: F401
                             make_log_tarball, read_json_file, read_json_if_present, scan_files_in_dir,
                             write_json_atomic, write_text_atomic)
from .shared_file_reports import (KIND_ANY, KIND_EVENTS, KIND_OBJECT, KIND_OUTPUTS, kill_request_note,
                                  parse_event_request, parse_event_updates, parse_panda_ids, read_event_updates,
                                  read_outputs_dump, report_problem)

_logger = log_utils.setup_logger("shared_file_messenger")

# the worker may leave the path of a task-level work dir here (on-site merging)
TASK_WORKDIR_PATH_FILE = "task_workdir_path.txt"
# job attributes made during post-processing
POST_PROCESS_ATTRS_FILE = "post_process_job_attrs.json"
# suffix of a file taken for reading but not yet acknowledged
SUFFIX_READ = ".read"


def set_logger(master_logger: Any) -> None:
    """Replace the module logger (used by the middleware bots)."""
    global _logger
    _logger = master_logger


def _make_pool_file_catalog(jobspec_list: list) -> str:
    try:
        from pandaharvester.harvestercore.spec_utils import make_pool_file_catalog
    except ImportError:
        make_pool_file_catalog = core_utils.make_pool_file_catalog  # type: ignore[attr-defined]
    return make_pool_file_catalog(jobspec_list)


class SharedFileMessenger(BaseMessenger):
    """Worker <-> Harvester communication through JSON files in the worker's access point."""

    def __init__(self, **kwarg: Any) -> None:
        self.jobSpecFileFormat = "json"
        self.stripJobParams = False
        self.scanInPostProcess = False
        self.leftOverPatterns: list[str] | None = None
        self.leftOverZipPatterns: list[str] | None = None
        self.postProcessInSubDir = False
        self.outputSubDir: str | None = None
        self.subTarballName: str | None = None
        self.maxWorkersForZip: int | None = None
        BaseMessenger.__init__(self, **kwarg)

    def _log(self, workspec: Any, method_name: str) -> Any:
        """The per-worker logger; the methods make it only once they have something to say (after
        their early returns): the monitor calls several of them per worker and cycle."""
        return self.make_logger(_logger, f"workerID={workspec.workerID}", method_name=method_name)

    # ------------------------------------------------------------------ access points
    def get_access_point(self, workspec: Any, panda_id: Any) -> str:
        """The worker's access point, or its ``<PandaID>`` sub-directory for MultiJobs workers."""
        if workspec.mapType == WorkSpec.MT_MultiJobs:
            return os.path.join(workspec.get_access_point(), str(panda_id))
        return workspec.get_access_point()

    def get_task_access_point(self, workspec: Any, jobspec: Any) -> str | None:
        """Task-level work directory (on-site merging), or None."""
        path_file = os.path.join(self.get_access_point(workspec, jobspec.PandaID), TASK_WORKDIR_PATH_FILE)
        if os.path.exists(path_file):
            with open(path_file) as stream:
                return stream.read().strip()
        if jobspec.jobParams and "onSiteMerging" in jobspec.jobParams:
            return os.path.join(self.taskWorkBaseDir, str(jobspec.taskID))
        return None

    def setup_access_points(self, workspec_list: list) -> bool:
        """Make each worker's access point (fresh for new workers) and per-job sub-directories."""
        try:
            for workspec in workspec_list:
                access_point = workspec.get_access_point()
                self._make_access_point(access_point, getattr(workspec, "isNew", False))
                for jobspec in workspec.get_jobspec_list() or []:
                    sub_access_point = self.get_access_point(workspec, jobspec.PandaID)
                    if sub_access_point != access_point:
                        os.makedirs(sub_access_point, ACCESS_POINT_MODE, exist_ok=True)
                    task_dir = self.get_task_access_point(workspec, jobspec)
                    if task_dir:
                        os.makedirs(task_dir, exist_ok=True)
                        write_text_atomic(os.path.join(sub_access_point, TASK_WORKDIR_PATH_FILE), task_dir)
            return True
        except Exception:
            core_utils.dump_error_message(self.make_logger(_logger, method_name="setup_access_points"))
            return False

    @staticmethod
    def _make_access_point(access_point: str, fresh: bool) -> None:
        """Make ``access_point``; with ``fresh`` (a new worker) whatever was there is removed first.
        One ``mkdir`` in the usual case (a new directory whose parent exists); made ACCESS_POINT_MODE
        (it gets the job description, which carries secrets)."""
        try:
            os.mkdir(access_point, ACCESS_POINT_MODE)
            return
        except FileNotFoundError:  # the parent is missing
            pass
        except FileExistsError:
            if not fresh:
                if not os.path.isdir(access_point):
                    raise
                return
            shutil.rmtree(access_point, ignore_errors=True)
        os.makedirs(access_point, ACCESS_POINT_MODE, exist_ok=True)

    # ------------------------------------------------------------------ jobs
    def feed_jobs(self, workspec: Any, jobspec_list: list) -> bool:
        """Write the job description, the input PFC and input symlinks; then the PandaIDs file.

        Logs only what went wrong: the Submitter logs the fed workers and jobs, one line a batch.
        """
        ret_val = True
        try:
            pfc = _make_pool_file_catalog(jobspec_list)
        except Exception:
            core_utils.dump_error_message(self._log(workspec, "feed_jobs"))
            return False
        panda_ids = []
        for jobspec in jobspec_list:
            access_point = self.get_access_point(workspec, jobspec.PandaID)
            try:
                if not os.path.isdir(access_point):
                    os.makedirs(access_point, ACCESS_POINT_MODE, exist_ok=True)
                job_params = jobspec.get_job_params(self.stripJobParams)
                spec_path = os.path.join(access_point, self.jobSpecFileName)
                # the job description carries PanDA's secrets: owner only
                if self.jobSpecFileFormat == "cgi":
                    write_text_atomic(spec_path, urlencode(job_params), SECRET_FILE_MODE)
                else:
                    write_json_atomic(spec_path, {jobspec.PandaID: job_params}, SECRET_FILE_MODE)
                write_text_atomic(os.path.join(access_point, self.xmlPoolCatalogFileName), pfc)
                for filespec in jobspec.inFiles:
                    if not filespec.path:
                        continue
                    dst_path = os.path.join(access_point, filespec.lfn)
                    if filespec.path != dst_path:
                        if os.path.lexists(dst_path):
                            os.unlink(dst_path)
                        os.symlink(filespec.path, dst_path)
                panda_ids.append(jobspec.PandaID)
            except Exception:
                tmp_log = self._log(workspec, "feed_jobs")
                tmp_log.error(f"PandaID={jobspec.PandaID} not fed to {access_point}")
                core_utils.dump_error_message(tmp_log)
                ret_val = False
        try:
            write_json_atomic(os.path.join(workspec.get_access_point(), self.pandaIDsFile), panda_ids)
        except Exception:
            core_utils.dump_error_message(self._log(workspec, "feed_jobs"))
            ret_val = False
        try:
            os.remove(os.path.join(workspec.get_access_point(), self.jsonJobRequestFileName))
        except FileNotFoundError:
            pass
        return ret_val

    def job_requested(self, workspec: Any) -> int | bool:
        """Jobs asked for in the job request file (1 if it does not parse); False if no request."""
        path = os.path.join(workspec.get_access_point(), self.jsonJobRequestFileName)
        if not os.path.exists(path):
            return False
        tmp_log = self._log(workspec, "job_requested")
        ok, data = read_json_file(path, tmp_log, workspec.workerID)
        try:
            n_jobs = int(data["nJobs"]) if ok else 1
        except Exception:
            tmp_log.warning(f"no usable nJobs in {path}; requesting 1 job")
            n_jobs = 1
        tmp_log.debug(f"requesting {n_jobs} jobs")
        return n_jobs

    def get_panda_ids(self, workspec: Any) -> list:
        """PandaIDs listed by the worker (pull mode)."""
        path = os.path.join(workspec.get_access_point(), self.pandaIDsFile)
        if not os.path.exists(path):
            return []
        tmp_log = self._log(workspec, "get_panda_ids")
        ok, data = read_json_file(path, tmp_log, workspec.workerID)
        if not ok:
            return []
        panda_ids, problems = parse_panda_ids(data)
        for problem in problems:
            tmp_log.error(f"{path} of workerID={workspec.workerID}: {problem}; not used")
        return panda_ids

    # ------------------------------------------------------------------ worker reports
    def get_work_attributes(self, workspec: Any) -> dict:
        """{PandaID: attributes}: worker attributes + job report (as metaData) + post-processing attrs."""
        all_attrs: dict = {}
        if not workspec.pandaid_list:
            return all_attrs
        loggers: list = []

        def get_log() -> Any:  # made on the first error only: the monitor calls this for every worker
            if not loggers:
                loggers.append(self._log(workspec, "get_work_attributes"))
            return loggers[0]

        worker_id = workspec.workerID
        for panda_id in workspec.pandaid_list:
            access_point = self.get_access_point(workspec, panda_id)
            attrs: dict = {}
            path = os.path.join(access_point, self.jsonAttrsFileName)
            got = read_json_if_present(path, get_log, worker_id)
            if got is not None and got[0]:
                if isinstance(got[1], dict):
                    attrs = got[1]
                else:
                    get_log().error(f"{path} of workerID={worker_id} is not a JSON object; not used")
            got = read_json_if_present(os.path.join(access_point, self.jsonJobReport), get_log, worker_id)
            if got is not None and got[0]:
                attrs["metaData"] = got[1]
            got = read_json_if_present(os.path.join(access_point, POST_PROCESS_ATTRS_FILE), get_log, worker_id)
            if got is not None and got[0] and isinstance(got[1], dict):
                attrs.update(got[1])
            all_attrs[panda_id] = attrs
        return all_attrs

    def _take_for_reading(self, path: str, tmp_log: Any) -> str | None:
        """Rename ``path`` to ``path.read`` (unless one is pending); the name to read or None.
        ``tmp_log``: a logger, or a function giving one."""
        read_path = path + SUFFIX_READ
        if os.path.exists(read_path):
            return read_path
        try:
            os.rename(path, read_path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            (tmp_log() if callable(tmp_log) else tmp_log).error(f"cannot rename {path} to {read_path}: {exc}")
            return None
        return read_path

    def get_files_to_stage_out(self, workspec: Any) -> dict:
        """{PandaID: {lfn: [file dicts]}} from the event status dump; event outputs also become
        event updates for :meth:`events_to_update`. A dump that cannot be used is kept and none of
        it is returned (see :meth:`get_unreadable_reports`); a newer dump from the worker replaces it."""
        file_dict: dict = {}
        if not workspec.pandaid_list:
            return file_dict
        tmp_log = None  # made once there is something to say: the monitor calls this for every worker
        for panda_id in workspec.pandaid_list:
            access_point = self.get_access_point(workspec, panda_id)
            path = os.path.join(access_point, self.jsonOutputsFileName)
            read_path = self._take_for_reading(path, lambda: self._log(workspec, "get_files_to_stage_out"))
            if read_path is None:
                continue
            tmp_log = tmp_log or self._log(workspec, "get_files_to_stage_out")
            parsed, why = read_outputs_dump(read_path)
            if parsed is None and os.path.exists(path):
                os.replace(path, read_path)
                tmp_log.info(f"{read_path} of workerID={workspec.workerID} could not be used ({why}): "
                             f"replaced by the newer {path}")
                parsed, why = read_outputs_dump(read_path)
            if parsed is None:
                tmp_log.error(f"cannot use {read_path} written by workerID={workspec.workerID}: {why}; the file is "
                              f"kept and none of it used: PandaID={panda_id} is held until it can be read")
                continue
            files, events, n_data = parsed
            for job_id, by_lfn in files.items():
                for lfn, entries in by_lfn.items():
                    file_dict.setdefault(job_id, {}).setdefault(lfn, []).extend(entries)
            if events:
                self._add_event_updates(access_point, events)
            if n_data == 0:
                os.remove(read_path)
            tmp_log.debug(f"got {n_data} entries for PandaID={panda_id}")
        return file_dict

    def get_unreadable_reports(self, workspec: Any) -> dict:
        """{PandaID: {path: why}} of the reports of the worker's jobs that exist but cannot be used now
        (outputs dump taken for reading, worker attributes, job report); {} when all can."""
        problems: dict = {}
        for panda_id in workspec.pandaid_list or []:
            access_point = self.get_access_point(workspec, panda_id)
            found = {}
            for name, kind in ((self.jsonOutputsFileName + SUFFIX_READ, KIND_OUTPUTS),
                               (self.jsonAttrsFileName, KIND_OBJECT), (self.jsonJobReport, KIND_ANY),
                               (self.jsonEventsUpdateFileName + SUFFIX_READ, KIND_EVENTS)):
                path = os.path.join(access_point, name)
                why = report_problem(path, kind)
                if why:
                    found[path] = why
            if found:
                problems[panda_id] = found
        return problems

    def _add_event_updates(self, access_point: str, events: dict) -> None:
        """Merge ``events`` into the (not yet taken) event update file."""
        path = os.path.join(access_point, self.jsonEventsUpdateFileName)
        merged: dict = {}
        try:
            ok, data, why = load_json(path)
        except FileNotFoundError:
            ok, data, why = True, {}, ""
        try:
            merged = {str(k): v for k, v in parse_event_updates(data).items()} if ok else {}
        except ValueError as exc:
            ok, why = False, str(exc)
        if not ok:  # the worker's own update file cannot be merged into: kept aside, not overwritten
            aside = self._set_aside(path)
            _logger.error(f"cannot merge event updates into {path} ({why}): it is kept as {aside}")
        for panda_id, items in events.items():
            merged.setdefault(str(panda_id), []).extend(items)
        write_json_atomic(path, merged)

    @staticmethod
    def _set_aside(path: str) -> str:
        """Rename an unusable file to ``<path>.unreadable.<time>`` (kept for the operator); the new name."""
        aside = f"{path}.unreadable.{time_utils.naive_utcnow().strftime('%Y-%m-%d_%H_%M_%S.%f')}"
        os.rename(path, aside)
        return aside

    # ------------------------------------------------------------------ events
    def events_requested(self, workspec: Any) -> dict:
        """{PandaID: params} from the event request file ({} if none or unreadable)."""
        path = os.path.join(workspec.get_access_point(), self.jsonEventsRequestFileName)
        if not os.path.exists(path):
            return {}
        tmp_log = self._log(workspec, "events_requested")
        ok, data = read_json_file(path, tmp_log, workspec.workerID)
        if not ok:
            return {}
        requests, problems = parse_event_request(data)
        for problem in problems:
            tmp_log.error(f"{path} of workerID={workspec.workerID}: {problem}; not used (the file is kept "
                          "until events are fed)")
        return requests

    def feed_events(self, workspec: Any, events_dict: dict) -> bool:
        """Write event ranges ({PandaID: [ranges]}) and drop the event request."""
        tmp_log = self._log(workspec, "feed_events")
        ret_val = True
        try:
            if workspec.mapType == WorkSpec.MT_MultiJobs:
                for panda_id, ranges in events_dict.items():
                    path = os.path.join(self.get_access_point(workspec, panda_id), self.jsonEventsFeedFileName)
                    write_json_atomic(path, {panda_id: ranges})
            else:
                write_json_atomic(os.path.join(workspec.get_access_point(), self.jsonEventsFeedFileName), events_dict)
        except Exception:
            core_utils.dump_error_message(tmp_log)
            ret_val = False
        try:
            os.remove(os.path.join(workspec.get_access_point(), self.jsonEventsRequestFileName))
        except FileNotFoundError:
            pass
        return ret_val

    def events_to_update(self, workspec: Any) -> dict:
        """{PandaID: [event dicts]} from the event update file (taken as ``.read`` until acknowledged).

        A file that does not parse or is not ``{PandaID: [event dicts]}`` is kept and read again next
        cycle (named by :meth:`get_unreadable_reports`); once the worker wrote a newer one, the
        unusable file is kept aside as ``<name>.read.unreadable.<time>`` and the newer one read."""
        ret_dict: dict = {}
        if not workspec.pandaid_list:
            return ret_dict
        tmp_log = self._log(workspec, "events_to_update")
        for panda_id in workspec.pandaid_list:
            access_point = self.get_access_point(workspec, panda_id)
            path = os.path.join(access_point, self.jsonEventsUpdateFileName)
            read_path = self._take_for_reading(path, tmp_log)
            if read_path is None:
                continue
            updates, why = read_event_updates(read_path)
            if updates is None and os.path.exists(path):
                aside = self._set_aside(read_path)
                tmp_log.error(f"cannot use {read_path} written by workerID={workspec.workerID} ({why}): kept as "
                              f"{aside}, its events not reported; reading the newer {path}")
                os.rename(path, read_path)
                updates, why = read_event_updates(read_path)
            if updates is None:
                tmp_log.error(f"cannot use {read_path} written by workerID={workspec.workerID}: {why}; the file is "
                              f"kept and read again next cycle: PandaID={panda_id} is held until it can be read")
                continue
            n_data = 0
            for key, items in updates.items():
                ret_dict.setdefault(key, []).extend(items)
                n_data += len(items)
            if n_data == 0:
                os.remove(read_path)
        return ret_dict

    def acknowledge_events_files(self, workspec: Any) -> None:
        """Archive the ``.read`` event-update and output files once their content is stored."""
        stamp = time_utils.naive_utcnow().strftime("%Y-%m-%d_%H_%M_%S.%f")
        for panda_id in workspec.pandaid_list or []:
            access_point = self.get_access_point(workspec, panda_id)
            for name in (self.jsonEventsUpdateFileName, self.jsonOutputsFileName):
                read_path = os.path.join(access_point, name + SUFFIX_READ)
                try:
                    os.rename(read_path, f"{read_path}.{stamp}")
                except FileNotFoundError:
                    pass

    # ------------------------------------------------------------------ end of worker
    def filter_log_tgz(self, name: str) -> bool:
        """True for names that belong in a log tarball."""
        return any(fnmatch.fnmatch(name, patt) for patt in LOG_PATTERNS)

    def post_processing(self, workspec: Any, jobspec_list: list, map_type: str) -> bool | None:
        """Make the log tarball of jobs without one, collect leftovers; None on error (retry)."""
        tmp_log = self._log(workspec, "post_processing") if jobspec_list else None
        try:
            for jobspec in jobspec_list:  # None (the job lookup failed) raises: retried as before
                file_list: list[dict] = []
                orig_access_point = self.get_access_point(workspec, jobspec.PandaID)
                access_point = orig_access_point
                if self.postProcessInSubDir:
                    access_point = os.path.join(access_point, str(jobspec.PandaID))
                if not any(f.fileType == "log" for f in jobspec.outFiles):
                    log_path = os.path.join(access_point, jobspec.get_logfile_info()["lfn"])
                    if map_type == WorkSpec.MT_MultiWorkers:
                        log_path += f"._{workspec.workerID}"
                    n_files = make_log_tarball(access_point, log_path, exclude=(self.jobSpecFileName,))
                    tmp_log.debug(f"made {log_path} with {n_files} files")
                    file_list.append({"path": log_path, "type": "log", "isZip": 0})
                if self.scanInPostProcess:
                    file_list += self._scan_leftovers(jobspec, access_point)
                task_dir = self.get_task_access_point(workspec, jobspec)
                if task_dir:
                    file_list += self._read_task_state(jobspec, task_dir, access_point, tmp_log)
                if file_list:
                    path = os.path.join(orig_access_point, self.jsonOutputsFileName)
                    write_json_atomic(path, {jobspec.PandaID: file_list})
            return True
        except Exception:
            core_utils.dump_error_message(tmp_log or self._log(workspec, "post_processing"))
            return None

    def _scan_leftovers(self, jobspec: Any, access_point: str) -> list[dict]:
        sub_dirs = [os.path.join(access_point, n) for n in os.listdir(access_point)
                    if os.path.isdir(os.path.join(access_point, n))]
        if self.outputSubDir is not None:
            sub_dirs = [os.path.join(d, self.outputSubDir) for d in sub_dirs
                        if os.path.isdir(os.path.join(d, self.outputSubDir))]
        pattern_sets = []
        for raw in (self.leftOverPatterns, self.leftOverZipPatterns):
            patterns: list[str] = []
            for patt in raw or []:
                patt = patt.replace("%PANDAID", str(jobspec.PandaID)).replace("%TASKID", str(jobspec.taskID))
                if "%OUTPUT_FILE" in patt:
                    log_lfn = jobspec.get_logfile_info()["lfn"]
                    patterns += [patt.replace("%OUTPUT_FILE", name)
                                 for name in jobspec.get_output_file_attributes() if name != log_lfn]
                else:
                    patterns.append(patt)
            pattern_sets.append(patterns)
        found: list[dict] = []
        for sub_dir in sub_dirs:
            found += scan_files_in_dir(sub_dir, pattern_sets[0], pattern_sets[1])
        return found

    def _read_task_state(self, jobspec: Any, task_dir: str, access_point: str, tmp_log: Any) -> list[dict]:
        found: list[dict] = []
        done_inputs: set = set()
        state_path = os.path.join(task_dir, self.taskWorkStateFile)
        if os.path.exists(state_path):
            with open(state_path) as stream:
                state = json.load(stream)
            seen: set = set()
            for in_lfn, outputs in state.get("merged", {}).items():
                for out_lfn, info in outputs.items():
                    if out_lfn in seen:
                        continue
                    seen.add(out_lfn)
                    pfn = info["path"]
                    info.setdefault("fsize", os.stat(pfn).st_size)
                    info["type"] = "output"
                    info.setdefault("guid", str(uuid.uuid4()))
                    info.setdefault("chksum", core_utils.calc_adler32(pfn))
                    found.append(info)
                done_inputs.add(in_lfn)
        skipped = [f.lfn for f in jobspec.inFiles if f.lfn not in done_inputs]
        write_json_atomic(os.path.join(access_point, POST_PROCESS_ATTRS_FILE), {"skippedInputs": skipped})
        tmp_log.debug(f"{len(found)} outputs from task state, {len(skipped)} inputs skipped")
        return found

    # ------------------------------------------------------------------ liveness
    def kill_requested(self, workspec: Any) -> bool:
        """True when the worker left the kill request file.

        Its existence is the request, as in the original Harvester (a pilot or wrapper may
        ``touch`` it or write anything): garbage content still asks for the kill, with a warning
        naming the file and what is odd about it; its content is never needed."""
        path = os.path.join(workspec.get_access_point(), self.killWorkerFile)
        if not os.path.exists(path):
            return False
        note = kill_request_note(path)
        if note:
            self._log(workspec, "kill_requested").warning(
                f"kill request file {path} of workerID={workspec.workerID}: {note}; counted as a kill request "
                "all the same (the file's existence is the request)")
        return True

    def is_alive(self, workspec: Any, time_limit: float) -> bool | None:
        """Heartbeat file younger than ``time_limit`` minutes: True; older: False; unknown: None."""
        path = os.path.join(workspec.get_access_point(), self.heartbeatFile)
        now = time_utils.naive_utcnow()
        limit = datetime.timedelta(minutes=time_limit)
        try:
            mtime = time_utils.naive_utcfromtimestamp(os.path.getmtime(path))
        except FileNotFoundError:
            if not workspec.startTime or now - workspec.startTime < limit:
                return True  # not started yet, or too young to have a heartbeat
            self._log(workspec, "is_alive").debug("no heartbeat file")
            return None
        except OSError:
            return None
        if now - mtime > limit:
            self._log(workspec, "is_alive").debug(f"heartbeat too old: {mtime}")
            return False
        return True

    def clean_up(self, workspec: Any) -> tuple[bool | None, str]:
        """Remove the worker's access point: (True, "") done, (None, "") already gone, (False, err)."""
        access_point = workspec.get_access_point()
        if not os.path.exists(access_point):
            return None, ""
        tmp_log = self._log(workspec, "clean_up")
        if not os.path.isdir(access_point):
            err = f"{access_point} is not a directory"
            tmp_log.error(err)
            return False, err
        try:
            shutil.rmtree(access_point)
        except Exception as exc:
            err = f"failed to remove directory {access_point} : {exc}"
            tmp_log.error(err)
            return False, err
        return True, ""
