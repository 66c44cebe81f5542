"""Slurm plugins without the daemons: state table, output parsing, templates, placeholders, log names."""

from __future__ import annotations

import pytest

from slurm_helpers import make_workspec

from pandaharvester.harvestercore.job_spec import JobSpec
from pandaharvester.harvestercore.work_spec import WorkSpec
from pandaharvester.harvestersubmitter.slurm_submitter import SlurmSubmitter, render_template
from pandaharvester.harvestersubmitter.slurm_submitter_jinja import SlurmSubmitterJinja
from pandaharvester.harvestersubmitter.slurm_utils import (
    SLURM_STATES,
    JobRecord,
    SlurmClient,
    is_transient,
    normalize_state,
    worker_status,
)

EXPECTED = {
    "PENDING": "submitted", "CONFIGURING": "submitted", "REQUEUED": "submitted",
    "RUNNING": "running", "COMPLETING": "running", "SUSPENDED": "running",
    "COMPLETED": "finished",
    "FAILED": "failed", "TIMEOUT": "failed", "NODE_FAIL": "failed", "PREEMPTED": "failed",
    "OUT_OF_MEMORY": "failed", "BOOT_FAIL": "failed", "DEADLINE": "failed",
    "CANCELLED": "cancelled",
}


@pytest.mark.parametrize("state, status", sorted(EXPECTED.items()))
def test_one_table_translates_every_slurm_state(state, status):
    assert SLURM_STATES[state][0] == status
    got, diag = worker_status(JobRecord("7", state, "2:0", "NonZeroExitCode"), "7")
    assert got == status
    if status in ("finished", "failed", "cancelled"):  # a final diag replaces any earlier "could not check"
        assert f"Slurm job 7 {state}" in diag and "ExitCode=2:0" in diag and "Reason=NonZeroExitCode" in diag
    else:
        assert diag == ""


def test_unknown_state_keeps_the_worker_and_unknown_job_fails_it():
    status, diag = worker_status(JobRecord("8", "SOMETHING_NEW"), "8")
    assert status is None and "SOMETHING_NEW" in diag and "SLURM_STATES" in diag
    status, diag = worker_status(None, "9")
    assert status == WorkSpec.ST_failed and "unknown to slurmctld and to accounting" in diag


def test_state_and_output_parsing():
    assert normalize_state("CANCELLED by 0") == normalize_state("CANCELLED+") == "CANCELLED"
    squeue = SlurmClient._parse("11|RUNNING|None|localhost\n12|PENDING|Priority|\n99|RUNNING|None|x\n", 4,
                                "squeue", {"11", "12"})
    assert sorted(squeue) == ["11", "12"] and squeue["11"].nodes == "localhost" and squeue["12"].nodes is None
    sacct = SlurmClient._parse("13|FAILED|3:0|None|localhost\n13|CANCELLED by 0|0:15||localhost\n", 5, "sacct",
                               {"13"})
    assert sacct["13"].state == "CANCELLED" and sacct["13"].exit_code == "0:15"  # the newest record wins
    assert JobRecord("1", "FAILED", "3:0").exit_status == 3 and JobRecord("1", "RUNNING").exit_status is None
    assert is_transient("sbatch: error: Batch job submission failed: Unable to contact slurm controller")
    assert not is_transient("sbatch: error: Batch job submission failed: Invalid partition name specified")


def test_render_template_keeps_shell_syntax():
    text = render_template("{a} {b:03d} {{x}} ${HOME} ${V:-d} ${#A[@]} {} {unknown} {a:>3}", {"a": "x", "b": 7})
    assert text == "x 007 {x} ${HOME} ${V:-d} ${#A[@]} {} {unknown} '  x'"  # one word, as the shell reads it


def test_placeholders_multi_node_and_queue_overrides(tmp_path):
    workspec = make_workspec(tmp_path, 5, n_core=96, ram=32000, walltime=5400)
    jobs = []
    for panda_id in (101, 102):
        job = JobSpec()
        job.PandaID = panda_id
        jobs.append(job)
    workspec.set_jobspec_list(jobs)
    plugin = SlurmSubmitter(queueName="Q", templateFile="x", nCore=96, nCorePerNode=48, nCoreFactor=2,
                            templateParams={"pilotCommand": "run"}, tmpDir="/scratch", localQueueName="cpu")
    values = plugin.make_placeholder_map(workspec)
    assert values["nNode"] == 2 and values["nCorePerNode"] == 48 and values["nCoreTotal"] == 96 * 2
    assert values["requestRam"] == 32000 * 2 and values["requestWalltimeMinute"] == 90
    assert values["requestRamPerCore"] == 667  # ceil(32000 * 2 nodes / 96 cores), as the original
    assert values["requestCputime"] == 5400 * 96 and values["pandaIDs"] == "101,102" and values["nJobs"] == 2
    assert values["accessPoint"] == str(tmp_path / "workers" / "5") and values["workerID"] == 5
    assert values["pilotCommand"] == "run" and values["tmpDir"] == "/scratch" and values["localQueueName"] == "cpu"
    assert values["harvesterID"] and values["pandaQueueName"] == "Q" and values["logDir"] == values["accessPoint"]
    # one node by default, and at least 1 MB per core
    single = SlurmSubmitter(queueName="Q", templateFile="x").make_placeholder_map(make_workspec(tmp_path, 6, 4, 0))
    assert (single["nNode"], single["nCorePerNode"], single["nCoreTotal"], single["requestRam"]) == (1, 4, 4, 4)


