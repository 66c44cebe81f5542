"""What the Preparator and the Stager share to work on their jobs chunk by chunk.

Per chunk (``CHUNK_SIZE`` jobs): one queue-config look-up per site, one re-lock transaction for
every job (``lock_jobs_again``), the plugin calls job by job, then one write transaction for the
results (``update_jobs_each`` / ``update_jobs_for_stage_out``). A chunk whose plugin calls
outlast half of ``lockInterval`` stops there: the rest goes into the next chunk and is re-locked
first, so no job is handled on a lock older than that. The write still follows the
plugin's side effect: a crash in between leaves the chunk's jobs locked, and they are picked
again once the lock is older than ``lockInterval`` (as a crash between a single job's plugin
call and its write did before). Routine outcomes (DEBUG/INFO) become one line per distinct
message with the PandaIDs concerned; warnings and errors stay one line per job.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any, Callable, Sequence

from pandaharvester.harvestercore import core_utils
from pandaharvester.harvestercore.log_utils import ids_text

# jobs per re-lock and per write transaction
CHUNK_SIZE = 100


def run_in_chunks(jobs: Sequence[Any], run_chunk: Callable[[list[Any]], list[Any]],
                  size: int | None = None) -> None:
    """Call ``run_chunk`` on chunks of ``jobs``; the jobs it hands back (not reached before its
    lock deadline) lead the next chunk."""
    size = size or CHUNK_SIZE
    pending = list(jobs)
    while pending:
        chunk, pending = pending[:size], pending[size:]
        left = run_chunk(chunk)
        if len(left) >= len(chunk):  # no progress at all: never loop for ever
            left = left[1:]
        pending = list(left) + pending


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


def queue_configs(jobs: Sequence[Any], mapper: Any, log: Any) -> list[tuple[Any, Any]]:
    """``[(job, queue_config)]`` for the jobs whose queue is known; one look-up per
    (site, configID). Jobs of an unknown queue are left for a later cycle, with one error line
    per queue naming them."""
    dynamic = core_utils.dynamic_plugin_change()
    found: dict[tuple[Any, Any], Any] = {}
    missing: dict[tuple[Any, Any], list[Any]] = defaultdict(list)
    result = []
    for job in jobs:
        key = (job.computingSite, job.configID if dynamic else None)
        if key not in found:
            found[key] = mapper.get_queue(*key) if mapper.has_queue(*key) else None
        if found[key] is None:
            missing[key].append(job.PandaID)
        else:
            result.append((job, found[key]))
    for (site, config_id), ids in missing.items():
        log.error(f"no queue config for {site}/{config_id}; jobs left for a later cycle: "
                  f"{ids_text('PandaID', ids)}")
    return result


def relock(db_proxy: Any, pairs: list[tuple[Any, Any]], time_column: str, lock_column: str, locked_by: str,
           outcomes: Outcomes) -> list[tuple[Any, Any]]:
    """The pairs whose job is still locked by ``locked_by`` (its time column refreshed)."""
    if not pairs:
        return []
    kept = set(db_proxy.lock_jobs_again([job.PandaID for job, _ in pairs], time_column, lock_column, locked_by))
    for job, _ in pairs:
        if job.PandaID not in kept:
            outcomes.add("debug", "skipped: locked by another thread", job.PandaID)
    return [(job, qc) for job, qc in pairs if job.PandaID in kept]


def run_locked(locked: list[tuple[Any, Any]], lock_interval: float, make_log: Callable[[Any], Any],
               run_one: Callable[[Any, Any, Any, list], None]) -> tuple[list[Any], list[Any]]:
    """``run_one(job, extra, log, writes)`` for each re-locked ``(job, extra)`` pair, with the
    job's own ``make_log(job)`` logger; an exception is logged and drops only that job's writes.
    Returns ``(writes, left)``: the queued writes, and the jobs not reached before half of
    ``lock_interval`` passed (they lead the next chunk)."""
    deadline = LockDeadline(lock_interval)
    writes: list[Any] = []
    for index, (job, extra) in enumerate(locked):
        if index and deadline.passed():
            return writes, [pending for pending, _ in locked[index:]]
        log = make_log(job)
        mine: list[Any] = []
        try:
            run_one(job, extra, log, mine)
        except Exception:
            core_utils.dump_error_message(log)
            continue
        writes += mine
    return writes, []


def log_unwritten(log: Any, writes: list[Any], n_written: int) -> None:
    """An error naming every job of ``writes`` when the chunk's write answered for fewer
    (``n_written``) than it was given (a DB error: nothing written)."""
    if n_written != len(writes):
        log.error("the results were not written (DB error); the jobs are retried after lockInterval: "
                  f"{ids_text('PandaID', (item[0].PandaID for item in writes))}")
