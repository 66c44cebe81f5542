"""Plugin base/factory and the return shapes of the dummy/simple plugins."""

from __future__ import annotations

import datetime
import os
import tarfile
import textwrap
import sys

import pytest

from pandaharvester.errors import PluginError
from pandaharvester.harvestercore.file_spec import FileSpec
from pandaharvester.harvestercore.job_spec import JobSpec
from pandaharvester.harvestercore.plugin_base import PluginBase
from pandaharvester.harvestercore.plugin_factory import PluginFactory
from pandaharvester.harvestercore.work_spec import WorkSpec


def make_job(panda_id: int = 1001, **extra) -> JobSpec:
    data = {"PandaID": panda_id, "taskID": 77, "attemptNr": 1, "jobsetID": "NULL", "currentPriority": 100,
            "coreCount": 2, "minRamCount": 3000, "maxDiskCount": 500, "maxWalltime": 7200,
            "prodSourceLabel": "managed", "outFiles": f"out.{panda_id}.root,log.{panda_id}.tgz",
            "logFile": f"log.{panda_id}.tgz", "logGUID": "a-b-c", "scopeOut": "mc", "scopeLog": "mc",
            "realDatasets": "ds.out,ds.log", "ddmEndPointOut": "EP,EP", "inFiles": "in1.root",
            "GUID": "guid-in1", "fsize": "10", "checksum": "ad:0000", "scopeIn": "mc", "realDatasetsIn": "ds.in",
            "ddmEndPointIn": "EPIN", "transformation": "run.sh", "jobPars": "--x"}
    data.update(extra)
    job = JobSpec()
    job.convert_job_json(data)
    return job


class FakeQueue:
    queueName = "TEST_QUEUE"
    siteName = "TEST_SITE"
    submitter: dict = {}


# ---------------------------------------------------------------- PluginBase / PluginFactory
def test_plugin_base_kwargs_become_attributes():
    plugin = PluginBase(alpha=1, queueName="Q")
    assert plugin.alpha == 1 and plugin.queueName == "Q"


def test_plugin_base_logger_uses_db_hook_and_method_name():
    class Hook:
        def __init__(self):
            self.messages = []

        def add_dialog_message(self, message, level, module_name, identifier=None):
            self.messages.append((message, level))

    hook = Hook()
    plugin = PluginBase(dbInterface=hook)
    import logging

    def some_method():
        return plugin.make_logger(logging.getLogger("panda.log.test_plugins"), "workerID=3")

    log = some_method()
    assert log.prefix.startswith("some_method <workerID=3>")
    log.error("boom")
    assert hook.messages and "boom" in hook.messages[0][0]
    quiet = plugin.make_logger(logging.getLogger("panda.log.test_plugins"), send_dialog=False, method_name="m")
    quiet.error("silent")
    assert len(hook.messages) == 1


DUMMY_CONF = {"module": "pandaharvester.harvestersubmitter.dummy_submitter", "name": "DummySubmitter",
              "sleepTime": 7, "queueName": "Q1"}


def test_factory_kwargs_cache_and_new_instances():
    factory = PluginFactory(no_db=True)
    first = factory.get_plugin(dict(DUMMY_CONF))
    second = factory.get_plugin(dict(DUMMY_CONF, sleepTime=9))
    assert first is not second
    assert first.sleepTime == 7 and second.sleepTime == 9 and first.queueName == "Q1"
    assert not hasattr(first, "module") and not hasattr(first, "dbInterface")
    assert list(factory.classMap) == ["pandaharvester.harvestersubmitter.dummy_submitter.DummySubmitter"]
    assert factory.get_plugin_key(DUMMY_CONF) == "pandaharvester.harvestersubmitter.dummy_submitter.DummySubmitter"
    assert factory.get_plugin({"module": None, "name": None}) is None
    assert factory.get_plugin(None) is None


def test_factory_adds_db_interface_when_available():
    factory = PluginFactory()
    plugin = factory.get_plugin(dict(DUMMY_CONF))
    try:
        import pandaharvester.harvestercore.db_interface  # noqa: F401
    except ImportError:
        assert not hasattr(plugin, "dbInterface")
    else:
        assert plugin.dbInterface is not None


def test_factory_missing_module_names_queue_role_and_path():
    factory = PluginFactory(no_db=True)
    with pytest.raises(PluginError) as err:
        factory.get_plugin({"module": "pandaharvester.harvestersubmitter.no_such", "name": "X", "queueName": "QX"},
                           role="submitter")
    text = str(err.value)
    assert "QX" in text and "submitter" in text and "pandaharvester.harvestersubmitter.no_such" in text
    assert "check the 'module'" in text


def test_factory_missing_class_and_role_key():
    factory = PluginFactory(no_db=True)
    with pytest.raises(PluginError) as err:
        factory.get_plugin({"module": "pandaharvester.harvestermonitor.dummy_monitor", "name": "Nope",
                            "queueName": "QY", "_role": "monitor"})
    text = str(err.value)
    assert "QY" in text and "monitor" in text and "Nope" in text and "check the 'name'" in text


