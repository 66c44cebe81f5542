"""The lifecycle module: states, transition tables, clock rules, file/zip/event decisions."""

from __future__ import annotations

import datetime

import pytest

from pandaharvester.harvestercore import lifecycle as lc
from pandaharvester.harvestercore.db import base
from pandaharvester.harvestercore.event_spec import EventSpec
from pandaharvester.harvestercore.job_spec import JobSpec
from pandaharvester.harvestercore.work_spec import WorkSpec

T0 = datetime.datetime(2024, 5, 1, 12, 0, 0)
T1 = datetime.datetime(2024, 5, 1, 13, 0, 0)


# ---------------------------------------------------------------------- states and sets
def test_spec_constants_are_the_originals_strings_from_one_definition():
    assert (WorkSpec.ST_submitted, WorkSpec.ST_running, WorkSpec.ST_finished, WorkSpec.ST_failed, WorkSpec.ST_ready,
            WorkSpec.ST_cancelled, WorkSpec.ST_idle, WorkSpec.ST_missed, WorkSpec.ST_pending) == (
        "submitted", "running", "finished", "failed", "ready", "cancelled", "idle", "missed", "pending")
    assert WorkSpec.ST_LIST == ["submitted", "running", "finished", "failed", "ready", "cancelled", "idle", "missed"]
    assert WorkSpec.ST_finished is lc.WORKER_FINISHED and JobSpec.HO_hasTransfer is lc.HO_HAS_TRANSFER
    assert type(WorkSpec.ST_finished) is str  # stored, sent and pickled as plain strings


def test_terminal_and_active_sets():
    assert set(lc.WORKER_FINAL) == {"finished", "failed", "cancelled", "missed"}
    assert set(lc.WORKER_ENDED) == {"finished", "failed", "cancelled"}
    assert set(lc.WORKER_ACTIVE) == {"submitted", "running", "idle"}
    assert set(lc.WORKER_QUEUED) == {"submitted", "pending", "idle"}
    assert set(lc.JOB_FINAL) == {"finished", "failed", "cancelled", "missed"}
    assert set(lc.EVENT_FINAL) == {"finished", "done", "failed"}
    assert set(lc.EVENT_TO_REPORT) == {"finished", "failed"}
    assert set(lc.SUB_AT_WORKER) == {"running", "submitted", "queued", "idle"}
    # the specs answer from the same sets
    for status in lc.WORKER_REPORTABLE + (lc.WORKER_PENDING,):
        w = WorkSpec()
        w.status = status
        assert w.is_final_status() == (status in lc.WORKER_FINAL)
    ev = EventSpec()
    for sub_status in ("finished", "done", "failed", "running", "transferring", None):
        ev.subStatus = sub_status
        assert ev.is_final_status() == (sub_status in ("finished", "done", "failed"))


def test_sql_lists_are_made_from_the_sets_and_refuse_anything_but_status_names():
    assert base.sql_list(("a", "b_c")) == "('a','b_c')"
    assert base.SQL_WORKERS_ACTIVE == "('submitted','running','idle')"
    assert set(base.SQL_WORKERS_FINAL.strip("()").replace("'", "").split(",")) == set(lc.WORKER_FINAL)
    assert set(base.SQL_WORKERS_QUEUED_OR_RUNNING.strip("()").replace("'", "").split(",")) == \
        {"submitted", "pending", "idle", "running"}
    for bad in ("x'); DROP TABLE work_table; --", "", "a b"):
        with pytest.raises(ValueError, match="not a status name"):
            base.sql_list(("ok", bad))


# ---------------------------------------------------------------------- worker → job
def test_what_a_worker_status_means_for_its_jobs():
    # (the original's table, through WorkSpec.convert_to_job_status, is in test_specs_work)
    for status in lc.WORKER_ENDED:
        assert lc.job_status_of_worker(status) == (status, "to_transfer")
    for status in ("submitted", "ready"):
        assert lc.job_status_of_worker(status) == ("starting", status)
    assert lc.job_status_of_worker("missed") == ("missed", "missed")
    for status in ("running", "idle", "pending", None):
        assert lc.job_status_of_worker(status) == ("running", status)


@pytest.mark.parametrize("statuses,job_status,combined", [
    (["finished", "failed"], "running", "finished"),
    (["failed", "cancelled", "missed"], "running", "failed"),
    (["cancelled", "missed"], "running", "cancelled"),
    (["missed"], "starting", "cancelled"),
    (["running", "finished"], "starting", "running"),
    (["submitted", "finished"], "running", "running"),  # the job runs already
    (["submitted", "idle"], "starting", "submitted"),
])
def test_several_workers_of_one_job(statuses, job_status, combined):
    assert lc.combined_worker_status(statuses, job_status) == combined


@pytest.mark.parametrize("current,new,allowed", [
    ("running", "submitted", False), ("idle", "submitted", False), ("submitted", "submitted", True),
    ("running", "finished", True), (None, "submitted", True), ("idle", "running", True),
])
def test_no_way_back_to_submitted(current, new, allowed):
    assert lc.worker_may_become(current, new) is allowed


