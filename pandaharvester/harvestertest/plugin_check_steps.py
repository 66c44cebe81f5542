"""The scripted lifecycles of the plugin conformance kit, one per role (see :mod:`.plugin_check`).

- batch (submitter, monitor, sweeper, with the messenger): submit → check until final → kill →
  check after kill → sweep (and the messenger's clean-up). A role missing from the set is left
  out: without a submitter the monitor and sweeper get workers whose batch job does not exist,
  without a sweeper the jobs submitted are reported left behind;
- preparator: trigger → check until done → resolve input paths (job and files in the scratch DB,
  written back after each call as the Preparator agent does);
- stager: trigger → check until done (outputs are real files), then zip when it zips;
- zipper: zip (real members), and async zip → post zip when it has them;
- messenger: each method the agents call, on a worker with a job;
- worker maker: a worker for a push chunk and for a pull queue, the sizing answers;
- throttler, credential manager, extractor: their calls, once.
"""

from __future__ import annotations

import os
import time
from typing import Any

from pandaharvester.harvestercore.plugin_contracts import new_spec_fields
from pandaharvester.harvestercore.work_spec import WorkSpec

from .plugin_check import FAIL, PASS, SKIP, WARN, Caller, CheckReport, Options, Plugin, takes, until
from .plugin_check_env import Scratch

_FINAL = (WorkSpec.ST_finished, WorkSpec.ST_failed, WorkSpec.ST_cancelled, WorkSpec.ST_missed)


def _ids(workers: list) -> str:
    return " ".join(f"workerID={w.workerID}" for w in workers)


def _statuses(workers: list, replies: list) -> str:
    return ", ".join(f"workerID={w.workerID} {status}" + (f" ({diag[:80]})" if diag else "")
                     for w, (status, diag) in zip(workers, replies))


class Lifecycle:
    """The shared state of one lifecycle run."""

    def __init__(self, plugins: dict[str, Plugin], scratch: Scratch, report: CheckReport, options: Options,
                 queue_config: Any) -> None:
        self.plugins = plugins
        self.scratch = scratch
        self.report = report
        self.options = options
        self.queue_config = queue_config
        self.caller = Caller(report)

    def add(self, role: str, step: str, outcome: str, message: str, fix: str = "") -> bool:
        """A line; a FAIL names the plugin (unless the message already does)."""
        plugin = self.plugins.get(role)
        if outcome == FAIL and plugin is not None and plugin.label not in message:
            message = f"{plugin.label}: {message}"
        return self.report.add(role, step, outcome, message, fix)

    def not_final(self, role: str, step: str, message: str, fix: str) -> bool:
        """The WARN (FAIL with ``require_final``) of a lifecycle that did not end within the timeout."""
        outcome = FAIL if self.options.require_final else WARN
        return self.add(role, step, outcome, f"{message} after {self.options.timeout:g} s", fix)

    def deadline(self) -> float:
        return time.monotonic() + self.options.timeout

    # ------------------------------------------------------------------ retried calls
    def call_until_decided(self, plugin: Plugin, step: str, method: str, job: Any, write: dict[str, bool]
                           ) -> tuple[bool, Any, float]:
        """Call ``method(job)`` until it answers True or False (None: later); the job's files are
        written to the DB after each call. (call ok, (status, diag) or None, seconds taken)."""
        reply: Any = None
        elapsed = 0.0
        for elapsed in until(self.deadline(), self.options.interval):
            ok, reply = self.caller.call(plugin, step, method, job, guard=[job])
            if not ok:
                return False, None, elapsed
            self.scratch.proxy.update_job(job, **write)
            if reply[0] is not None:
                return True, reply, elapsed
        return True, reply, elapsed


