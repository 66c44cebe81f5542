"""JobSpec, FileSpec and EventSpec: PanDA job conversion, files, events, attributes, status."""

from __future__ import annotations

import datetime
import json
import pickle

import pytest

from pandaharvester.harvestercore.event_spec import EventSpec
from pandaharvester.harvestercore.file_spec import FileSpec
from pandaharvester.harvestercore.job_spec import JobSpec

LOG = "a9e4c6d2-1111-2222-3333-444455556666_3.job.log.tgz"


def panda_job(**overrides):
    """A job dict shaped like PanDA's acquire_jobs output (two inputs, one output + log)."""
    data = {
        "PandaID": 6600000123,
        "StatusCode": 0,
        "taskID": "NULL",
        "jobsetID": "NULL",
        "attemptNr": 1,
        "currentPriority": 1000,
        "coreCount": "8",
        "resource_type": "MCORE",
        "prodSourceLabel": "managed",
        "transformation": "Reco_tf.py",
        "jobPars": "--inputRDOFile=RDO.1._000001.pool.root.1 --outputAODFile=AOD.2._000001.pool.root.1 --maxEvents=500",
        "inFiles": "RDO.1._000001.pool.root.1,DBRelease-31.8.1.tar.gz",
        "GUID": "0CC1434F-9C9A-DF11-8207-003048D2BAB2,39e0c6b7-0979-442f-9d3d-ad840194607e",
        "fsize": "33902810,NULL",
        "checksum": "ad:b60df406,ad:e6a2dabe",
        "scopeIn": "mc23_13p6TeV,ddo",
        "realDatasetsIn": "mc23.RDO.e1_s2_tid1_00,ddo.000001.Atlas.Ideal.DBRelease.v310801",
        "ddmEndPointIn": "CERN-PROD_DATADISK,CERN-PROD_DATADISK",
        "outFiles": f"AOD.2._000001.pool.root.1,{LOG}",
        "scopeOut": "mc23_13p6TeV",
        "scopeLog": "mc23_13p6TeV_log",
        "logFile": LOG,
        "logGUID": "cf74dcc4-e84f-48dc-9fc6-6c12a13a0e81",
        "realDatasets": "mc23.AOD.e1_s2_r3_tid2_00,mc23.log.e1_s2_r3_tid2_00",
        "ddmEndPointOut": "CERN-PROD_DATADISK,CERN-PROD_LOGS",
        "prodDBlocks": "mc23.RDO.e1_s2_tid1_00,ddo.000001.Atlas.Ideal.DBRelease.v310801",
        "dispatchDblock": "NULL,NULL",
        "dispatchDBlockToken": "NULL,NULL",
        "prodDBlockToken": "NULL,NULL",
        "secrets": '{"token": "abc"}',
        "zipPerMB": 2048,
        "sourceURL": "https://source.example",
    }
    data.update(overrides)
    return data


def make_job(**overrides) -> JobSpec:
    job = JobSpec()
    job.convert_job_json(panda_job(**overrides))
    return job


def make_file(lfn, file_type="input", status=None, file_id=None, **attrs) -> FileSpec:
    f = FileSpec()
    f.lfn, f.fileType, f.status, f.fileID = lfn, file_type, status, file_id
    for k, v in attrs.items():
        setattr(f, k, v)
    return f


def test_constants_and_columns():
    assert (JobSpec.HO_noOutput, JobSpec.HO_hasOutput, JobSpec.HO_hasZipOutput, JobSpec.HO_hasTransfer,
            JobSpec.HO_hasPostZipOutput) == (0, 1, 2, 3, 4)
    assert (JobSpec.AUX_hasAuxInput, JobSpec.AUX_inTriggered, JobSpec.AUX_allTriggered, JobSpec.AUX_inReady,
            JobSpec.AUX_allReady) == (0, 1, 2, 3, 4)
    assert JobSpec.column_list()[0] == "PandaID" and JobSpec.column_list()[-2:] == ("auxInput", "resourceType")
    assert JobSpec.zeroAttrs == ("nWorkers", "submissionAttempts", "nWorkersInTotal")
    assert JobSpec.column_names(slim=True).split(",") == [c for c in JobSpec.column_list() if c != "jobParams"]
    assert FileSpec.AUX_INPUT == "aux_input"
    assert FileSpec.zeroAttrs == ("attemptNr", "todelete")
    assert "loss" in EventSpec.column_list()
    job = JobSpec()
    assert job.nWorkers == 0 and job.events == set() and job.inFiles == set() and job.workspec_list == []


