"""Jobs and event ranges: the PanDA calls of the job fetcher, propagator and event feeder.

A mixin of :class:`~.panda_communicator.PandaCommunicator`; uses its ``request_ssl``,
``request_non_idempotent``, ``make_logger``, ``_fail``, ``_lost_reply``, ``_settings`` and
``harvester_id``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Any

from pandaharvester.harvestercore import core_utils
from pandaharvester.harvestercore.log_utils import ids_text

from .http_client import CallResult
from .job_payloads import failed_job_result, job_update_dict, normalise_job_result
from .reply_shapes import envelope

MAX_EVENTS_PER_UPDATE = 10000


# arguments of event/acquire_event_ranges besides job_id/jobset_id/task_id/n_ranges/scattered
_EVENT_REQUEST_ARGS = ("segment_id", "timeout")
_EVENT_REQUEST_ALIASES = {"taskID": "task_id", "jediTaskID": "task_id", "jobsetID": "jobset_id",
                          "segmentID": "segment_id"}


def _as_int(value: Any) -> Any:
    """``value`` as an int when it is one written as a string (PanDA ids in jobParams, pilot files)."""
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return value


def event_request_args(job_id: Any, request: dict, tmp_log: Any) -> dict:
    """The ``event/acquire_event_ranges`` arguments for one worker request (pilot names mapped).

    Keys the API does not take are logged and left out: the server rejects unknown arguments.
    """
    data: dict[str, Any] = {"job_id": _as_int(job_id)}
    for key, value in request.items():
        if key == "pandaID":
            continue
        name = _EVENT_REQUEST_ALIASES.get(key, key)
        if name in ("task_id", "jobset_id") or name in _EVENT_REQUEST_ARGS:
            data.setdefault(name, _as_int(value))
        else:
            tmp_log.debug(f"event request key {key}={str(value)[:100]!r} is not sent (no such API argument)")
    data.setdefault("jobset_id", None)
    data.setdefault("task_id", None)
    return data


def _event_ranges_of(payload: Any) -> list | None:
    """The event ranges in an ``acquire_event_ranges`` reply (``{"StatusCode": 0, "eventRanges": [...]}``
    or, from API v1 servers, the bare list); None when the reply is not one of those."""
    if isinstance(payload, list):
        return payload
    if isinstance(payload, str):
        try:
            return _event_ranges_of(json.loads(payload))
        except ValueError:
            return None
    if isinstance(payload, dict) and payload.get("StatusCode", 0) == 0:
        ranges = payload.get("eventRanges") or []
        if isinstance(ranges, str):
            return _event_ranges_of(ranges)
        return ranges if isinstance(ranges, list) else None
    return None


def _grouped_lines(job_ids: list, results: list[dict], render: Any = str) -> list[str]:
    """``"<render(result)> for PandaID=1 PandaID=2"`` once per distinct result."""
    groups: dict[str, tuple[dict, list]] = {}
    for job_id, result in zip(job_ids, results):
        groups.setdefault(str(result), (result, []))[1].append(job_id)
    return [f"{render(result)} for {ids_text('PandaID', ids)}" for result, ids in groups.values()]


class JobsApiMixin:
    """``get_jobs``, ``update_jobs``, ``check_jobs``, event ranges."""

    # ------------------------------------------------------------------ jobs
    def get_jobs(self, site_name: str, node_name: str, prod_source_label: str, computing_element: str,
                 n_jobs: int, additional_criteria: dict | None) -> tuple[list[dict], str]:
        """Acquire up to ``n_jobs`` jobs: ``(job dicts, "OK")`` or ``([], reason)``."""
        tmp_log = self.make_logger(f"siteName={site_name}", method_name="get_jobs")
        tmp_log.debug(f"try to get {n_jobs} jobs")
        data = {
            "site_name": site_name,
            "node": node_name,
            "prod_source_label": prod_source_label,
            "computing_element": computing_element,
            "n_jobs": n_jobs,
            "scheduler_id": f"harvester-{self.harvester_id}",
        }
        if additional_criteria:
            data.update(additional_criteria)
        sw = core_utils.get_stopwatch()
        path = "pilot/acquire_jobs"
        result = self.request_non_idempotent("POST", path, data)
        tmp_log.debug(f"acquire_jobs for {n_jobs} jobs{sw.get_elapsed_time()}")
        if result.maybe_applied:
            return [], self._lost_jobs(tmp_log, result, site_name, n_jobs)
        if not result.ok:
            return [], self._fail(tmp_log, result.value)
        success, message, payload = envelope(result.value)
        if not success:
            # "No jobs in PanDA" is the normal empty answer, not an error
            tmp_log.debug(f"no jobs: {message}")
            return [], message or "no jobs"
        if not isinstance(payload, dict) or not isinstance(payload.get("jobs") or [], list):
            garbled = dataclasses.replace(result, value=f"unexpected data in a successful reply: {str(payload)[:200]}")
            return [], self._lost_jobs(tmp_log, garbled, site_name, n_jobs)
        status_code = payload.get("StatusCode", 0)
        if status_code == 0:
            jobs = payload.get("jobs") or []
            tmp_log.debug(f"got {len(jobs)} jobs")
            return jobs, "OK"
        return [], payload.get("errorDialog") or f"StatusCode={status_code}"

    def _lost_jobs(self, tmp_log: Any, result: CallResult, site_name: str, n_jobs: int) -> str:
        """Log the window of an acquire_jobs reply lost after PanDA may have dispatched jobs."""
        return self._lost_reply(
            tmp_log, "pilot/acquire_jobs", result, f"site={site_name} n_jobs={n_jobs}",
            f"up to {n_jobs} jobs PanDA dispatched in that window are not recorded here and stay 'sent' "
            f"in PanDA until its watchdog reassigns them.",
            f"To recover sooner, ask PanDA to reassign the jobs sent to harvester_id={self.harvester_id} "
            f"at site {site_name} in that window.")

    def update_jobs(self, jobspec_list: list, id: Any) -> list[dict]:
        """Report jobs in bulk; one ``{"StatusCode", "ErrorDiag", "command"}`` per job, in order.

        Checkpoint files of HPO jobs are uploaded and event ranges of event-service jobs are
        reported first. Jobs go in chunks of ``[propagator] nJobsInBulk``; a chunk that fails
        gives ``StatusCode`` 999 to each of its jobs.
        """
        sw = core_utils.get_stopwatch()
        log_all = self.make_logger(f"id={id}", method_name="update_jobs")
        log_all.debug(f"update {len(jobspec_list)} jobs")
        self._upload_checkpoints(jobspec_list, log_all)
        self._update_events_of_jobs(jobspec_list, log_all)
        chunk_size = self._settings().jobs_in_bulk
        results: list[dict] = []
        for shard in core_utils.create_shards(jobspec_list, chunk_size):
            job_list = []
            shard_results: list[dict] | None = None
            for job_spec in shard:
                dropped: list = []
                try:
                    job_list.append(job_update_dict(job_spec, dropped))
                except Exception as exc:  # a broken spec must not stop the others
                    job_list.append(None)
                    log_all.error(f"cannot build the update of PandaID={getattr(job_spec, 'PandaID', None)}: {exc}")
                for name, value, reason in dropped:
                    log_all.warning(f"PandaID={job_spec.PandaID}: job attribute {name}={str(value)[:100]!r} "
                                    f"not sent to PanDA ({reason})")
            to_send = [job for job in job_list if job is not None]
            error = ""
            replies: list | None = None
            if to_send:
                ok, reply = self.request_ssl("POST", "pilot/update_jobs_bulk",
                                             {"harvester_id": self.harvester_id, "job_list": to_send})
                if not ok:
                    error = self._fail(log_all, reply)
                else:
                    success, message, data = envelope(reply)
                    if not success:
                        error = self._fail(log_all, f"update_jobs_bulk failed with {message}")
                    elif not isinstance(data, list) or len(data) != len(to_send):
                        error = self._fail(log_all, f"update_jobs_bulk gave {str(data)[:200]} for {len(to_send)} jobs")
                    else:
                        replies = data
            shard_results = []
            reply_iter = iter(replies) if replies is not None else None
            for job_spec, job_dict in zip(shard, job_list):
                if job_dict is None:
                    result = failed_job_result("cannot build the update of this job")
                elif reply_iter is None:
                    result = failed_job_result(error)
                else:
                    result = normalise_job_result(next(reply_iter))
                shard_results.append(result)
            self._log_job_results(log_all, shard, shard_results)
            results += shard_results
        log_all.debug("done" + sw.get_elapsed_time())
        return results

    def _log_job_results(self, log: Any, jobs: list, results: list[dict]) -> None:
        """One DEBUG line per distinct reply with the PandaIDs that got it (a line per job cost
        about as much as building its update); the reply may carry pilotSecrets: masked."""
        if log.isEnabledFor(logging.DEBUG):
            for line in _grouped_lines([job_spec.PandaID for job_spec in jobs], results, self.redactor.text):
                log.debug(f"done with {line}")

    def check_jobs(self, jobspec_list: list) -> list[dict]:
        """Status of jobs in PanDA, one dict per job (``StatusCode`` 0 when found, 999 otherwise)."""
        tmp_log = self.make_logger(method_name="check_jobs")
        results: list[dict] = []
        for shard in core_utils.create_shards(jobspec_list, self._settings().jobs_in_bulk):
            job_ids = [job_spec.PandaID for job_spec in shard]
            ok, reply = self.request_ssl("GET", "job/get_status", {"job_ids": job_ids})
            error = "OK"
            statuses: list = []
            if not ok:
                error = self._fail(tmp_log, reply)
            else:
                success, message, data = envelope(reply)
                if not success:
                    error = self._fail(tmp_log, message)
                elif isinstance(data, list):
                    statuses = data
            for idx, job_id in enumerate(job_ids):
                if idx < len(statuses) and isinstance(statuses[idx], dict):
                    result = dict(statuses[idx])
                    result["StatusCode"] = 0
                    result["ErrorDiag"] = error
                    result.setdefault("command", None)
                else:
                    result = failed_job_result(error)
                results.append(result)
            if tmp_log.isEnabledFor(logging.DEBUG):
                for line in _grouped_lines(job_ids, results[-len(job_ids):]):
                    tmp_log.debug(line)
        return results

    def _upload_checkpoints(self, jobspec_list: list, log_all: Any) -> None:
        """HPO jobs: upload output files as checkpoints to the job's ``sourceURL``."""
        for job_spec in jobspec_list:
            out_files = getattr(job_spec, "outFiles", None) or []
            if not out_files:  # first: jobParams is decoded only for jobs with checkpoint files
                continue
            source_url = (getattr(job_spec, "jobParams", None) or {}).get("sourceURL")
            if not source_url:
                continue
            log_all.debug(f"upload {len(out_files)} checkpoint files for PandaID={job_spec.PandaID}")
            for file_spec in out_files:
                if self.upload_checkpoint(source_url, job_spec.taskID, job_spec.PandaID, file_spec.lfn, file_spec.path):
                    file_spec.status = "done"

    # ------------------------------------------------------------------ events
    def _update_events_of_jobs(self, jobspec_list: list, log_all: Any) -> None:
        for job_spec in jobspec_list:
            to_event_data = getattr(job_spec, "to_event_data", None)
            if to_event_data is None:
                continue
            if getattr(job_spec, "zipEventMap", None) == {}:
                continue  # no event to report: spares decoding jobParams (to_event_data reads it)
            try:
                event_ranges, event_specs = to_event_data(max_events=MAX_EVENTS_PER_UPDATE)
            except Exception as exc:
                log_all.error(f"cannot collect events of PandaID={job_spec.PandaID}: {exc}")
                continue
            if not event_ranges:
                continue
            log_all.debug(f"update {len(event_specs)} events for PandaID={job_spec.PandaID}")
            ret = self.update_event_ranges(event_ranges, log_all)
            if ret.get("StatusCode") == 0:
                for event_spec, ret_value in zip(event_specs, ret.get("Returns") or []):
                    if ret_value in (True, False) and event_spec.is_final_status():
                        event_spec.subStatus = "done"

    def get_event_ranges(self, data_map: dict, scattered: bool, base_path: str | None = None) -> tuple[bool, dict]:
        """Event ranges for jobs: ``(True if any call succeeded, {PandaID: [range dicts]})``.

        ``data_map`` is ``{PandaID: {pandaID, taskID, jobsetID, nRanges, ...}}``; each job's
        ranges are requested in chunks of ``[pandacon] getEventsChunkSize``.
        """
        chunk_default = self._settings().events_chunk_size
        ret_status = False
        ret_value: dict = {}
        for panda_id, request in data_map.items():
            request = dict(request)
            job_id = request.get("pandaID", panda_id)
            tmp_log = self.make_logger(f"PandaID={job_id}", method_name="get_event_ranges")
            try:
                n_ranges = int(request.pop("nRanges", 1) or 1)
            except (TypeError, ValueError):
                tmp_log.error(f"nRanges={request.get('nRanges')!r} is not a number: asking for 1 range")
                n_ranges = 1
            is_hpo = bool(request.pop("isHPO", False))
            source_url = request.pop("sourceURL", None)
            data = event_request_args(job_id, request, tmp_log)
            if scattered:
                data["scattered"] = True
            tmp_log.debug(f"start n_ranges={n_ranges}")
            while n_ranges > 0:
                chunk = min(chunk_default, n_ranges)
                n_ranges -= chunk
                path = "event/acquire_event_ranges"
                result = self.request_non_idempotent("POST", path, {**data, "n_ranges": chunk})
                if result.maybe_applied:
                    self._lost_reply(tmp_log, path, result, f"PandaID={job_id} n_ranges={chunk}",
                                     "event ranges PanDA handed out in that window stay 'sent' for this job "
                                     "(PanDA releases them when the job ends).",
                                     "The next request of the worker gets other ranges.")
                    break
                if not result.ok:
                    self._fail(tmp_log, result.value)
                    continue
                success, message, payload = envelope(result.value)
                ranges = _event_ranges_of(payload) if success else None
                if ranges is None:
                    self._fail(tmp_log, message or f"unexpected data {str(payload)[:200]}")
                    break
                ret_status = True
                ret_value.setdefault(job_id, [])
                for event in ranges:
                    if is_hpo and source_url and base_path:
                        self._attach_checkpoint(event, source_url, job_id, base_path, tmp_log)
                    ret_value[job_id].append(event)
                if not ranges:
                    break
            tmp_log.debug(f"done with {len(ret_value.get(job_id, []))} ranges")
        return ret_status, ret_value

    def _attach_checkpoint(self, event: dict, source_url: str, panda_id: Any, base_path: str, tmp_log: Any) -> None:
        parts = str(event.get("eventRangeID", "")).split("-")
        if len(parts) < 4:
            return
        ok, file_name = self.download_checkpoint(source_url, parts[0], panda_id, parts[3], base_path)
        if ok:
            event["checkpoint"] = file_name

    def update_event_ranges(self, event_ranges: list, tmp_log: Any) -> dict:
        """Report event ranges: the server's ``{"StatusCode": 0, "Returns": [...]}`` or ``{"StatusCode": 999}``."""
        tmp_log.debug("start update_event_ranges")
        for item in event_ranges:
            # HPO losses are reported to iDDS by the original; without iDDS they are dropped here
            for event in item.get("eventRanges", []):
                event.pop("loss", None)
        data = {"event_ranges": json.dumps(event_ranges, default=str), "version": 1}
        ok, reply = self.request_ssl("POST", "event/update_event_ranges", data)
        if not ok:
            self._fail(tmp_log, reply)
            return {"StatusCode": 999}
        success, message, ret_map = envelope(reply)
        if not success or not isinstance(ret_map, dict) or not isinstance(ret_map.get("Returns", []), list):
            self._fail(tmp_log, message or f"unexpected data {str(ret_map)[:200]}")
            return {"StatusCode": 999}
        ret_map = dict(ret_map)
        ret_map.setdefault("StatusCode", 0)  # API v1 servers answer {"Returns": [...], "Commands": {...}}
        tmp_log.debug(f"done update_event_ranges with {ret_map}")
        return ret_map

    def check_event_availability(self, jobspec: Any) -> tuple[bool, Any]:
        """``(True, number of event ranges left)`` or ``(False, error)``."""
        tmp_log = self.make_logger(f"PandaID={jobspec.PandaID}", method_name="check_event_availability")
        job_params = getattr(jobspec, "jobParams", None) or {}
        data = {
            "job_id": _as_int(jobspec.PandaID),
            "jobset_id": _as_int(getattr(jobspec, "jobsetID", None) or job_params.get("jobsetID")),
            "task_id": _as_int(getattr(jobspec, "taskID", None) or job_params.get("taskID")),
        }
        ok, reply = self.request_ssl("GET", "event/get_available_event_range_count", data)
        if not ok:
            return False, self._fail(tmp_log, reply)
        success, message, n_ranges = envelope(reply)
        if not success:
            return False, self._fail(tmp_log, message)
        tmp_log.debug(f"done with {n_ranges}")
        return True, n_ranges
