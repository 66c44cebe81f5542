"""The states of workers, jobs, files and events, and the rules that move them: one definition.

Everything that names a status, a set of statuses, or decides which status or time comes next
is here (the shape of Parsl's ``parsl/jobs/states.py``): the spec classes take their constants
from this module (``WorkSpec.ST_finished`` is :data:`WORKER_FINISHED`), the DB modules build
their SQL status lists from these sets (``db/base.py``) and only persist what the functions
below return, and the agents take the sets and transitions they share with the core from here.

The values are the original's strings (stored in the DB, sent to PanDA, in pickles), so every
constant is a plain ``str`` and every set a tuple (its order is the order of the SQL lists).
Nothing here reads the cfg, the DB or the clock unless told to (``now=None``: the clock).
"""

from __future__ import annotations

import datetime
import itertools
from typing import Any, Iterable, NamedTuple, Sequence

from .time_utils import naive_utcnow

# ====================================================================== workers
WORKER_SUBMITTED = "submitted"
WORKER_RUNNING = "running"
WORKER_FINISHED = "finished"
WORKER_FAILED = "failed"
WORKER_READY = "ready"  # late binding: the worker asked for a job
WORKER_CANCELLED = "cancelled"
WORKER_IDLE = "idle"
WORKER_MISSED = "missed"  # Harvester lost the worker (never submitted, or gone from the batch system)
WORKER_PENDING = "pending"  # internal: inserted before submission, never reported

#: the statuses a plugin may report (``WorkSpec.ST_LIST``; pending is internal)
WORKER_REPORTABLE = (WORKER_SUBMITTED, WORKER_RUNNING, WORKER_FINISHED, WORKER_FAILED, WORKER_READY,
                     WORKER_CANCELLED, WORKER_IDLE, WORKER_MISSED)
#: nothing more happens to the worker (``WorkSpec.is_final_status``)
WORKER_FINAL = (WORKER_FINISHED, WORKER_FAILED, WORKER_CANCELLED, WORKER_MISSED)
#: final and known to be over in the batch system: not worth a kill, and the statuses a monitor
#: plugin ends a worker with (a ``missed`` worker may still exist somewhere, so it can be killed)
WORKER_ENDED = (WORKER_FINISHED, WORKER_FAILED, WORKER_CANCELLED)
#: watched by the monitor; their jobs count them as live workers
WORKER_ACTIVE = (WORKER_SUBMITTED, WORKER_RUNNING, WORKER_IDLE)
#: waiting in the batch system, for the queue limits (pending: being submitted)
WORKER_QUEUED = (WORKER_SUBMITTED, WORKER_PENDING, WORKER_IDLE)
#: a worker in these may ask for events (and is counted per computing element)
WORKER_EVENT_FEEDABLE = (WORKER_RUNNING, WORKER_SUBMITTED)
#: the statuses counted in the worker stats reported to PanDA
WORKER_COUNTED = (WORKER_RUNNING, WORKER_SUBMITTED, WORKER_FINISHED)

# ====================================================================== jobs
JOB_STARTING = "starting"
JOB_RUNNING = "running"
JOB_TRANSFERRING = "transferring"  # reported while a final job still stages out (JobSpec.get_status)
JOB_FINISHED = "finished"
JOB_FAILED = "failed"
JOB_CANCELLED = "cancelled"
JOB_MISSED = "missed"

#: nothing more happens to the job in PanDA (``JobSpec.is_final_status``)
JOB_FINAL = (JOB_FINISHED, JOB_FAILED, JOB_CANCELLED, JOB_MISSED)
#: the job statuses a payload may report in the worker's attributes (``jobStatus``) to end its job
JOB_PAYLOAD_END = (JOB_FINISHED, JOB_FAILED)

# job sub-statuses (Harvester's own progress of a job)
SUB_FETCHED = "fetched"
SUB_PREPARED = "prepared"
SUB_QUEUED = "queued"  # bound to a worker that has no job yet (late binding)
SUB_SUBMITTED = "submitted"
SUB_RUNNING = "running"
SUB_IDLE = "idle"
SUB_MISSED = "missed"
SUB_TO_TRANSFER = "to_transfer"
SUB_TRANSFERRING = "transferring"
SUB_STAGED = "staged"
SUB_DONE = "done"
SUB_KILLED = "killed"
SUB_FAILED_TO_MAKE = "failed_to_make"
SUB_FAILED_TO_PREPARE = "failed_to_prepare"
SUB_FAILED_TO_STAGE_OUT = "failed_to_stage_out"

