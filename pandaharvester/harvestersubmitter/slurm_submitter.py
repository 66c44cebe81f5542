"""``SlurmSubmitter``: one Slurm batch job per worker, from a template file.

For each worker: the template (``templateFile``) is rendered with the placeholders below in
``{name}`` style (``{name:spec}`` formats, ``{{``/``}}`` are literal braces, anything else in
braces, e.g. shell's ``${VAR:-x}``, is left alone; each value escaped for where it lands, so
that shell syntax in a value stays text: see :mod:`.script_quoting`), written to the access point as
``slurm_submit_<workerID>.sh`` and submitted with ``sbatch --parsable -D <access point>
[--partition P] [--account A] [--qos Q] [sbatchOptions...] <script>`` (an argument list, never
a shell string). The job id becomes ``batchID``; the log URLs come from the script's
``#SBATCH -o/-e`` lines (``%j`` and ``$SLURM_JOB_ID`` replaced; Slurm's default ``slurm-%j.out``
when absent).

Placeholders (the original's names): nCorePerNode, nCoreTotal, nCoreFactor, nNode, requestRam
(MB), requestRamBytes, requestRamPerCore, requestRamBytesPerCore, requestDisk, requestWalltime (s),
requestWalltimeMinute, requestCputime, requestCputimeMinute, accessPoint, harvesterID, workerID,
computingSite, pandaQueueName, localQueueName, logDir, logSubDir, jobType, and tokenDir,
tokenName, tokenOrigin, submitMode when set. Added here: submissionHost, tmpDir, pandaIDs
(comma-separated PandaIDs of the worker's jobs), nJobs, resourceType, and every key of the
queue config's ``templateParams`` dict.

Cores: ``nCore`` of the queue config (when > 0) overrides the worker's (from its jobs and
queue); ``nCorePerNode`` (default: all cores on one node) gives ``nNode``. Memory: the worker's
``minRamCount`` (at least 1 MB per core). Walltime: the worker's ``maxWalltime``.

Returns per worker ``(True, "")``, ``(False, diag)`` when sbatch rejected the job (the sbatch
error in the diag) or a value cannot go into a batch script (a newline in it, ...), and
``(None, diag)`` when Slurm was unreachable or the template could not be read (the jobs are retried).

Other queue-config attributes: ``logDir`` (default the access point), ``logBaseURL`` (log URLs
are ``logBaseURL/<path relative to logDir>``), ``uploadLog`` (without logBaseURL: upload the logs
to PanDA's cache; else ``file://`` URLs are recorded), ``commandTimeout`` (seconds, default 60).
"""

from __future__ import annotations

import math
import os
import re
import shlex
import socket
import tempfile
from typing import Any, Iterable

from pandaharvester.harvesterbatch.slurm import SlurmClient, SlurmError
from pandaharvester.harvestercore import core_utils, log_utils
from pandaharvester.harvestercore.plugin_base import PluginBase

from .script_quoting import UnsafeValue, render_script

_logger = log_utils.setup_logger("slurm_submitter")

_OPTIONAL_PLACEHOLDERS = ("tokenDir", "tokenName", "tokenOrigin", "submitMode")


def render_template(template: str, placeholders: dict[str, Any], code_names: Iterable[str] = ()) -> str:
    """``str.format_map``-like rendering that leaves unknown ``{...}`` (shell syntax) untouched and
    escapes each value for its place in the script (``code_names``: inserted as they are)."""
    return render_script(template, placeholders, code_names)


