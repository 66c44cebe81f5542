"""WorkSpec: constants, status transitions, access points, PanDA payload, attributes, log files."""

from __future__ import annotations

import datetime

import pytest

from pandaharvester.harvestercore.time_utils import naive_utcnow
from pandaharvester.harvestercore.work_spec import WorkSpec


def test_constants():
    assert (WorkSpec.ST_submitted, WorkSpec.ST_running, WorkSpec.ST_finished, WorkSpec.ST_failed) == (
        "submitted", "running", "finished", "failed")
    assert (WorkSpec.ST_ready, WorkSpec.ST_cancelled, WorkSpec.ST_idle, WorkSpec.ST_missed, WorkSpec.ST_pending) == (
        "ready", "cancelled", "idle", "missed", "pending")
    assert WorkSpec.ST_LIST == ["submitted", "running", "finished", "failed", "ready", "cancelled", "idle", "missed"]
    assert (WorkSpec.MT_NoJob, WorkSpec.MT_OneToOne, WorkSpec.MT_MultiJobs, WorkSpec.MT_MultiWorkers) == (
        "NoJob", "OneToOne", "ManyToOne", "OneToMany")
    assert (WorkSpec.EV_noEvents, WorkSpec.EV_useEvents, WorkSpec.EV_requestEvents) == (0, 1, 2)


def test_columns_match_original():
    cols = WorkSpec.column_list()
    assert cols[:6] == ("workerID", "batchID", "mapType", "queueName", "status", "hasJob")
    assert cols[-3:] == ("eventFeedLock", "errorCode", "errorDiag")
    assert len(cols) == 47
    types = WorkSpec.column_types()
    assert types["diagMessage"] == "varchar(500)"
    assert types["workParams"] == "blob"
    assert "status" in WorkSpec.indexed_columns() and "killTime" in WorkSpec.indexed_columns()
    assert WorkSpec.blob_columns() == {"workParams", "workAttributes", "eventsRequestParams", "logFilesToUpload"}
    assert WorkSpec.skipAttrsToSlim == ("workParams", "workAttributes")
    w = WorkSpec()
    assert (w.isNew, w.nextLookup, w.jobspec_list, w.pandaid_list, w.new_status, w.pilot_closed) == (
        False, False, None, None, False, False)


def test_set_status_transitions():
    w = WorkSpec()
    w.set_status(WorkSpec.ST_submitted)
    assert w.status == "submitted" and w.new_status
    assert w.lastUpdate < naive_utcnow() - datetime.timedelta(hours=23)  # propagation triggered
    assert w.startTime is None and w.endTime is None
    w.new_status = False
    w.set_status(WorkSpec.ST_running)
    assert w.status == "running" and w.new_status and w.startTime is not None
    first_start = w.startTime
    # no reverse transition from running (nor from idle) to submitted
    w.new_status = False
    w.set_status(WorkSpec.ST_submitted)
    assert w.status == "running" and not w.new_status
    w.set_status(WorkSpec.ST_idle)
    w.set_status(WorkSpec.ST_submitted)
    assert w.status == "idle"
    w.set_status(WorkSpec.ST_running)
    assert w.startTime == first_start  # not overwritten
    w.new_status = False
    w.lastUpdate = None
    w.set_status(WorkSpec.ST_running)  # same status: no propagation
    assert not w.new_status and w.lastUpdate is None
    w.set_status(WorkSpec.ST_finished)
    assert w.endTime is not None and w.is_final_status()


@pytest.mark.parametrize("status", ["failed", "cancelled", "missed"])
def test_final_statuses_set_end_time(status):
    w = WorkSpec()
    w.set_status(status)
    assert w.is_final_status() and w.endTime is not None


@pytest.mark.parametrize(
    "status,expected",
    [
        ("submitted", ("starting", "submitted")),
        ("ready", ("starting", "ready")),
        ("finished", ("finished", "to_transfer")),
        ("failed", ("failed", "to_transfer")),
        ("cancelled", ("cancelled", "to_transfer")),
        ("missed", ("missed", "missed")),
        ("running", ("running", "running")),
        ("idle", ("running", "idle")),
        ("pending", ("running", "pending")),
    ],
)
def test_convert_to_job_status(status, expected):
    w = WorkSpec()
    assert w.convert_to_job_status(status) == expected
    w.status = status
    assert w.convert_to_job_status() == expected


def test_access_point_expansion(fresh_home):
    fresh_home({"master": {"harvester_id": "harvTest01"}})
    w = WorkSpec()
    w.workerID = 12345
    w.computingSite = "SITE_X"
    w.accessPoint = "/w/${harvesterID}/${computingSite}/${_workerID_3.2}/${_workerID_0}/${workerID}/${unknown}"
    w.reset_changed_list()
    assert w.get_access_point() == "/w/harvTest01/SITE_X/23/5/12345/${unknown}"
    # the expansion is stored back (and recorded as a change)
    assert w.accessPoint == "/w/harvTest01/SITE_X/23/5/12345/${unknown}"
    assert "accessPoint" in w.get_changed_attributes()


def test_access_point_digits_pad_with_zero():
    w = WorkSpec()
    w.workerID = 7
    w.accessPoint = "/d/${_workerID_5.4.0}"
    assert w.get_access_point() == "/d/007"
    w2 = WorkSpec()
    assert w2.get_access_point() is None
    w2.accessPoint = "/plain/path"
    assert w2.get_access_point() == "/plain/path"