# ---------------------------------------------------------------------------- batch
def run_batch(life: Lifecycle) -> None:
    """Submit, check until final, kill, check again, sweep (each with what is there). Whatever
    failed before, jobs that reached the batch system are killed and swept when there is a sweeper."""
    p = life.plugins
    submitter, monitor, sweeper, messenger = (p.get(r) for r in ("submitter", "monitor", "sweeper", "messenger"))
    scratch = life.scratch
    n = life.options.workers
    healthy = True
    if submitter is not None:
        workers = [scratch.worker([scratch.job(n_inputs=1)]) for _ in range(n)]
        healthy = _submit(life, submitter, messenger, workers)
        if not healthy:
            workers = [w for w in workers if w.batchID not in (None, "")]  # still to be killed
    else:
        workers = []
        for _ in range(n):
            worker = scratch.worker(batch_id="")
            worker.batchID = f"plugin-check-unknown-{worker.workerID}"
            os.makedirs(worker.get_access_point(), exist_ok=True)
            workers.append(worker)
        life.add("submitter", "submit", SKIP, f"no submitter: checking on {n} workers whose batch job does not "
                                              f"exist (batchID=plugin-check-unknown-N)",
                 "give --with submitter=MODULE.CLASS for the whole lifecycle")
    if monitor is not None and healthy:
        healthy = (_check_until_final(life, monitor, workers) if submitter is not None
                   else _check_once(life, monitor, workers, "check unknown"))
    if not workers:
        return
    if sweeper is None:
        if submitter is not None:
            left = [w for w in workers if w.status not in _FINAL]
            life.add("sweeper", "kill", WARN if left else SKIP,
                     f"no sweeper: {len(left)} batch jobs left as they are "
                     f"({' '.join(f'batchID={w.batchID}' for w in left)})" if left else "no sweeper",
                     "give --with sweeper=MODULE.CLASS to kill and sweep them" if left else "")
        return
    if not _kill(life, sweeper, workers):
        return
    if monitor is not None and healthy and not _check_once(life, monitor, workers, "check after kill"):
        return
    _sweep(life, sweeper, messenger, workers)


def _submit(life: Lifecycle, submitter: Plugin, messenger: Plugin | None, workers: list) -> bool:
    call = life.caller.call
    if messenger is not None:
        if life.caller.has(messenger, "setup_access_points"):
            ok, reply = call(messenger, "access points", "setup_access_points", workers, guard=workers)
            if not ok:
                return False
            if reply is False:
                return life.add("messenger", "access points", FAIL, "setup_access_points returned False",
                                "make the workers' access points, or return the failure")
        for worker in workers:
            os.makedirs(worker.get_access_point(), exist_ok=True)
            if life.caller.has(messenger, "feed_jobs"):
                ok, fed = call(messenger, "feed jobs", "feed_jobs", worker, worker.get_jobspec_list(), guard=[worker])
                if not ok:
                    return False
                if not fed:
                    return life.add("messenger", "feed jobs", FAIL, f"feed_jobs returned {fed!r} for workerID="
                                    f"{worker.workerID}: the Submitter does not submit a worker it cannot feed",
                                    "write the jobs for the worker and return True")
        life.add("messenger", "access points", PASS, f"{len(workers)} access points made, jobs fed")
    else:
        for worker in workers:
            os.makedirs(worker.get_access_point(), exist_ok=True)
    ok, replies = call(submitter, "submit", "submit_workers", workers, items=workers, guard=workers)
    if not ok:
        return False
    failed = [(w, diag) for w, (status, diag) in zip(workers, replies) if status is not True]
    if failed:
        return life.add("submitter", "submit", FAIL, "submission failed for " + ", ".join(
            f"workerID={w.workerID}: {diag or 'no diagnostic'}" for w, diag in failed),
            "the kit submits plain workers with one job each: they must be submitted (True)")
    unset = [w for w in workers if w.batchID in (None, "")]
    if unset:
        return life.add("submitter", "submit", FAIL, f"submit_workers returned True but left batchID unset for "
                        f"{_ids(unset)}", "set workspec.batchID, the job's id in the batch system: the monitor "
                                          "and the sweeper find the job by it")
    for worker in workers:
        worker.set_status(WorkSpec.ST_submitted)
    return life.add("submitter", "submit", PASS, f"{len(workers)} workers submitted: "
                    + " ".join(f"workerID={w.workerID} batchID={w.batchID}" for w in workers))


def _check_until_final(life: Lifecycle, monitor: Plugin, workers: list) -> bool:
    replies: list = []
    down = ""
    elapsed = 0.0
    for elapsed in until(life.deadline(), life.options.interval):
        ok, reply = life.caller.call(monitor, "check until final", "check_workers", workers, items=workers,
                                     guard=workers)
        if not ok:
            return False
        checked, replies = reply
        if not checked:
            down, replies = replies, []
            continue
        for worker, (status, _diag) in zip(workers, replies):
            if status is not None:
                worker.set_status(status)
        if all(w.status in _FINAL for w in workers):
            return life.add("monitor", "check until final", PASS,
                            f"final after {elapsed:.1f} s: {_statuses(workers, replies)}")
    if not replies and down:
        return life.add("monitor", "check until final", FAIL, f"check_workers answered (False, {down!r}) for "
                        f"{elapsed:.0f} s", "answer (True, [(status, diag), ...]) once the batch system answers")
    return life.not_final("monitor", "check until final", f"not all final: {_statuses(workers, replies)}",
                          "fine if the batch system is slow; --timeout waits longer, --require-final makes it fail")


