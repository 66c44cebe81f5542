"""Queue config: defaults, QueueConfig methods, layering, pseudo-queues, limits, examples."""

from __future__ import annotations

import copy
import importlib.util

import pytest

from pandaharvester.harvestercore.queue_config import QueueConfig, parse_job_criteria
from pandaharvester.harvestercore.queue_config_builder import QueueBuilder
from pandaharvester.harvestercore.queue_config_mapper import QueueConfigMapper

from test_queue_config_helpers import EXAMPLES, full_queue, load, make_mapper, plugin


# ---------------------------------------------------------------- QueueConfig itself
def test_defaults_match_the_original():
    qc = QueueConfig("Q")
    expected = dict(queueName="Q", pandaQueueName=None, prodSourceLabel="managed", mapType="OneToOne",
                    useJobLateBinding=False, zipPerMB=None, siteName="", siteFamily="", maxWorkers=0,
                    nNewWorkers=0, maxNewWorkersPerCycle=0, noHeartbeat="", runMode="self", resourceType="ANY",
                    jobType="ANY", getJobCriteria=None, ddmEndpointIn=None, allowJobMixture=False,
                    maxSubmissionAttempts=3, truePilot=False, queueStatus=None, prefetchEvents=True,
                    uniqueName=None, configID=None, initEventsMultipler=2)
    assert vars(qc) == expected


def test_queue_config_methods():
    qc = QueueConfig("Q")
    assert qc.get_no_heartbeat_status() == [] and not qc.is_no_heartbeat_status("running")
    assert qc.get_synchronization_level() is None
    qc.noHeartbeat = "running, finished"
    assert qc.get_no_heartbeat_status() == ["running", "finished"]
    assert qc.is_no_heartbeat_status("finished") and qc.get_synchronization_level() == 1
    qc.noHeartbeat = ""
    qc.truePilot = True
    assert qc.get_synchronization_level() == 1
    qc.truePilot, qc.mapType = False, "NoJob"
    assert qc.get_synchronization_level() == 1
    assert qc.get_source_label() == "managed"
    assert qc.get_source_label(job_type="user") == "user" == qc.get_source_label(job_type="panda")
    assert qc.get_source_label(job_type="managed", is_gu=True) == "unified"
    qc.set_unique_name()
    assert qc.uniqueName == "Q:ANY:managed"
    qc.update_attributes({"maxWorkers": 7, "extra": "x"})
    assert qc.maxWorkers == 7 and qc.extra == "x"
    qc.submitter = {"module": "m", "name": "n", "a": 1}
    text = str(qc)
    assert text.startswith("Q\n-\n") and " maxWorkers = 7" in text and " submitter :\n  a = 1" in text
    assert qc.plugin_roles() == ["submitter"]


def test_str_masks_secret_plugin_keys():
    qc = QueueConfig("Q")
    qc.submitter = {"module": "m", "name": "n", "password": "s3cr3t-pw", "x509UserProxy": "/p",
                    "configs": {"auth_token": "s3cr3t-tok"}}
    qc.apiKey = "s3cr3t-key"
    text = str(qc)
    assert "s3cr3t" not in text and "  password = ********" in text and " apiKey = ********" in text
    assert "  x509UserProxy = /p" in text
    assert qc.submitter["password"] == "s3cr3t-pw"  # only the text is masked


def test_mapper_keeps_the_originals_class_attributes():
    assert QueueConfigMapper.mandatory_attrs == {"messenger", "monitor", "preparator", "stager", "submitter",
                                                 "sweeper", "workerMaker"}
    assert {"common", "throttler", "zipper", "aux_preparator", "extractor"} <= QueueConfigMapper.updatable_plugin_attrs
    assert {"maxWorkers", "nQueueLimitWorker", "nQueueLimitJobCoresMin"} <= QueueConfigMapper.queue_limit_attrs


