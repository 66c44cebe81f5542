#!/usr/bin/env python3
"""Write examples/jobspec.pickle and examples/workspec.pickle from this package's spec classes.

The samples show what agents exchange: a job fetched from PanDA (with its input/output files)
and the worker running it. Load them with ``pickle.load(open(path, "rb"))``.

Usage: python scripts/make_example_pickles.py [output_dir]   (default: <repo>/examples)
"""

from __future__ import annotations

import datetime
import pickle
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pandaharvester.harvestercore.file_spec import FileSpec  # noqa: E402
from pandaharvester.harvestercore.job_spec import JobSpec  # noqa: E402
from pandaharvester.harvestercore.work_spec import WorkSpec  # noqa: E402

T0 = datetime.datetime(2024, 5, 6, 12, 0, 0, 123456)
PANDA_ID = 6123456789
JOB_NAME = "3b1f9c2e-5d7a-4e8b-9f00-1a2b3c4d5e6f_1"


def sample_job_dict() -> dict:
    """A production job as PanDA's acquire_jobs returns it (abridged to the usual fields)."""
    return {
        "PandaID": PANDA_ID,
        "StatusCode": 0,
        "taskID": 38123456,
        "jobsetID": "NULL",
        "attemptNr": 2,
        "currentPriority": 900,
        "coreCount": 8,
        "resource_type": "MCORE",
        "jobName": JOB_NAME,
        "prodSourceLabel": "managed",
        "processingType": "simul",
        "transformation": "Sim_tf.py",
        "homepackage": "Athena/23.0.40",
        "swRelease": "Atlas-23.0.40",
        "cmtConfig": "x86_64-el9-gcc13-opt",
        "jobPars": (
            "--inputEVNTFile=EVNT.38000001._000042.pool.root.1 "
            f"--outputHITSFile=HITS.38123456._000017.pool.root.1 --maxEvents=100 --skipEvents=1700 "
            "--randomSeed=17 --geometryVersion=default:ATLAS-R3S-2021-03-02-00 --conditionsTag=default:OFLCOND-MC21-SDR-RUN3-07"
        ),
        "inFiles": "EVNT.38000001._000042.pool.root.1",
        "GUID": "5E2C4A1B-7D3F-4B6A-9C8E-0F1A2B3C4D5E",
        "fsize": "183502848",
        "checksum": "ad:4f3c2b1a",
        "scopeIn": "mc23_13p6TeV",
        "realDatasetsIn": "mc23_13p6TeV.601229.PhPy8EG_A14_ttbar.evgen.EVNT.e8514_tid38000001_00",
        "ddmEndPointIn": "CERN-PROD_DATADISK",
        "prodDBlocks": "mc23_13p6TeV.601229.PhPy8EG_A14_ttbar.evgen.EVNT.e8514_tid38000001_00",
        "dispatchDblock": "NULL",
        "dispatchDBlockToken": "NULL",
        "prodDBlockToken": "NULL",
        "outFiles": f"HITS.38123456._000017.pool.root.1,{JOB_NAME}.job.log.tgz",
        "scopeOut": "mc23_13p6TeV",
        "scopeLog": "mc23_13p6TeV",
        "logFile": f"{JOB_NAME}.job.log.tgz",
        "logGUID": "a1b2c3d4-e5f6-4789-8abc-def012345678",
        "realDatasets": (
            "mc23_13p6TeV.601229.PhPy8EG_A14_ttbar.simul.HITS.e8514_s4162_tid38123456_00,"
            "mc23_13p6TeV.601229.PhPy8EG_A14_ttbar.simul.log.e8514_s4162_tid38123456_00"
        ),
        "destinationDblock": "mc23_13p6TeV.601229.simul.HITS.e8514_s4162_tid38123456_00_sub0123,"
        "mc23_13p6TeV.601229.simul.log.e8514_s4162_tid38123456_00_sub0124",
        "destinationDBlockToken": "dst:CERN-PROD_DATADISK,dst:CERN-PROD_DATADISK",
        "ddmEndPointOut": "CERN-PROD_DATADISK,CERN-PROD_DATADISK",
        "fileDestinationSE": "CERN-PROD,CERN-PROD",
        "maxCpuCount": 86400,
        "maxDiskCount": 20000,
        "minRamCount": 16000,
        "maxWalltime": 86400,
        "nSent": 0,
        "cloud": "CERN",
        "nucleus": "CERN-PROD",
        "sourceSite": "NULL",
        "transferType": "NULL",
    }