def _check_once(life: Lifecycle, monitor: Plugin, workers: list, step: str) -> bool:
    ok, reply = life.caller.call(monitor, step, "check_workers", workers, items=workers, guard=workers)
    if not ok:
        return False
    checked, replies = reply
    if not checked:
        return life.add("monitor", step, WARN, f"check_workers answered (False, {replies!r})")
    return life.add("monitor", step, PASS, _statuses(workers, replies))


def _kill(life: Lifecycle, sweeper: Plugin, workers: list) -> bool:
    if life.caller.has(sweeper, "kill_workers"):
        ok, replies = life.caller.call(sweeper, "kill", "kill_workers", workers, items=workers, guard=workers)
        if not ok:
            return False
        method = "kill_workers"
    else:
        replies, method = [], "kill_worker"
        for worker in workers:
            ok, reply = life.caller.call(sweeper, "kill", "kill_worker", worker, guard=[worker])
            if not ok:
                return False
            replies.append(reply)
    failed = [(w, diag) for w, (ok, diag) in zip(workers, replies) if not ok]
    if failed:
        return life.add("sweeper", "kill", FAIL, f"{method} failed for " + ", ".join(
            f"workerID={w.workerID} batchID={w.batchID}: {diag or 'no diagnostic'}" for w, diag in failed),
            "killing must succeed, also for a job that already ended or that the batch system forgot "
            "(the Sweeper kills again before sweeping)")
    return life.add("sweeper", "kill", PASS, f"{method}: {len(workers)} workers killed ({_ids(workers)})")


def _sweep(life: Lifecycle, sweeper: Plugin, messenger: Plugin | None, workers: list) -> bool:
    for worker in workers:
        ok, reply = life.caller.call(sweeper, "sweep", "sweep_worker", worker, guard=[worker])
        if not ok:
            return False
        swept, diag = reply
        if not swept:
            return life.add("sweeper", "sweep", FAIL, f"sweep_worker failed for workerID={worker.workerID}: {diag}",
                            "clean up after a final worker (an access point already gone is a success)")
        if life.caller.has(messenger, "clean_up"):
            ok, reply = life.caller.call(messenger, "clean up", "clean_up", worker, guard=[worker])
            if not ok:
                return False
            cleaned, diag = reply
            if cleaned is False:
                return life.add("messenger", "clean up", FAIL, f"clean_up failed for workerID={worker.workerID}: "
                                f"{diag}", "remove what the messenger made for the worker, or return (None, why)")
    return life.add("sweeper", "sweep", PASS, f"{len(workers)} workers swept ({_ids(workers)})")


# ---------------------------------------------------------------------------- stage-in / stage-out / zip
def run_preparator(life: Lifecycle) -> None:
    plugin = life.plugins["preparator"]
    job = life.scratch.job(n_inputs=2)
    ok, reply, took = life.call_until_decided(plugin, "trigger", "trigger_preparation", job,
                                              {"update_in_file": True})
    if not ok or not _decided(life, "preparator", "trigger", "trigger_preparation", reply, took, job):
        return
    job.subStatus = "preparing"
    method = "check_stage_in_status" if life.caller.has(plugin, "check_stage_in_status") else "check_status"
    ok, reply, took = life.call_until_decided(plugin, "check until done", method, job, {"update_in_file": True})
    if not ok or not _decided(life, "preparator", "check until done", method, reply, took, job):
        return
    ok, reply = life.caller.call(plugin, "resolve paths", "resolve_input_paths", job, guard=[job])
    if not ok:
        return
    if reply[0] is not True:
        life.add("preparator", "resolve paths", FAIL, f"resolve_input_paths returned {reply}",
                 "set the inputs' local paths and return (True, '')")
        return
    missing = sorted(f.lfn for f in job.inFiles if not f.path)
    if missing:
        life.add("preparator", "resolve paths", FAIL, f"returned True but left inputs without a path: {missing}",
                 "call jobspec.set_input_file_paths({lfn: {'path': ...}}) for every input")
        return
    life.add("preparator", "resolve paths", PASS, ", ".join(f"{f.lfn} -> {f.path}" for f in job.inFiles))


def _decided(life: Lifecycle, role: str, step: str, method: str, reply: Any, took: float, job: Any) -> bool:
    """The line of a trigger/check step: True PASS, False FAIL, still None WARN (FAIL with require_final)."""
    status, diag = reply if reply is not None else (None, "")
    if status is True:
        return life.add(role, step, PASS, f"PandaID={job.PandaID} after {took:.1f} s{f': {diag}' if diag else ''}")
    if status is False:
        return life.add(role, step, FAIL, f"{method} gave up on PandaID={job.PandaID}: {diag or 'no diagnostic'}",
                        "the kit's job is a plain one with small files: it should succeed")
    life.not_final(role, step, f"{method} still answers None for PandaID={job.PandaID} ({diag})",
                   "fine if transfers are slow; --timeout waits longer")
    return False