#: a job at a worker: its worker may still report on it (``get_jobs_with_worker_id(only_running=True)``)
SUB_AT_WORKER = (SUB_RUNNING, SUB_SUBMITTED, SUB_QUEUED, SUB_IDLE)
#: a job whose worker runs it: a registered worker is counted in its nWorkers and related to it
SUB_WITH_WORKER = (SUB_SUBMITTED, SUB_RUNNING)

# JobSpec.hasOutFile: what the job's output files wait for
HO_NO_OUTPUT = 0
HO_HAS_OUTPUT = 1  # outputs to stage out
HO_HAS_ZIP_OUTPUT = 2  # outputs to zip
HO_HAS_TRANSFER = 3  # transfers to check
HO_HAS_POST_ZIP_OUTPUT = 4  # zips to check

# ====================================================================== files
FILE_TO_PREPARE = "to_prepare"
FILE_PREPARING = "preparing"
FILE_TRIGGERED = "triggered"
FILE_READY = "ready"
FILE_DEFINED = "defined"  # an output to stage out
FILE_PENDING = "pending"  # an output waiting for its zip
FILE_ZIPPING = "zipping"  # a zip file to make
FILE_ZIPPED = "zipped"  # an output inside a zip file
FILE_POST_ZIPPING = "post_zipping"
FILE_TRANSFERRING = "transferring"
FILE_RENEWED = "renewed"  # a checkpoint file reported again
FILE_FINISHED = "finished"
FILE_FAILED = "failed"
FILE_DONE = "done"  # an input of a final job

#: an output that needs nothing more
FILE_FINAL = (FILE_FINISHED, FILE_FAILED)
#: an input that needs nothing more from the preparator
FILE_INPUT_SETTLED = (FILE_READY, FILE_FAILED)
#: an input in these for another job is looked after by that job: no second stage-in
FILE_INPUT_TAKEN = (FILE_READY, FILE_PREPARING, FILE_TO_PREPARE, FILE_TRIGGERED)

# file types with a rule of their own
TYPE_INPUT = "input"
TYPE_AUX_INPUT = "aux_input"
TYPE_CHECKPOINT = "checkpoint"
TYPE_ZIP_OUTPUT = "zip_output"
#: the file types read as a job's inputs
INPUT_TYPES = (TYPE_INPUT, TYPE_AUX_INPUT)

# ====================================================================== events
EVENT_RUNNING = "running"
EVENT_FINISHED = "finished"
EVENT_FAILED = "failed"
EVENT_DONE = "done"  # subStatus: reported to PanDA
EVENT_TRANSFERRING = "transferring"  # subStatus: its output is being staged out

#: an event's subStatus after which its output needs nothing more (``EventSpec.is_final_status``)
EVENT_FINAL = (EVENT_FINISHED, EVENT_DONE, EVENT_FAILED)
#: the subStatuses of events waiting to be reported to PanDA
EVENT_TO_REPORT = (EVENT_FINISHED, EVENT_FAILED)


def worker_may_become(current: str | None, new: str | None) -> bool:
    """False for the one transition a worker refuses: back to submitted once running or idle
    (a batch system's late answer)."""
    return not (new == WORKER_SUBMITTED and current in (WORKER_RUNNING, WORKER_IDLE))


# ====================================================================== worker → job
def job_status_of_worker(worker_status: str | None) -> tuple[str, str | None]:
    """(job status, job subStatus) that a worker's status means for the jobs it runs.

    A worker waiting (submitted/ready) leaves its jobs starting; an ended worker ends them with
    its status, their outputs still ``to_transfer``; a missed worker makes them missed; any other
    status (running, idle, ...) has them running, with the worker's status as sub-status.
    """
    if worker_status in (WORKER_SUBMITTED, WORKER_READY):
        return JOB_STARTING, worker_status
    if worker_status in WORKER_ENDED:
        return worker_status, SUB_TO_TRANSFER  # type: ignore[return-value]
    if worker_status == WORKER_MISSED:
        return JOB_MISSED, worker_status
    return JOB_RUNNING, worker_status


def combined_worker_status(worker_statuses: Iterable[str | None], job_status: str | None) -> str:
    """The one worker status a job run by several workers (OneToMany) follows.

    Once every worker is final: finished if one finished, else failed if one failed, else
    cancelled. Before that: running if one runs (or the job runs already), else submitted.
    """
    statuses = list(worker_statuses)
    if all(s in WORKER_FINAL for s in statuses):
        if WORKER_FINISHED in statuses:
            return WORKER_FINISHED
        return WORKER_FAILED if WORKER_FAILED in statuses else WORKER_CANCELLED
    if WORKER_RUNNING in statuses or job_status == JOB_RUNNING:
        return WORKER_RUNNING
    return WORKER_SUBMITTED


