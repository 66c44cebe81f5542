"""JobFetcher: takes jobs from PanDA for push queues, up to each queue's limits."""

from __future__ import annotations

import random
import socket
from dataclasses import dataclass
from typing import Any

from pandaharvester.errors import DBError
from pandaharvester.harvesterbody.agent_base import AgentBase, Step
from pandaharvester.harvestercore import core_utils, lifecycle
from pandaharvester.harvestercore.file_spec import FileSpec
from pandaharvester.harvestercore.job_spec import JobSpec

_logger = core_utils.setup_logger("job_fetcher")


def _item_text(index: int, n_items: int, job: Any) -> str:
    """How a log line names an item of an acquire_jobs reply: its PandaID when it has one."""
    where = f"item {index + 1}/{n_items} of the acquire_jobs reply"
    if isinstance(job, dict) and "PandaID" in job:
        return f"PandaID={repr(job['PandaID'])[:40]} ({where})"
    return f"{where} ({repr(job)[:100]})"


@dataclass
class QueueTurn:
    """A queue due for jobs in this cycle: how many it may take, how many PanDA gave."""

    queue_name: str
    n_jobs: int
    n_got: int = 0


class JobFetcher(AgentBase):
    """One cycle: ask the DB how many jobs each queue may take, get them, store them."""

    cfg_section = "jobfetcher"

    def __init__(self, communicator: Any, queue_config_mapper: Any, single_mode: bool = False):
        super().__init__(single_mode, queue_config_mapper=queue_config_mapper, communicator=communicator)
        self.nodeName = socket.gethostname()

    def steps(self) -> list[Step]:
        max_jobs = self.cfg("maxJobs")
        return [Step("fetch", self.pick, self.fetch_queues,
                     full=lambda turns: any(turn.n_got >= max_jobs for turn in turns))]

    def pick(self) -> list[QueueTurn]:
        """The queues due, with the jobs each may take (the DB moves their jobFetchTime on)."""
        limits = self.dbProxy.get_num_jobs_to_fetch(self.cfg("nQueues"), self.cfg("lookupTime"),
                                                    self.queueConfigMapper) or {}
        max_jobs = self.cfg("maxJobs")
        return [QueueTurn(queue_name, min(value["jobs"] if isinstance(value, dict) else int(value), max_jobs))
                for queue_name, value in limits.items()]

    def fetch_queues(self, turns: list[QueueTurn]) -> None:
        for turn in turns:
            if turn.n_jobs > 0 and self.queueConfigMapper.has_queue(turn.queue_name):
                turn.n_got = self.fetch_jobs(turn.queue_name, turn.n_jobs)

    def fetch_jobs(self, queue_name: str, n_jobs: int) -> int:
        """Get up to ``n_jobs`` jobs for ``queue_name`` from PanDA and insert them; returns the count."""
        log = self.make_logger(_logger, f"queueName={queue_name}", method_name="fetch_jobs")
        queue_config = self.queue_config(queue_name)
        label = self._prod_source_label(queue_config)
        watch = core_utils.get_stopwatch()
        jobs, message = self.communicator.get_jobs(queue_config.siteName, self.nodeName, label, self.nodeName,
                                                   n_jobs, queue_config.getJobCriteria)
        log.info(f"got {len(jobs)} jobs for prodSourceLabel={label} with {message}{watch.get_elapsed_time()}")
        if not jobs:
            return 0
        extractor = self.pluginFactory.get_plugin(queue_config.extractor) if getattr(queue_config, "extractor", None) else None
        new_inputs: list[FileSpec] = []
        job_specs = []
        seen: set[int] = set()
        for index, job in enumerate(jobs):
            try:
                job_spec = self.make_job_spec(job, queue_name, queue_config, extractor, new_inputs)
                if job_spec.PandaID in seen:
                    raise ValueError("the same PandaID came earlier in the reply")
                seen.add(job_spec.PandaID)
                job_specs.append(job_spec)
            except Exception as exc:
                # one malformed item must not cost the others; PanDA's watchdog reassigns a job it sent
                log.error(f"{_item_text(index, len(jobs), job)} skipped: {exc.__class__.__name__}: {exc}")
        self._set_input_statuses(new_inputs, queue_config.ddmEndpointIn)
        self._insert(job_specs, log)
        return len(jobs)

    def _set_input_statuses(self, new_inputs: list[FileSpec], endpoint: str | None) -> None:
        """The status of each new input file, in the order they were made: ``preparing`` when a
        starting job (in the DB, or earlier in this batch) already looks after the same LFN, else
        ``to_prepare``. The DB is read once for the whole batch (``get_files_status``, each LFN
        with the type of its first file), not once per LFN."""
        if not new_inputs:
            return
        lfn_types: dict[str, str] = {}
        for file_spec in new_inputs:
            lfn_types.setdefault(file_spec.lfn, file_spec.fileType)
        file_states = self.dbProxy.get_files_status(lfn_types, endpoint, "starting") or {}
        for file_spec in new_inputs:
            states = file_states.setdefault(file_spec.lfn, {})
            file_spec.status = lifecycle.new_input_status(states)
            states.setdefault(file_spec.status, None)

    def _insert(self, job_specs: list[JobSpec], log: Any) -> None:
        """Store the jobs in one transaction; if that fails, one by one, so that a job the DB
        refuses costs only itself (each failure is logged with its PandaID and the reason)."""
        if not job_specs:
            return
        if self._try_insert(job_specs) is None:
            log.debug(f"inserted {len(job_specs)} jobs")
            return
        n_stored = 0
        for job in job_specs:
            error = self._try_insert([job])
            if error is None:
                n_stored += 1
            else:
                log.error(f"PandaID={job.PandaID} not stored: the DB refused it ({error}); "
                          f"PanDA reassigns it after its sent timeout")
        log.info(f"inserted {n_stored} of {len(job_specs)} jobs one by one after the bulk insert failed")

    def _try_insert(self, job_specs: list[JobSpec]) -> str | None:
        """None when stored, else why not."""
        try:
            return None if self.dbProxy.insert_jobs(job_specs) else "DB error, see panda-db_proxy.log"
        except DBError as exc:
            return str(exc)

    @staticmethod
    def _prod_source_label(queue_config: Any) -> str:
        default = queue_config.get_source_label()
        weights = getattr(queue_config, "prodSourceLabelRandomWeightsPermille", {}) or {}
        return random.choice(core_utils.make_choice_list(pdpm=weights, default=default))

    def make_job_spec(self, job: dict, queue_name: str, queue_config: Any, extractor: Any,
                      new_inputs: list[FileSpec]) -> JobSpec:
        """A JobSpec with its input FileSpecs for a job dict from PanDA; the input files are also
        appended to ``new_inputs`` (their statuses are set by :meth:`_set_input_statuses`)."""
        now = core_utils.naive_utcnow()
        job_spec = JobSpec()
        job_spec.convert_job_json(job)
        job_spec.computingSite = queue_name
        lifecycle.change_job_status(job_spec, lifecycle.JOB_STARTING, lifecycle.SUB_FETCHED, now)
        job_spec.creationTime = now
        job_spec.configID = queue_config.configID
        job_spec.set_one_attribute("schedulerID", f"harvester-{self.cfg_value('master', 'harvester_id')}")
        if queue_config.zipPerMB is not None and job_spec.zipPerMB is None:
            job_spec.zipPerMB = queue_config.zipPerMB
        groups = [job_spec.get_input_file_attributes()]
        if extractor is not None:  # a reply of the wrong shape raises as a raising extractor does: job skipped
            aux = extractor.get_aux_inputs(job_spec)
            groups.append(self.check_reply(extractor, "get_aux_inputs", aux, (job_spec,), role="extractor",
                                           queue=queue_name))
        for group in groups:
            for lfn, attrs in group.items():
                job_spec.add_in_file(self._input_file(job_spec, lfn, attrs, queue_config, new_inputs))
        job_spec.trigger_propagation()
        return job_spec

    def _input_file(self, job_spec: JobSpec, lfn: str, attrs: dict, queue_config: Any,
                    new_inputs: list[FileSpec]) -> FileSpec:
        file_spec = FileSpec()
        file_spec.PandaID = job_spec.PandaID
        file_spec.taskID = job_spec.taskID
        file_spec.lfn = lfn
        file_spec.endpoint = queue_config.ddmEndpointIn
        file_spec.scope = attrs.get("scope")
        if "INTERNAL_FileType" in attrs:
            file_spec.fileType = attrs["INTERNAL_FileType"]
            job_spec.auxInput = JobSpec.AUX_hasAuxInput
        else:
            file_spec.fileType = "input"
        new_inputs.append(file_spec)
        if "INTERNAL_URL" in attrs:
            file_spec.url = attrs["INTERNAL_URL"]
        return file_spec
