"""SharedFileMessenger protocol and a real dummy-pilot worker end to end."""

from __future__ import annotations

import json
import logging
import os
import signal
import time

import psutil
import pytest

from pandaharvester.harvestercore import core_utils
from pandaharvester.harvestercore.job_spec import JobSpec
from pandaharvester.harvestercore.work_spec import WorkSpec
from pandaharvester.harvestermessenger.base_messenger import payload_file_names
from pandaharvester.harvestermessenger.shared_file_messenger import SharedFileMessenger
from pandaharvester.harvestermonitor.dummy_monitor import DummyMonitor
from pandaharvester.harvestersubmitter import dummy_submitter
from pandaharvester.harvestersubmitter.dummy_submitter import DummySubmitter
from pandaharvester.harvestersweeper.dummy_sweeper import DummySweeper


def make_job(panda_id: int, **extra) -> JobSpec:
    data = {"PandaID": panda_id, "taskID": 77, "attemptNr": 1, "jobsetID": 5, "currentPriority": 100,
            "coreCount": 1, "prodSourceLabel": "managed", "outFiles": f"out.{panda_id}.root,log.{panda_id}.tgz",
            "logFile": f"log.{panda_id}.tgz", "logGUID": "log-guid", "scopeOut": "mc", "scopeLog": "mc",
            "realDatasets": "ds.out,ds.log", "ddmEndPointOut": "EP,EP", "inFiles": f"in.{panda_id}.root",
            "GUID": "guid-in", "fsize": "10", "checksum": "ad:0000", "scopeIn": "mc", "realDatasetsIn": "ds.in",
            "ddmEndPointIn": "EPIN"}
    data.update(extra)
    job = JobSpec()
    job.convert_job_json(data)
    return job


def make_worker(tmp_path, worker_id: int, jobs: list, map_type: str = WorkSpec.MT_OneToOne) -> WorkSpec:
    worker = WorkSpec()
    worker.workerID = worker_id
    worker.mapType = map_type
    worker.accessPoint = str(tmp_path / "workers" / "${workerID}")
    worker.isNew = True
    worker.set_jobspec_list(jobs)
    worker.pandaid_list = [job.PandaID for job in jobs]
    return worker


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")


def pid_gone(pid: int) -> bool:
    dummy_submitter.reap_children()
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture()
def plugins():
    return SharedFileMessenger(), DummyMonitor(), DummySweeper(killGracePeriod=2)


# ---------------------------------------------------------------- end to end, real process
def test_push_worker_end_to_end(tmp_path, plugins):
    messenger, monitor, sweeper = plugins
    names = payload_file_names()
    job = make_job(1001)
    from pandaharvester.harvestercore.file_spec import FileSpec

    in_file = FileSpec()
    in_file.lfn, in_file.fileType, in_file.path = "in.1001.root", "input", str(tmp_path / "store" / "in.1001.root")
    os.makedirs(tmp_path / "store")
    (tmp_path / "store" / "in.1001.root").write_text("input data")
    job.add_in_file(in_file)
    worker = make_worker(tmp_path, 11, [job])
    assert messenger.setup_access_points([worker]) is True
    access_point = worker.get_access_point()
    assert access_point.endswith("/workers/11") and os.path.isdir(access_point)
    assert messenger.feed_jobs(worker, [job]) is True
    with open(os.path.join(access_point, names["jobSpecFile"])) as stream:
        assert json.load(stream)["1001"]["PandaID"] == 1001
    with open(os.path.join(access_point, names["pandaIDsFile"])) as stream:
        assert json.load(stream) == [1001]
    assert "guid-in" in open(os.path.join(access_point, names["xmlPoolCatalogFile"])).read()
    assert os.readlink(os.path.join(access_point, "in.1001.root")) == in_file.path

    submitter = DummySubmitter(sleepTime=1.5, heartbeatInterval=0.2, uploadLogs=False)
    assert submitter.submit_workers([worker]) == [(True, "")]
    pid = int(worker.batchID)
    assert psutil.pid_exists(pid) and worker.workAttributes["stdOut"].startswith("file://")
    ok, statuses = monitor.check_workers([worker])
    assert ok is True and statuses[0][0] in (WorkSpec.ST_submitted, WorkSpec.ST_running)
    wait_for(lambda: monitor.check_workers([worker])[1][0][0] == WorkSpec.ST_running)
    assert messenger.is_alive(worker, 1) is True
    status = wait_for(lambda: (lambda s: s if s[0] in ("finished", "failed") else None)(
        monitor.check_workers([worker])[1][0]))
    assert status == (WorkSpec.ST_finished, "")
    wait_for(lambda: pid_gone(pid))

    attrs = messenger.get_work_attributes(worker)
    assert attrs[1001]["jobStatus"] == "finished" and attrs[1001]["metaData"]["exitCode"] == 0
    files = messenger.get_files_to_stage_out(worker)
    out = files[1001]["out.1001.root"][0]
    assert out["type"] == "output" and out["fsize"] == 1024 and out["isZip"] == 0
    assert out["chksum"] == core_utils.calc_adler32(out["path"]) and b"dummy payload" in open(out["path"], "rb").read()
    assert files[1001]["log.1001.tgz"][0]["type"] == "log"
    # the dump stays as .read until acknowledged, so a crash before the DB write loses nothing
    assert messenger.get_files_to_stage_out(worker) == files
    messenger.acknowledge_events_files(worker)
    assert messenger.get_files_to_stage_out(worker) == {}

    # harvester's side of the monitor cycle accepts what the messenger returned
    from pandaharvester.harvestercore.spec_utils import update_job_attributes_with_workers

    worker.status = WorkSpec.ST_finished
    worker.workAttributes = attrs
    update_job_attributes_with_workers(worker.mapType, [job], [worker], {worker.workerID: files}, [{}])
    assert {f.lfn for f in job.outFiles} == {"out.1001.root", "log.1001.tgz"}
    assert job.status == "finished"
    assert messenger.post_processing(worker, [job], worker.mapType) is True  # log already there

    assert sweeper.kill_worker(worker) == (True, "")  # already dead: success
    assert sweeper.sweep_worker(worker) == (True, "")
    assert not os.path.exists(access_point)
    assert sweeper.sweep_worker(worker) == (True, "")