class SlurmSubmitter(PluginBase):
    """Submits each worker as a Slurm batch job (see the module docstring)."""

    scriptPrefix = "slurm_submit"

    def __init__(self, **kwarg: Any) -> None:
        self.templateFile: str | None = None
        self.nCore = 0
        self.nCorePerNode = 0
        self.nCoreFactor = 1
        self.localQueueName = "grid"
        self.logDir: str | None = None
        self.logBaseURL: str | None = None
        self.uploadLog = False
        self.partition: str | None = None
        self.account: str | None = None
        self.qos: str | None = None
        self.sbatchOptions: list[str] | str = []
        self.templateParams: dict[str, Any] = {}
        self.tmpDir: str | None = None
        self.commandTimeout = 60
        PluginBase.__init__(self, **kwarg)
        try:
            self.nCoreFactor = max(int(self.nCoreFactor or 1), 1)
        except (TypeError, ValueError):
            self.nCoreFactor = 1
        self.client = SlurmClient(float(self.commandTimeout))

    # ------------------------------------------------------------------ submission
    def submit_workers(self, workspec_list: list) -> list[tuple[bool | None, str]]:
        """One ``(True|False|None, diag)`` per worker; batchID and log URLs set on success."""
        try:
            options = self.sbatch_options()
        except ValueError as exc:
            return [(False, str(exc))] * len(workspec_list)
        results: list[tuple[bool | None, str]] = []
        outage: str | None = None
        for workspec in workspec_list:
            if outage is not None:  # every sbatch would wait for the same timeout
                results.append((None, f"not submitted: Slurm unreachable for an earlier worker ({outage})"))
                continue
            log = self.make_logger(_logger, f"workerID={workspec.workerID}", method_name="submit_workers")
            try:
                results.append(self.submit_one(workspec, options, log))
            except SlurmError as exc:
                log.error(f"sbatch: {exc}")
                results.append(((None if exc.transient else False), str(exc)))
                if exc.transient:
                    outage = str(exc)
            except Exception as exc:  # one broken worker never takes the others down
                core_utils.dump_error_message(log)
                results.append((None, f"{type(exc).__name__} while submitting to Slurm: {exc}"))
        return results

    def submit_one(self, workspec: Any, options: list[str], log: Any) -> tuple[bool | None, str]:
        """Render, write and sbatch one worker's script; raises SlurmError when sbatch fails."""
        access_point = workspec.get_access_point()
        if not access_point:
            return False, "the worker has no accessPoint: set messenger.accessPoint in the queue config"
        if int(self.nCore or 0) > 0:
            workspec.nCore = int(self.nCore)
        workspec.submissionHost = socket.gethostname()
        try:
            os.makedirs(access_point, exist_ok=True)
            script = self.make_batch_script(workspec)
        except UnsafeValue as exc:  # the same value next time: not retried
            diag = f"not submitted: templateFile={self.templateFile!r}: {exc}"
            log.error(diag)
            return False, diag
        except (OSError, ValueError, KeyError, IndexError) as exc:
            diag = f"cannot make the batch script from templateFile={self.templateFile!r}: {exc}"
            log.error(diag)
            return None, diag
        batch_id = self.client.submit(script, access_point, options)  # SlurmError: see submit_workers
        workspec.batchID = batch_id
        try:  # the job runs now: a log-URL problem must not make Harvester forget it
            self.set_log_files(workspec, script, batch_id, options)
        except Exception as exc:
            log.warning(f"batchID={batch_id}: log file URLs not set: {type(exc).__name__}: {exc}")
        log.debug(f"batchID={batch_id} script={script}")
        return True, ""

    def sbatch_options(self) -> list[str]:
        """Options for every sbatch call: partition, account, QOS, then ``sbatchOptions``."""
        options = []
        for flag, value in (("--partition", self.partition), ("--account", self.account), ("--qos", self.qos)):
            if value not in (None, ""):
                options.append(f"{flag}={value}")
        extra = self.sbatchOptions or []
        if isinstance(extra, str):
            extra = shlex.split(extra)  # tokenised like a shell would, but never run by one
        if not isinstance(extra, (list, tuple)) or not all(isinstance(o, (str, int, float)) for o in extra):
            raise ValueError(f"sbatchOptions must be a list of strings, not {self.sbatchOptions!r}")
        return options + [str(o) for o in extra]

    # ------------------------------------------------------------------ the batch script
    def make_placeholder_map(self, workspec: Any) -> dict[str, Any]:
        """The values the template can use (see the module docstring)."""
        from pandaharvester.harvesterconfig import harvester_config

        n_core_total = int(workspec.nCore or self.nCorePerNode or 1)
        n_core_per_node = int(self.nCorePerNode or n_core_total)
        n_node = int(math.ceil(n_core_total / n_core_per_node))
        request_ram = max(int(workspec.minRamCount or 0), n_core_total)
        request_walltime = int(workspec.maxWalltime or 0)
        request_cputime = request_walltime * n_core_total
        access_point = workspec.get_access_point()
        log_dir = self.logDir or access_point
        jobs = workspec.get_jobspec_list() or []
        placeholders: dict[str, Any] = {
            "nCorePerNode": n_core_per_node,
            "nCoreTotal": n_core_total * self.nCoreFactor,
            "nCoreFactor": self.nCoreFactor,
            "nNode": n_node,
            "requestRam": request_ram * self.nCoreFactor,
            "requestRamBytes": request_ram * 2**20 * self.nCoreFactor,
            "requestRamPerCore": int(math.ceil(request_ram * n_node / n_core_total)),
            "requestRamBytesPerCore": int(math.ceil(request_ram * 2**20 * n_node / n_core_total)),
            "requestDisk": int(workspec.maxDiskCount or 0) * 1024 or 1,
            "requestWalltime": request_walltime,
            "requestWalltimeMinute": int(math.ceil(request_walltime / 60)),
            "requestCputime": request_cputime,
            "requestCputimeMinute": int(math.ceil(request_cputime / 60)),
            "accessPoint": access_point,
            "harvesterID": harvester_config.master.harvester_id,
            "workerID": workspec.workerID,
            "computingSite": workspec.computingSite,
            "pandaQueueName": getattr(self, "queueName", workspec.computingSite),
            "localQueueName": self.localQueueName,
            "logDir": log_dir,
            "logSubDir": os.path.join(log_dir, core_utils.naive_utcnow().strftime("%y-%m-%d_%H")),
            "jobType": workspec.jobType,
            "resourceType": workspec.resourceType,
            "submissionHost": workspec.submissionHost or socket.gethostname(),
            "tmpDir": self.tmpDir or tempfile.gettempdir(),
            "pandaIDs": ",".join(str(job.PandaID) for job in jobs),
            "nJobs": len(jobs),
        }
        for key in _OPTIONAL_PLACEHOLDERS:
            if getattr(self, key, None) is not None:
                placeholders[key] = getattr(self, key)
        if not isinstance(self.templateParams or {}, dict):
            raise ValueError(f"templateParams must be a dict, not {self.templateParams!r}")
        placeholders.update(self.templateParams or {})
        return placeholders

    def render(self, template: str, placeholders: dict[str, Any], workspec: Any) -> str:
        """The batch script text (``SlurmSubmitterJinja`` renders with Jinja2 instead)."""
        return render_template(template, placeholders, (self.templateParams or {}).keys())

    def make_batch_script(self, workspec: Any) -> str:
        """Write the worker's batch script into its access point; its path."""
        if not self.templateFile:
            raise ValueError("no templateFile in the submitter's queue config")
        with open(self.templateFile) as stream:
            template = stream.read()
        placeholders = self.make_placeholder_map(workspec)
        if self.logDir:
            os.makedirs(placeholders["logSubDir"], exist_ok=True)
        text = self.render(template, placeholders, workspec)
        name = f"{self.scriptPrefix}_{workspec.workerID}.sh" if workspec.workerID is not None else None
        access_point = workspec.get_access_point()
        if name is None:
            handle, path = tempfile.mkstemp(suffix="_submit.sh", dir=access_point)
            os.close(handle)
        else:
            path = os.path.join(access_point, name)
        tmp = f"{path}.tmp"
        with open(tmp, "w") as stream:
            stream.write(text)
        os.chmod(tmp, 0o755)
        os.replace(tmp, path)
        return path

    # ------------------------------------------------------------------ log files
    def get_log_file_names(self, batch_script: str, batch_id: str,
                           options: list[str] | None = None) -> tuple[str | None, str | None]:
        """(stdout, stderr) paths of the job: ``#SBATCH -o/-e`` (or the same sbatch options), absolute."""
        stdout = stderr = None
        job_name = os.path.basename(batch_script)
        lines = []
        with open(batch_script) as stream:
            for line in stream:
                if line.startswith("#SBATCH"):
                    lines.append(line[len("#SBATCH"):].strip())
                elif line.strip() and not line.startswith("#"):
                    break  # sbatch reads no #SBATCH line after the first command
        tokens = [t for line in lines for t in shlex.split(line, comments=True)] + list(options or [])
        for flag, value in _option_pairs(tokens):
            if flag in ("-o", "--output"):
                stdout = value
            elif flag in ("-e", "--error"):
                stderr = value
            elif flag in ("-J", "--job-name"):
                job_name = value
        workdir = os.path.dirname(batch_script)
        stdout = _expand_log_name(stdout or "slurm-%j.out", batch_id, job_name, workdir)
        stderr = _expand_log_name(stderr, batch_id, job_name, workdir) if stderr else stdout
        return stdout, stderr

    def set_log_files(self, workspec: Any, script: str, batch_id: str, options: list[str]) -> None:
        """Record the job's stdout/stderr (and the batch script as jdl) as URLs for PanDA."""
        stdout, stderr = self.get_log_file_names(script, batch_id, options)
        base_dir = self.logDir or workspec.get_access_point()
        for log_type, path in (("stdout", stdout), ("stderr", stderr), ("jdl", script)):
            if self.logBaseURL:
                rel = os.path.relpath(path, base_dir)
                rel = os.path.basename(path) if rel.startswith("..") else rel
                workspec.set_log_file(log_type, f"{self.logBaseURL.rstrip('/')}/{rel}")
            elif self.uploadLog:
                workspec.set_log_file(log_type, path)
            else:
                key = {"stdout": "stdOut", "stderr": "stdErr", "jdl": "jdl"}[log_type]
                workspec.set_work_attributes({key: f"file://{path}"})