def test_convert_job_json():
    job = make_job()
    assert job.PandaID == 6600000123
    assert job.taskID is None and job.jobsetID is None  # "NULL"
    assert job.attemptNr == 1 and job.currentPriority == 1000
    assert job.nCore == 8 and job.resourceType == "MCORE" and job.zipPerMB == 2048
    # PanDA's secrets: off jobParams (so off the DB row), back in the description for the pilot
    assert "secrets" not in job.jobParams and job.secrets == {"token": "abc"}
    assert job.get_job_params(strip=False)["secrets"] == {"token": "abc"}
    assert "abc" not in str(job.values_list()) and pickle.loads(pickle.dumps(job)).__dict__["secrets"] is None
    assert job.jobParams["jobPars"].startswith("--inputRDOFile")
    assert job.jobParamsExtForOutput == {
        "AOD.2._000001.pool.root.1": {"scope": "mc23_13p6TeV", "dataset": "mc23.AOD.e1_s2_r3_tid2_00",
                                      "endpoint": "CERN-PROD_DATADISK"},
        LOG: {"scope": "mc23_13p6TeV_log", "dataset": "mc23.log.e1_s2_r3_tid2_00", "endpoint": "CERN-PROD_LOGS"},
    }
    assert job.jobParamsExtForLog == {"lfn": LOG, "guid": "cf74dcc4-e84f-48dc-9fc6-6c12a13a0e81"}
    assert {"PandaID", "jobParams", "attemptNr", "nCore", "jobParamsExtForOutput"} <= set(job.get_changed_attributes())
    # the job row survives a DB round trip
    back = JobSpec.from_values(job.values_list())
    assert back.jobParams == job.jobParams and back.jobParamsExtForLog == job.jobParamsExtForLog


def test_convert_job_json_real_ids_and_bad_secrets():
    job = make_job(taskID=38123456, jobsetID=77, secrets="not json", coreCount="NULL")
    assert job.taskID == 38123456 and job.jobsetID == 77
    assert job.secrets == "not json" and "secrets" not in job.jobParams
    assert job.nCore is None


def test_convert_job_json_ids_sent_as_strings_become_ints():
    """The real server sends taskID and jobsetID (and maxWalltime) as strings: the ids are ints in
    the spec (DB column type, comparisons with jobs read back), jobParams keep PanDA's values."""
    job = make_job(taskID="38123456", jobsetID="77", maxWalltime="7200", reqID="38123456", PandaID="6600000124")
    assert (job.PandaID, job.taskID, job.jobsetID) == (6600000124, 38123456, 77)
    assert job.jobParams["taskID"] == "38123456" and job.jobParams["maxWalltime"] == "7200"
    back = JobSpec.from_values(job.values_list())
    assert back.taskID == job.taskID and back.jobsetID == job.jobsetID


@pytest.mark.parametrize("item,message", [
    (42, "a job must be a JSON object, not int 42"),
    ({"taskID": 1}, "the job has no 'PandaID'"),
    ({"PandaID": "abc"}, "PandaID='abc' is not an integer"),
    ({"PandaID": 5, "taskID": [1]}, "taskID=[1] is not an integer"),
])
def test_convert_job_json_refuses_what_cannot_be_a_job(item, message):
    with pytest.raises(ValueError) as info:
        JobSpec().convert_job_json(item)
    assert message in str(info.value)


def test_input_file_attributes_and_paths():
    job = make_job()
    attrs = job.get_input_file_attributes()
    assert attrs["RDO.1._000001.pool.root.1"] == {
        "fsize": 33902810, "guid": "0CC1434F-9C9A-DF11-8207-003048D2BAB2", "checksum": "ad:b60df406",
        "scope": "mc23_13p6TeV", "dataset": "mc23.RDO.e1_s2_tid1_00", "endpoint": "CERN-PROD_DATADISK", "attemptNr": 0}
    assert attrs["DBRelease-31.8.1.tar.gz"]["fsize"] is None  # not a number
    rdo = make_file("RDO.1._000001.pool.root.1", status="ready", attemptNr=2)
    db = make_file("DBRelease-31.8.1.tar.gz", status="preparing")
    job.add_file(rdo)
    job.add_file(db)
    assert job.get_input_file_attributes()["RDO.1._000001.pool.root.1"]["attemptNr"] == 2
    assert list(job.get_input_file_attributes(skip_ready=True)) == ["DBRelease-31.8.1.tar.gz"]
    job.reset_changed_list()
    job.set_input_file_paths({"RDO.1._000001.pool.root.1": {"path": "/data/rdo"}, "DBRelease-31.8.1.tar.gz": {"path": "/data/db"}})
    assert job.jobParams["inFilePaths"] == "/data/rdo,/data/db"
    assert "jobParams" in job.get_changed_attributes()
    assert rdo.path == "/data/rdo" and db.path == "/data/db"
    assert job.get_input_file_attributes()["DBRelease-31.8.1.tar.gz"]["path"] == "/data/db"
    job.set_all_input_ready()
    assert db.status == "ready"