# ====================================================================== times
def stamp_start(spec: Any, now: datetime.datetime | None = None, force: bool = False) -> None:
    """``startTime`` = now unless already set (or ``force``)."""
    if spec.startTime is None or force is True:
        spec.startTime = now or naive_utcnow()


def stamp_end(spec: Any, now: datetime.datetime | None = None, force: bool = False) -> None:
    """``endTime`` = now unless already set (or ``force``)."""
    if spec.endTime is None or force is True:
        spec.endTime = now or naive_utcnow()


def stamp_both(spec: Any, now: datetime.datetime | None = None) -> None:
    """``startTime`` = ``endTime`` = now (a job that never really ran)."""
    now = now or naive_utcnow()
    stamp_start(spec, now, force=True)
    stamp_end(spec, now, force=True)


def stamp_times(spec: Any, status: str | None, now: datetime.datetime | None = None, *,
                fill_start: bool = False) -> None:
    """The clock rule of a worker (or of a job following its worker) entering ``status``.

    Running starts the clock (``startTime``), a final status stops it (``endTime``); a time
    already set is kept. With ``fill_start`` (the monitor's write of a worker) a final status
    also starts a clock never started: the worker ran between two checks, start unknown.
    Used by ``WorkSpec.set_status``, the monitor's write-back and ``spec_utils``.
    """
    if status == WORKER_RUNNING:
        stamp_start(spec, now)
    elif status in WORKER_FINAL:
        if fill_start:
            stamp_start(spec, now)
        stamp_end(spec, now)


def stamp_job_from_worker(job: Any, worker_status: str | None, pilot_closed: bool,
                          now: datetime.datetime | None = None) -> None:
    """The clock of a job following one worker: :func:`stamp_times`, except that a closed pilot
    (not running) sets both times to now: the job never really ran."""
    if pilot_closed and worker_status != WORKER_RUNNING:
        stamp_both(job, now)
    else:
        stamp_times(job, worker_status, now)


def change_job_status(job: Any, status: str, sub_status: str, now: datetime.datetime | None = None) -> None:
    """An agent's decision about a job (fetched, failed to make/prepare, killed): status,
    subStatus and ``stateChangeTime`` together. A job following its workers keeps its
    stateChangeTime, as in the original."""
    job.status = status
    job.subStatus = sub_status
    job.stateChangeTime = now or naive_utcnow()


# ====================================================================== output files
def new_output_status(file_type: str | None, is_zip: int | None, zip_per_mb: int | None) -> tuple[str, int | None]:
    """(status, the job's new hasOutFile or None) of an output a worker reports for the first time.

    Outputs of a job that zips (``zipPerMB`` set) wait ``pending`` for their zip, unless the file
    says whether it is a zip (``isZip`` 0/1); otherwise a checkpoint is ``renewed`` and any other
    file ``defined``, to stage out.
    """
    if zip_per_mb is not None and is_zip not in (0, 1):
        return FILE_PENDING, None
    if file_type == TYPE_CHECKPOINT:
        return FILE_RENEWED, None
    return FILE_DEFINED, HO_HAS_OUTPUT


def new_input_status(statuses_elsewhere: Iterable[str | None]) -> str:
    """The status of a new job's input given the statuses the same file has in other starting
    jobs: ``preparing`` (wait for the other job's stage-in) when one looks after it, else
    ``to_prepare``."""
    return FILE_PREPARING if any(s in FILE_INPUT_TAKEN for s in statuses_elsewhere) else FILE_TO_PREPARE


def wants_zipping(zip_per_mb: int | None, sub_status: str | None) -> bool:
    """Whether the monitor looks for zip groups in the job's pending outputs: the job zips, and
    with ``zipPerMB`` 0 (one zip at the end) only once its outputs are to transfer."""
    return zip_per_mb is not None and not (zip_per_mb == 0 and sub_status != SUB_TO_TRANSFER)


class PendingFile(NamedTuple):
    """An output waiting for its zip (a row of file_table in ``pending``)."""

    file_id: int
    fsize: int | None
    lfn: str
    provenance: str | None
    worker: int | None


