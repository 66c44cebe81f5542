"""What the Preparator and the Stager share: their steps, chunk by chunk (:class:`StageStep`).

Per chunk (``CHUNK_SIZE`` jobs, the base's batch skeleton): one queue-config look-up per site,
one re-lock transaction for every job (``lock_jobs_again``), the plugin calls job by job, then
the base's flush writes the results in one transaction (``update_jobs_each`` /
``update_jobs_for_stage_out``). A chunk whose plugin calls outlast half of ``lockInterval``
stops there: the rest goes into the next chunk and is re-locked first, so no job is handled on
a lock older than that. The write still follows the plugin's side effect: a crash in between
leaves the chunk's jobs locked, and they are picked again once the lock is older than
``lockInterval`` (as a crash between a single job's plugin call and its write did before).
Routine outcomes (DEBUG/INFO) become one line per distinct message with the PandaIDs concerned;
warnings and errors stay one line per job.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any, Callable, Sequence

from pandaharvester.harvesterbody.agent_base import Step
from pandaharvester.harvestercore import core_utils
from pandaharvester.harvestercore.log_utils import ids_text

# jobs per re-lock and per write transaction
CHUNK_SIZE = 100


class LockDeadline:
    """Half of ``lock_interval`` from now: past it, the chunk's re-lock is too old to go on."""

    def __init__(self, lock_interval: float) -> None:
        self.at = time.monotonic() + max(float(lock_interval or 0), 0.0) / 2

    def passed(self) -> bool:
        return time.monotonic() > self.at


class Outcomes:
    """Routine per-job messages of one chunk, logged as one line per (level, message)."""

    def __init__(self) -> None:
        self._ids: dict[tuple[str, str], list[Any]] = defaultdict(list)

    def add(self, level: str, message: str, panda_id: Any) -> None:
        """Remember that job ``panda_id`` had ``message`` (level ``debug`` or ``info``)."""
        self._ids[(level, message)].append(panda_id)

    def flush(self, log: Any) -> None:
        """Log every message once with its PandaID list (``PandaID=1 PandaID=2``) and forget them."""
        for (level, message), ids in self._ids.items():
            getattr(log, level)(f"{message}: {ids_text('PandaID', ids)}")
        self._ids.clear()


# run_one(job, extra, log, writes, outcomes): one job's plugin calls; its results go to writes
RunOne = Callable[[Any, Any, Any, list, Outcomes], None]
# write(writes, chunk_log, outcomes): queue the chunk's results in the agent's write batch
Write = Callable[[list, Any, Outcomes], None]


class StageStep:
    """One step (check, trigger, zip) of the Preparator or the Stager, as the base's chunk hooks.

    ``extra`` handed to ``run_one`` is the job's queue config, or ``(queue config, plugin)`` with
    ``plugin_of(queue_config)`` (a job whose queue has no such plugin is logged and left locked).
    """

    def __init__(self, agent: Any, name: str, run_one: RunOne, write: Write, time_column: str, lock_column: str,
                 lock_interval: float, plugin_of: Callable[[Any], Any] | None = None) -> None:
        self.agent = agent
        self.name = name  # the step's name in its log lines (e.g. ``check_job``)
        self.run_one = run_one
        self.write = write
        self.time_column = time_column
        self.lock_column = lock_column
        self.lock_interval = lock_interval
        self.plugin_of = plugin_of
        self.outcomes = Outcomes()
        self.log = self._log()

    def _log(self, job: Any = None) -> Any:
        token = f"PandaID={job.PandaID}" if job is not None else f"thr={self.agent.locked_by}"
        return self.agent.make_logger(self.agent.logger, token, method_name=self.name)

    def step(self, pick: Callable[[], Sequence[Any] | None], max_jobs: int) -> Step:
        """The :class:`~pandaharvester.harvesterbody.agent_base.Step` running this over ``pick()``."""
        return Step(self.name, pick, self.process, CHUNK_SIZE, self.relock, self.after_chunk,
                    full=lambda jobs: len(jobs) >= max_jobs)

    # ------------------------------------------------------------ chunk hooks
    def relock(self, jobs: list[Any]) -> list[tuple[Any, Any]]:
        """``[(job, extra)]`` for the chunk's jobs that have a queue config (and plugin) and are
        still locked by this thread (their time column refreshed)."""
        self.log = self._log()
        pairs = []
        for job, queue_config in self.queue_configs(jobs):
            if self.plugin_of is None:
                pairs.append((job, queue_config))
                continue
            plugin = self.plugin_of(queue_config)
            if plugin is None:
                self._log(job).error(f"no {self.agent.cfg_section} plugin for {job.computingSite}")
            else:
                pairs.append((job, (queue_config, plugin)))
        if not pairs:
            return []
        kept = set(self.agent.dbProxy.lock_jobs_again([job.PandaID for job, _ in pairs], self.time_column,
                                                      self.lock_column, self.agent.locked_by))
        for job, _ in pairs:
            if job.PandaID not in kept:
                self.outcomes.add("debug", "skipped: locked by another thread", job.PandaID)
        return [(job, extra) for job, extra in pairs if job.PandaID in kept]

    def process(self, locked: list[tuple[Any, Any]]) -> list[Any]:
        """``run_one`` for each re-locked job (an exception is logged and drops only that job's
        writes), then ``write`` of the results; returns the jobs not reached before half of
        ``lock_interval`` passed (they lead the next chunk)."""
        deadline = LockDeadline(self.lock_interval)
        writes: list[Any] = []
        left: list[Any] = []
        for index, (job, extra) in enumerate(locked):
            if index and deadline.passed():
                left = [pending for pending, _ in locked[index:]]
                break
            log = self._log(job)
            mine: list[Any] = []
            try:
                self.run_one(job, extra, log, mine, self.outcomes)
            except Exception:
                core_utils.dump_error_message(log)
                continue
            writes += mine
        if writes:
            self.write(writes, self.log, self.outcomes)
        return left

    def after_chunk(self) -> None:
        self.outcomes.flush(self.log)

    def queue_configs(self, jobs: Sequence[Any]) -> list[tuple[Any, Any]]:
        """``[(job, queue_config)]`` for the jobs whose queue is known; one look-up per
        (site, configID). Jobs of an unknown queue are left for a later cycle, with one error
        line per queue naming them."""
        dynamic = core_utils.dynamic_plugin_change()
        found: dict[tuple[Any, Any], Any] = {}
        missing: dict[tuple[Any, Any], list[Any]] = defaultdict(list)
        result = []
        for job in jobs:
            key = (job.computingSite, job.configID if dynamic else None)
            if key not in found:
                found[key] = self.agent.queue_config(*key, exact=True)
            if found[key] is None:
                missing[key].append(job.PandaID)
            else:
                result.append((job, found[key]))
        for (site, config_id), ids in missing.items():
            self.log.error(f"no queue config for {site}/{config_id}; jobs left for a later cycle: "
                           f"{ids_text('PandaID', ids)}")
        return result


def log_unwritten(log: Any, jobs: Sequence[Any], replies: list | None) -> None:
    """An error naming every job when the chunk's write failed (``replies`` None: a DB error,
    nothing written)."""
    if replies is None:
        log.error("the results were not written (DB error); the jobs are retried after lockInterval: "
                  f"{ids_text('PandaID', (job.PandaID for job in jobs))}")