def _option_pairs(tokens: list[str]) -> list[tuple[str, str]]:
    """[(flag, value)] from sbatch options: ``-o X``, ``-oX``, ``--output=X``, ``--output X``."""
    pairs = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.startswith("--") and "=" in token:
            flag, value = token.split("=", 1)
            pairs.append((flag, value))
        elif token in ("-o", "-e", "-J", "--output", "--error", "--job-name") and i + 1 < len(tokens):
            pairs.append((token, tokens[i + 1]))
            i += 1
        elif len(token) > 2 and token[:2] in ("-o", "-e", "-J") and not token.startswith("--"):
            pairs.append((token[:2], token[2:]))
        i += 1
    return pairs


def _expand_log_name(pattern: str, batch_id: str, job_name: str, workdir: str) -> str:
    """A Slurm file-name pattern with the job's values (``%j``, ``%J``, ``%A``, ``%x``, ``$SLURM_JOB_ID``)."""
    values = {"j": batch_id, "J": batch_id, "A": batch_id, "x": job_name, "%": "%"}
    name = re.sub(r"%(\w|%)", lambda m: values.get(m.group(1), m.group(0)), pattern)
    name = name.replace("$SLURM_JOB_ID", batch_id).replace("${SLURM_JOB_ID}", batch_id)
    return name if os.path.isabs(name) else os.path.join(workdir, name)