def zip_groups(pending: Sequence[PendingFile], zip_per_mb: int, sub_status: str | None,
               active_workers: Iterable[int]) -> list[list[PendingFile]]:
    """The zip files to make now from a job's pending outputs: lists of files, each one zip.

    ``pending`` is ordered by (provenance, worker, fileID): files of one provenance and worker
    go in the same zips, each zip up to ``zipPerMB`` MiB (0: no limit). A group is zipped when
    the job's outputs are to transfer, when it holds more than the limit, or when the worker that
    made it is no longer active on the job (``active_workers``); then its last, smaller zip
    waits for more files unless the group is complete (transfer, or its worker gone).
    """
    limit = zip_per_mb * 1024 * 1024
    to_transfer = sub_status == SUB_TO_TRANSFER
    active = set(active_workers)
    groups: list[list[PendingFile]] = []
    for (_provenance, worker), members in itertools.groupby(pending, key=lambda f: (f.provenance, f.worker)):
        files = list(members)
        complete = to_transfer or (worker is not None and worker not in active)
        if not (complete or (zip_per_mb > 0 and sum(f.fsize or 0 for f in files) > limit)):
            continue
        zip_files: list[PendingFile] = []
        size = 0
        for file in files:
            fsize = file.fsize or 0
            if zip_per_mb > 0 and size > 0 and size + fsize > limit:
                groups.append(zip_files)
                zip_files, size = [], 0
            size += fsize
            zip_files.append(file)
        if zip_files and (complete or (zip_per_mb > 0 and size > limit)):
            groups.append(zip_files)
    return groups


def zip_file_fields(members: Sequence[PendingFile]) -> dict[str, Any]:
    """The columns of the zip file made of ``members`` (named after its first member)."""
    return {"status": FILE_ZIPPING, "lfn": f"panda.{members[0].lfn}.zip", "scope": "panda",
            "fileType": TYPE_ZIP_OUTPUT, "isZip": 1}


# ====================================================================== events
def event_may_change(stored_event_status: str | None) -> bool:
    """Whether a worker's news may still change a stored event (only running ones: an ended
    event is Harvester's to finish)."""
    return stored_event_status == EVENT_RUNNING


def event_statuses(event_status: str | None, file_status: str | None, has_file: bool) -> tuple[str | None, str | None]:
    """(eventStatus, subStatus) of an event a worker reports, given its output file's status.

    A finished event is finished once its file is (or when it has none), failed when its file
    failed, else waits ``transferring``; any other event keeps its status as sub-status.
    """
    if event_status != EVENT_FINISHED:
        return event_status, event_status
    if not has_file or file_status == FILE_FINISHED:
        return EVENT_FINISHED, EVENT_FINISHED
    if file_status == FILE_FAILED:
        return EVENT_FAILED, EVENT_FAILED
    return EVENT_FINISHED, EVENT_TRANSFERRING


# ====================================================================== stage-out
# the file status each hasOutFile value waits for, in the order a job's files decide it
_WAITING_FOR = ((FILE_ZIPPING, HO_HAS_ZIP_OUTPUT), (FILE_POST_ZIPPING, HO_HAS_POST_ZIP_OUTPUT),
                (FILE_DEFINED, HO_HAS_OUTPUT), (FILE_TRANSFERRING, HO_HAS_TRANSFER))


def has_out_file_of(file_statuses: Iterable[str | None]) -> int:
    """A job's ``hasOutFile`` from the statuses of its files (zips first, then post-zips,
    outputs to stage out, transfers to check; none of them: no output)."""
    present = set(file_statuses)
    for file_status, has_out_file in _WAITING_FOR:
        if file_status in present:
            return has_out_file
    return HO_NO_OUTPUT


def file_status_for(has_out_file: int | None) -> str:
    """The status of the files the stager's step for ``has_out_file`` works on."""
    for file_status, flag in _WAITING_FOR:
        if flag == has_out_file:
            return file_status
    return FILE_TRANSFERRING


class StageOutStep(NamedTuple):
    """What a stage-out write does to its job (see :func:`stage_out_step`)."""

    status: str | None  # the job's new status, None: unchanged
    sub_status: str | None
    stager_done: bool  # stagerTime cleared: nothing left for the stager's current step
    propagate: bool  # the job's final state goes to PanDA now
    staged: bool  # all outputs staged: the output report is made from the finished files


def stage_out_step(sub_status: str | None, has_out_file: int, any_failed: bool) -> StageOutStep:
    """The job's next state after the stager wrote its files' statuses.

    ``to_transfer``: transfers start (``transferring``) unless files still wait to be staged out
    or zipped. ``transferring`` with nothing left: failed if a file failed, else ``staged``.
    """
    if sub_status == SUB_TO_TRANSFER:
        waiting = has_out_file in (HO_HAS_OUTPUT, HO_HAS_ZIP_OUTPUT, HO_HAS_POST_ZIP_OUTPUT)
        return StageOutStep(None, sub_status if waiting else SUB_TRANSFERRING, True, False, False)
    if sub_status == SUB_TRANSFERRING and has_out_file == HO_NO_OUTPUT:
        if any_failed:
            return StageOutStep(JOB_FAILED, SUB_FAILED_TO_STAGE_OUT, False, True, False)
        return StageOutStep(None, SUB_STAGED, False, True, True)
    return StageOutStep(None, sub_status, False, False, False)
