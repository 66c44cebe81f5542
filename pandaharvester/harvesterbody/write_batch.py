"""The DB writes of one chunk of an agent's cycle, made together (see :mod:`agent_base`).

What a chunk's plugin calls decided is not written one row at a time between them: the agent
queues it in ``self.writes`` (a :class:`WriteBatch`) and the base flushes the batch once the
chunk's plugin calls are done, and once more at the end of each step. (A write that must come
before a plugin call, such as the submitter's ``insert_workers`` before the batch submission,
is still made at once.) Writes of the same kind (same DB method,
same extra arguments) are merged into one bulk call, e.g. the kill marks of every worker a
monitor check decided to kill go in one ``mark_workers_to_kill_by_workerids`` call.

Kill marks are written first: the DB marks only workers that are not final yet, so they must
land before the write-back that may end the worker (a worker cancelled after ``checkTimeout`` is
also marked to kill). The other writes follow in the order they were first queued. A write that
raises is logged with its traceback and its items are reported unwritten; the other writes are
still made; a write with a handler reports its own failure, the others get one error line.
When the DB storage refused a write (disk full, read-only, DB file deleted: ``DBStorageError``)
the flush goes on the same way, then raises the first such error for the agent to report once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

from pandaharvester.errors import DBStorageError
from pandaharvester.harvestercore import core_utils

# called once the write is made: (the items it queued, the DB's answer for them)
OnResult = Callable[[list[Any], Any], None]

_FIRST = ("mark_workers_to_kill_by_workerids",)


@dataclass
class _Write:
    """One bulk DB call: ``method(items, *args, **kwargs)``."""

    method: str
    args: tuple
    kwargs: dict
    per_item: bool
    items: list = field(default_factory=list)
    handlers: list[tuple[int, int, OnResult]] = field(default_factory=list)

    def answer(self, reply: Any, start: int, end: int) -> Any:
        """What the handler of ``items[start:end]`` gets: its slice of a per-item reply (None when
        the reply does not have one entry per item: a DB error, nothing written), else the reply."""
        if not self.per_item:
            return reply
        if isinstance(reply, (list, tuple)) and len(reply) == len(self.items):
            return list(reply[start:end])
        return None


class WriteBatch:
    """The writes queued since the last flush; :meth:`flush` makes them, one bulk call per kind."""

    def __init__(self) -> None:
        self._writes: dict[tuple[str, str], _Write] = {}

    def __len__(self) -> int:
        return sum(len(write.items) for write in self._writes.values())

    # ------------------------------------------------------------ what agents queue
    def add(self, method: str, items: Iterable[Any], *args: Any, on_result: OnResult | None = None,
            per_item: bool = True, **kwargs: Any) -> None:
        """Queue ``DBProxy.<method>(items, *args, **kwargs)``, merged with the queued items of the
        same method and arguments. ``per_item``: the method answers one entry per item (``[]``
        after a DB error). ``on_result(items, answer)`` runs after the write (see :meth:`flush`)."""
        items = list(items)
        if not items:
            return
        key = (method, repr((args, sorted(kwargs.items()))))
        write = self._writes.get(key)
        if write is None:
            write = self._writes[key] = _Write(method, args, kwargs, per_item)
        start = len(write.items)
        write.items.extend(items)
        if on_result is not None:
            write.handlers.append((start, len(write.items), on_result))

    def kill_workers(self, worker_ids: Iterable[int]) -> None:
        """Mark workers to kill (the sweeper kills them); written before anything else."""
        self.add("mark_workers_to_kill_by_workerids", worker_ids, per_item=False)

    def update_jobs(self, jobs: Sequence[Any], criteria: dict[str, Any] | None = None, update_in_file: bool = False,
                    update_out_file: bool = False, on_result: OnResult | None = None) -> None:
        """Write the jobs' changes (``update_jobs_bulk``; ``criteria``: the lock they must still hold)."""
        self.add("update_jobs_bulk", jobs, criteria, update_in_file, update_out_file, on_result=on_result)

    def count_submission_attempts(self, jobs: Iterable[Any]) -> None:
        """Store the jobs' ``submissionAttempts`` (``increment_submission_attempts``)."""
        self.add("increment_submission_attempts", [(job.PandaID, job.submissionAttempts) for job in jobs],
                 per_item=False)

    def release_jobs(self, panda_ids: Iterable[int], locked_by: str) -> None:
        """Unlock the jobs still locked by ``locked_by``, after the other writes."""
        self.add("release_jobs", panda_ids, locked_by, per_item=False)

    # ------------------------------------------------------------ the flush
    def flush(self, db: Any, log: Any) -> None:
        """Make every queued write (kill marks first), then run its handlers; the batch is empty after."""
        writes, self._writes = self._writes, {}
        ordered = sorted(writes.values(), key=lambda write: write.method not in _FIRST)
        storage_error: DBStorageError | None = None
        for write in ordered:
            try:
                reply = getattr(db, write.method)(write.items, *write.args, **write.kwargs)
            except DBStorageError as exc:
                storage_error = storage_error or exc
                reply = None
            except Exception:
                core_utils.dump_error_message(log)
                reply = None
            if storage_error is not None and reply is None:
                pass  # said once by the agent
            elif not write.per_item and not write.handlers and (reply is None or reply is False):
                log.error(f"{write.method} failed for {len(write.items)} items: not written (see panda-db_proxy.log)")
            for start, end, handler in write.handlers:
                handler(write.items[start:end], write.answer(reply, start, end))
        if storage_error is not None:
            raise storage_error
