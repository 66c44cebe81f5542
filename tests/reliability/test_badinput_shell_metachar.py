"""Shell metacharacters in worker and job attributes pass through the Slurm plugins literally, on the real Slurm.

Each payload would create a file ``pwned`` (in the shell's working directory) and
``/tmp/pwned`` if any shell ran it. It is put in the worker's computingSite, the queue name,
jobType and resourceType (all placeholders of the batch script template, used there outside
quotes, in double and single quotes, in ``$(...)``, in a here-document and on ``#SBATCH``
lines), in the job's parameters (jobName, a job parameter: the job description the pilot reads),
in sbatch options (partition, ``--comment``), and as a batchID handed to the monitors and the
sweeper. After the jobs ran: no ``pwned`` in the access points, the test's working directory,
HOME or /tmp, and the value arrived literally in the job's output, its Slurm job name and
comment, and the job description.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import figures
from slurm_helpers import PILOT, all_final, make_workspec, wait_statuses
from test_messenger import make_job

from pandaharvester.harvestercore.work_spec import WorkSpec
from pandaharvester.harvestermessenger.shared_file_messenger import SharedFileMessenger
from pandaharvester.harvestermonitor.slurm_bulk_monitor import SlurmBulkMonitor
from pandaharvester.harvestermonitor.slurm_monitor import SlurmMonitor
from pandaharvester.harvestermonitor.slurm_squeue_monitor import SlurmSqueueMonitor
from pandaharvester.harvestersubmitter.slurm_submitter import SlurmSubmitter
from pandaharvester.harvestersubmitter.slurm_submitter_jinja import SlurmSubmitterJinja
from pandaharvester.harvestersweeper.slurm_sweeper import SlurmSweeper

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm")]

TOUCH = "touch pwned /tmp/pwned"
PAYLOADS = [f"S$({TOUCH})", f"S`{TOUCH}`", f"S; {TOUCH}", f"S | {TOUCH}", f"S && {TOUCH} &",
            f'S"; {TOUCH}; "', f"S'; {TOUCH}; '", f"S > x < y $HOME ${{HOME}} \\$({TOUCH}) # (x) *"]
NEWLINE_PAYLOAD = f"S\n{TOUCH}"

TEMPLATE = """#!/bin/bash
#SBATCH --job-name=hv-{computingSite}
#SBATCH --comment="{pandaQueueName}"
#SBATCH -o {accessPoint}/out-%j.txt
# the site: {computingSite}
out={accessPoint}/values.txt
printf '%s\\n' {computingSite} > "$out"
printf '%s\\n' "{computingSite}" >> "$out"
printf '%s\\n' 'site {computingSite}' >> "$out"
printf '%s\\n' "$(printf '%s' {jobType})" >> "$out"
cat >> "$out" <<EOF
{resourceType}
EOF
queue={pandaQueueName}; printf '%s\\n' "$queue" >> "$out"
exec PYTHON PILOT --access-point {accessPoint} --sleep 0
""".replace("PYTHON", sys.executable).replace("PILOT", str(PILOT))

JINJA_TEMPLATE = """#!/bin/bash
#SBATCH -o {{ accessPoint }}/out-%j.txt
printf '%s\\n' {{ computingSite | shquote }} > {{ accessPoint }}/values.txt
"""


def expected_values(value: str) -> list[str]:
    return [value, value, f"site {value}", value, value, value]


def pwned_files(places: list[Path]) -> list[str]:
    found = []
    for place in places:
        if (place / "pwned").exists():
            found.append(str(place / "pwned"))
    return found


@pytest.fixture()
def places(tmp_path):
    """Where a ``touch pwned`` could land; none may hold one before the test (nor after)."""
    spots = [tmp_path, Path.cwd(), Path.home(), Path("/tmp")]
    stale = pwned_files(spots)
    assert not stale, f"left over from an earlier run, remove them first: {stale}"
    return spots


def squeue_field(batch_id: str, field: str) -> str:
    """One squeue field of a job (squeue keeps ended jobs for MinJobAge), as printed."""
    proc = subprocess.run(["squeue", "-h", "-t", "all", "-j", str(batch_id), "-o", field], capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.rstrip("\n")


def submit(plugin, workspec) -> tuple:
    [(ok, diag)] = plugin.submit_workers([workspec])
    return ok, diag


def test_metacharacters_pass_through_literally(tmp_path, places):
    cases = 0
    workers = []
    messenger = SharedFileMessenger()
    for index, value in enumerate(PAYLOADS, 1):
        workspec = make_workspec(tmp_path, index, site=value)
        workspec.mapType = WorkSpec.MT_OneToOne
        workspec.jobType, workspec.resourceType = value, value
        job = make_job(9000 + index, jobName=value, transformation=value, jobPars=f"--arg {value}")
        workspec.set_jobspec_list([job])
        workspec.pandaid_list = [job.PandaID]
        assert messenger.setup_access_points([workspec]) and messenger.feed_jobs(workspec, [job])
        template = tmp_path / "t.sh"
        template.write_text(TEMPLATE)
        ok, diag = submit(SlurmSubmitter(queueName=value, templateFile=str(template),
                                         sbatchOptions=[f"--comment={value}"]), workspec)
        assert ok is True, diag
        workers.append((value, workspec))
        cases += 6  # computingSite, queue name, jobType, resourceType, job params, sbatch option
    results = wait_statuses(SlurmBulkMonitor(), [w for _v, w in workers], all_final, 120, "the jobs to end")
    for (value, workspec), (status, diag) in zip(workers, results):
        access_point = Path(workspec.get_access_point())
        places.append(access_point)
        assert status == "finished", (value, diag)
        lines = (access_point / "values.txt").read_text().split("\n")[:-1]
        assert lines == expected_values(value), value
        name, comment = (squeue_field(workspec.batchID, field) for field in ("%j", "%k"))
        assert name == f"hv-{value}", (name, value)
        assert comment == value, (comment, value)  # the sbatch option (an argv element) wins over #SBATCH
        description = json.loads((access_point / messenger.jobSpecFileName).read_text())
        params = description[str(workspec.pandaid_list[0])]
        assert params["jobName"] == params["transformation"] == value and params["jobPars"] == f"--arg {value}"
        assert (access_point / messenger.jsonJobReport).exists()  # the pilot ran it
    cases += extra_routes(tmp_path, places)
    found = pwned_files(places)
    figures.record(f"reliability: shell_metachar cases={cases} executed={len(found)}")
    assert not found


def extra_routes(tmp_path: Path, places: list[Path]) -> int:
    """The other routes (refusals, argv-only options, batch IDs); the number of cases."""
    cases = 0
    template = tmp_path / "t.sh"
    # a newline would end an #SBATCH line or a comment and start a command: refused, naming it
    workspec = make_workspec(tmp_path, 50, site=NEWLINE_PAYLOAD)
    ok, diag = submit(SlurmSubmitter(queueName="Q", templateFile=str(template)), workspec)
    assert ok is False and "placeholder computingSite=" in diag and "control character" in diag, diag
    assert workspec.batchID is None
    cases += 1
    # the partition is an argv element: sbatch rejects it, quoting it literally
    for index, value in enumerate(PAYLOADS[:3], 60):
        workspec = make_workspec(tmp_path, index)
        ok, diag = submit(SlurmSubmitter(queueName="Q", templateFile=str(template), partition=value), workspec)
        assert ok is False and "partition" in diag.lower() and workspec.batchID is None, diag
        cases += 1
    # Jinja: shquote gives the literal value; an unquoted value with shell syntax is refused
    jinja = tmp_path / "t.j2"
    jinja.write_text(JINJA_TEMPLATE)
    workspec = make_workspec(tmp_path, 70, site=PAYLOADS[0])
    assert submit(SlurmSubmitterJinja(queueName="Q", templateFile=str(jinja)), workspec)[0] is True
    [(status, diag)] = wait_statuses(SlurmMonitor(), [workspec], all_final, 60, "the Jinja job to end")
    assert status == "finished", diag
    assert (Path(workspec.get_access_point()) / "values.txt").read_text() == PAYLOADS[0] + "\n"
    places.append(Path(workspec.get_access_point()))
    jinja.write_text(JINJA_TEMPLATE.replace(" | shquote", ""))
    workspec = make_workspec(tmp_path, 71, site=PAYLOADS[0])
    ok, diag = submit(SlurmSubmitterJinja(queueName="Q", templateFile=str(jinja)), workspec)
    assert ok is False and "shquote" in diag and workspec.batchID is None, diag
    cases += 2
    # batch IDs with shell syntax: squeue/sacct/scontrol/scancel get them as one argv element
    for index, value in enumerate(PAYLOADS, 80):
        workspec = make_workspec(tmp_path, index)
        workspec.batchID = value
        for monitor in (SlurmMonitor(), SlurmSqueueMonitor(), SlurmBulkMonitor(),
                        SlurmBulkMonitor(use_squeue_monitor=True)):
            ok, [(status, diag)] = monitor.check_workers([workspec])
            assert ok is True and status in (None, "failed"), (value, status, diag)
        [(killed, diag)] = SlurmSweeper().kill_workers([workspec])
        assert isinstance(killed, bool)
        cases += 5
    return cases


def test_no_shell_between_harvester_and_slurm():
    """The Slurm plugins never ask for a shell: every command is an argument list."""
    root = Path(__file__).resolve().parents[2] / "pandaharvester"
    for path in [root / "harvesterbatch" / "slurm.py", *root.glob("harvestersubmitter/slurm*.py"),
                 *root.glob("harvestermonitor/slurm*.py"), *root.glob("harvestersweeper/slurm*.py")]:
        text = path.read_text()
        assert "shell=True" not in text and "os.system" not in text and "os.popen" not in text, path