def test_sbatch_options_are_an_argument_list():
    plugin = SlurmSubmitter(partition="debug", account="atlas", qos="high",
                            sbatchOptions="--exclusive --comment='a b; rm -rf /'")
    assert plugin.sbatch_options() == ["--partition=debug", "--account=atlas", "--qos=high", "--exclusive",
                                       "--comment=a b; rm -rf /"]
    results = SlurmSubmitter(sbatchOptions={"x": 1}).submit_workers([WorkSpec(), WorkSpec()])
    assert [ok for ok, _ in results] == [False, False]
    assert all("sbatchOptions must be a list" in diag for _, diag in results)


def test_log_file_names_from_sbatch_lines(tmp_path):
    script = tmp_path / "job.sh"
    script.write_text("#!/bin/bash\n#SBATCH -J myjob\n#SBATCH --output=logs/%x-%j.out  # comment\n"
                      "#SBATCH -e /abs/err.$SLURM_JOB_ID\necho\n#SBATCH -o ignored\n")
    plugin = SlurmSubmitter()
    assert plugin.get_log_file_names(str(script), "42") == (str(tmp_path / "logs" / "myjob-42.out"), "/abs/err.42")
    assert plugin.get_log_file_names(str(script), "42", ["-o/x/%j"])[0] == "/x/42"  # command line wins
    script.write_text("#!/bin/bash\necho\n")
    assert plugin.get_log_file_names(str(script), "7") == (str(tmp_path / "slurm-7.out"),) * 2


def test_log_urls(tmp_path):
    script = tmp_path / "workers" / "3" / "s.sh"
    script.parent.mkdir(parents=True)
    script.write_text("#SBATCH -o out.%j\n")
    workspec = make_workspec(tmp_path, 3)
    SlurmSubmitter(logBaseURL="https://logs.example/h/").set_log_files(workspec, str(script), "9", [])
    assert workspec.workAttributes["stdOut"] == "https://logs.example/h/out.9"
    assert workspec.workAttributes["jdl"] == "https://logs.example/h/s.sh"
    local = make_workspec(tmp_path, 3)
    SlurmSubmitter().set_log_files(local, str(script), "9", [])
    assert local.workAttributes["stdErr"] == f"file://{script.parent}/out.9"


def test_missing_template_is_retried_not_submitted(tmp_path):
    workspec = make_workspec(tmp_path, 4)
    [(ok, diag)] = SlurmSubmitter(templateFile=str(tmp_path / "nope.sh")).submit_workers([workspec])
    assert ok is None and "nope.sh" in diag and workspec.batchID is None
    [(ok, diag)] = SlurmSubmitter().submit_workers([make_workspec(tmp_path, 5)])
    assert ok is None and "no templateFile" in diag


def test_jinja_template(tmp_path):
    template = tmp_path / "t.j2"
    template.write_text("#SBATCH -c {{ nCorePerNode }}\n{% for job in jobspecs %}id={{ job.PandaID }} {% endfor %}"
                        "w={{ workspec.workerID }} ${HOME}\n")
    workspec = make_workspec(tmp_path, 6, n_core=2)
    job = JobSpec()
    job.PandaID = 77
    workspec.set_jobspec_list([job])
    (tmp_path / "workers" / "6").mkdir(parents=True)
    path = SlurmSubmitterJinja(templateFile=str(template)).make_batch_script(workspec)
    assert open(path).read() == "#SBATCH -c 2\nid=77 w=6 ${HOME}\n"
    template.write_text("{{ noSuchName }}")
    with pytest.raises(ValueError, match="t.j2.*noSuchName"):
        SlurmSubmitterJinja(templateFile=str(template)).make_batch_script(workspec)


def test_slurm_example_queue_config_loads_with_its_plugins():
    from test_queue_config_helpers import EXAMPLES, make_mapper

    mapper = make_mapper(EXAMPLES / "panda_queueconfig_slurm.json", check_plugins=True)
    queues = mapper.get_all_queues()
    assert sorted(queues) == ["SLURM_PULL/MCORE", "SLURM_PULL/SCORE", "SLURM_PUSH"] and mapper.errors == []
    mcore = queues["SLURM_PULL/MCORE"]
    assert mcore.submitter["nCore"] == 4 and mcore.submitter["templateFile"].endswith("slurm_submit.sh")
    assert mcore.monitor["name"] == "SlurmBulkMonitor" and queues["SLURM_PUSH"].monitor["name"] == "SlurmMonitor"
    assert "{pilotCommand}" in (EXAMPLES / "slurm_submit.sh").read_text()
