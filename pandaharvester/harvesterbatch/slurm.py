"""Slurm, as the Slurm submitter, monitors and sweeper use it (the one place for it).

Three parts, as a batch-system provider: submit (``SlurmClient.submit``), status
(``show_job``, ``squeue``, ``sacct``, translated by one state table) and cancel (``cancel``).

- :data:`SLURM_STATES`: the one table translating Slurm job states into WorkSpec statuses;
  :func:`worker_status` applies it to a :class:`JobRecord` and writes the diagnostic.
- :class:`SlurmClient`: the Slurm commands, always as argument lists, with a timeout:
  ``submit`` (sbatch), ``show_job`` (scontrol), ``squeue``, ``sacct`` and ``cancel`` (scancel).
  Their output is parsed into :class:`JobRecord` objects; failures raise :class:`SlurmError`,
  whose ``transient`` flag says whether trying again later may help (controller unreachable,
  timeout) or not (sbatch rejected the job).

Rule for a job Slurm no longer knows (purged from slurmctld after ``MinJobAge``): the monitors
ask ``sacct``; when accounting is disabled, or sacct has no record either, the worker is failed
with a diagnostic saying its outcome is unknown (see :func:`worker_status` with ``None``).

Malformed output (a line cut short, the wrong number of columns, garbage or non-UTF-8 bytes, a
state that is not a Slurm state word, output not ending in a newline): ``squeue``/``sacct``/
``show_job`` raise :class:`SlurmOutputError` with the jobs whose lines were read whole
(``records``) and those they could not tell about (``unreadable``); the monitors use the first
and leave the others unchecked with that diagnostic (checked again next cycle), so a job is
never taken as "unknown to Slurm" from output that could not be read.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from typing import Iterable

from pandaharvester.harvestercore.work_spec import WorkSpec

__all__ = ["SLURM_STATES", "FINAL_SLURM_STATES", "SlurmError", "AccountingUnavailable", "SlurmOutputError", "JobRecord",
           "normalize_state", "worker_status", "is_transient", "SlurmClient"]

# Slurm state -> (WorkSpec status, what it means). None as status: not a state we can act on.
SLURM_STATES: dict[str, tuple[str | None, str]] = {
    "PENDING": (WorkSpec.ST_submitted, "queued"),
    "CONFIGURING": (WorkSpec.ST_submitted, "nodes being set up"),
    "REQUEUED": (WorkSpec.ST_submitted, "requeued"),
    "REQUEUE_HOLD": (WorkSpec.ST_submitted, "requeued and held"),
    "REQUEUE_FED": (WorkSpec.ST_submitted, "requeued by the federation"),
    "RESV_DEL_HOLD": (WorkSpec.ST_submitted, "held after its reservation was deleted"),
    "RUNNING": (WorkSpec.ST_running, "running"),
    "COMPLETING": (WorkSpec.ST_running, "ending"),
    "SUSPENDED": (WorkSpec.ST_running, "suspended"),
    "STOPPED": (WorkSpec.ST_running, "stopped"),
    "RESIZING": (WorkSpec.ST_running, "being resized"),
    "SIGNALING": (WorkSpec.ST_running, "being signalled"),
    "STAGE_OUT": (WorkSpec.ST_running, "staging out"),
    "COMPLETED": (WorkSpec.ST_finished, "completed"),
    "FAILED": (WorkSpec.ST_failed, "failed (non-zero exit code)"),
    "TIMEOUT": (WorkSpec.ST_failed, "killed at its walltime limit"),
    "NODE_FAIL": (WorkSpec.ST_failed, "a node failed"),
    "PREEMPTED": (WorkSpec.ST_failed, "preempted"),
    "OUT_OF_MEMORY": (WorkSpec.ST_failed, "killed: out of memory"),
    "BOOT_FAIL": (WorkSpec.ST_failed, "its node failed to boot"),
    "DEADLINE": (WorkSpec.ST_failed, "not run before its deadline"),
    "SPECIAL_EXIT": (WorkSpec.ST_failed, "special exit"),
    "CANCELLED": (WorkSpec.ST_cancelled, "cancelled"),
    "REVOKED": (WorkSpec.ST_cancelled, "revoked by the federation"),
}
FINAL_SLURM_STATES = frozenset(s for s, (status, _) in SLURM_STATES.items()
                               if status in (WorkSpec.ST_finished, WorkSpec.ST_failed, WorkSpec.ST_cancelled))

# messages meaning "Slurm is not reachable right now": retry later, nothing is lost
_TRANSIENT_PATTERNS = (
    "unable to contact slurm controller", "socket timed out", "connection refused", "zero bytes were transmitted",
    "slurm_persist_conn_open", "temporarily unable to accept job", "slurmdbd", "resource temporarily unavailable",
    "backup controller in standby", "communication connection failure", "connection timed out",
)
_INVALID_JOB = "invalid job id specified"
# a well-formed job id (plain, array or heterogeneous component) and state word ("CANCELLED by 0", "CANCELLED+")
_JOB_ID = re.compile(r"\d+(?:[_+][\w\[\],-]+)*")
_STATE_WORD = re.compile(r"[A-Z][A-Z_]*\+?(?: by \d+)?")
# characters Slurm never prints in these columns: control characters, and U+FFFD (non-UTF-8 bytes)
_GARBAGE = re.compile("[\x00-\x08\x0b-\x1f\x7f\ufffd]")
_ACCOUNTING_DISABLED = "accounting storage is disabled"


class SlurmError(Exception):
    """A Slurm command failed; ``transient`` is True when trying again later may succeed."""

    def __init__(self, message: str, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


class AccountingUnavailable(SlurmError):
    """sacct cannot answer because Slurm accounting (slurmdbd) is not configured."""


class SlurmOutputError(SlurmError):
    """A Slurm command succeeded but printed output that could not be read whole.

    ``records``: the jobs whose lines were read whole; ``unreadable``: the wanted jobs it could not
    tell about (checked again next cycle, never taken as unknown to Slurm).
    """

    def __init__(self, message: str, records: dict[str, "JobRecord"], unreadable: set[str]) -> None:
        super().__init__(message, transient=False)
        self.records = records
        self.unreadable = unreadable


@dataclass
class JobRecord:
    """What Slurm said about one job."""

    job_id: str
    state: str
    exit_code: str | None = None  # "status:signal"
    reason: str | None = None
    nodes: str | None = None
    source: str = ""  # the command that said it

    @property
    def exit_status(self) -> int | None:
        """The batch script's exit status (the part before the colon of ExitCode)."""
        try:
            return int(str(self.exit_code).split(":")[0])
        except (TypeError, ValueError):
            return None


