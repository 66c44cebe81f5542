"""The plugin conformance kit (``harvester-admin plugin check``) over every plugin shipped, and on broken ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from slurm_helpers import write_template
from test_cred_manager_voms import grid_ca  # noqa: F401  (the module-scoped CA fixture)

from pandaharvester.harvesterscripts import harvester_admin
from pandaharvester.harvestertest.plugin_check import assert_plugin_passes, check_plugin

REPO = Path(__file__).resolve().parent.parent
P = "pandaharvester."
DUMMY_BATCH = {"monitor": P + "harvestermonitor.dummy_monitor.DummyMonitor",
               "sweeper": P + "harvestersweeper.dummy_sweeper.DummySweeper"}


def steps(report) -> dict[tuple[str, str], str]:
    """{(role, step): outcome}, the last outcome of each step."""
    return {(s.role, s.step): s.outcome for s in report.steps}


def failure_text(report) -> str:
    return "\n".join(f"{s.message} fix: {s.fix}" for s in report.failures())


# ---------------------------------------------------------------------------- shipped plugins
def test_dummy_batch_plugins_pass_the_whole_lifecycle():
    report = check_plugin(P + "harvestersubmitter.dummy_submitter.DummySubmitter", "submitter",
                          {"sleepTime": 0.5}, companions=DUMMY_BATCH, require_final=True, timeout=30)
    assert report.passed, report.text()
    assert report.exit_status == 0
    for step in (("submitter", "submit"), ("monitor", "check until final"), ("sweeper", "kill"),
                 ("monitor", "check after kill"), ("sweeper", "sweep"), ("messenger", "access points")):
        assert steps(report)[step] == "PASS", report.text()
    assert "finished" in next(s.message for s in report.steps if s.step == "check until final")


@pytest.mark.parametrize("target, role, params", [
    ("harvestermonitor.dummy_monitor.DummyMonitor", "monitor", {}),
    ("harvestersweeper.dummy_sweeper.DummySweeper", "sweeper", {}),
    ("harvesterpreparator.dummy_preparator.DummyPreparator", "preparator", {}),
    ("harvesterpreparator.dummy_bulk_preparator.DummyBulkPreparator", "preparator", {}),
    ("harvesterstager.dummy_stager.DummyStager", "stager", {}),
    ("harvesterstager.dummy_bulk_stager.DummyBulkStager", "stager", {"minFilesToTransfer": 2}),
    ("harvesterzipper.dummy_zipper.DummyZipper", "zipper", {}),
    ("harvesterzipper.simple_zipper.SimpleZipper", "zipper", {}),
    ("harvestermessenger.shared_file_messenger.SharedFileMessenger", "messenger", {}),
    ("harvesterworkermaker.simple_worker_maker.SimpleWorkerMaker", "workerMaker", {}),
    ("harvesterworkermaker.multijob_worker_maker.MultiJobWorkerMaker", "workermaker", {}),
    ("harvesterthrottler.simple_throttler.SimpleThrottler", "throttler",
     {"rulesForMissed": [{"level": "pq", "timeWindow": 10, "maxMissed": 10}]}),
    ("harvestercredmanager.dummy_cred_manager.DummyCredManager", "credmanager", {}),
    ("harvesterextractor.aux_extractor.AuxExtractor", "extractor", {}),
])
def test_every_shipped_plugin_passes(target, role, params):
    report = assert_plugin_passes(P + target, role, params, timeout=30, require_final=True)
    assert len([s for s in report.steps if s.outcome == "PASS"]) >= 3, report.text()


def test_the_readme_sleep_example_passes(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "examples" / "plugins"))
    report = check_plugin("sleep_plugins.SleepSubmitter", "submitter", {"command": ["sleep", "0.2"]},
                          companions={"monitor": "sleep_plugins.SleepMonitor"}, require_final=True, timeout=20)
    assert report.passed, report.text()
    assert steps(report)[("monitor", "check until final")] == "PASS"


def test_no_voms_cred_manager_passes_with_a_real_certificate(grid_ca, monkeypatch, tmp_path):  # noqa: F811
    monkeypatch.setenv("X509_CERT_DIR", str(grid_ca["trust"]))
    monkeypatch.setenv("HOME", str(grid_ca["home"]))
    monkeypatch.delenv("X509_USER_PROXY", raising=False)
    proxies = tmp_path / "proxy"
    proxies.mkdir(mode=0o700)
    report = check_plugin(P + "harvestercredmanager.no_voms_cred_manager.NoVomsCredManager", "credmanager",
                          {"inCertFile": str(grid_ca["plain"]), "outCertFile": str(proxies / "x509up"),
                           "voms": "dummy"})
    assert report.passed, report.text()
    assert steps(report)[("credmanager", "renew")] == "PASS"


def test_queue_config_gives_the_plugin_and_its_companions(tmp_path):
    queues = json.loads((REPO / "examples" / "panda_queueconfig_local.json").read_text())
    queues["LOCAL_PUSH"]["submitter"]["sleepTime"] = 0.5
    queues["LOCAL_PUSH"]["messenger"]["accessPoint"] = str(tmp_path / "queue_access_points" / "${workerID}")
    path = tmp_path / "queues.json"
    path.write_text(json.dumps(queues))
    report = check_plugin(None, "submitter", queue_config=str(path), queue="LOCAL_PUSH", timeout=30,
                          require_final=True)
    assert report.passed, report.text()
    instantiated = [s.message for s in report.steps if s.step == "instantiate"]
    assert any("DummyMonitor" in m for m in instantiated) and any("DummySweeper" in m for m in instantiated)
    assert "queueName" in instantiated[0] and "sleepTime" in instantiated[0]
    # the workers ran in the kit's scratch directory, not in the queue's accessPoint
    assert not (tmp_path / "queue_access_points").exists()


@pytest.mark.slurm
@pytest.mark.parametrize("monitor", ["slurm_monitor.SlurmMonitor", "slurm_bulk_monitor.SlurmBulkMonitor",
                                     "slurm_squeue_monitor.SlurmSqueueMonitor"])
def test_slurm_plugins_pass_on_the_local_slurm(slurm, tmp_path, monitor):
    template = write_template(tmp_path / "kit.sh", "sleep 1")
    report = check_plugin(P + "harvestersubmitter.slurm_submitter.SlurmSubmitter", "submitter",
                          {"templateFile": str(template)},
                          companions={"monitor": P + "harvestermonitor." + monitor,
                                      "sweeper": P + "harvestersweeper.slurm_sweeper.SlurmSweeper"},
                          require_final=True, timeout=120)
    assert report.passed, report.text()
    assert "COMPLETED" in next(s.message for s in report.steps if s.step == "check until final")


@pytest.mark.slurm
def test_slurm_jinja_submitter_passes(slurm, tmp_path):
    template = tmp_path / "kit.j2"
    template.write_text("#!/bin/bash\n#SBATCH --job-name=kit-{{ workerID }}\n#SBATCH -o {{ accessPoint }}/o-%j\n"
                        "{% for job in jobspecs %}echo {{ job.PandaID }}\n{% endfor %}")
    report = check_plugin(P + "harvestersubmitter.slurm_submitter_jinja.SlurmSubmitterJinja", "submitter",
                          {"templateFile": str(template)},
                          companions={"monitor": P + "harvestermonitor.slurm_bulk_monitor.SlurmBulkMonitor",
                                      "sweeper": P + "harvestersweeper.slurm_sweeper.SlurmSweeper"},
                          require_final=True, timeout=120)
    assert report.passed, report.text()


# ---------------------------------------------------------------------------- broken plugins
B = "plugin_check_broken."


@pytest.mark.parametrize("target, role, companions, step, expected", [
    ("TypoSubmitter", "submitter", {}, "interface",
     "has no method submit_workers: Harvester calls submit_workers(workspec_list) fix: rename "
     "submit_worker(workspec) to submit_workers(workspec_list)"),
    ("NoArgSubmitter", "submitter", {}, "interface",
     "cannot be called as Harvester does, submit_workers(workspec_list)"),
    ("DictSubmitter", "submitter", {}, "submit", "(dict), not a list of (status, diagnostic) pairs; expected a list of "
                                                 "(True|False|None, diagnostic) pairs, one per worker, in order"),
    ("ShortSubmitter", "submitter", {}, "submit", "returned 1 reply for 2 workers"),
    ("RaisingSubmitter", "submitter", {}, "submit", "RaisingSubmitter.submit_workers raised RuntimeError: batch "
                                                    "system exploded (at plugin_check_broken.py:"),
    ("NoBatchIDSubmitter", "submitter", {}, "submit", "returned True but left batchID unset for workerID=1 workerID=2"),
    ("NoKwargSubmitter", "submitter", {}, "instantiate", "failed in its constructor"),
    ("FileSubmitter", "submitter", {"monitor": B + "TypoStatusMonitor"}, "check until final",
     "reply #0 (workerID=1): unknown status 'finshed'"),
    ("FileSubmitter", "submitter", {"monitor": B + "BareListMonitor"}, "check until final",
     "not a (bool, statuses) pair"),
    ("FailingSweeper", "sweeper", {}, "interface", "has no method sweep_worker"),
    ("RefusingSweeper", "sweeper", {}, "kill", "kill_workers failed for workerID=1 batchID=plugin-check-unknown-1: "
                                               "scancel: permission denied"),
    ("PathlessPreparator", "preparator", {}, "resolve paths", "returned True but left inputs without a path"),
    ("LazyStager", "stager", {}, "outputs", "returned True but left outputs not done"),
    ("StringThrottler", "throttler", {}, "throttle", "returned 'no', not a (status, diagnostic) pair"),
    ("NoSuchClass", "submitter", {}, "instantiate", "has no class 'NoSuchClass'"),
])
def test_broken_plugins_fail_with_a_clear_message(target, role, companions, step, expected):
    report = check_plugin(B + target, role, companions=companions, timeout=5)
    assert not report.passed
    assert report.exit_status == 1
    failed = [s for s in report.failures() if s.step == step]
    assert failed, report.text()
    assert expected in failure_text(report), report.text()
    assert all(s.fix for s in failed), "every FAIL says what to fix"
    assert "plugin_check_broken." in failure_text(report), "the plugin is named"
    if target in ("DictSubmitter", "ShortSubmitter", "StringThrottler"):  # the validator also names the queue
        assert f"queue 'PLUGIN_CHECK', {role} plugin plugin_check_broken.{target}." in failure_text(report)


def test_fields_outside_the_role_are_warned_not_failed():
    report = check_plugin(B + "StatusSettingSubmitter", "submitter", timeout=5)
    assert report.passed, report.text()
    warnings = [s.message for s in report.steps if s.outcome == "WARN" and s.step == "submit"]
    assert warnings and "set status of WorkSpec workerID=1, which a submitter plugin may not set" in warnings[0]


def test_old_throttler_signature_is_a_warning():
    report = check_plugin(B + "OldThrottler", "throttler")
    assert report.passed, report.text()
    assert any(s.outcome == "WARN" and "takes no queue_config_mapper= keyword" in s.message for s in report.steps)


def test_workers_not_final_warn_or_fail_with_require_final():
    slow = {"monitor": P + "harvestermonitor.dummy_monitor.DummyMonitor"}
    report = check_plugin(P + "harvestersubmitter.dummy_submitter.DummySubmitter", "submitter", {"sleepTime": 30},
                          companions={**slow, "sweeper": DUMMY_BATCH["sweeper"]}, timeout=1, interval=0.2)
    assert report.passed and steps(report)[("monitor", "check until final")] == "WARN", report.text()
    strict = check_plugin(P + "harvestersubmitter.dummy_submitter.DummySubmitter", "submitter", {"sleepTime": 30},
                          companions={**slow, "sweeper": DUMMY_BATCH["sweeper"]}, timeout=1, interval=0.2,
                          require_final=True)
    assert not strict.passed
    assert steps(strict)[("sweeper", "sweep")] == "PASS", "the pilots are still killed and swept"


def test_assert_plugin_passes_raises_with_the_report():
    with pytest.raises(AssertionError, match="rename submit_worker"):
        assert_plugin_passes(B + "TypoSubmitter", "submitter")


# ---------------------------------------------------------------------------- the CLI
def test_cli_passes_and_prints_one_line_per_step(capsys):
    rc = harvester_admin.main(["plugin", "check", P + "harvesterpreparator.dummy_preparator.DummyPreparator",
                               "--role", "preparator"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert [line.split()[0] for line in out.splitlines()[:-1]] == ["PASS"] * 5
    assert out.splitlines()[-1].endswith("as preparator: PASSED")


def test_cli_fails_on_a_broken_plugin(capsys):
    rc = harvester_admin.main(["plugin", "check", B + "TypoSubmitter", "--role", "submitter",
                               "--with", "monitor=" + DUMMY_BATCH["monitor"]])
    out = capsys.readouterr().out
    assert rc == 1
    assert "FAIL submitter   interface" in out and "fix: rename submit_worker(workspec)" in out
    assert "SKIP" in out and out.splitlines()[-1].endswith("FAILED (1 step)")


@pytest.mark.parametrize("args, message", [
    (["--params", "{bad"], "--params is not valid JSON"),
    (["--params", "[1]"], "--params must be a JSON object"),
    (["--with", "monitor"], "use ROLE=MODULE.CLASS"),
    (["--with", "painter=x.Y"], "unknown plugin role 'painter'"),
])
def test_cli_bad_usage_is_exit_2(capsys, args, message):
    rc = harvester_admin.main(["plugin", "check", B + "FileSubmitter", "--role", "submitter", *args])
    assert rc == 2
    assert message in capsys.readouterr().out


def test_cli_unknown_role_and_missing_queue(capsys, tmp_path):
    assert harvester_admin.main(["plugin", "check", B + "FileSubmitter", "--role", "painter"]) == 2
    assert "use one of submitter, monitor, sweeper" in capsys.readouterr().out
    path = tmp_path / "q.json"
    path.write_text(json.dumps({"Q1": {}}))
    assert harvester_admin.main(["plugin", "check", "--role", "submitter", "--queue-config", str(path),
                                 "--queue", "Q2"]) == 2
    assert "Q2" in capsys.readouterr().out