def make_jobspec() -> JobSpec:
    """A job fetched for queue CERN-PROD_MCORE whose input is being prepared."""
    job = JobSpec()
    job.convert_job_json(sample_job_dict())
    job.computingSite = "CERN-PROD_MCORE"
    job.status = "starting"
    job.subStatus = "preparing"
    job.creationTime = T0
    job.stateChangeTime = T0
    job.modificationTime = T0 + datetime.timedelta(seconds=5)
    job.preparatorTime = T0 + datetime.timedelta(seconds=5)
    job.hasOutFile = JobSpec.HO_noOutput
    job.configID = 3
    job.zipPerMB = 1024
    job.jobAttributes = {}
    for lfn, attrs in job.get_input_file_attributes().items():
        f = FileSpec()
        f.fileID = 101
        f.PandaID = job.PandaID
        f.taskID = job.taskID
        f.lfn = lfn
        f.fileType = "input"
        f.status = "preparing"
        f.fsize = attrs["fsize"]
        f.chksum = attrs["checksum"]
        f.scope = attrs["scope"]
        f.endpoint = attrs["endpoint"]
        f.groupID = "transfer-7f3a"
        f.groupStatus = "triggered"
        f.groupUpdateTime = T0 + datetime.timedelta(seconds=5)
        f.modificationTime = T0
        job.add_file(f)
    job.reset_changed_list()
    for f in job.inFiles:
        f.reset_changed_list()
    return job


def make_workspec() -> WorkSpec:
    """The worker submitted to run the job (one job per worker)."""
    work = WorkSpec()
    work.workerID = 4217
    work.mapType = WorkSpec.MT_OneToOne
    work.queueName = "CERN-PROD_MCORE"
    work.computingSite = "CERN-PROD_MCORE"
    work.computingElement = "ce503.cern.ch"
    work.submissionHost = "aipanda183.cern.ch,aipanda183.cern.ch:19618"
    work.harvesterHost = "aipanda183.cern.ch"
    work.batchID = "1877342.0"
    work.hasJob = 1
    work.nJobs = 1
    work.nCore = 8
    work.minRamCount = 16000
    work.maxDiskCount = 20000
    work.maxWalltime = 86400
    work.jobType = "managed"
    work.resourceType = "MCORE"
    work.pilotType = "PR"
    work.configID = 3
    work.syncLevel = None
    work.eventsRequest = WorkSpec.EV_noEvents
    work.accessPoint = "/data/harvester/workdir/${_workerID_3.2}/${workerID}"
    work.creationTime = T0 + datetime.timedelta(minutes=1)
    work.submitTime = T0 + datetime.timedelta(minutes=1, seconds=2)
    work.modificationTime = T0 + datetime.timedelta(minutes=1, seconds=2)
    work.status = WorkSpec.ST_submitted
    work.workParams = {"requestedCores": 8, "submittedAt": T0 + datetime.timedelta(minutes=1, seconds=2)}
    work.workAttributes = {"batchLog": "https://aipanda183.cern.ch/condor_logs/4217.log"}
    work.startTime = T0 + datetime.timedelta(minutes=3)
    work.set_status(WorkSpec.ST_running)
    # set_status asked for propagation with a "now"-based time; keep the sample reproducible
    work.lastUpdate = T0
    work.get_access_point()
    work.reset_changed_list()
    return work


def main(argv: list[str]) -> int:
    out_dir = Path(argv[1]) if len(argv) > 1 else REPO / "examples"
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, spec in (("jobspec.pickle", make_jobspec()), ("workspec.pickle", make_workspec())):
        path = out_dir / name
        with open(path, "wb") as f:
            pickle.dump(spec, f, protocol=4)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