def normalize_state(text: str) -> str:
    """``"CANCELLED by 0"`` / ``"CANCELLED+"`` -> ``"CANCELLED"``."""
    words = text.strip().split()
    return words[0].rstrip("+").upper() if words else ""


def worker_status(record: JobRecord | None, batch_id: str) -> tuple[str | None, str]:
    """(WorkSpec status, diagnostic) of a Slurm job through :data:`SLURM_STATES`.

    ``None`` as record: neither slurmctld nor accounting knows the job -> failed (outcome unknown).
    An unknown state -> (None, diag): the worker keeps its status and is checked again.
    """
    if record is None:
        return WorkSpec.ST_failed, (f"Slurm job {batch_id} is unknown to slurmctld and to accounting (sacct) "
                                    "(purged after MinJobAge?): its outcome is unknown, the worker is failed")
    status, meaning = SLURM_STATES.get(record.state, (None, ""))
    if status is None:
        return None, (f"Slurm job {batch_id} is in state {record.state!r}, which the Slurm plugins do not know; "
                      "the worker keeps its status (add the state to harvesterbatch.slurm.SLURM_STATES)")
    if status in (WorkSpec.ST_submitted, WorkSpec.ST_running):
        return status, ""
    details = [f"Slurm job {batch_id} {record.state}: {meaning}"]
    if record.exit_code:
        details.append(f"ExitCode={record.exit_code}")
    if record.reason and record.reason not in ("None", "(null)"):
        details.append(f"Reason={record.reason}")
    return status, ", ".join(details)


def is_transient(text: str) -> bool:
    """True when a Slurm error message means the daemons are unreachable for now."""
    lowered = text.lower()
    return any(pattern in lowered for pattern in _TRANSIENT_PATTERNS)


