"""Turns job chunks into WorkSpecs with the queue's worker-maker plugin (used by the Submitter)."""

from __future__ import annotations

import logging
from typing import Any

from pandaharvester.harvesterbody.agent_base import AgentBase, AgentHelper
from pandaharvester.harvestercore import core_utils
from pandaharvester.harvestercore.log_utils import ids_text

_logger = core_utils.setup_logger("worker_maker")


class WorkerMaker(AgentHelper):
    """Calls the ``workerMaker`` plugin of a queue and numbers the new workers.

    ``agent``: the owning agent (the Submitter), whose plugin factory, DB proxy and plugin calls
    (:meth:`AgentBase.call_plugin`: replies checked against the worker maker's contract) it uses
    (:class:`AgentHelper`; ``WorkerMaker()`` as in the original works too).
    """

    def __init__(self, agent: AgentBase | None = None) -> None:
        super().__init__(agent)

    def get_plugin(self, queue_config: Any) -> Any:
        """The worker-maker plugin of ``queue_config``."""
        return self.pluginFactory.get_plugin(queue_config.workerMaker)

    def make_workers(self, jobchunk_list: list[list[Any]], queue_config: Any, n_ready: int, job_type: str,
                     resource_type: str, prod_source_label: str = "ANY", maker: Any = None
                     ) -> tuple[list[tuple[Any, list[Any]]], list[list[Any]]]:
        """Return ``(okChunks, ngChunks)``: ``[(WorkSpec, jobs)]`` and the chunks no worker was made for.

        The first ``n_ready`` chunks go to workers already in the ``ready`` state (late binding);
        the others get new workers whose ids come from the ``SEQ_workerID`` sequence, reserved in one
        call. When the IDs cannot be reserved (DB error) the new workers are dropped: their chunks are
        in neither list, so the caller releases their jobs for a later cycle rather than failing them.
        """
        log = core_utils.make_logger(_logger, f"queue={queue_config.queueName}", method_name="make_workers")
        maker = maker or self.get_plugin(queue_config)
        if maker is None:
            log.error("no workerMaker plugin configured: no worker made")
            return [], jobchunk_list
        ok_chunks: list[tuple[Any, list[Any]]] = []
        ng_chunks: list[list[Any]] = []
        new_workers: list[tuple[Any, list[Any]]] = []
        ready_workers = self.dbProxy.get_ready_workers(queue_config.queueName, n_ready) if n_ready > 0 else []
        for index, job_chunk in enumerate(jobchunk_list):
            if index < len(ready_workers):
                ok_chunks.append((ready_workers[index], job_chunk))
                continue
            # a maker of the original's older signature gets no prod_source_label; one that raises
            # or returns something else than a WorkSpec or None makes no worker (logged)
            ok, work_spec = self.agent.call_plugin(log, maker, "make_worker", job_chunk, queue_config, job_type,
                                                   resource_type, prod_source_label=prod_source_label,
                                                   role="workermaker", queue=queue_config.queueName)
            if not ok or work_spec is None:
                ng_chunks.append(job_chunk)
                continue
            new_workers.append((work_spec, job_chunk))
        # the new workers' IDs in one transaction (a sequence number each cost more than making them)
        worker_ids = self.dbProxy.get_next_seq_numbers("SEQ_workerID", len(new_workers)) if new_workers else []
        if len(worker_ids) != len(new_workers):
            log.error(f"no workerIDs for {len(new_workers)} new workers: DB error (see panda-db_proxy.log); "
                      f"they are not submitted and their jobs are released for the next cycle")
            new_workers = []
        for (work_spec, job_chunk), worker_id in zip(new_workers, worker_ids):
            work_spec.workerID = worker_id
            work_spec.isNew = True
            ok_chunks.append((work_spec, job_chunk))
        log.debug(f"made {len(ok_chunks)} workers, {len(ng_chunks)} chunks failed")
        self._log_new_workers(log, new_workers)
        return ok_chunks, ng_chunks

    @staticmethod
    def _log_new_workers(log: Any, new_workers: list[tuple[Any, list[Any]]]) -> None:
        """One line per kind of new worker naming every workerID, each followed by its PandaIDs
        (not one line per worker)."""
        if not log.isEnabledFor(logging.DEBUG):
            return
        kinds: dict[tuple[Any, ...], list[str]] = {}
        for work_spec, jobs in new_workers:
            key = (work_spec.resourceType, work_spec.pilotType, work_spec.jobType, work_spec.nCore)
            entry = f"workerID={work_spec.workerID}"
            if jobs:
                entry += " " + ids_text("PandaID", (job.PandaID for job in jobs))
            kinds.setdefault(key, []).append(entry)
        sep = ", " if any(jobs for _w, jobs in new_workers) else " "  # a comma after each worker's PandaIDs
        for (resource_type, pilot_type, job_type, n_core), ids in kinds.items():
            log.debug(f"new workers resourceType={resource_type} pilotType={pilot_type} jobType={job_type} "
                      f"nCore={n_core}: {sep.join(ids)}")

    def _ask(self, queue_config: Any, maker: Any, method: str, *args: Any, default: Any = None) -> Any:
        """``maker.<method>(*args)``, its reply checked (a wrong one raises PluginReplyError)."""
        maker = maker or self.get_plugin(queue_config)
        if maker is None:
            return default
        return self.agent.check_reply(maker, method, getattr(maker, method)(*args), args, role="workermaker",
                                      queue=queue_config.queueName)

    def get_num_jobs_per_worker(self, queue_config: Any, n_workers: int, job_type: str, resource_type: str,
                                maker: Any = None) -> int:
        return self._ask(queue_config, maker, "get_num_jobs_per_worker", n_workers, default=1)

    def get_num_workers_per_job(self, queue_config: Any, n_workers: int, job_type: str, resource_type: str,
                                maker: Any = None) -> int:
        return self._ask(queue_config, maker, "get_num_workers_per_job", n_workers, default=1)

    def num_ready_resources(self, queue_config: Any, job_type: str, resource_type: str, maker: Any = None) -> int:
        return self._ask(queue_config, maker, "num_ready_resources", default=0)

    def get_max_workers_per_job_in_total(self, queue_config: Any, job_type: str, resource_type: str,
                                         maker: Any = None) -> int | None:
        return self._ask(queue_config, maker, "get_max_workers_per_job_in_total", default=None)

    def get_max_workers_per_job_per_cycle(self, queue_config: Any, job_type: str, resource_type: str,
                                          maker: Any = None) -> int | None:
        return self._ask(queue_config, maker, "get_max_workers_per_job_per_cycle", default=None)