def test_kill_long_running_pilots_in_bulk(tmp_path, plugins):
    messenger, monitor, sweeper = plugins
    jobs = [make_job(2001), make_job(2002)]
    workers = [make_worker(tmp_path, 21 + i, [job]) for i, job in enumerate(jobs)]
    messenger.setup_access_points(workers)
    for worker, job in zip(workers, jobs):
        messenger.feed_jobs(worker, [job])
    assert DummySubmitter(sleepTime=120, heartbeatInterval=0.2, uploadLogs=False).submit_workers(workers) \
        == [(True, "")] * 2
    pids = [int(w.batchID) for w in workers]
    wait_for(lambda: [s for s, _d in monitor.check_workers(workers)[1]] == [WorkSpec.ST_running] * 2)
    started = time.monotonic()
    assert sweeper.kill_workers(workers) == [(True, "")] * 2  # both signalled at once
    assert time.monotonic() - started < 5
    assert all(pid_gone(pid) for pid in pids)
    # killTime is not set on these specs: the batch system's record of the removal says cancelled
    assert all(w.killTime is None for w in workers)
    for (status, diag), worker in zip(monitor.check_workers(workers)[1], workers):
        assert status == WorkSpec.ST_cancelled and "killed by Harvester" in diag and "SIGTERM" in diag
        assert messenger.get_work_attributes(worker)[worker.pandaid_list[0]]["jobStatus"] == "failed"
    assert sweeper.kill_worker(workers[0]) == (True, "")  # idempotent


def test_pilot_vanishing_without_report_is_failed(tmp_path, plugins):
    messenger, monitor, _ = plugins
    worker = make_worker(tmp_path, 31, [], WorkSpec.MT_NoJob)
    messenger.setup_access_points([worker])
    assert DummySubmitter(sleepTime=120, heartbeatInterval=0.2).submit_workers([worker])[0][0]
    pid = int(worker.batchID)
    # default: stdout/stderr are scheduled for upload to the PanDA cache
    assert worker.workAttributes["stdOut"].endswith("__dummy_pilot.stdout")
    assert any(path.endswith("dummy_pilot.stderr") for path in worker.logFilesToUpload)
    wait_for(lambda: monitor.check_workers([worker])[1][0][0] == WorkSpec.ST_running)
    os.killpg(pid, signal.SIGKILL)
    wait_for(lambda: pid_gone(pid))
    status, diag = monitor.check_workers([worker])[1][0]
    assert status == WorkSpec.ST_failed and "vanished without a final report" in diag


def test_pid_reuse_is_not_mistaken_for_the_pilot():
    assert dummy_submitter.pilot_is_alive({"pid": os.getpid(), "createTime": psutil.Process().create_time()})
    assert not dummy_submitter.pilot_is_alive({"pid": os.getpid(), "createTime": 12345.0})
    assert dummy_submitter.terminate_pilot({"pid": os.getpid(), "createTime": 12345.0}) == (True, "already gone")
    assert not dummy_submitter.pilot_is_alive({"instant": True})


