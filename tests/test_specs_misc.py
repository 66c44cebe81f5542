"""Small specs, error tables, spec_utils helpers and pickle compatibility (ours and the original's)."""

from __future__ import annotations

import datetime
import os
import pickle
import subprocess
import sys
import xml.dom.minidom
from pathlib import Path

import pytest

from pandaharvester.harvestercore import core_utils
from pandaharvester.harvestercore.command_spec import CommandSpec
from pandaharvester.harvestercore.diag_spec import DiagSpec
from pandaharvester.harvestercore.event_spec import EventSpec
from pandaharvester.harvestercore.file_spec import FileSpec
from pandaharvester.harvestercore.job_spec import JobSpec
from pandaharvester.harvestercore.panda_queue_spec import PandaQueueSpec
from pandaharvester.harvestercore.pilot_errors import PilotErrors, PilotException
from pandaharvester.harvestercore.queue_config_dump_spec import QueueConfigDumpSpec
from pandaharvester.harvestercore.service_metrics_spec import ServiceMetricSpec
from pandaharvester.harvestercore.spec_utils import (
    get_output_file_report,
    make_pool_file_catalog,
    update_job_attributes_with_workers,
)
from pandaharvester.harvestercore.work_spec import WorkSpec
from pandaharvester.harvestercore.worker_errors import WorkerErrors

REPO = Path(__file__).resolve().parent.parent
ORIGINAL_PICKLES = REPO.parent / "shared" / "reference" / "original-pickles"

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_specs_job import LOG, make_job  # noqa: E402


# ---------------------------------------------------------------------- small specs
def test_command_spec():
    assert CommandSpec.receiver_map == {"REPORT_WORKER_STATS": "propagator", "SET_N_WORKERS_JOBTYPE": "submitter",
                                        "KILL_WORKERS": "sweeper", "SYNC_WORKERS_KILL": "sweeper"}
    c = CommandSpec()
    c.convert_command_json({"command_id": 5, "command": "KILL_WORKERS", "params": {"status": ["submitted"]},
                            "ack_requested": True})
    assert (c.command_id, c.processed, c.params) == (5, 0, {"status": ["submitted"]})
    c.convert_command_json({"command_id": 6, "command": "X", "params": None, "ack_requested": False, "processed": 1})
    assert c.processed == 1
    assert CommandSpec.get_receiver("SET_N_WORKERS_JOBTYPE:CERN") == "submitter"
    assert CommandSpec.get_receiver("UNKNOWN") is None and CommandSpec.get_receiver(None) is None
    assert CommandSpec.blob_columns() == {"params"}


def test_panda_queue_spec():
    assert PandaQueueSpec.RT_catchall == "ANY" and PandaQueueSpec.JT_catchall == "ANY"
    assert PandaQueueSpec.primary_key() == "uniqueName"
    assert "nQueueLimitWorkerMin" in PandaQueueSpec.column_list()


def test_diag_spec_convert_to_propagate():
    d = DiagSpec()
    d.diagID, d.moduleName, d.messageLevel, d.diagMessage = 3, "monitor", "ERROR", "boom"
    d.creationTime = datetime.datetime(2024, 2, 3, 4, 5, 6, 7)
    assert d.convert_to_propagate() == {"diagID": 3, "moduleName": "monitor", "identifier": None,
                                        "creationTime": "2024-02-03 04:05:06.000007", "messageLevel": "ERROR",
                                        "diagMessage": "boom"}


def test_queue_config_dump_spec():
    q = QueueConfigDumpSpec()
    q.queueName = "Q1"
    conf = {"queueName": "Q1", "queueStatus": "online", "submitter": {"module": "m", "name": "n"}}
    q.set_data(conf)
    assert "queueStatus" not in q.data and "queueStatus" in conf  # deep copy
    assert len(q.checksum) == 32 and q.dumpUniqueName == f"Q1_{q.checksum}"
    q2 = QueueConfigDumpSpec()
    q2.queueName = "Q1"
    q2.set_data(dict(conf, queueStatus="offline"))
    assert q2.checksum == q.checksum  # status does not make a new version


def test_service_metric_spec():
    s = ServiceMetricSpec({"rss_mib": 12.5})
    assert s.metrics == {"rss_mib": 12.5} and s.hostName and isinstance(s.creationTime, datetime.datetime)
    assert s.values_map()[":metrics"] == '{"rss_mib": 12.5}'
    empty = ServiceMetricSpec.from_values(s.values_list())
    assert empty.metrics == {"rss_mib": 12.5}
    assert pickle.loads(pickle.dumps(s)).metrics == {"rss_mib": 12.5}