@pytest.mark.parametrize("text, expected", [
    ("computingSite=X,jobType=Y", {"computingSite": "X", "jobType": "Y"}),
    (" a = 1 , ,b=2", {"a": "1", "b": "2"}),
    ("", None),
    (None, None),
    ({"k": "v"}, {"k": "v"}),
])
def test_parse_job_criteria(text, expected):
    assert parse_job_criteria(text) == expected


def test_parse_job_criteria_rejects_items_without_equals():
    with pytest.raises(ValueError, match="'oops' of 'a=1,oops' is not 'key=value'"):
        parse_job_criteria("a=1,oops")


# ---------------------------------------------------------------- loading and layering
def test_every_json_key_becomes_attribute_and_plugins_get_names(tmp_path):
    mapper = load(tmp_path, {"Q1": full_queue(maxWorkers=4, customKey={"x": 1}, ddmEndpointOut="EP",
                                              getJobCriteria="computingSite=Q1,x=y")})
    assert mapper.errors == []
    qc = mapper.get_queue("Q1")
    assert qc.maxWorkers == 4 and qc.customKey == {"x": 1} and qc.ddmEndpointOut == "EP"
    assert qc.getJobCriteria == {"computingSite": "Q1", "x": "y"}
    assert qc.submitter["siteName"] == "Q1" and qc.submitter["queueName"] == "Q1"
    assert qc.siteName == qc.siteFamily == "Q1" and qc.queueStatus == "online"
    assert qc.uniqueName == "Q1:ANY:managed" and qc.configID == 1
    assert not hasattr(qc, "isTemplateQueue")


def test_common_keys_are_merged_into_plugins_plugin_keys_win(tmp_path):
    entry = full_queue(common={"logDir": "/common", "depth": 3, "module": "ignored"})
    entry["submitter"] = plugin(logDir="/own")
    entry["submitter"]["siteName"] = "OTHER_SITE"
    qc = load(tmp_path, {"Q": entry}).get_queue("Q")
    assert qc.submitter["logDir"] == "/own" and qc.submitter["depth"] == 3
    assert qc.submitter["module"] == "collections" and qc.submitter["siteName"] == "OTHER_SITE"
    assert qc.monitor["logDir"] == "/common"


def test_middleware_overrides_plugin_and_keeps_original(tmp_path):
    entry = full_queue(rpcmw={"module": "mw.rpc_herder", "name": "RpcHerder", "remoteHost": "login1"})
    entry["submitter"] = plugin(middleware="rpcmw", nCore=8)
    qc = load(tmp_path, {"Q": entry}).get_queue("Q")
    assert qc.submitter["module"] == "mw.rpc_herder" and qc.submitter["remoteHost"] == "login1"
    assert qc.submitter["original_config"]["module"] == "collections"
    assert qc.submitter["original_config"]["nCore"] == 8


def test_template_layering_merges_plugins_and_does_not_mutate_template(tmp_path):
    template = full_queue(maxWorkers=5, nQueueLimitWorker=5, isTemplateQueue=True)
    template["submitter"] = plugin(nCore=1, logDir="/t")
    data = {
        "BASE": template,
        "Q_A": {"templateQueueName": "BASE", "maxWorkers": 9, "submitter": {"nCore": 8}},
        "Q_B": {"templateQueueName": "BASE"},
    }
    original = copy.deepcopy(data)
    mapper = load(tmp_path, data)
    assert mapper.errors == [] and sorted(mapper.get_all_queues()) == ["Q_A", "Q_B"]
    q_a, q_b = mapper.get_queue("Q_A"), mapper.get_queue("Q_B")
    assert q_a.maxWorkers == 9 and q_a.submitter["nCore"] == 8 and q_a.submitter["logDir"] == "/t"
    assert q_b.maxWorkers == 5 and q_b.submitter["nCore"] == 1
    assert q_a.submitter is not q_b.submitter and q_a.monitor is not q_b.monitor
    q_a.submitter["nCore"] = 99  # a consumer mutating its copy must not leak into siblings
    assert q_b.submitter["nCore"] == 1
    assert mapper.origins["Q_A"] == "LQ (template BASE from LT)"
    # the template itself is not a queue, and the input dicts are untouched
    assert not mapper.has_queue("BASE")
    assert data == original