def test_event_service_worker(tmp_path, plugins):
    messenger, monitor, _ = plugins
    job = make_job(3001, eventService="True")
    worker = make_worker(tmp_path, 41, [job])
    messenger.setup_access_points([worker])
    messenger.feed_jobs(worker, [job])
    assert DummySubmitter(sleepTime=2.0, heartbeatInterval=0.1, uploadLogs=False).submit_workers([worker])[0][0]
    request = wait_for(lambda: messenger.events_requested(worker))
    assert request["3001"]["nRanges"] == 2
    ranges = [{"eventRangeID": f"3001-77-5-{i}", "startEvent": i, "lastEvent": i} for i in range(2)]
    assert messenger.feed_events(worker, {3001: ranges}) is True
    assert messenger.events_requested(worker) == {}
    wait_for(lambda: monitor.check_workers([worker])[1][0][0] == WorkSpec.ST_finished)
    files = messenger.get_files_to_stage_out(worker)
    es = [e for name, items in files[3001].items() for e in items if e["type"] == "es_output"]
    assert sorted(e["eventRangeID"] for e in es) == ["3001-77-5-0", "3001-77-5-1"]
    events = messenger.events_to_update(worker)
    assert sorted(e["eventRangeID"] for e in events[3001]) == ["3001-77-5-0", "3001-77-5-1"]
    assert all(e["eventStatus"] == "finished" for e in events[3001])
    messenger.acknowledge_events_files(worker)
    assert messenger.events_to_update(worker) == {}


# ---------------------------------------------------------------- instant mode and failure knob
def test_instant_mode_and_failure_knob(tmp_path, plugins):
    messenger, monitor, sweeper = plugins
    jobs = [make_job(4001), make_job(4002)]
    good, bad = make_worker(tmp_path, 51, [jobs[0]]), make_worker(tmp_path, 52, [jobs[1]])
    messenger.setup_access_points([good, bad])
    for worker, job in ((good, jobs[0]), (bad, jobs[1])):
        messenger.feed_jobs(worker, [job])
    submitter = DummySubmitter(instantMode=True, failWorkerIDs=[52])
    started = time.monotonic()
    assert submitter.submit_workers([good, bad]) == [(True, ""), (True, "")]
    assert time.monotonic() - started < 2
    assert good.batchID == "instant-51"
    # only what someone reads: the pilot's status file, no config file or process record
    assert sorted(n for n in os.listdir(good.get_access_point()) if n.startswith("dummy_pilot")) == \
        ["dummy_pilot_status.json"]
    ok, statuses = monitor.check_workers([good, bad])
    assert statuses[0] == (WorkSpec.ST_finished, "")
    assert statuses[1][0] == WorkSpec.ST_failed and "failure" in statuses[1][1]
    assert set(messenger.get_files_to_stage_out(good)[4001]) == {"out.4001.root", "log.4001.tgz"}
    assert set(messenger.get_files_to_stage_out(bad)[4002]) == {"log.4002.tgz"}
    assert messenger.get_work_attributes(bad)[4002]["jobStatus"] == "failed"
    assert sweeper.kill_worker(good) == (True, "") and sweeper.sweep_worker(good) == (True, "")
    # failureRate is deterministic per workerID
    rated = DummySubmitter(failureRate=0.5)
    picks = [rated.should_fail(make_worker(tmp_path, i, [])) for i in range(1, 201)]
    assert picks == [rated.should_fail(make_worker(tmp_path, i, [])) for i in range(1, 201)]
    assert 60 < sum(picks) < 140
    assert not any(DummySubmitter().should_fail(make_worker(tmp_path, i, [])) for i in range(50))


def test_submit_without_access_point():
    worker = WorkSpec()
    worker.workerID = 99
    ok, diag = DummySubmitter().submit_workers([worker])[0]
    assert ok is False and "accessPoint" in diag