def test_worker_errors():
    handler = WorkerErrors.message_pattern_handler
    assert WorkerErrors.error_codes["PREEMPTED"] == 1001
    assert handler.get_error_code("LRMS error: (271) job killed: wall") == 4215
    assert handler.get_error_code("File stage-in failed: Transfer of x failed: Not Found") == 3632
    assert handler.get_error_code("something else") == 9000
    assert handler.get_error_code(None) is None


def test_pilot_errors():
    errors = PilotErrors()
    assert errors.getErrorName(PilotErrors.FAILEDBYSERVER) == "FAILEDBYSERVER"
    assert errors.getPilotErrorDiag(-12345) == "Unknown pilot error code"
    assert PilotErrors.getErrorStr(-12345) == ""
    assert errors.isPutErrorCode(1137) and not errors.isGetErrorCode(1137)
    assert PilotErrors.isRecoverableErrorCode(0)
    assert errors.convertToPilotErrors(-99999) == (None, "")
    exc = PilotException("stage-in failed", code=PilotErrors.STAGEINFAILED)
    assert exc.code == 1099 and exc.code_description and str(exc).startswith("PilotException: 1099: stage-in failed")


# ---------------------------------------------------------------------- spec_utils
def _worker(worker_id, status, n_core=8, **kw) -> WorkSpec:
    w = WorkSpec()
    w.workerID = worker_id
    w.nCore = n_core
    w.set_status(status)
    for k, v in kw.items():
        setattr(w, k, v)
    return w


def test_core_utils_reexports():
    assert core_utils.update_job_attributes_with_workers is update_job_attributes_with_workers
    assert core_utils.get_output_file_report is get_output_file_report
    assert core_utils.make_pool_file_catalog is make_pool_file_catalog


def test_update_one_to_one():
    job = make_job()
    job.status, job.subStatus = "starting", "submitted"
    worker = _worker(11, WorkSpec.ST_running, n_core=16, batchID="777.0")
    worker.workAttributes = {job.PandaID: {"cpuConsumptionTime": 5, "metaData": '{"a": 1}'}}
    files = {11: {job.PandaID: {"AOD.2._000001.pool.root.1": [
        {"path": "/w/aod", "fsize": 100, "type": "output", "chksum": "ad:01", "guid": "g-1"}]}}}
    events = [{job.PandaID: [{"eventRangeID": "6600000123-1-2-3-4", "eventStatus": "finished"}]}]
    job.reset_changed_list()
    assert update_job_attributes_with_workers(WorkSpec.MT_OneToOne, [job], [worker], files, events) is True
    assert (job.status, job.subStatus) == ("running", "running")
    assert job.startTime is not None and job.endTime is None
    assert job.nCore == 8  # from convert_job_json: kept
    assert job.jobAttributes == {"cpuConsumptionTime": 5, "batchID": "777.0"}
    assert job.metaData == '{"a": 1}' and "metaData" not in worker.workAttributes[job.PandaID]
    (out,) = job.outFiles
    assert (out.lfn, out.path, out.fsize, out.fileType, out.workerID, out.scope, out.chksum) == (
        "AOD.2._000001.pool.root.1", "/w/aod", 100, "output", 11, "mc23_13p6TeV", "ad:01")
    (event,) = job.events
    assert event.PandaID == job.PandaID
    assert job.propagatorTime is not None  # worker had a new status
    # the worker finishes; the job attribute says failed
    worker.new_status = False
    worker.set_status(WorkSpec.ST_finished)
    job.set_one_attribute("jobStatus", "failed")
    update_job_attributes_with_workers(WorkSpec.MT_OneToOne, [job], [worker], {}, [])
    assert (job.status, job.subStatus) == ("failed", "to_transfer") and job.endTime is not None


def test_update_many_to_one_splits_cores_and_pilot_closed():
    jobs = [make_job(PandaID=1, coreCount="NULL"), make_job(PandaID=2, coreCount="NULL")]
    worker = _worker(3, WorkSpec.ST_submitted, n_core=3)
    worker.set_pilot_closed()
    update_job_attributes_with_workers(WorkSpec.MT_MultiJobs, jobs, [worker], {}, [])
    for job in jobs:
        assert job.nCore == 1 and (job.status, job.subStatus) == ("starting", "submitted")
        assert job.is_pilot_closed() and job.startTime == job.endTime