def run_stager(life: Lifecycle) -> None:
    plugin = life.plugins["stager"]
    job = life.scratch.job(n_inputs=1, with_outputs=True)
    ok, reply, took = life.call_until_decided(plugin, "trigger", "trigger_stage_out", job, {"update_out_file": True})
    if not ok or not _decided(life, "stager", "trigger", "trigger_stage_out", reply, took, job):
        return
    for file_spec in job.outFiles:
        if file_spec.status == "defined":
            file_spec.status = "transferring"  # what the Stager agent does after a trigger
    method = "check_stage_out_status" if life.caller.has(plugin, "check_stage_out_status") else "check_status"
    ok, reply, took = life.call_until_decided(plugin, "check until done", method, job, {"update_out_file": True})
    if not ok or not _decided(life, "stager", "check until done", method, reply, took, job):
        return
    left = sorted(f"{f.lfn} ({f.status})" for f in job.outFiles if f.status not in ("finished", "failed"))
    if left:
        life.add("stager", "outputs", FAIL, f"{method} returned True but left outputs not done: {left}",
                 "set fileSpec.status to 'finished' (or 'failed') for each of jobspec.get_output_file_specs("
                 "skip_done=True)")
        return
    life.add("stager", "outputs", PASS, ", ".join(f"{f.lfn} {f.status}" for f in job.outFiles))
    if life.caller.has(plugin, "zip_output"):
        _zip(life, plugin, "zip_output")


def run_zipper(life: Lifecycle) -> None:
    plugin = life.plugins["zipper"]
    if not _zip(life, plugin, "zip_output"):
        return
    if life.caller.has(plugin, "async_zip_output") and life.caller.has(plugin, "post_zip_output"):
        _zip(life, plugin, "async_zip_output", "post_zip_output")


def _zip(life: Lifecycle, plugin: Plugin, method: str, then: str | None = None) -> bool:
    job = life.scratch.zip_job()
    for name in (method, then) if then else (method,):
        ok, reply, took = life.call_until_decided(plugin, name, name, job, {"update_out_file": True})
        if not ok or not _decided(life, plugin.role, name, name, reply, took, job):
            return False
    unset = [f.lfn for f in job.outFiles if not (f.path and f.fsize and f.chksum)]
    if unset:
        return life.add(plugin.role, "zip files", FAIL, f"{then or method} returned True but zip files lack "
                        f"path/fsize/chksum: {unset}", "set path, fsize and chksum of each zip FileSpec")
    return life.add(plugin.role, "zip files", PASS, ", ".join(f"{f.lfn} {f.fsize} bytes at {f.path}"
                                                               for f in job.outFiles))


# ---------------------------------------------------------------------------- the others
def run_messenger(life: Lifecycle) -> None:
    plugin = life.plugins["messenger"]
    worker = life.scratch.worker([life.scratch.job(n_inputs=1)])
    jobs = worker.get_jobspec_list()
    calls = (("setup_access_points", ([worker],)), ("feed_jobs", (worker, jobs)), ("job_requested", (worker,)),
             ("kill_requested", (worker,)), ("is_alive", (worker, 60)), ("get_work_attributes", (worker,)),
             ("get_files_to_stage_out", (worker,)), ("events_requested", (worker,)), ("feed_events", (worker, {})),
             ("events_to_update", (worker,)), ("get_panda_ids", (worker,)), ("acknowledge_events_files", (worker,)),
             ("post_processing", (worker, jobs, worker.mapType)), ("clean_up", (worker,)))
    done = []
    for method, args in calls:
        if not life.caller.has(plugin, method):
            continue
        if method != "setup_access_points":
            os.makedirs(worker.get_access_point(), exist_ok=True)
        ok, reply = life.caller.call(plugin, method, method, *args, guard=[worker])
        if not ok:
            return
        if method == "feed_jobs" and not reply:
            life.add("messenger", method, WARN, f"feed_jobs returned {reply!r}: push workers of this messenger are "
                                                "never submitted (fine for a pull-only messenger)")
        if method == "clean_up" and reply[0] is False:
            life.add("messenger", method, FAIL, f"clean_up failed: {reply[1]}", "return (True, '') or (None, why)")
            return
        done.append(method)
    life.add("messenger", "methods", PASS, f"{len(done)} methods answered in shape: {', '.join(done)}")


