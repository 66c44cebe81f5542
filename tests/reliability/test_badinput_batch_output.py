"""Malformed Slurm output: the workers it cannot tell about get a diagnostic and keep their status.

Two real jobs run on the local Slurm (scripts/setup_slurm.sh): one running, one completed. The
Slurm monitors first see them through the real commands (the normal path), then through fake
``squeue``/``sacct``/``scontrol``/``scancel`` executables, put first on PATH, printing malformed
output (cut mid-line, unknown states, garbage bytes, empty with rc 0, wrong column counts,
non-UTF-8): every worker either gets its true status or stays unchecked (status None) with a
diagnostic; none is failed or finished on the strength of output that could not be read. Once
the fakes are gone, the next check gives every worker its true status (retried, nothing lost).
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import Any

import pytest

import figures
from slurm_helpers import make_workspec, submitter, wait_statuses, write_template

from pandaharvester.harvestermonitor.slurm_bulk_monitor import SlurmBulkMonitor
from pandaharvester.harvestermonitor.slurm_monitor import SlurmMonitor
from pandaharvester.harvestermonitor.slurm_squeue_monitor import SlurmSqueueMonitor
from pandaharvester.harvestersweeper.slurm_sweeper import SlurmSweeper

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm")]

MONITORS = {
    "scontrol": SlurmMonitor,
    "squeue": SlurmSqueueMonitor,
    "bulk-sacct": SlurmBulkMonitor,
    "bulk-squeue": lambda: SlurmBulkMonitor(use_squeue_monitor=True),
}
TRUE = {"R": "running", "D": "finished"}  # the real jobs' true statuses


def squeue_line(i: str, state: str) -> str:
    return f"{i}|{state}|None|localhost\n"


def sacct_line(i: str, state: str) -> str:
    return f"{i}|{state}|0:0|None|localhost\n"


def scontrol_line(i: str, state: str) -> str:
    return f"JobId={i} JobName=x JobState={state} Reason=None ExitCode=0:0 NodeList=localhost\n"


def outputs(kind: str, ids: dict[str, str]) -> dict[str, tuple[bytes, int]]:
    """{command: (stdout bytes, rc)} of one kind of malformed output about the jobs ``ids``."""
    r, d = ids["R"], ids["D"]
    if kind == "cut-mid-line":
        return {"squeue": ((squeue_line(r, "RUNNING") + f"{d}|COMPL").encode(), 0),
                "sacct": ((sacct_line(d, "COMPLETED") + f"{r}|RUNN").encode(), 0),
                "scontrol": (scontrol_line(r, "RUNNING")[:40].encode(), 0)}
    if kind == "unknown-states":
        return {"squeue": ((squeue_line(r, "WIBBLING") + squeue_line(d, "FROBNICATED")).encode(), 0),
                "sacct": ((sacct_line(r, "WIBBLING") + sacct_line(d, "FROBNICATED")).encode(), 0),
                "scontrol": (scontrol_line(r, "WIBBLING").encode(), 0)}
    if kind == "garbage-bytes":
        junk = b"\x00\xff\xfe\x1b[31m!!\x07 segfault?\x00\n\x89PNG\r\n\x1a\n"
        return {"squeue": (junk, 0), "sacct": (junk, 0), "scontrol": (junk, 0)}
    if kind == "empty-rc0":
        return {"squeue": (b"", 0), "sacct": (b"", 0), "scontrol": (b"", 0)}
    if kind == "wrong-columns":
        return {"squeue": (f"{r}|RUNNING\n{d}|COMPLETED|0:0|None|localhost|extra\n".encode(), 0),
                "sacct": (f"{r}|RUNNING|None\n{d}|COMPLETED\n".encode(), 0),
                "scontrol": (f"JobId={r} JobName=x Reason=None\n".encode(), 0)}
    if kind == "non-utf8":
        return {"squeue": ((f"{r}|RUNN\xc9NG|None|localhost\n{d}|COMPLETED|None|loc\xe0lhost\n").encode("latin-1"), 0),
                "sacct": ((f"{r}|RUNN\xc9NG|0:0|None|localhost\n{d}|COMPL\xc9TED|0:0|None|x\n").encode("latin-1"), 0),
                "scontrol": (scontrol_line(r, "RUNN\xc9NG").encode("latin-1"), 0)}
    if kind == "warning-line-and-other-jobs":  # text Slurm never prints here, around a good line
        return {"squeue": (b"squeue: warning: something odd\n" + squeue_line("999999", "RUNNING").encode(), 0),
                "sacct": (b"sacct: warning: something odd\n" + sacct_line("999999", "COMPLETED").encode(), 0),
                "scontrol": (b"JobId=999999 JobState=COMPLETED\n", 0)}
    if kind == "other-jobs-only":  # well-formed, about other jobs: ours are confirmed by scontrol
        return {"squeue": (squeue_line("999999", "RUNNING").encode(), 0),
                "sacct": (sacct_line("999998", "FAILED").encode(), 0)}
    raise AssertionError(kind)


KINDS = ["cut-mid-line", "unknown-states", "garbage-bytes", "empty-rc0", "wrong-columns", "non-utf8",
         "warning-line-and-other-jobs", "other-jobs-only"]
# the commands each monitor's fakes replace (the others stay real: scontrol confirms "unknown")
FAKED = {"scontrol": ("scontrol", "sacct"), "squeue": ("squeue", "sacct"),
         "bulk-sacct": ("sacct", "squeue"), "bulk-squeue": ("squeue", "sacct")}

# the scontrol monitor asks sacct only about jobs scontrol does not know: well-formed sacct output
# about other jobs is never read by it
NOT_CONSULTED = {("other-jobs-only", "scontrol")}


def install_fakes(bin_dir: Path, fakes: dict[str, tuple[bytes, int]], monkeypatch: pytest.MonkeyPatch) -> None:
    """Executables printing the given bytes with the given rc, first on PATH."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name, (data, rc) in fakes.items():
        (bin_dir / f"{name}.out").write_bytes(data)
        script = bin_dir / name
        script.write_text(f"#!/bin/sh\ncat '{bin_dir}/{name}.out'\nexit {rc}\n")
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