def test_update_one_to_many():
    job = make_job(coreCount="NULL")
    job.status = "starting"
    t0 = datetime.datetime(2024, 1, 1, 0, 0, 0)
    running = _worker(1, WorkSpec.ST_running, n_core=4)
    done = _worker(2, WorkSpec.ST_finished, n_core=8)
    files = {2: {job.PandaID: {LOG: [{"path": "/w/log", "fsize": 3, "type": "log",
                                      "eventRangeID": "6600000123-1-99-3-4"}]}}}
    update_job_attributes_with_workers(WorkSpec.MT_MultiWorkers, [job], [running, done], files, [])
    assert (job.status, job.subStatus) == ("running", "running") and job.nCore == 4
    (log,) = job.outFiles
    assert log.provenanceID == "99" and log.scope == "mc23_13p6TeV_log" and log.workerID == 2
    # all workers ended: time-averaged cores, no more workers, finished wins over failed
    running.set_status(WorkSpec.ST_failed)
    for w, (start, end) in ((running, (0, 3600)), (done, (0, 1800))):
        w.startTime, w.endTime = t0 + datetime.timedelta(seconds=start), t0 + datetime.timedelta(seconds=end)
    job.startTime, job.endTime = t0, None
    job.reset_out_file()
    update_job_attributes_with_workers(WorkSpec.MT_MultiWorkers, [job], [running, done], {}, [])
    assert (job.status, job.subStatus) == ("finished", "to_transfer")
    assert job.moreWorkers == 0 and job.endTime is not None
    duration = (job.endTime - t0).total_seconds()
    assert job.nCore == int(-(-(4 * 3600 + 8 * 1800) // duration))
    only_failed = make_job()
    update_job_attributes_with_workers(WorkSpec.MT_MultiWorkers, [only_failed], [_worker(5, WorkSpec.ST_failed)], {}, [])
    assert only_failed.status == "failed"
    cancelled = make_job()
    update_job_attributes_with_workers(WorkSpec.MT_MultiWorkers, [cancelled], [_worker(6, WorkSpec.ST_cancelled)], {}, [])
    assert cancelled.status == "cancelled"
    waiting = make_job()
    waiting.status = "starting"
    update_job_attributes_with_workers(WorkSpec.MT_MultiWorkers, [waiting], [_worker(7, WorkSpec.ST_submitted)], {}, [])
    assert (waiting.status, waiting.subStatus) == ("starting", "submitted")


def test_output_file_report():
    job = make_job()
    job.outputFilesToReport = "<given/>"
    assert get_output_file_report(job) == "<given/>"
    job.outputFilesToReport = None
    aod = FileSpec()
    aod.lfn, aod.fileType, aod.status, aod.fsize, aod.chksum = "AOD.1", "output", "finished", 10, "ad:0a0b0c0d"
    aod.fileAttributes = {"guid": "G-AOD"}
    log = FileSpec()
    log.lfn, log.fileType, log.status, log.fsize = LOG, "log", "finished", 5
    failed = FileSpec()
    failed.lfn, failed.fileType, failed.status = "BAD", "output", "failed"
    for f in (aod, log, failed):
        job.add_out_file(f)
    job.set_one_attribute("skippedInputs", ["skipped.root"])
    report = get_output_file_report(job)
    dom = xml.dom.minidom.parseString(report.encode())
    entries = {}
    for node in dom.getElementsByTagName("File"):
        lfn = node.getElementsByTagName("lfn")[0].getAttribute("name")
        meta = {m.getAttribute("att_name"): m.getAttribute("att_value") for m in node.getElementsByTagName("metadata")}
        entries[lfn] = (node.getAttribute("ID"), meta)
    assert entries == {
        "AOD.1": ("G-AOD", {"fsize": "10", "adler32": "0a0b0c0d"}),
        LOG: ("cf74dcc4-e84f-48dc-9fc6-6c12a13a0e81", {"fsize": "5", "adler32": ""}),
        "skipped.root": ("", {"fsize": "0", "adler32": ""}),
    }


def test_pool_file_catalog():
    jobs = [make_job(PandaID=1), make_job(PandaID=2)]
    dom = xml.dom.minidom.parseString(make_pool_file_catalog(jobs).encode())
    files = dom.getElementsByTagName("File")
    assert len(files) == 2  # shared inputs listed once
    names = {f.getElementsByTagName("pfn")[0].getAttribute("name"): f.getAttribute("ID") for f in files}
    assert names == {"RDO.1._000001.pool.root.1": "0CC1434F-9C9A-DF11-8207-003048D2BAB2",
                     "DBRelease-31.8.1.tar.gz": "39e0c6b7-0979-442f-9d3d-ad840194607e"}


# ---------------------------------------------------------------------- pickles
def test_pickle_round_trip_of_job_with_files_and_worker():
    job = make_job()
    f = FileSpec()
    f.lfn, f.fileType = "x", "input"
    job.add_file(f)
    e = EventSpec()
    e.eventRangeID = "r"
    job.add_event(e, None)
    back = pickle.loads(pickle.dumps(job))
    assert back.PandaID == job.PandaID and back.jobParams == job.jobParams
    assert {x.lfn for x in back.inFiles} == {"x"} and len(back.events) == 1
    assert not back.has_updated_attributes()
    w = _worker(1, WorkSpec.ST_running)
    w.isNew = True
    wb = pickle.loads(pickle.dumps(w))
    assert wb.status == "running" and wb.isNew is False and wb.new_status is False  # transient flags dropped
    assert not wb.has_updated_attributes()


def _original_pickle(name: str) -> Path:
    """The original's pickle, read in place from ../shared (never copied into the repo)."""
    path = ORIGINAL_PICKLES / name
    assert path.is_file(), f"{path} missing: the tests need ../shared/reference/original-pickles/ beside the repo"
    return path


def test_original_workspec_pickle_loads():
    with open(_original_pickle("workspec.pickle"), "rb") as f:
        w = pickle.load(f, encoding="latin1")
    assert type(w) is WorkSpec
    assert (w.workerID, w.status, w.batchID, w.mapType, w.nCore) == (5, "submitted", "4562339", "OneToOne", 24)
    assert w.accessPoint == "/global/homes/t/tmaeno/workdir/panda/5"
    assert w.submitTime == datetime.datetime(2017, 3, 27, 8, 7, 39, 31078)
    assert w.workAttributes == {} and w.computingSite == "BNL_PROD_5" and w.postProcessed == 1
    # columns the old pickle did not know exist with their defaults; nothing is marked changed
    assert w.errorCode is None and w.configID is None
    assert not w.has_updated_attributes()
    assert w.attributes == WorkSpec.column_list()
    w.set_status(WorkSpec.ST_running)
    assert {"status", "startTime", "lastUpdate"} <= set(w.get_changed_attributes())
    assert len(w.values_list()) == len(WorkSpec.column_list())
    assert w.convert_to_propagate()["submitTime"] == "datetime/2017-03-27 08:07:39.031078"


def test_original_jobspec_pickle_loads():
    with open(_original_pickle("jobspec.pickle"), "rb") as f:
        j = pickle.load(f, encoding="latin1")
    assert type(j) is JobSpec
    assert (j.PandaID, j.status, j.subStatus, j.nCore, j.zipPerMB) == (1759473585, "failed", "done", 24, 1024)
    assert j.jobParams["transformation"] == "AtlasG4_trf.py"
    assert j.outputFilesToReport.startswith("<?xml")
    assert j.inFiles == set() and j.events == set()
    assert not j.has_updated_attributes()
    assert j.get_status() == "failed"
    attrs = j.get_input_file_attributes()
    assert attrs["EVNT.153937._000184.pool.root.1"]["fsize"] == 33902810
    assert j.get_logfile_info()["guid"] == "cf74dcc4-e84f-48dc-9fc6-6c12a13a0e81"
    # it can be written like any other job
    assert JobSpec.from_values(j.values_list()).jobParams == j.jobParams


@pytest.mark.parametrize("name,cls", [("workspec.pickle", "WorkSpec"), ("jobspec.pickle", "JobSpec")])
def test_example_pickles_load_in_fresh_interpreter(name, cls):
    path = REPO / "examples" / name
    assert path.is_file(), "run scripts/make_example_pickles.py"
    code = (
        "import pickle; obj = pickle.load(open(%r, 'rb')); "
        "import sys; assert 'pandaharvester.harvesterconfig.harvester_config' not in sys.modules; "
        "print(type(obj).__name__, obj.has_updated_attributes())" % str(path)
    )
    # no cfg anywhere: loading a spec must not need one
    env = {k: v for k, v in os.environ.items() if k not in ("PANDA_HOME", "HARVESTER_INSTANCE_CONFIG_URL")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd="/", env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [cls, "False"]


def test_original_pickles_are_not_copied_into_the_repo():
    originals = {_original_pickle(name).read_bytes() for name in ("jobspec.pickle", "workspec.pickle")}
    copies = [path for path in REPO.rglob("*.pickle")
              if ".venv" not in path.parts and path.read_bytes() in originals]
    assert copies == [], "the original's pickles stay in ../shared; tests read them from there"


def test_example_pickles_are_what_the_script_writes(tmp_path):
    out = subprocess.run([sys.executable, str(REPO / "scripts" / "make_example_pickles.py"), str(tmp_path)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    for name in ("jobspec.pickle", "workspec.pickle"):
        made = (tmp_path / name).read_bytes()
        assert made == (REPO / "examples" / name).read_bytes(), \
            f"examples/{name} is stale: run scripts/make_example_pickles.py and commit the result"


def test_example_pickles_content():
    with open(REPO / "examples" / "workspec.pickle", "rb") as f:
        w = pickle.load(f)
    assert w.status == "running" and w.accessPoint == "/data/harvester/workdir/42/4217"
    assert isinstance(w.workParams["submittedAt"], datetime.datetime)
    with open(REPO / "examples" / "jobspec.pickle", "rb") as f:
        j = pickle.load(f)
    assert j.subStatus == "preparing" and j.resourceType == "MCORE" and len(j.inFiles) == 1