def test_factory_missing_dependency_and_ctor_error(tmp_path, monkeypatch):
    (tmp_path / "plug_dep.py").write_text("import not_a_real_dependency_xyz\n")
    (tmp_path / "plug_ctor.py").write_text(textwrap.dedent("""
        class Broken:
            def __init__(self, **kw):
                raise ValueError("bad key")
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    factory = PluginFactory(no_db=True)
    with pytest.raises(PluginError, match="not_a_real_dependency_xyz"):
        factory.get_plugin({"module": "plug_dep", "name": "A", "queueName": "Q"})
    with pytest.raises(PluginError, match="bad key"):
        factory.get_plugin({"module": "plug_ctor", "name": "Broken", "queueName": "Q"})


def test_factory_bare_impl_for_middleware():
    factory = PluginFactory(no_db=True)
    conf = {"module": "pandaharvester.harvestermonitor.dummy_monitor", "name": "DummyMonitor",
            "bareFunctions": ["check_workers"], "original_config": dict(DUMMY_CONF)}
    impl = factory.get_plugin(conf)
    assert type(impl.bare_impl).__name__ == "DummySubmitter"
    plain = factory.get_plugin(dict(DUMMY_CONF, original_config=dict(DUMMY_CONF)))
    assert not hasattr(plain, "bare_impl")


# ---------------------------------------------------------------- small plugins
def test_dummy_preparator_shapes():
    from pandaharvester.harvesterpreparator.dummy_preparator import DummyPreparator

    job = make_job()
    prep = DummyPreparator()
    assert prep.trigger_preparation(job) == (True, "")
    assert prep.check_stage_in_status(job) == (True, "")
    assert prep.resolve_input_paths(job) == (True, "")
    assert job.jobParams["inFilePaths"] == "dummypath/in1.root"


def test_dummy_stager_marks_outputs_finished_and_zips(tmp_path):
    from pandaharvester.harvesterstager.dummy_stager import DummyStager

    job = make_job()
    out = FileSpec()
    out.lfn, out.fileType, out.status = "out.root", "output", "defined"
    job.add_out_file(out)
    stager = DummyStager()
    assert stager.trigger_stage_out(job) == (True, "")
    assert stager.check_stage_out_status(job) == (True, "")
    assert out.status == "finished"
    # zipping: one zip file with two members
    zjob = make_job(1002)
    zip_spec = FileSpec()
    zip_spec.lfn = "events.zip"
    for i in range(2):
        member = FileSpec()
        member.lfn = f"ev{i}"
        member.path = str(tmp_path / f"ev{i}")
        (tmp_path / f"ev{i}").write_text(f"event {i}")
        zip_spec.add_associated_file(member)
    zjob.add_out_file(zip_spec)
    ok, diag = stager.zip_output(zjob)
    assert ok is True, diag
    assert zip_spec.path == str(tmp_path / "events.zip") and zip_spec.fsize > 0 and zip_spec.chksum
    with tarfile.open(zip_spec.path) as tar:
        assert sorted(tar.getnames()) == ["ev0", "ev1"]


def test_zippers_and_cred_manager_and_extractor():
    from pandaharvester.harvestercredmanager.dummy_cred_manager import DummyCredManager
    from pandaharvester.harvesterextractor.base_extractor import BaseExtractor
    from pandaharvester.harvesterzipper.dummy_zipper import DummyZipper
    from pandaharvester.harvesterzipper.simple_zipper import SimpleZipper

    cred = DummyCredManager(valid=False)
    assert cred.check_credential() is False
    assert cred.renew_credential() == (True, "")
    assert cred.check_credential() is True and cred.check_credential_lifetime() == 96.0
    aux = BaseExtractor().make_aux_inputs(["https://host/path/image.sif"])
    assert aux == {"image.sif": {"scope": "aux_input", "INTERNAL_FileType": "aux_input",
                                 "INTERNAL_URL": "https://host/path/image.sif"}}
    job = make_job()
    assert SimpleZipper().post_zip_output(job) == (True, "")
    assert DummyZipper().async_zip_output(job) == (True, "")


def test_base_sweeper_is_abstract():
    from pandaharvester.harvestersweeper.base_sweeper import BaseSweeper

    with pytest.raises(TypeError):
        BaseSweeper()


def test_base_worker_maker_defaults_and_overrides():
    from pandaharvester.harvesterworkermaker.base_worker_maker import BaseWorkerMaker

    maker = BaseWorkerMaker()
    assert (maker.get_num_jobs_per_worker(3), maker.get_num_workers_per_job(3), maker.num_ready_resources(),
            maker.get_max_workers_per_job_in_total(), maker.get_max_workers_per_job_per_cycle()) == (1, 1, 1, 10, None)
    maker = BaseWorkerMaker(nJobsPerWorker=4, maxWorkersPerJobPerCycle=2)
    assert maker.get_num_jobs_per_worker(1) == 4 and maker.get_max_workers_per_job_per_cycle() == 2


def test_simple_worker_maker_with_jobs_and_without():
    from pandaharvester.harvesterworkermaker.simple_worker_maker import SimpleWorkerMaker

    maker = SimpleWorkerMaker()
    queue = FakeQueue()
    jobs = [make_job(1), make_job(2, coreCount=4)]
    worker = maker.make_worker(jobs, queue, "managed", "ANY")
    assert isinstance(worker, WorkSpec)
    assert worker.nCore == 6 and worker.minRamCount == 6000 and worker.maxDiskCount == 1000
    assert worker.maxWalltime == 14400 and worker.jobType == "managed" and worker.pilotType == "PR"
    assert worker.resourceType == "MCORE" and worker.creationTime is not None
    pull = maker.make_worker([], queue, "ANY", "SCORE", prod_source_label="managed")
    assert pull.nCore == 1 and pull.resourceType == "SCORE" and pull.pilotType == "PR"
    queue.corecount, queue.maxrss = 8, 16000
    pull = maker.make_worker([], queue, None, "ANY")
    assert pull.nCore == 8 and pull.minRamCount == 16000 and pull.resourceType == "MCORE"


def test_multijob_worker_maker():
    from pandaharvester.harvesterworkermaker.multijob_worker_maker import MultiJobWorkerMaker

    queue = FakeQueue()
    queue.submitter = {"nCorePerNode": 16}
    queue.walltimeLimit = 3600
    maker = MultiJobWorkerMaker(executor="aprun", pilot="pilot.sh")
    worker = maker.make_worker([make_job(1), make_job(2, minRamCount=5000)], queue, "managed", "ANY")
    assert worker.nCore == 32 and worker.minRamCount == 5000 and worker.maxDiskCount == 1000
    assert worker.maxWalltime == 3600 and "aprun -n 2 -d 16 pilot.sh" in worker.workParams["executable"]


class FakeDB:
    def __init__(self, counts):
        self.counts = counts
        self.calls = []

    def get_num_missed_workers(self, queue_name, criteria):
        self.calls.append(criteria)
        key = next(k for k in ("siteName", "computingSite", "computingElement") if k in criteria)
        return self.counts.get(key, 0)


def test_simple_throttler_or_and_logic():
    from pandaharvester.harvesterthrottler.simple_throttler import SimpleThrottler

    queue = FakeQueue()
    queue.submitter = {"computingElements": ["ce1", "ce2"]}
    rules = [{"level": "site", "timeWindow": 10, "maxMissed": 5}, {"level": "pq", "timeWindow": 10, "maxMissed": 5},
             {"level": "ce", "timeWindow": 10, "maxMissed": 5}]
    db = FakeDB({"computingSite": 9})
    throttled, reason = SimpleThrottler(rulesForMissed=rules, dbInterface=db).to_be_throttled(queue)
    assert throttled is True and "nMissed=9 > maxMissed=5" in reason
    assert isinstance(db.calls[0]["timeLimit"], datetime.datetime)
    throttled, reason = SimpleThrottler(rulesForMissed=rules, dbInterface=FakeDB({})).to_be_throttled(queue)
    assert throttled is False
    and_throttler = SimpleThrottler(rulesForMissed=rules, logicType="AND",
                                    dbInterface=FakeDB({"siteName": 9, "computingSite": 9, "computingElement": 9}))
    assert and_throttler.to_be_throttled(queue)[0] is True
    and_throttler = SimpleThrottler(rulesForMissed=rules, logicType="AND", dbInterface=FakeDB({"siteName": 9}))
    assert and_throttler.to_be_throttled(queue)[0] is False
    assert SimpleThrottler().to_be_throttled(queue) == (False, "no rule was satisfied")


def test_base_messenger_defaults():
    from pandaharvester.harvestermessenger.base_messenger import BaseMessenger

    m = BaseMessenger()
    w = WorkSpec()
    assert m.get_access_point(w, 1) is None and m.get_work_attributes(w) == {}
    assert m.get_files_to_stage_out(w) == {} and m.job_requested(w) == 0 and m.feed_jobs(w, []) is False
    assert m.events_requested(w) == {} and m.feed_events(w, {}) is False and m.events_to_update(w) == {}
    assert m.acknowledge_events_files(w) is None and m.setup_access_points([w]) is None
    assert m.filter_log_tgz("x.log") is False and m.post_processing(w, [], "OneToOne") is True
    assert m.get_panda_ids(w) == [] and m.kill_requested(w) is False and m.is_alive(w, 10) is None
    assert m.clean_up(w) == (None, "skipped")
    assert m.jsonAttrsFileName == "worker_attributes.json" and m.killWorkerFile == "kill_worker.json"
    assert BaseMessenger(jobSpecFileName="custom.json").jobSpecFileName == "custom.json"