# ---------------------------------------------------------------------- clock rules
class _Clocked:
    def __init__(self, start=None, end=None):
        self.startTime, self.endTime, self.stateChangeTime = start, end, None
        self.status = self.subStatus = None


@pytest.mark.parametrize("status,fill_start,expected", [
    ("running", False, (T1, None)),
    ("running", True, (T1, None)),
    ("finished", False, (None, T1)),
    ("missed", False, (None, T1)),
    ("failed", True, (T1, T1)),  # the monitor's write: it ran, start unknown
    ("submitted", True, (None, None)),
    ("idle", True, (None, None)),
    ("pending", False, (None, None)),
])
def test_stamp_times_from_nothing(status, fill_start, expected):
    spec = _Clocked()
    lc.stamp_times(spec, status, T1, fill_start=fill_start)
    assert (spec.startTime, spec.endTime) == expected


@pytest.mark.parametrize("status", ["running", "finished", "cancelled"])
def test_stamp_times_keeps_times_already_set(status):
    spec = _Clocked(T0, T0)
    lc.stamp_times(spec, status, T1, fill_start=True)
    assert (spec.startTime, spec.endTime) == (T0, T0)


def test_stamp_start_and_end_force_and_default_clock():
    spec = _Clocked(T0, T0)
    lc.stamp_start(spec, T1)
    lc.stamp_end(spec, T1, force=True)
    assert (spec.startTime, spec.endTime) == (T0, T1)
    spec = _Clocked()
    lc.stamp_start(spec)
    assert spec.startTime is not None and spec.startTime > T1 and spec.startTime.tzinfo is None


@pytest.mark.parametrize("worker_status,pilot_closed,expected", [
    ("running", True, (T1, None)),  # still running: a closed pilot changes nothing yet
    ("finished", True, (T1, T1)),  # the job never ran: both times now, even over a start time
    ("submitted", True, (T1, T1)),
    ("finished", False, (T0, T1)),
    ("submitted", False, (T0, None)),
])
def test_a_job_follows_its_worker_clock(worker_status, pilot_closed, expected):
    job = _Clocked(None if worker_status == "running" else T0)
    lc.stamp_job_from_worker(job, worker_status, pilot_closed, T1)
    assert (job.startTime, job.endTime) == expected


def test_worker_set_status_uses_the_clock_rule():
    w = WorkSpec()
    w.set_status("finished")
    assert w.startTime is None and w.endTime is not None  # only the monitor's write fills the start


def test_change_job_status_stamps_state_change_time():
    job = _Clocked()
    lc.change_job_status(job, "failed", "failed_to_make", T1)
    assert (job.status, job.subStatus, job.stateChangeTime) == ("failed", "failed_to_make", T1)


# ---------------------------------------------------------------------- output files and zips
@pytest.mark.parametrize("file_type,is_zip,zip_per_mb,expected", [
    ("output", None, None, ("defined", lc.HO_HAS_OUTPUT)),
    ("log", None, None, ("defined", lc.HO_HAS_OUTPUT)),
    ("checkpoint", None, None, ("renewed", None)),
    ("output", None, 0, ("pending", None)),
    ("checkpoint", None, 10, ("pending", None)),
    ("output", 1, 10, ("defined", lc.HO_HAS_OUTPUT)),  # the file says it is a zip: no zipping
    ("output", 0, 10, ("defined", lc.HO_HAS_OUTPUT)),
    ("checkpoint", 0, 10, ("renewed", None)),
])
def test_status_of_a_new_output(file_type, is_zip, zip_per_mb, expected):
    assert lc.new_output_status(file_type, is_zip, zip_per_mb) == expected


@pytest.mark.parametrize("elsewhere,expected", [
    ({}, "to_prepare"), ({"failed": 1, "done": 2}, "to_prepare"), ({"ready": 1}, "preparing"),
    ({"triggered": 1}, "preparing"), (["to_prepare"], "preparing"), ({"preparing": None, "failed": 1}, "preparing"),
])
def test_a_new_input_waits_for_the_stage_in_of_another_job(elsewhere, expected):
    assert lc.new_input_status(elsewhere) == expected


@pytest.mark.parametrize("zip_per_mb,sub_status,wanted", [
    (None, "to_transfer", False), (0, "running", False), (0, "to_transfer", True), (5, "running", True),
])
def test_when_zip_groups_are_looked_for(zip_per_mb, sub_status, wanted):
    assert lc.wants_zipping(zip_per_mb, sub_status) is wanted


def _p(file_id, fsize, provenance=None, worker=None):
    return lc.PendingFile(file_id, fsize, f"f{file_id}", provenance, worker)


def _ids(groups):
    return [[f.file_id for f in group] for group in groups]


MIB = 1024 * 1024


def test_zip_groups_at_transfer_take_every_group_whole_when_unlimited():
    pending = [_p(1, 5), _p(2, 5, "A", 1), _p(3, 5, "A", 1), _p(4, 5, "A", 2), _p(5, None, "B", 1)]
    assert _ids(lc.zip_groups(pending, 0, "to_transfer", [1, 2])) == [[1], [2, 3], [4], [5]]
    assert lc.zip_groups(pending, 0, "running", [1, 2]) == []


