"""Sweeper: kills workers that must go and cleans up workers that are done.

One cycle: turn PanDA's ``KILL_WORKERS`` / ``SYNC_WORKERS_KILL`` commands into kill marks;
kill the marked workers with the queue's sweeper plugin (``kill_workers`` in bulk when the
plugin has it, else ``kill_worker`` one by one); kill, sweep and delete the workers whose
submission was interrupted (still ``pending`` ``[submitter] lockInterval`` after the submitter
recorded them: it crashed before registering them, their batch jobs may run); after the grace periods
(``keepFinished``/``keepFailed``/``keepCancelled``/``keepMissed``/``keepPending`` hours) sweep
final workers (``sweep_worker`` + messenger ``clean_up``) and delete them with their old jobs;
every ``diskCleanUpInterval`` hours, free space in the ``diskHighWatermark`` directories.
"""

from __future__ import annotations

import os
import time
from typing import Any

from pandaharvester.harvesterbody.agent_base import AgentBase, Step
from pandaharvester.harvestercore import core_utils
from pandaharvester.harvestercore.log_utils import ids_text
from pandaharvester.harvestercore.command_spec import CommandSpec

_logger = core_utils.setup_logger("sweeper")


# workers swept per plugin kill call and deleted per DB transaction
DELETE_CHUNK = 500


def _flatten(items: list) -> list:
    """Workers come as a list, or a list of worker chunks: give a flat list."""
    flat = []
    for item in items:
        flat.extend(item if isinstance(item, (list, tuple)) else [item])
    return flat