def _one_line(text: str) -> str:
    return " ".join(text.split())


class SlurmClient:
    """Runs the Slurm commands (argument lists, ``timeout`` seconds each) and parses their output."""

    SQUEUE_FORMAT = "%i|%T|%r|%N"
    SACCT_FIELDS = "JobIDRaw,State,ExitCode,Reason,NodeList"

    def __init__(self, timeout: float = 60.0) -> None:
        self.timeout = float(timeout)

    # ------------------------------------------------------------------ running
    def run(self, args: list[str]) -> subprocess.CompletedProcess:
        """Run one command; SlurmError (transient) if it cannot be started or times out."""
        try:
            return subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, encoding="utf-8",
                                  errors="replace", timeout=self.timeout, check=False)
        except FileNotFoundError as exc:
            raise SlurmError(f"{args[0]} not found ({exc}): install the Slurm client commands "
                             "(scripts/setup_slurm.sh does it on a test machine)", transient=True) from exc
        except subprocess.TimeoutExpired as exc:
            raise SlurmError(f"{' '.join(args[:2])} ... did not answer within {self.timeout:.0f} s "
                             "(commandTimeout)", transient=True) from exc
        except OSError as exc:
            raise SlurmError(f"cannot run {args[0]}: {exc}", transient=True) from exc

    def _failed(self, args: list[str], proc: subprocess.CompletedProcess) -> SlurmError:
        text = _one_line(f"{proc.stderr} {proc.stdout}") or "no output"
        return SlurmError(f"{args[0]} failed (rc={proc.returncode}): {text}", transient=is_transient(text))

    # ------------------------------------------------------------------ submit / cancel
    def submit(self, script: str, workdir: str, options: Iterable[str] = ()) -> str:
        """``sbatch --parsable -D workdir [options] script``; the job id."""
        args = ["sbatch", "--parsable", "-D", workdir, *options, script]
        proc = self.run(args)
        if proc.returncode != 0:
            raise self._failed(args, proc)
        match = re.search(r"^\s*(\d+)(?:;\S+)?\s*$", proc.stdout, re.MULTILINE) or \
            re.search(r"Submitted batch job (\d+)", proc.stdout)
        if match is None:
            raise SlurmError(f"sbatch succeeded but printed no job id: {_one_line(proc.stdout)!r}; "
                             "check squeue before retrying", transient=False)
        return match.group(1)

    def cancel(self, job_ids: list[str]) -> dict[str, str]:
        """``scancel`` the jobs in one call; {job id: error} for those that could not be cancelled.

        A job that already ended, or that Slurm no longer knows, counts as cancelled.
        """
        if not job_ids:
            return {}
        args = ["scancel", *job_ids]
        proc = self.run(args)
        if proc.returncode == 0:
            return {}
        errors: dict[str, str] = {}
        explained: set[str] = set()
        for line in proc.stderr.splitlines():
            match = re.search(r"job id (\d+)\S*: (.*)$", line)
            if match is None:
                continue
            explained.add(match.group(1))
            message = match.group(2).lower()
            if _INVALID_JOB not in message and "completed" not in message:
                errors[match.group(1)] = line.strip()
        if not explained:  # no per-job message: the whole call failed
            error = self._failed(args, proc)
            return {job_id: str(error) for job_id in job_ids}
        return errors

    # ------------------------------------------------------------------ status
    def show_job(self, job_id: str) -> JobRecord | None:
        """``scontrol show job -o``; None when slurmctld does not know the job."""
        args = ["scontrol", "show", "job", "-o", job_id]
        proc = self.run(args)
        if proc.returncode != 0:
            if _INVALID_JOB in f"{proc.stderr} {proc.stdout}".lower():
                return None
            raise self._failed(args, proc)
        if proc.stdout and not proc.stdout.endswith("\n"):
            raise SlurmOutputError(f"scontrol show job {job_id} printed output cut short: "
                                   f"{_one_line(proc.stdout)[-200:]!r}", {}, {job_id})
        for line in proc.stdout.splitlines():
            fields = dict(re.findall(r"(\w+)=(\S*)", line))
            if fields.get("JobId") == job_id and "JobState" in fields:
                if not _STATE_WORD.fullmatch(fields["JobState"]) or _GARBAGE.search(line):
                    raise SlurmOutputError(f"scontrol show job {job_id} printed a malformed line: {line[:200]!r}",
                                           {}, {job_id})
                return JobRecord(job_id, normalize_state(fields["JobState"]), fields.get("ExitCode"),
                                 fields.get("Reason"), fields.get("NodeList"), "scontrol")
        raise SlurmOutputError(f"scontrol show job {job_id} printed no JobState: {_one_line(proc.stdout)[:300]!r}",
                               {}, {job_id})

    def squeue(self, job_ids: list[str]) -> dict[str, JobRecord]:
        """``squeue -t all`` for the jobs (one call); {job id: record} of those slurmctld knows."""
        if not job_ids:
            return {}
        args = ["squeue", "-h", "-t", "all", "-o", self.SQUEUE_FORMAT, "-j", ",".join(job_ids)]
        proc = self.run(args)
        if proc.returncode != 0:
            if _INVALID_JOB in f"{proc.stderr} {proc.stdout}".lower():
                return {}  # a single unknown id makes squeue fail
            raise self._failed(args, proc)
        return self._parse(proc.stdout, 4, "squeue", set(job_ids))

    def sacct(self, job_ids: list[str]) -> dict[str, JobRecord]:
        """``sacct -X`` for the jobs (one call); {job id: record} of those accounting knows.

        Raises :class:`AccountingUnavailable` when accounting is disabled.
        """
        if not job_ids:
            return {}
        args = ["sacct", "-X", "-P", "-n", "-o", self.SACCT_FIELDS, "-j", ",".join(job_ids)]
        proc = self.run(args)
        if proc.returncode != 0:
            text = _one_line(f"{proc.stderr} {proc.stdout}")
            if _ACCOUNTING_DISABLED in text.lower():
                raise AccountingUnavailable(f"sacct: {text}", transient=False)
            raise self._failed(args, proc)
        return self._parse(proc.stdout, 5, "sacct", set(job_ids))

    @staticmethod
    def _parse(text: str, n_fields: int, source: str, wanted: set[str]) -> dict[str, JobRecord]:
        """{job id: record} of the wanted jobs in ``|``-separated output; SlurmOutputError when a line
        is malformed (see the module docstring): the jobs it may be about are ``unreadable``."""
        records: dict[str, JobRecord] = {}
        bad: list[tuple[int, str]] = []
        unreadable: set[str] = set()
        blind = False  # a malformed line whose job cannot be told: every job not read is unreadable
        lines = text.split("\n")
        cut = lines[-1] != ""  # real output ends with a newline: the last line was cut short
        for number, raw in enumerate(lines, 1):
            line = raw.rstrip("\r")
            if not line.strip():
                continue
            parts = [p.strip() for p in line.split("|")]
            well_formed = (len(parts) == n_fields and _JOB_ID.fullmatch(parts[0]) is not None
                           and _STATE_WORD.fullmatch(parts[1]) is not None and not _GARBAGE.search(line)
                           and not (cut and number == len(lines)))
            if not well_formed:
                bad.append((number, line))
                match = _JOB_ID.match(parts[0])
                if match is not None and match.group(0) == parts[0] and not (cut and number == len(lines)):
                    unreadable.add(parts[0])
                else:
                    blind = True
                continue
            if parts[0] not in wanted:
                continue
            if source == "squeue":
                job_id, state, reason, nodes = parts[:4]
                exit_code = None
            else:
                job_id, state, exit_code, reason, nodes = parts[:5]
            # with duplicate job ids (a reset cluster) the newest record comes last and wins
            records[job_id] = JobRecord(job_id, normalize_state(state), exit_code or None, reason or None,
                                        nodes or None, source)
        if not bad:
            return records
        unreadable &= wanted
        if blind:
            unreadable |= wanted - set(records)
        for job_id in unreadable:
            records.pop(job_id, None)
        number, line = bad[0]
        raise SlurmOutputError(
            f"{source} printed {len(bad)} malformed line(s) (expected {n_fields} '|'-separated columns: "
            f"job id, state, ...; line {number}: {line[:160]!r}{', output cut short' if cut else ''})",
            records, unreadable)