@pytest.fixture(scope="module")
def real_jobs(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Two real Slurm jobs: R running (sleep), D completed; their workers; cancelled at the end."""
    home = tmp_path_factory.mktemp("badoutput")
    workers = {}
    for name, worker_id, command in (("R", 1, "sleep 600"), ("D", 2, "exit 0")):
        template = write_template(home / f"{name}.sh", command)
        workers[name] = make_workspec(home, worker_id)
        [(ok, diag)] = submitter(template).submit_workers([workers[name]])
        assert ok is True, diag
    yield workers
    SlurmSweeper().kill_workers(list(workers.values()))


def test_normal_path_on_the_real_slurm(real_jobs):
    """The real commands: the running job is running, the completed one finished, with every monitor."""
    specs = [real_jobs["R"], real_jobs["D"]]
    for name, make in MONITORS.items():
        results = wait_statuses(make(), specs, lambda r: [s for s, _d in r] == ["running", "finished"], 60,
                                f"{name}: the real jobs running/finished")
        assert results[0][1] == "" and "COMPLETED" in results[1][1], results


def test_malformed_output_is_diagnosed_and_nothing_is_lost(real_jobs, tmp_path, monkeypatch, caplog):
    specs = {name: real_jobs[name] for name in ("R", "D")}
    ids = {name: str(w.batchID) for name, w in specs.items()}
    wait_statuses(SlurmBulkMonitor(), list(specs.values()),
                  lambda r: [s for s, _d in r] == ["running", "finished"], 60, "the real jobs running/finished")
    cases = diagnosed = lost = unchecked = read = 0
    problems = []
    for kind in KINDS:
        for name, make in MONITORS.items():
            if (kind, name) in NOT_CONSULTED:
                continue
            cases += 1
            with monkeypatch.context() as patch:
                fakes = {cmd: out for cmd, out in outputs(kind, ids).items() if cmd in FAKED[name]}
                install_fakes(tmp_path / kind / name, fakes, patch)
                caplog.clear()
                with caplog.at_level(logging.WARNING):
                    ok, results = make().check_workers(list(specs.values()))
                logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
            assert ok is True
            said = bool(logged)
            for (worker, spec), (status, diag) in zip(specs.items(), results):
                if status is None:
                    unchecked += 1
                    said = said or bool(diag)
                    if not diag:
                        problems.append(f"{kind}/{name}/{worker}: unchecked without a diagnostic")
                elif status == TRUE[worker]:
                    read += 1
                else:
                    lost += 1
                    problems.append(f"{kind}/{name}/{worker}: {status} ({diag}) instead of {TRUE[worker]}")
            if said:
                diagnosed += 1
            else:
                problems.append(f"{kind}/{name}: no diagnostic at all (results {results})")
    # without the fakes, the next check reads every worker again: retried, not lost
    for name, make in MONITORS.items():
        ok, results = make().check_workers(list(specs.values()))
        assert [s for s, _d in results] == ["running", "finished"], (name, results)
    figures.record(f"reliability: bad_batch_output cases={cases} diagnosed={diagnosed} lost={lost} "
                   f"(worker checks: {read} read right, {unchecked} left unchecked with a diagnostic)")
    assert not problems, "\n".join(problems)
    assert cases == diagnosed == len(KINDS) * len(MONITORS) - len(NOT_CONSULTED) and lost == 0


def test_unreadable_lines_name_the_command_and_the_line(real_jobs, tmp_path, monkeypatch):
    """The diagnostic says which command printed what, so an operator can tell Slurm from Harvester."""
    ids = {name: str(w.batchID) for name, w in real_jobs.items()}
    install_fakes(tmp_path, {"squeue": ((squeue_line(ids["R"], "RUNNING") + f"{ids['D']}|COMPL").encode(), 0),
                             "sacct": (b"\xff\xfe garbage\n", 0)}, monkeypatch)
    ok, [(r_status, r_diag), (d_status, d_diag)] = SlurmSqueueMonitor().check_workers([real_jobs["R"], real_jobs["D"]])
    assert (r_status, r_diag) == ("running", "")  # its line was whole
    assert d_status is None and "could not read Slurm's answer" in d_diag and "will retry" in d_diag
    assert "squeue printed 1 malformed line" in d_diag and "output cut short" in d_diag and "COMPL" in d_diag


def test_scancel_garbage_is_a_failed_kill_not_a_kill(real_jobs, tmp_path, monkeypatch):
    """scancel failing with output nobody can read: the kill is reported failed (retried), not done."""
    install_fakes(tmp_path, {"scancel": (b"\x00\xff\xfe\n", 1)}, monkeypatch)
    results = SlurmSweeper().kill_workers([real_jobs["R"], real_jobs["D"]])
    assert [ok for ok, _diag in results] == [False, False], results
    assert all("scancel failed (rc=1)" in diag for _ok, diag in results)