class Sweeper(AgentBase):
    """Kills and cleans up workers; see the module docstring."""

    cfg_section = "sweeper"

    def __init__(self, queue_config_mapper: Any, single_mode: bool = False):
        super().__init__(single_mode, queue_config_mapper=queue_config_mapper)
        self._last_disk_cleanup = 0.0

    def steps(self) -> list[Step]:
        max_workers = self.cfg("maxWorkers")
        return [Step("kill_marked_workers", self.pick_to_kill, self.kill_groups, chunk_size=1,
                     full=lambda groups: sum(len(workers) for _q, _id, workers in groups) >= max_workers),
                Step("clean_up_interrupted_submissions", self.pick_interrupted, self.clean_up_interrupted,
                     chunk_size=1),
                Step("clean_up_workers", self.pick_to_clean_up, self.clean_up_groups, chunk_size=1)]

    def run_cycle(self) -> bool:
        self.process_kill_commands()
        full = super().run_cycle()
        self.dbProxy.delete_old_jobs(max(self._keep_hours().values()) + 1)
        self.dbProxy.delete_orphaned_job_info()
        self.clean_up_disk()
        return full

    def _groups(self, worker_map: dict) -> list[tuple[str, Any, list]]:
        """``[(queueName, configID, workers)]`` of a picker's {queue: {configID: workers}}."""
        return [(queue_name, config_id, _flatten(workers)) for queue_name, by_config in worker_map.items()
                for config_id, workers in by_config.items()]

    # ------------------------------------------------------------------ kill
    def process_kill_commands(self) -> None:
        log = self.make_logger(_logger, f"id={self.get_pid()}", method_name="process_kill_commands")
        for command in self.dbProxy.get_commands_for_receiver("sweeper") or []:
            params = command.params
            if command.command == CommandSpec.COM_killWorkers:
                n_marked = self.dbProxy.mark_workers_to_kill_by_query(params or {})
            elif command.command == CommandSpec.COM_syncWorkersKill:
                n_marked = self.dbProxy.mark_workers_to_kill_by_workerids(params or [])
            else:
                log.warning(f"ignored unknown command {command.command!r}")
                continue
            log.info(f"{command.command} params={params}: {n_marked} workers marked to kill")

    def pick_to_kill(self) -> list[tuple[str, Any, list]]:
        """The workers whose kill mark is due (``killTime`` moved on by ``checkInterval``)."""
        return self._groups(self.dbProxy.get_workers_to_kill(self.cfg("maxWorkers"), self.cfg("checkInterval")) or {})

    def kill_groups(self, groups: list[tuple[str, Any, list]]) -> None:
        for queue_name, config_id, workers in groups:
            log = self.make_logger(_logger, f"queueName={queue_name}", method_name="kill_marked_workers")
            queue_config = self.queue_config(queue_name, config_id, log=log,
                                             consequence=f"{len(workers)} workers not killed")
            if queue_config is not None:
                self.kill_workers(self.pluginFactory.get_plugin(queue_config.sweeper), workers, log)

    def kill_workers(self, sweeper: Any, workers: list, log: Any) -> list[tuple[bool, str]]:
        """Kill with the plugin; one (bool, diag) per worker, never raising."""
        if hasattr(sweeper, "kill_workers"):
            ok, replies = self.call_plugin(log, sweeper, "kill_workers", workers, role="sweeper")
            if not ok:
                replies = [(False, replies)] * len(workers)
        else:
            replies = []
            for work_spec in workers:
                ok, reply = self.call_plugin(log, sweeper, "kill_worker", work_spec, role="sweeper")
                replies.append(reply if ok else (False, reply))
        outcomes: dict[tuple[bool, str], list[Any]] = {}
        for work_spec, (ok, diag) in zip(workers, replies):
            outcomes.setdefault((bool(ok), str(diag)), []).append(work_spec)
        # one line per outcome, with every workerID and batchID concerned
        for (ok, diag), specs in outcomes.items():
            level = log.info if ok else log.error
            level(f"kill {'done' if ok else 'failed'} {diag} for {len(specs)} workers: "
                  f"{' '.join(f'workerID={w.workerID} batchID={w.batchID}' for w in specs)}")
        return list(replies)

    # ------------------------------------------------------------------ interrupted submissions
    def _submit_lock_interval(self) -> float:
        return float(self.cfg_value("submitter", "lockInterval", 600))

    def pick_interrupted(self) -> list[tuple[str, Any, list]]:
        """Workers a crashed submitter left ``pending`` (recorded, maybe submitted, never registered)."""
        return self._groups(self.dbProxy.get_interrupted_submissions(self._submit_lock_interval(),
                                                                     self.cfg("maxWorkers")) or {})

    def clean_up_interrupted(self, groups: list[tuple[str, Any, list]]) -> None:
        """Kill (their batch jobs may run, unknown to harvester), sweep, clean up and delete them;
        their jobs are not touched (another worker takes them once the dead submitter's lock expires)."""
        for queue_name, config_id, workers in groups:
            log = self.make_logger(_logger, f"queueName={queue_name}", method_name="clean_up_interrupted_submissions")
            queue_config = self.queue_config(queue_name, config_id, log=log, consequence="workers kept")
            if queue_config is None:
                continue
            log.warning(f"{len(workers)} workers left pending by an interrupted submission (a crashed "
                        f"submitter): killing and sweeping them: {ids_text('workerID', [w.workerID for w in workers])}")
            sweeper = self.pluginFactory.get_plugin(queue_config.sweeper)
            messenger = self.pluginFactory.get_plugin(queue_config.messenger)
            replies = self.kill_workers(sweeper, workers, log)
            done = [w.workerID for w, (ok, _diag) in zip(workers, replies)
                    if ok and self.sweep_and_clean(sweeper, messenger, w, log)]
            n = self.dbProxy.delete_interrupted_submissions(done, self._submit_lock_interval()) if done else 0
            log.info(f"deleted {n} interrupted submissions: {ids_text('workerID', done)}")

    # ------------------------------------------------------------------ clean up
    def _keep_hours(self) -> dict[str, float]:
        return {"finished": self.cfg("keepFinished"), "failed": self.cfg("keepFailed"),
                "cancelled": self.cfg("keepCancelled"), "missed": self.cfg("keepMissed", 24),
                "pending": self.cfg("keepPending", 24)}

    def pick_to_clean_up(self) -> list[tuple[str, Any, list]]:
        """The final workers past their grace period (``keepFinished`` ... hours)."""
        return self._groups(self.dbProxy.get_workers_for_cleanup(self.cfg("maxWorkers"), self._keep_hours()) or {})

    def clean_up_groups(self, groups: list[tuple[str, Any, list]]) -> None:
        for queue_name, config_id, workers in groups:
            log = self.make_logger(_logger, f"queueName={queue_name}", method_name="clean_up_workers")
            queue_config = self.queue_config(queue_name, config_id, log=log, consequence="workers kept")
            if queue_config is None:
                continue
            sweeper = self.pluginFactory.get_plugin(queue_config.sweeper)
            messenger = self.pluginFactory.get_plugin(queue_config.messenger)
            self.process_in_chunks(workers, lambda chunk: self.sweep_workers(sweeper, messenger, chunk, log),
                                   DELETE_CHUNK, name="clean_up_workers")

    def sweep_workers(self, sweeper: Any, messenger: Any, workers: list, log: Any) -> None:
        """Kill (again, in case) in one plugin call, sweep and clean up each worker, then queue the
        delete of the ones where all went well (one transaction at the chunk's flush). A kill before
        the delete leaves them for the next cycle, which sweeps them again, as with one worker at a time."""
        self.kill_workers(sweeper, workers, log)
        done = [w.workerID for w in workers if self.sweep_and_clean(sweeper, messenger, w, log)]

        def deleted(worker_ids: list[int], ok: Any) -> None:
            if ok:
                log.info(f"swept and deleted {len(worker_ids)} workers: {ids_text('workerID', worker_ids)}")
            else:
                log.error(f"{len(worker_ids)} swept workers not deleted: DB error (see panda-db_proxy.log); retried "
                          f"next cycle: {ids_text('workerID', worker_ids)}")

        self.writes.add("delete_workers", done, per_item=False, on_result=deleted)

    def sweep_and_clean(self, sweeper: Any, messenger: Any, work_spec: Any, log: Any) -> bool:
        """The plugin's sweep and the messenger's clean-up of one worker; False (logged) on failure."""
        ok, reply = self.call_plugin(log, sweeper, "sweep_worker", work_spec, role="sweeper")
        swept, diag = reply if ok else (False, reply)
        if not swept:
            log.error(f"workerID={work_spec.workerID} sweep failed: {diag}; retried next cycle")
            return False
        ok, reply = self.call_plugin(log, messenger, "clean_up", work_spec, default=(None, "skipped"),
                                     role="messenger")
        cleaned, diag = reply if ok else (False, reply)
        if cleaned is False:
            log.error(f"workerID={work_spec.workerID} messenger clean-up failed: {diag}; retried next cycle")
            return False
        return True

    def clean_up_disk(self) -> None:
        """Delete files no active job needs from directories above their high watermark."""
        interval_h = self.cfg("diskCleanUpInterval", None)
        watermarks = self.cfg("diskHighWatermark", None)
        if not interval_h or not watermarks or time.time() - self._last_disk_cleanup < interval_h * 3600:
            return
        if not self.acquire_process_lock("sweeper", interval_h * 3600):
            return
        self._last_disk_cleanup = time.time()
        log = self.make_logger(_logger, f"id={self.get_pid()}", method_name="clean_up_disk")
        entries = watermarks if isinstance(watermarks, list) else str(watermarks).split(",")
        active = None
        for entry in entries:
            directory, _sep, limit = entry.strip().partition("|")
            try:
                limit_bytes = float(limit) * 1024 ** 3
            except ValueError:
                log.error(f"[sweeper] diskHighWatermark entry {entry!r} is not 'dir|GB': skipped")
                continue
            files = self._files_oldest_first(directory)
            used = sum(size for _mtime, size, _path in files)
            if used <= limit_bytes:
                continue
            if active is None:
                active = set(self.dbProxy.get_all_active_input_files() or [])
            for _mtime, size, path in files:
                if used <= limit_bytes:
                    break
                if path in active or os.path.basename(path) in active:
                    continue
                try:
                    os.remove(path)
                    used -= size
                except OSError as exc:
                    log.warning(f"cannot delete {path}: {exc}")
            log.info(f"{directory}: {used / 1024 ** 3:.2f} GB used after clean-up (limit {limit} GB)")

    @staticmethod
    def _files_oldest_first(directory: str) -> list[tuple[float, int, str]]:
        found = []
        for root, _dirs, names in os.walk(directory):
            for name in names:
                path = os.path.join(root, name)
                try:
                    stat = os.stat(path)
                except OSError:
                    continue
                found.append((stat.st_mtime, stat.st_size, path))
        return sorted(found)
