"""PanDA's job secrets: never in the DB row, one 0600 file per job in a 0700 directory, back in the
description for the pilot, removed with the job (and orphans an hour old pruned)."""

from __future__ import annotations

import json
import os
import stat
import time

from pandaharvester.harvestercore import job_secrets
from pandaharvester.harvestercore.job_spec import JobSpec
from test_db_fixtures import db_engine, db_home, db_overrides, _module_mariadb, proxy  # noqa: F401

SECRETS = {"MY_TOKEN": "s3cr3t-value-of-the-user"}


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _job(panda_id: int, secrets=None) -> JobSpec:
    data = {"PandaID": panda_id, "taskID": "7", "jobsetID": "8", "attemptNr": 1, "currentPriority": 10,
            "jobPars": "--x", "logFile": f"log.{panda_id}.tgz", "logGUID": "g", "outFiles": f"log.{panda_id}.tgz"}
    if secrets is not None:
        data["secrets"] = json.dumps(secrets)
    job = JobSpec()
    job.convert_job_json(data)
    job.computingSite, job.status, job.subStatus = "Q1", "starting", "fetched"
    return job


def test_secrets_stored_beside_the_db_and_back_in_the_description(proxy, db_home):  # noqa: F811
    old = os.umask(0o022)
    try:
        assert proxy.insert_jobs([_job(71, SECRETS), _job(72)])
    finally:
        os.umask(old)
    directory = job_secrets.secrets_dir()
    assert directory == str(db_home / "var/lib/harvester/job_secrets")
    assert _mode(directory) == 0o700 and _mode(os.path.join(directory, "71.json")) == 0o600
    assert job_secrets.stored_ids() == [71]  # no file for a job without secrets
    rows = proxy.execute("SELECT jobParams FROM job_table WHERE PandaID=71")
    assert "s3cr3t" not in str(rows)
    job = proxy.get_job(71)
    assert "secrets" not in job.jobParams
    assert job.get_job_params(strip=True)["secrets"] == SECRETS
    assert "secrets" not in proxy.get_job(72).get_job_params(strip=False)
    # inserted again (the same PandaID): still there
    assert proxy.insert_jobs([_job(71, SECRETS)]) and job_secrets.load(71) == SECRETS


def test_secrets_removed_with_the_job_and_orphans_pruned(proxy, db_home):  # noqa: F811
    assert proxy.insert_jobs([_job(81, SECRETS)])
    proxy.execute("UPDATE job_table SET subStatus='done', propagatorTime=NULL, modificationTime=:t "
                  "WHERE PandaID=81", {":t": _long_ago()})
    assert proxy.delete_old_jobs(1)
    assert proxy.get_job(81) is None and job_secrets.load(81) is None
    # secrets of a job that never reached the DB: kept for an hour (an insert may be under way), then pruned
    job_secrets.save({82: SECRETS, 83: SECRETS})
    assert proxy.delete_orphaned_job_info() and sorted(job_secrets.stored_ids()) == [82, 83]
    hour_ago = time.time() - 3700
    os.utime(os.path.join(job_secrets.secrets_dir(), "82.json"), (hour_ago, hour_ago))
    assert proxy.delete_orphaned_job_info() and job_secrets.stored_ids() == [83]


def test_an_unwritable_store_is_an_error_naming_the_jobs(fresh_home, tmp_path, caplog):
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("")
    fresh_home({"db": {"jobSecretsDir": str(blocker / "sub")}})
    assert job_secrets.save({91: SECRETS}) == [91]
    assert "PandaID=91" in caplog.text and "jobSecretsDir" in caplog.text and "s3cr3t" not in caplog.text


def _long_ago():
    import datetime

    return datetime.datetime(2000, 1, 1)