def run_workermaker(life: Lifecycle) -> None:
    plugin = life.plugins["workermaker"]
    qc = life.scratch.queue_config(attrs=life.queue_config)
    for step, jobs in (("push worker", [life.scratch.job(n_inputs=1)]), ("pull worker", [])):
        # as the WorkerMaker: with prod_source_label when the maker takes it (the interface step warned if not)
        extra = {"prod_source_label": "managed"} if takes(plugin, "make_worker", 4, "prod_source_label") else {}
        ok, worker = life.caller.call(plugin, step, "make_worker", jobs, qc, "managed", "SCORE", guard=jobs, **extra)
        if not ok:
            return
        if worker is None:
            outcome = FAIL if jobs else WARN
            life.add("workermaker", step, outcome, f"make_worker returned None for {len(jobs)} job(s)",
                     "return a WorkSpec for a plain one-job chunk" if jobs else "")
            if jobs:
                return
            continue
        for line in new_spec_fields("workermaker", worker, plugin=plugin.instance, method="make_worker"):
            life.add("workermaker", step, WARN, line)
        life.add("workermaker", step, PASS, f"nCore={worker.nCore} minRamCount={worker.minRamCount} "
                                            f"maxWalltime={worker.maxWalltime} resourceType={worker.resourceType}")
    answers = []
    for method, args in (("get_num_jobs_per_worker", (1,)), ("get_num_workers_per_job", (1,)),
                         ("num_ready_resources", ()), ("get_max_workers_per_job_in_total", ()),
                         ("get_max_workers_per_job_per_cycle", ())):
        if life.caller.has(plugin, method):
            ok, reply = life.caller.call(plugin, "sizing", method, *args)
            if not ok:
                return
            answers.append(f"{method}={reply}")
    if answers:
        life.add("workermaker", "sizing", PASS, ", ".join(answers))


def run_throttler(life: Lifecycle) -> None:
    plugin = life.plugins["throttler"]
    qc = life.scratch.queue_config(attrs=life.queue_config)
    extra = {"queue_config_mapper": None} if takes(plugin, "to_be_throttled", 1, "queue_config_mapper") else {}
    ok, reply = life.caller.call(plugin, "throttle", "to_be_throttled", qc, **extra)
    if ok:
        life.add("throttler", "throttle", PASS, f"to_be_throttled -> {reply}")


def run_credmanager(life: Lifecycle) -> None:
    plugin = life.plugins["credmanager"]
    ok, valid = life.caller.call(plugin, "check", "check_credential")
    if not ok:
        return
    life.add("credmanager", "check", PASS, f"check_credential -> {valid}")
    ok, reply = life.caller.call(plugin, "renew", "renew_credential")
    if not ok:
        return
    renewed, diag = reply
    if not renewed:
        life.add("credmanager", "renew", FAIL, f"renew_credential failed: {diag}",
                 "give the plugin a credential source it can renew from (inCertFile, ...)")
        return
    life.add("credmanager", "renew", PASS, "renew_credential -> True")
    if life.caller.has(plugin, "check_credential_lifetime"):
        ok, hours = life.caller.call(plugin, "lifetime", "check_credential_lifetime")
        if ok:
            life.add("credmanager", "lifetime", PASS, f"check_credential_lifetime -> {hours}")


def run_extractor(life: Lifecycle) -> None:
    plugin = life.plugins["extractor"]
    job = life.scratch.job(n_inputs=1, transformation="http://pandaserver.cern.ch/trf/user/runGen-00-00-02")
    job.jobParams["container_name"] = "docker://atlas/athena:23.0.54"
    ok, reply = life.caller.call(plugin, "aux inputs", "get_aux_inputs", job, guard=[job])
    if ok:
        life.add("extractor", "aux inputs", PASS, f"{len(reply)} aux inputs: {', '.join(sorted(reply)) or 'none'}")


_RUNNERS = {"submitter": run_batch, "monitor": run_batch, "sweeper": run_batch, "preparator": run_preparator,
            "stager": run_stager, "zipper": run_zipper, "messenger": run_messenger, "workermaker": run_workermaker,
            "throttler": run_throttler, "credmanager": run_credmanager, "extractor": run_extractor}


def run_lifecycle(role: str, plugins: dict[str, Plugin], scratch: Scratch, report: CheckReport, options: Options,
                  queue_config: Any) -> None:
    """Drive the plugins of ``role`` (and its companions) through the role's lifecycle."""
    _RUNNERS[role](Lifecycle(plugins, scratch, report, options, queue_config))