def test_templates_by_suffix_and_remote_local_precedence():
    remote = {
        "X_TEMPLATE": full_queue(maxWorkers=1, prodSourceLabel="remote"),
        "Q": {"templateQueueName": "X_TEMPLATE", "nNewWorkers": 2, "submitter": {"fromRemote": True}},
    }
    local = {
        "X_TEMPLATE": full_queue(maxWorkers=3),  # LT replaces RT entirely
        "Q": {"submitter": {"fromLocal": True}},
    }
    result = QueueBuilder(import_check=False).build(remote, local, "remote", "local")
    assert result.errors == []
    qc = result.queues["Q"]
    assert qc.maxWorkers == 3 and qc.prodSourceLabel == "managed" and qc.nNewWorkers == 2
    assert qc.submitter["fromRemote"] and qc.submitter["fromLocal"]
    assert result.origins["Q"] == "RQ,LQ (template X_TEMPLATE from RT,LT)"


def test_pseudo_queues_resolve_to_unified_site(tmp_path):
    template = full_queue(isTemplateQueue=True, mapType="NoJob", maxWorkers=10)
    data = {"UNI_T": template}
    for rtype in ("SCORE", "SCORE_HIMEM", "MCORE", "MCORE_HIMEM"):
        data[f"UNIFIED_PQ/{rtype}"] = {"templateQueueName": "UNI_T"}
    mapper = load(tmp_path, data)
    assert mapper.errors == [] and len(mapper.get_all_queues()) == 4
    for rtype in ("SCORE", "SCORE_HIMEM", "MCORE", "MCORE_HIMEM"):
        qc = mapper.get_queue(f"UNIFIED_PQ/{rtype}")
        assert qc.siteName == "UNIFIED_PQ" and qc.resourceType == rtype and qc.siteFamily == "UNIFIED_PQ"
        assert qc.submitter["siteName"] == "UNIFIED_PQ" and qc.submitter["queueName"] == f"UNIFIED_PQ/{rtype}"
        assert qc.uniqueName == f"UNIFIED_PQ/{rtype}:{rtype}:managed"


# ---------------------------------------------------------------- limits normalisation
def test_limits_normalisation_push_queue(tmp_path):
    qc = load(tmp_path, {"Q": full_queue(
        maxWorkers=5, nQueueLimitWorker=10, nQueueLimitWorkerMin=8, nQueueLimitWorkerRatio=20,
        nQueueLimitJob=7, nQueueLimitJobMax=4, nQueueLimitJobMin=6, nQueueLimitJobCores=-3,
        nQueueLimitJobCoresMin=2, nQueueLimitWorkerCores=10, nQueueLimitWorkerCoresMin=40,
        nQueueLimitWorkerMemory=1000, nQueueLimitWorkerMemoryMin=500, maxNewWorkersPerCycle=2.5,
        nQueueLimitWorkerMax="4")}).get_queue("Q")
    assert qc.nQueueLimitWorker == qc.nQueueLimitWorkerMax == 4  # min(10, "4"→4, maxWorkers 5)
    assert qc.nQueueLimitWorkerRatio is None and qc.nQueueLimitWorkerMin is None  # pull-only limits dropped
    assert qc.nQueueLimitJob == qc.nQueueLimitJobMax == 4 and qc.nQueueLimitJobMin == 4
    assert qc.nQueueLimitJobCores == 0 and qc.nQueueLimitJobCoresMin == 0  # negative → 0, min clipped
    assert qc.nQueueLimitWorkerCoresMin == 10 and qc.nQueueLimitWorkerMemoryMin == 500
    assert qc.maxNewWorkersPerCycle is None  # non-integer limit nullified, as the original


