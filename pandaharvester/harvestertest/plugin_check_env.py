"""The scratch world of the plugin conformance kit: a throw-away Harvester home, DB and real specs.

:class:`Scratch` makes a temporary directory holding a Harvester home (cfg from the shipped
template, its own SQLite DB with every table) and the workers' access points, points
``PANDA_HOME`` at it for the duration and puts everything back afterwards, so a check never
writes into a site's DB or directories. Its factories make real specs: PanDA-shaped jobs (the
emulator's job dicts through ``JobSpec.convert_job_json``) with input files in the DB, output
files backed by real files, zip files with real members, and workers with concrete access points.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from pandaharvester.harvestercore.file_spec import FileSpec
from pandaharvester.harvestercore.job_spec import JobSpec
from pandaharvester.harvestercore.queue_config import QueueConfig
from pandaharvester.harvestercore.work_spec import WorkSpec

from .instance import write_cfg
from .panda_emulator.jobs import make_job_spec

SITE = "PLUGIN_CHECK"
_ENV_KEYS = ("PANDA_HOME", "HARVESTER_CONFIG_FILE", "HARVESTER_INSTANCE_CONFIG_URL")


class Scratch:
    """A temporary Harvester home with a DB, and factories of workers, jobs and files in it."""

    def __init__(self, base: str | os.PathLike | None = None, keep: bool = False) -> None:
        self.keep = keep or base is not None
        self.base = Path(base) if base is not None else Path(tempfile.mkdtemp(prefix="plugin-check-"))
        self.home = self.base / "home"
        self.workers_dir = self.base / "workers"
        self.files_dir = self.base / "files"
        self._saved_env: dict[str, str | None] = {}
        self._worker_ids = itertools.count(1)
        self._job_ids = itertools.count(1)
        self.proxy: Any = None

    # ------------------------------------------------------------------ the home
    def __enter__(self) -> "Scratch":
        for path in (self.home, self.workers_dir, self.files_dir):
            path.mkdir(parents=True, exist_ok=True)
        write_cfg(self.home, harvester_id="plugin-check")
        self._saved_env = {key: os.environ.get(key) for key in _ENV_KEYS}
        os.environ["PANDA_HOME"] = str(self.home)
        os.environ.pop("HARVESTER_CONFIG_FILE", None)
        os.environ.pop("HARVESTER_INSTANCE_CONFIG_URL", None)
        from pandaharvester.harvesterconfig import harvester_config
        from pandaharvester.harvestercore.db_proxy_pool import DBProxyPool

        harvester_config.reload()
        self.proxy = DBProxyPool()
        self.proxy.make_tables(None, None)
        return self

    def __exit__(self, *exc: Any) -> None:
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        from pandaharvester.harvesterconfig import harvester_config

        harvester_config.reload()
        if not self.keep:
            shutil.rmtree(self.base, ignore_errors=True)

    # ------------------------------------------------------------------ specs
    def queue_config(self, queue_name: str = SITE, attrs: dict[str, Any] | None = None) -> QueueConfig:
        """A QueueConfig as the mapper makes it (the given attributes, or a plain push queue)."""
        if isinstance(attrs, QueueConfig):
            return attrs
        qc = QueueConfig(queue_name)
        qc.siteName = qc.siteFamily = queue_name.split("/")[0]
        for key, value in (attrs or {}).items():
            setattr(qc, key, value)
        qc.set_unique_name()
        return qc

    def job(self, n_inputs: int = 2, with_outputs: bool = False, **opts: Any) -> JobSpec:
        """A job as the JobFetcher stores it: PanDA's job dict, input FileSpecs (in the DB)."""
        panda_id = 1000 + next(self._job_ids)
        data = make_job_spec(panda_id, 4242, 77, SITE, {"n_files": n_inputs, **opts}, seed=1)
        job = JobSpec()
        job.convert_job_json(data)
        job.computingSite = SITE
        job.status, job.subStatus = "starting", "fetched"
        for index, (lfn, attrs) in enumerate(job.get_input_file_attributes().items()):
            file_spec = FileSpec()
            file_spec.fileID = panda_id * 100 + index
            file_spec.PandaID, file_spec.taskID, file_spec.lfn = panda_id, job.taskID, lfn
            file_spec.scope, file_spec.fsize, file_spec.chksum = attrs.get("scope"), attrs.get("fsize"), \
                attrs.get("checksum")
            file_spec.fileType, file_spec.status, file_spec.endpoint = "input", "to_prepare", attrs.get("endpoint")
            job.add_in_file(file_spec)
        self.proxy.insert_jobs([job])
        if with_outputs:
            self.add_outputs(job)
        return job

    def _real_file(self, job: JobSpec, lfn: str, size: int = 2048) -> str:
        directory = self.files_dir / str(job.PandaID)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / lfn
        path.write_bytes(os.urandom(size))
        return str(path)

    def add_outputs(self, job: JobSpec) -> list[FileSpec]:
        """The job's output and log files, written for real, in the DB, ready to stage out."""
        outputs = []
        for index, (lfn, file_type) in enumerate(((f"HITS.{job.PandaID}.pool.root.1", "output"),
                                                  (f"log.{job.PandaID}.job.log.tgz.1", "log"))):
            file_spec = FileSpec()
            file_spec.fileID = job.PandaID * 100 + 50 + index
            file_spec.PandaID, file_spec.taskID, file_spec.lfn = job.PandaID, job.taskID, lfn
            file_spec.fileType, file_spec.status = file_type, "defined"
            file_spec.path = self._real_file(job, lfn)
            file_spec.fsize = os.path.getsize(file_spec.path)
            file_spec.scope = "mc23_13p6TeV"
            job.add_out_file(file_spec)
            outputs.append(file_spec)
        job.hasOutFile = JobSpec.HO_hasOutput
        job.subStatus = "to_transfer"
        self.proxy.insert_files([job])
        for file_spec in outputs:
            file_spec.reset_changed_list()
        return outputs

    def zip_job(self, n_members: int = 3) -> JobSpec:
        """A job whose one output FileSpec is a zip file of ``n_members`` real files."""
        job = self.job(n_inputs=1)
        zip_spec = FileSpec()
        zip_spec.fileID = job.PandaID * 100 + 90
        zip_spec.PandaID, zip_spec.taskID = job.PandaID, job.taskID
        zip_spec.lfn, zip_spec.fileType, zip_spec.isZip, zip_spec.status = \
            f"outputs.{job.PandaID}.tar", "zip_output", 1, "defined"
        for index in range(n_members):
            member = FileSpec()
            member.PandaID, member.lfn, member.fileType = job.PandaID, f"EVNT.{job.PandaID}._{index}.root", "es_output"
            member.path = self._real_file(job, member.lfn)
            member.fsize = os.path.getsize(member.path)
            zip_spec.add_associated_file(member)
        job.add_out_file(zip_spec)
        job.hasOutFile = JobSpec.HO_hasZipOutput
        self.proxy.insert_files([job])
        return job

    def worker(self, jobs: list[JobSpec] | None = None, batch_id: str | None = None) -> WorkSpec:
        """A worker as the Submitter hands it to a submitter plugin, with its own access point."""
        worker = WorkSpec()
        worker.workerID = next(self._worker_ids)
        worker.computingSite = worker.queueName = SITE
        worker.mapType = WorkSpec.MT_OneToOne if jobs else WorkSpec.MT_NoJob
        worker.hasJob = 1 if jobs else 0
        if batch_id is not None:  # a worker some submitter already submitted
            worker.status, worker.batchID = WorkSpec.ST_submitted, batch_id
        worker.nCore = sum(job.nCore or 1 for job in jobs) if jobs else 1
        worker.minRamCount = sum(int(job.jobParams.get("minRamCount") or 0) for job in jobs) if jobs else 2000
        worker.maxWalltime = 600
        worker.maxDiskCount = 5000
        worker.jobType, worker.resourceType = "managed", "SCORE" if worker.nCore == 1 else "MCORE"
        # a concrete path (no ${workerID} placeholder): plugins that read accessPoint raw work too
        worker.accessPoint = str(self.workers_dir / str(worker.workerID))
        if jobs:
            worker.set_jobspec_list(jobs)
            worker.set_num_jobs_with_list()
        return worker