def test_convert_to_propagate():
    w = WorkSpec()
    w.workerID = 9
    w.batchID = "123.0"
    w.status = "running"
    w.nCore = 8
    w.submitTime = datetime.datetime(2024, 1, 2, 3, 4, 5, 6)
    w.computingSite = "SITE"
    w.workParams = {"secret": "not sent"}
    w.workAttributes = {"stdOut": "https://x/out", "batchLog": "https://x/log", "other": 1}
    w.pandaid_list = [1, 2]
    data = w.convert_to_propagate()
    assert data == {
        "workerID": 9,
        "batchID": "123.0",
        "status": "running",
        "nCore": 8,
        "submitTime": "datetime/2024-01-02 03:04:05.000006",
        "computingSite": "SITE",
        "pandaid_list": [1, 2],
        "stdOut": "https://x/out",
        "batchLog": "https://x/log",
    }
    w.diagMessage = "diag"
    w.errorCode = 0
    w.errorDiag = "ignored without error code"
    assert w.convert_to_propagate()["diagMessage"] == "diag"
    w.set_supplemental_error(4215, "LRMS error: (1) job killed: wall" + "x" * 300)
    data = w.convert_to_propagate()
    assert data["errorCode"] == 4215 and data["diagMessage"].startswith("LRMS error") and len(data["diagMessage"]) == 256


def test_work_params_and_attributes():
    w = WorkSpec()
    assert w.get_work_params("a") == (False, None) and not w.has_work_params("a")
    w.set_work_params(None)
    assert not w.has_updated_attributes()
    w.set_work_params({"a": 1})
    assert w.get_work_params("a") == (True, 1) and w.has_work_params("a")
    w.reset_changed_list()
    w.set_work_params({"a": 1})
    assert not w.has_updated_attributes()
    w.set_work_params({"a": 2})
    assert "workParams" in w.get_changed_attributes()
    w.set_work_attributes({"x": "y"})
    assert w.get_work_attribute("x") == (True, "y") and w.has_work_attribute("x")
    assert w.get_work_attribute("nope") == (False, None)
    w.reset_changed_list()
    w.set_work_attributes({"x": "y"})
    assert not w.has_updated_attributes()
    w.set_pilot_error(1236, "failed by server")
    assert w.has_pilot_error() and w.workAttributes["pilotErrorDiag"] == "failed by server"


def test_set_log_file_url_and_local(fresh_home, tmp_path):
    fresh_home({"master": {"harvester_id": "hid"}, "pandacon": {"pandaCacheURL_R": "https://cache.example/cache"}})
    w = WorkSpec()
    w.set_log_file("stdout", "https://ce.example/out/1.out")
    assert w.workAttributes == {"stdOut": "https://ce.example/out/1.out"}
    assert w.logFilesToUpload is None
    log = tmp_path / "batch_1.log"
    log.write_text("hello\n")
    w.set_log_file("batch_log", str(log))
    assert w.workAttributes["batchLog"] == "https://cache.example/cache/hid__batch_1.log"
    assert w.logFilesToUpload == {str(log): {"position": 0, "remote_name": "hid__batch_1.log", "stream_type": "batchLog"}}
    assert w.get_log_files_to_upload() == [(str(log), 0, 6, "hid__batch_1.log")]
    w.update_log_files_to_upload(str(log), 6)
    assert w.get_log_files_to_upload() == []
    # a new file for the same stream replaces the old one
    log2 = tmp_path / "batch_2.log"
    log2.write_text("x")
    w.set_log_file("batch_log", str(log2))
    assert list(w.logFilesToUpload) == [str(log2)]
    w.update_log_files_to_upload(str(tmp_path / "missing.log"), 0)
    assert [entry[0] for entry in w.get_log_files_to_upload()] == [str(log2)]


def test_misc_helpers():
    w = WorkSpec()
    w.set_jobspec_list(["j1", "j2"])
    assert w.get_jobspec_list() == ["j1", "j2"]
    w.set_num_jobs_with_list()
    w.set_num_jobs_with_list()
    assert w.nJobs == 4
    w.set_jobspec_list([])
    w.set_num_jobs_with_list()
    assert w.nJobs == 4
    assert not w.is_post_processed()
    w.post_processed()
    assert w.is_post_processed()
    w.trigger_next_lookup()
    assert w.nextLookup and w.modificationTime < naive_utcnow() - datetime.timedelta(minutes=59)
    w.lastUpdate = datetime.datetime(2020, 1, 1)
    w.reset_changed_list()
    w.disable_propagation()
    assert w.lastUpdate is None and "lastUpdate" in w.get_changed_attributes()
    w.reset_changed_list()
    w.disable_propagation()  # already None: still forced
    assert w.values_map(only_changed=True) == {":lastUpdate": None}
    w.set_dialog_message("")
    assert w.diagMessage is None
    w.set_dialog_message("m" * 600)
    assert len(w.diagMessage) == 500
    w.set_pilot_closed()
    assert w.pilot_closed
    w.set_supplemental_error(None, "")
    assert w.errorCode is None and w.errorDiag is None
    t0 = datetime.datetime(2020, 1, 1)
    w.startTime = t0
    w.set_start_time()
    assert w.startTime == t0
    w.set_start_time(force=True)
    assert w.startTime > t0