def test_limits_normalisation_pull_queue(tmp_path):
    qc = load(tmp_path, {"Q": full_queue(
        mapType="NoJob", maxWorkers=3, nQueueLimitWorkerMax=10, nQueueLimitWorkerMin=9, nQueueLimitWorkerRatio=50,
        nQueueLimitJob=5, nQueueLimitJobMax=5)}).get_queue("Q")
    assert qc.nQueueLimitJob is None and qc.nQueueLimitJobMax is None and qc.nQueueLimitJobRatio is None
    assert qc.nQueueLimitWorker == qc.nQueueLimitWorkerMax == 3  # Max alone sets the base, clipped
    assert qc.nQueueLimitWorkerMin == 3 and qc.nQueueLimitWorkerRatio == 50


def test_limits_default_max_workers_clip_and_null(tmp_path):
    qc = load(tmp_path, {"Q": full_queue(nQueueLimitWorker=4, maxWorkers=None)}).get_queue("Q")
    assert qc.maxWorkers == 0 and qc.nQueueLimitWorker == 0  # clipped to maxWorkers, as the original


def test_true_pilot_gets_no_heartbeat_default(tmp_path):
    mapper = load(tmp_path, {"TP": full_queue(truePilot=True),
                             "TP2": full_queue(truePilot=True, noHeartbeat="running")})
    assert mapper.get_queue("TP").noHeartbeat == "running,transferring,finished,failed"
    assert mapper.get_queue("TP2").noHeartbeat == "running"


# ---------------------------------------------------------------- active queues
def test_active_queues_follow_queue_list_and_status(tmp_path):
    data = {"A": full_queue(), "B": full_queue(), "OFF": full_queue(queueStatus="OFFLINE"),
            "UPS": full_queue(runMode="slave", mapType="NoJob")}
    mapper = load(tmp_path, data, queue_list=["A", "OFF", "UPS"])
    assert sorted(mapper.get_all_queues()) == ["A", "B", "OFF", "UPS"]
    assert sorted(mapper.get_active_queues()) == ["A", "UPS"]
    assert mapper.get_queue("OFF").queueStatus == "offline"
    assert mapper.get_active_ups_queues() == ["UPS"]
    everything = load(tmp_path, data, queue_list="ALL")
    assert sorted(everything.get_active_queues()) == ["A", "B", "UPS"]


# ---------------------------------------------------------------- examples
@pytest.mark.parametrize("name, queues", [
    ("grid", ["EXAMPLE-SITE_SCORE", "EXAMPLE-SITE_UCORE"]),
    ("hpc", ["HPC_SLURM_LATE_BINDING", "HPC_SLURM_PUSH"]),
    ("local", ["LOCAL_PUSH", "LOCAL_UNIFIED/MCORE", "LOCAL_UNIFIED/SCORE"]),
    ("slurm", ["SLURM_PULL/MCORE", "SLURM_PULL/SCORE", "SLURM_PUSH"]),
    ("with_tmpl", ["PULL_MODEL_1", "PULL_MODEL_2", "PUSH_MODEL_1", "PUSH_MODEL_2",
                   "PUSH_MODEL_WITH_TRUE_PILOT_AND_STAGER"]),
])
def test_examples_load_without_import_check(name, queues):
    mapper = make_mapper(EXAMPLES / f"panda_queueconfig_{name}.json")
    assert sorted(mapper.get_all_queues()) == queues
    assert [str(e) for e in mapper.errors] == []
    for qc in mapper.get_all_queues().values():
        assert qc.configID is not None and qc.uniqueName


def test_grid_example_details():
    mapper = make_mapper(EXAMPLES / "panda_queueconfig_grid.json")
    ucore = mapper.get_queue("EXAMPLE-SITE_UCORE")
    assert ucore.submitter["module"] == "pandaharvester.harvestersubmitter.htcondor_submitter"
    assert ucore.submitter["nProcesses"] == 16 and ucore.submitter["useCRIC"] is True  # merged with template
    assert ucore.submitter["logDir"] == "/var/log/harvester/condor_logs"  # from common
    assert ucore.nQueueLimitWorker == 100 and ucore.mapType == "NoJob" and ucore.nQueueLimitJob is None
    score = mapper.get_queue("EXAMPLE-SITE_SCORE")
    assert score.getJobCriteria == {"computingSite": "EXAMPLE-SITE"} and score.monitor["cancelUnknown"] is True
    assert sorted(mapper.get_active_ups_queues()) == ["EXAMPLE-SITE_SCORE", "EXAMPLE-SITE_UCORE"]