def test_input_files_drop_empty_and_null():
    job = make_job(inFiles="NULL", GUID="NULL", fsize="0", checksum="", scopeIn="", realDatasetsIn="", ddmEndPointIn="")
    assert job.get_input_file_attributes() == {}


def test_job_attributes():
    job = make_job()
    job.set_attributes(None)
    assert job.jobAttributes is None
    # only this job's entry (and worker-wide error keys) are taken
    job.set_attributes({6600000123: {"cpuConsumptionTime": 100, "metaData": "{}", "xml": "<xml/>", "jobStatus": "finished"},
                        42: {"cpuConsumptionTime": 1}, "pilotErrorCode": 1236})
    assert job.jobAttributes == {"cpuConsumptionTime": 100, "jobStatus": "finished", "pilotErrorCode": 1236}
    assert job.metaData == "{}" and job.outputFilesToReport == "<xml/>"
    assert job.get_job_status_from_attributes() == "finished"
    job.reset_changed_list()
    job.set_attributes({6600000123: {"cpuConsumptionTime": 100}})
    assert not job.has_updated_attributes()
    job.set_attributes({6600000123: {"cpuConsumptionTime": 120, "nEvents": 500, "coreCount": 8, "flag": True}})
    assert "jobAttributes" in job.get_changed_attributes()
    assert job.get_job_attributes_for_panda() == {"cpuConsumptionTime": "120", "nEvents": "500", "coreCount": "8",
                                                  "pilotErrorCode": "1236"}
    assert job.has_attribute("flag") and job.get_one_attribute("flag") is True and job.get_one_attribute("x") is None
    job.set_pilot_error(1, "ignored: already has a code")
    assert job.get_one_attribute("pilotErrorCode") == 1236 and job.get_one_attribute("pilotErrorDiag") == "ignored: already has a code"
    other = JobSpec()
    assert other.get_job_attributes_for_panda() == {} and other.get_job_status_from_attributes() is None
    other.set_one_attribute("jobStatus", "running")
    assert other.get_job_status_from_attributes() is None


def test_status_and_transferring():
    job = make_job()
    job.status, job.subStatus = "running", "running"
    assert job.get_status() == "running" and not job.is_final_status()
    job.status, job.subStatus = "finished", "to_transfer"
    assert job.get_status() == "transferring"
    job.subStatus = "done"
    assert job.get_status() == "finished"
    event = EventSpec()
    event.subStatus = "transferring"
    job.add_event(event, None)
    assert not job.all_events_done() and job.get_status() == "transferring"
    job.subStatus = "killed"
    assert job.get_status() == "finished"
    assert job.is_final_status("missed") and not job.is_final_status("starting")
    job.subStatus = "missed"
    assert job.not_suppress_heartbeat()


def test_output_files_stage_out_and_zip():
    job = make_job()
    done = make_file("a", "output", "finished")
    pending = make_file("b", "output", "defined", attemptNr=3, groupID="g1", groupStatus="x")
    log = make_file(LOG, "log", "failed")
    for f in (done, pending, log):
        job.add_file(f)
    assert job.outFiles == {done, pending, log} and not job.inFiles
    assert job.get_output_file_specs() is job.outFiles
    assert job.get_output_file_specs(skip_done=True) == [pending]
    job.all_files_triggered_to_stage_out()
    assert pending.status == "transferring" and pending.attemptNr == 0 and done.status == "finished"
    job.all_files_zipped(use_post_zipping=True)
    assert pending.status == "post_zipping"
    pending.attemptNr = 2
    job.all_files_zipped()
    assert (pending.status, pending.attemptNr, pending.groupID, pending.groupStatus) == ("defined", 0, None, None)
    pending.todelete = 1
    assert job.get_files_to_delete() == [pending]
    job.reset_out_file()
    assert not job.outFiles