def test_zip_groups_split_at_the_limit_and_keep_a_small_tail_waiting():
    pending = [_p(1, 600 * 1024, "A"), _p(2, 600 * 1024, "A"), _p(3, 600 * 1024, "A"), _p(4, 100, "B"),
               _p(5, 3 * MIB, "C")]
    assert _ids(lc.zip_groups(pending, 1, "running", [])) == [[1], [2], [5]]
    # at transfer the tail goes too, and the small group
    assert _ids(lc.zip_groups(pending, 1, "to_transfer", [])) == [[1], [2], [3], [4], [5]]
    # a group of exactly the limit is not over it
    assert lc.zip_groups([_p(1, MIB, "A")], 1, "running", []) == []
    # files add up to a zip until the next one would overflow it
    seven = [_p(i, 300 * 1024, "A") for i in range(1, 8)]
    assert _ids(lc.zip_groups(seven, 1, "running", [])) == [[1, 2, 3], [4, 5, 6]]


def test_zip_groups_of_a_worker_that_ended_are_complete():
    pending = [_p(1, 5, None, 7), _p(2, 5, None, 7), _p(3, 5, None, 8)]
    assert _ids(lc.zip_groups(pending, 100, "running", [8])) == [[1, 2]]
    assert _ids(lc.zip_groups(pending, 100, "running", [])) == [[1, 2], [3]]


def test_zip_file_fields_name_the_zip_after_its_first_member():
    assert lc.zip_file_fields([_p(3, 1), _p(4, 1)]) == {"status": "zipping", "lfn": "panda.f3.zip", "scope": "panda",
                                                        "fileType": "zip_output", "isZip": 1}


# ---------------------------------------------------------------------- events
@pytest.mark.parametrize("event_status,file_status,has_file,expected", [
    ("finished", None, False, ("finished", "finished")),
    ("finished", "finished", True, ("finished", "finished")),
    ("finished", "failed", True, ("failed", "failed")),
    ("finished", "transferring", True, ("finished", "transferring")),
    ("finished", "defined", True, ("finished", "transferring")),
    ("finished", None, True, ("finished", "transferring")),  # a file row without status is not done
    ("running", "finished", True, ("running", "running")),
    ("failed", None, False, ("failed", "failed")),
    ("fatal", None, False, ("fatal", "fatal")),
])
def test_event_statuses_follow_the_output_file(event_status, file_status, has_file, expected):
    assert lc.event_statuses(event_status, file_status, has_file) == expected


def test_only_running_stored_events_may_change():
    assert lc.event_may_change("running")
    assert not any(lc.event_may_change(s) for s in ("finished", "failed", "done", None))


# ---------------------------------------------------------------------- stage-out
@pytest.mark.parametrize("statuses,expected", [
    (["zipping", "defined", "transferring"], lc.HO_HAS_ZIP_OUTPUT),
    (["post_zipping", "defined"], lc.HO_HAS_POST_ZIP_OUTPUT),
    (["defined", "transferring", "finished"], lc.HO_HAS_OUTPUT),
    (["transferring", "failed"], lc.HO_HAS_TRANSFER),
    (["finished", "failed", "done", None], lc.HO_NO_OUTPUT),
    ([], lc.HO_NO_OUTPUT),
])
def test_has_out_file_from_the_files(statuses, expected):
    assert lc.has_out_file_of(statuses) == expected


@pytest.mark.parametrize("flag,status", [
    (lc.HO_HAS_OUTPUT, "defined"), (lc.HO_HAS_ZIP_OUTPUT, "zipping"), (lc.HO_HAS_POST_ZIP_OUTPUT, "post_zipping"),
    (lc.HO_HAS_TRANSFER, "transferring"), (lc.HO_NO_OUTPUT, "transferring"), (None, "transferring"),
])
def test_files_a_stager_step_works_on(flag, status):
    assert lc.file_status_for(flag) == status


@pytest.mark.parametrize("sub_status,flag,failed,expected", [
    ("to_transfer", lc.HO_HAS_OUTPUT, False, (None, "to_transfer", True, False, False)),
    ("to_transfer", lc.HO_HAS_ZIP_OUTPUT, False, (None, "to_transfer", True, False, False)),
    ("to_transfer", lc.HO_HAS_POST_ZIP_OUTPUT, True, (None, "to_transfer", True, False, False)),
    ("to_transfer", lc.HO_HAS_TRANSFER, False, (None, "transferring", True, False, False)),
    ("to_transfer", lc.HO_NO_OUTPUT, True, (None, "transferring", True, False, False)),
    ("transferring", lc.HO_NO_OUTPUT, False, (None, "staged", False, True, True)),
    ("transferring", lc.HO_NO_OUTPUT, True, ("failed", "failed_to_stage_out", False, True, False)),
    ("transferring", lc.HO_HAS_TRANSFER, True, (None, "transferring", False, False, False)),
    ("running", lc.HO_NO_OUTPUT, True, (None, "running", False, False, False)),
])
def test_stage_out_step(sub_status, flag, failed, expected):
    assert tuple(lc.stage_out_step(sub_status, flag, failed)) == expected