# ---------------------------------------------------------------- robustness
def test_corrupt_worker_files_are_kept_and_retried(tmp_path, plugins, caplog):
    messenger, monitor, _ = plugins
    names = payload_file_names()
    job = make_job(5001)
    worker = make_worker(tmp_path, 61, [job])
    messenger.setup_access_points([worker])
    ap = worker.get_access_point()
    out_path = os.path.join(ap, "out.5001.root")
    with open(out_path, "w") as stream:
        stream.write("data")
    good = json.dumps({"5001": [{"path": out_path, "type": "output"}]})
    with open(os.path.join(ap, names["eventStatusDumpJsonFile"]), "w") as stream:
        stream.write(good[: len(good) // 2])  # half written
    with open(os.path.join(ap, names["workerAttributesFile"]), "w") as stream:
        stream.write('{"jobStatus": "fini')
    caplog.set_level(logging.ERROR)
    assert messenger.get_files_to_stage_out(worker) == {}
    assert messenger.get_work_attributes(worker) == {5001: {}}
    text = caplog.text
    assert names["eventStatusDumpJsonFile"] in text and names["workerAttributesFile"] in text
    assert "workerID=61" in text
    read_path = os.path.join(ap, names["eventStatusDumpJsonFile"] + ".read")
    assert os.path.exists(read_path)  # nothing lost
    with open(read_path, "w") as stream:
        stream.write(good)  # the worker completes the file
    files = messenger.get_files_to_stage_out(worker)
    assert files[5001]["out.5001.root"][0]["fsize"] == 4
    assert files[5001]["out.5001.root"][0]["chksum"] == core_utils.calc_adler32(out_path)
    # unreadable pilot status: the monitor retries (None) instead of guessing
    with open(os.path.join(ap, dummy_submitter.STATUS_FILE), "w") as stream:
        stream.write("{")
    status, diag = monitor.check_workers([worker])[1][0]
    assert status is None and "unreadable" in diag
    # a wrong shape is removed with an error, not retried forever
    with open(os.path.join(ap, names["updateEventsFile"]), "w") as stream:
        stream.write("[1, 2]")
    assert messenger.events_to_update(worker) == {}


def test_pull_worker_calls_without_reports(tmp_path, plugins, caplog):
    messenger, _monitor, _sweeper = plugins
    worker = make_worker(tmp_path, 91, [], WorkSpec.MT_NoJob)
    worker.pandaid_list = []
    assert messenger.setup_access_points([worker]) is True
    assert messenger.get_work_attributes(worker) == {} and messenger.get_files_to_stage_out(worker) == {}
    assert messenger.events_to_update(worker) == {} and messenger.get_panda_ids(worker) == []
    assert messenger.job_requested(worker) is False and messenger.post_processing(worker, [], worker.mapType)
    # jobs unknown (None): an error, retried, as before the loggers were made lazily
    assert messenger.post_processing(worker, None, worker.mapType) is None
    assert "post_processing <workerID=91>" in caplog.text


def test_small_protocol_methods(tmp_path, plugins):
    messenger, _, _ = plugins
    names = payload_file_names()
    worker = make_worker(tmp_path, 71, [], WorkSpec.MT_NoJob)
    messenger.setup_access_points([worker])
    ap = worker.get_access_point()
    assert messenger.job_requested(worker) is False
    with open(os.path.join(ap, names["jobRequestFile"]), "w") as stream:
        json.dump({"nJobs": 3}, stream)
    assert messenger.job_requested(worker) == 3
    with open(os.path.join(ap, names["jobRequestFile"]), "w") as stream:
        stream.write("garbage")
    assert messenger.job_requested(worker) == 1
    assert messenger.get_panda_ids(worker) == []
    with open(os.path.join(ap, names["pandaIDsFile"]), "w") as stream:
        json.dump([7, 8], stream)
    assert messenger.get_panda_ids(worker) == [7, 8]
    assert messenger.kill_requested(worker) is False
    open(os.path.join(ap, names["killWorkerFile"]), "w").close()
    assert messenger.kill_requested(worker) is True
    assert messenger.is_alive(worker, 10) is True  # no heartbeat, no startTime yet
    open(os.path.join(ap, names["heartbeatFile"]), "w").close()
    old = time.time() - 3600
    os.utime(os.path.join(ap, names["heartbeatFile"]), (old, old))
    assert messenger.is_alive(worker, 10) is False
    assert messenger.filter_log_tgz("pilot.log") and not messenger.filter_log_tgz("data.root")
    assert messenger.clean_up(worker) == (True, "")
    assert messenger.clean_up(worker) == (None, "")


def test_multijobs_sub_directories_and_post_processing(tmp_path, plugins):
    messenger, monitor, _ = plugins
    names = payload_file_names()
    jobs = [make_job(6001), make_job(6002)]
    worker = make_worker(tmp_path, 81, jobs, WorkSpec.MT_MultiJobs)
    assert messenger.setup_access_points([worker]) is True
    ap = worker.get_access_point()
    assert os.path.isdir(os.path.join(ap, "6001")) and os.path.isdir(os.path.join(ap, "6002"))
    assert messenger.feed_jobs(worker, jobs) is True
    assert os.path.exists(os.path.join(ap, "6002", names["jobSpecFile"]))
    assert DummySubmitter(instantMode=True).submit_workers([worker]) == [(True, "")]
    assert monitor.check_workers([worker])[1][0][0] == WorkSpec.ST_finished
    files = messenger.get_files_to_stage_out(worker)
    assert set(files) == {6001, 6002}
    assert files[6002]["out.6002.root"][0]["path"].startswith(os.path.join(ap, "6002"))
    # post-processing makes a log tarball when the job has none
    fresh = make_job(6001)
    with open(os.path.join(ap, "6001", "payload.log"), "w") as stream:
        stream.write("payload says hi")
    messenger.acknowledge_events_files(worker)
    assert messenger.post_processing(worker, [fresh], worker.mapType) is True
    files = messenger.get_files_to_stage_out(worker)
    assert files[6001]["log.6001.tgz"][0]["type"] == "log"
    import tarfile

    with tarfile.open(os.path.join(ap, "6001", "log.6001.tgz")) as tar:
        assert "payload.log" in tar.getnames()


# ---------------------------------------------------------------- file helpers, access points, feeding
def test_atomic_writes_leave_no_temporary_file(tmp_path):
    from pandaharvester.harvestermessenger import shared_file_io

    path = tmp_path / "data.json"
    shared_file_io.write_json_atomic(str(path), {"1": {"a": [1, 2]}})
    shared_file_io.write_json_atomic(str(path), {"2": "b"})
    assert json.loads(path.read_text()) == {"2": "b"} and os.listdir(tmp_path) == ["data.json"]
    with pytest.raises(TypeError):  # not JSON: the old content stays, no temporary file
        shared_file_io.write_json_atomic(str(path), {"x": object()})
    with pytest.raises(FileNotFoundError):
        shared_file_io.write_text_atomic(str(tmp_path / "missing" / "f.txt"), "text")
    assert json.loads(path.read_text()) == {"2": "b"} and os.listdir(tmp_path) == ["data.json"]


def test_access_points_fresh_for_new_workers_kept_for_old(tmp_path, plugins):
    messenger = plugins[0]
    worker = make_worker(tmp_path, 81, [make_job(8001)])
    assert messenger.setup_access_points([worker]) is True  # the parent is made too
    left = os.path.join(worker.get_access_point(), "left_over")
    open(left, "w").close()
    worker.isNew = False
    assert messenger.setup_access_points([worker]) is True and os.path.exists(left)
    worker.isNew = True
    assert messenger.setup_access_points([worker]) is True and os.listdir(worker.get_access_point()) == []
    # a file where the access point should be: an error, no access point
    blocker = make_worker(tmp_path, 82, [])
    blocker.isNew = False
    open(blocker.get_access_point(), "w").close()
    assert messenger.setup_access_points([blocker]) is False


def test_feed_jobs_failure_is_logged_with_the_ids(tmp_path, plugins, caplog):
    messenger = plugins[0]
    job = make_job(8101)
    worker = make_worker(tmp_path, 83, [job])
    messenger.setup_access_points([worker])
    job.jobParams = {"PandaID": 8101, "bad": object()}  # cannot be written as JSON
    caplog.set_level(logging.DEBUG)
    assert messenger.feed_jobs(worker, [job]) is False
    assert "PandaID=8101 not fed" in caplog.text and "workerID=83" in caplog.text
    with open(os.path.join(worker.get_access_point(), payload_file_names()["pandaIDsFile"])) as stream:
        assert json.load(stream) == []  # the pilot is not told of a job it has no description of


def test_instant_pilot_outputs_are_real_files(tmp_path, plugins):
    import tarfile

    messenger = plugins[0]
    job = make_job(8201)
    worker = make_worker(tmp_path, 84, [job])
    messenger.setup_access_points([worker])
    messenger.feed_jobs(worker, [job])
    assert DummySubmitter(instantMode=True).submit_workers([worker]) == [(True, "")]
    files = messenger.get_files_to_stage_out(worker)[8201]
    for lfn, (entry,) in files.items():  # size and checksum as written
        assert entry["fsize"] == os.path.getsize(entry["path"])
        assert entry["chksum"] == core_utils.calc_adler32(entry["path"])
    with tarfile.open(files["log.8201.tgz"][0]["path"]) as tar:  # a gzipped tar with the pilot log
        text = tar.extractfile("8201/pilotlog.txt").read().decode()
    assert "PandaID=8201" in text and "start in" in text
    assert not [n for n in os.listdir(worker.get_access_point()) if ".tmp." in n]