def test_file_groups():
    job = make_job()
    i1 = make_file("i1", status="preparing")
    i2 = make_file("i2", status="ready")
    o1 = make_file("o1", "output", "defined")
    for f in (i1, i2, o1):
        job.add_file(f)
    job.set_groups_to_files({"gA": {"lfns": ["i1", "i2"], "groupStatus": "triggered"}, "gB": {"lfns": ["o1"], "groupStatus": "queued"}})
    assert (i1.groupID, i1.groupStatus, o1.groupID) == ("gA", "triggered", "gB")
    assert i1.groupUpdateTime is not None
    job.update_group_status_in_files("gA", "done")
    assert i2.groupStatus == "done" and o1.groupStatus == "queued"
    assert set(job.get_groups_of_input_files()) == {"gA"}
    assert job.get_groups_of_input_files()["gA"]["groupStatus"] == "done"
    assert job.get_groups_of_output_files()["gB"]["groupStatus"] == "queued"
    assert job.get_input_file_specs("gA") and set(job.get_input_file_specs("gA")) == {i1, i2}
    assert job.get_input_file_specs("gA", skip_ready=True) == [i1]


def test_events_and_event_data():
    job = make_job()
    zip_file = make_file("zip1", "zip_output", "finished", file_id=55, objstoreID=12, pathConvention=1000,
                         fsize=123, chksum="ad:0a0b0c0d")
    e1 = EventSpec()
    e1.from_data({"eventRangeID": "6600000123-1-2-3-4", "eventStatus": "finished", "coreCount": 8, "junk": 1}, "6600000123")
    e2 = EventSpec()
    e2.from_data({"eventRangeID": "6600000123-1-2-5-6", "eventStatus": "failed", "loss": "0.1"}, 6600000123)
    assert e1.PandaID == 6600000123 and not hasattr(e1, "junk")
    job.add_event(e1, zip_file)
    job.add_event(e2, None)
    assert job.zipEventMap[55]["zip"] is zip_file and job.events == {e1, e2}
    # finished is reported as running until the event is dealt with
    assert e1.to_data() == {"eventRangeID": "6600000123-1-2-3-4", "eventStatus": "running", "coreCount": 8}
    e1.subStatus = "done"
    assert e1.to_data()["eventStatus"] == "finished" and e1.is_final_status()
    data, specs = job.to_event_data()
    assert set(specs) == {e1, e2}
    by_zip = {("zipFile" in d): d for d in data}
    assert by_zip[True]["zipFile"] == {"lfn": "zip1", "objstoreID": "12/1000", "fsize": 123, "adler32": "0a0b0c0d"}
    assert by_zip[True]["sourceURL"] == "https://source.example"
    assert by_zip[False]["eventRanges"] == [{"eventRangeID": "6600000123-1-2-5-6", "eventStatus": "failed", "loss": "0.1"}]
    zip_file.chksum = "md:ffff"
    data, _ = job.to_event_data()
    assert any(d.get("zipFile", {}).get("md5") == "ffff" for d in data)


def test_times_workers_pilot_and_params():
    job = make_job()
    job.set_start_time()
    t = job.startTime
    job.set_start_time()
    assert job.startTime == t
    job.set_end_time()
    assert job.endTime >= t
    job.reset_start_end_time()
    assert job.startTime == job.endTime
    job.trigger_propagation()
    job.trigger_preparation()
    job.trigger_stage_out()
    hour_ago = datetime.datetime.utcnow() - datetime.timedelta(minutes=59)
    assert job.propagatorTime < hour_ago and job.preparatorTime < hour_ago and job.stagerTime < hour_ago
    job.add_workspec_list(["w"])
    assert job.get_workspec_list() == ["w"]
    assert not job.is_pilot_closed()
    job.set_pilot_closed()
    assert job.is_pilot_closed()
    stripped = job.get_job_params(strip=True)
    assert "realDatasetsIn" not in stripped and "inFiles" in stripped
    assert job.get_job_params(strip=False) == dict(job.jobParams, secrets={"token": "abc"})
    job.secrets = None
    job.PandaID = None  # nothing stored either: the description is jobParams itself
    assert job.get_job_params(strip=False) is job.jobParams
    assert job.get_pilot_type() == "PR"
    assert make_job(prodSourceLabel="rc_test2").get_pilot_type() == "RC"
    assert make_job(prodSourceLabel="rc_alrb").get_pilot_type() == "ALRB"
    assert make_job(prodSourceLabel="ptest").get_pilot_type() == "PT"
    assert make_job(prodSourceLabel="").get_pilot_type() is None