def test_grid_example_with_import_check_reports_queue_role_module():
    mapper = make_mapper(EXAMPLES / "panda_queueconfig_grid.json", check_plugins=True)
    mapper.load_data()
    if importlib.util.find_spec("pandaharvester.harvestersubmitter.htcondor_submitter") is not None:
        pytest.skip("HTCondor plugins are shipped now")
    assert mapper.get_all_queues() == {}
    submitter_errors = [e for e in mapper.errors if e.key == "submitter"]
    assert {e.queue_name for e in submitter_errors} == {"EXAMPLE-SITE_SCORE", "EXAMPLE-SITE_UCORE"}
    message = str(submitter_errors[0])
    assert "pandaharvester.harvestersubmitter.htcondor_submitter" in message and "HTCondorSubmitter" in message
    assert "'submitter'" in message and "EXAMPLE-SITE" in message


def test_local_example_details_and_import_check_if_plugins_exist():
    mapper = make_mapper(EXAMPLES / "panda_queueconfig_local.json")
    score, mcore = mapper.get_queue("LOCAL_UNIFIED/SCORE"), mapper.get_queue("LOCAL_UNIFIED/MCORE")
    assert score.siteName == mcore.siteName == "LOCAL_UNIFIED"
    assert (score.resourceType, mcore.resourceType) == ("SCORE", "MCORE")
    assert score.submitter["nCore"] == 1 and mcore.submitter["nCore"] == 8
    assert score.submitter["pilotDir"] == "/tmp/harvester_local/pilots"
    assert score.nQueueLimitWorkerRatio == 50 and score.nQueueLimitWorker == 4
    assert "${workerID}" in mapper.get_queue("LOCAL_PUSH").messenger["accessPoint"]
    checked = make_mapper(EXAMPLES / "panda_queueconfig_local.json", check_plugins=True)
    assert len(checked.get_all_queues()) == 3 and [str(e) for e in checked.errors] == []


@pytest.mark.parametrize("name", ["local", "with_tmpl", "hpc", "grid"])
def test_examples_with_import_check_fail_only_on_plugins_not_shipped(name):
    """With import checking (the default) an example loads fully, except for queues whose plugins
    this package does not ship: those get one error per queue and role naming the module."""
    mapper = make_mapper(EXAMPLES / f"panda_queueconfig_{name}.json", check_plugins=True)
    relaxed = make_mapper(EXAMPLES / f"panda_queueconfig_{name}.json")
    mapper.load_data()
    expected_missing = set()
    for queue_name, qc in relaxed.get_all_queues().items():
        for role in qc.plugin_roles():
            if importlib.util.find_spec(getattr(qc, role)["module"]) is None:
                expected_missing.add((queue_name, role))
    assert {(e.queue_name, e.key) for e in mapper.errors} == expected_missing
    assert all("cannot be imported" in str(e) for e in mapper.errors)
    assert set(mapper.get_all_queues()) == set(relaxed.get_all_queues()) - {q for q, _ in expected_missing}
    if name in ("local", "with_tmpl"):
        assert expected_missing == set()  # the dummy/simple plugins they use are all shipped


def test_singleton_and_reset(tmp_path):
    first = QueueConfigMapper(update_db=False, id="singleton-test")
    assert QueueConfigMapper(update_db=False, id="singleton-test") is first
    assert QueueConfigMapper(update_db=False, id="other-test") is not first
    QueueConfigMapper.reset("singleton-test")
    assert QueueConfigMapper(update_db=False, id="singleton-test") is not first
    QueueConfigMapper.reset("singleton-test")
    QueueConfigMapper.reset("other-test")