def test_container_params():
    job = make_job(container_name="docker://img:1", containerOptions={"containerImage": "docker://img:1"})
    aux = make_file("img", FileSpec.AUX_INPUT, url="docker://img:1", path="/cvmfs/img")
    job.add_in_file(aux)  # the fetcher adds aux inputs explicitly (add_file would treat them as outputs)
    job.reset_changed_list()
    job.manipulate_job_params_for_container()
    assert job.jobParams["container_name"] == "/cvmfs/img"
    assert job.jobParams["containerOptions"]["containerImage"] == "/cvmfs/img"
    assert "jobParams" in job.get_changed_attributes()


def test_file_spec_associated_files_and_blob():
    zip_file = make_file("z", "zip_output")
    member = make_file("m", "output")
    zip_file.add_associated_file(member)
    assert zip_file.associatedFiles == {member}
    member.fileAttributes = {"guid": "g", "when": datetime.datetime(2024, 1, 1)}
    back = FileSpec.from_values(member.values_list())
    assert back.fileAttributes == member.fileAttributes and back.associatedFiles == set()
    assert json.loads(member.values_map()[":fileAttributes"])["guid"] == "g"


@pytest.mark.parametrize("sub_status,final", [("done", True), ("finished", True), ("failed", True), ("running", False), (None, False)])
def test_event_final_status(sub_status, final):
    e = EventSpec()
    e.subStatus = sub_status
    assert e.is_final_status() is final


# ---------------------------------------------------------------- lazy jobParams
def test_job_params_decoded_on_first_access_only():
    """A row's jobParams stays JSON text until read; callers always get the dict."""
    import pickle

    from pandaharvester.harvestercore.spec_base import LazyBlob

    row = make_job().values_list()
    back = JobSpec.from_values(row)
    assert type(back.__dict__["jobParams"]) is LazyBlob
    # writing the row back without touching jobParams reuses the stored text
    assert back.values_list() == row
    assert back.jobParams["PandaID"] == 6600000123 and isinstance(back.jobParams, dict)
    assert back.__dict__["jobParams"] is back.jobParams
    # assigning an equal dict is no change; a different one is
    lazy = JobSpec.from_values(row)
    lazy.jobParams = dict(back.jobParams)
    assert "jobParams" not in lazy.changedAttrs
    lazy.jobParams = {"x": 1}
    assert lazy.get_changed_attributes()["jobParams"] == {"x": 1}
    # force_update without a read still reports (and writes) the object
    forced = JobSpec.from_values(row)
    forced.force_update("jobParams")
    assert forced.get_changed_attributes()["jobParams"] == back.jobParams
    assert forced.values_map(only_changed=True)[":jobParams"] == row[JobSpec.column_list().index("jobParams")]
    # pickles hold the dict, never the lazy wrapper
    state = pickle.loads(pickle.dumps(JobSpec.from_values(row)))
    assert type(state.__dict__["jobParams"]) is dict and state.jobParams == back.jobParams


def test_job_params_lazy_null_and_bad_json():
    row = make_job().values_list()
    idx = JobSpec.column_list().index("jobParams")
    row[idx] = "null"
    assert JobSpec.from_values(row).jobParams is None
    row[idx] = "{not json"
    assert JobSpec.from_values(row).jobParams == "{not json"
    row[idx] = b'{"a": 1}'
    assert JobSpec.from_values(row).jobParams == {"a": 1}


def test_every_job_blob_is_lazy_and_in_place_changes_are_written():
    job = make_job()
    job.set_one_attribute("coreCount", 8)
    back = JobSpec.from_values(job.values_list())
    from pandaharvester.harvestercore.spec_base import LazyBlob

    assert {n for n in JobSpec.blob_columns() if type(back.__dict__[n]) is LazyBlob} == \
        {n for n in JobSpec.blob_columns() if getattr(job, n) is not None}
    back.set_one_attribute("nEvents", 5)
    assert back.get_changed_attributes() == {"jobAttributes": {"coreCount": 8, "nEvents": 5}}
    assert back.get_logfile_info() == job.get_logfile_info()
