"""The job description the messenger writes carries PanDA's secrets: 0600 in a 0700 access point."""

from __future__ import annotations

import json
import os
import stat
import tarfile

import pytest

from pandaharvester.harvestercore.work_spec import WorkSpec
from pandaharvester.harvestermessenger.base_messenger import payload_file_names
from pandaharvester.harvestermessenger.shared_file_messenger import SharedFileMessenger

from test_messenger import make_job, make_worker

SECRETS = {"MY_TOKEN": "secret-value-42"}


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture(autouse=True)
def usual_umask():
    old = os.umask(0o022)  # what a site's shell usually has: files 0644, directories 0755
    yield
    os.umask(old)


def job_with_secrets(panda_id: int):
    job = make_job(panda_id, secrets=json.dumps(SECRETS))
    assert job.secrets == SECRETS and "secrets" not in job.jobParams
    return job


@pytest.mark.parametrize("spec_format", ["json", "cgi"])
def test_job_description_is_owner_only_in_an_owner_only_access_point(tmp_path, spec_format):
    messenger = SharedFileMessenger(jobSpecFileFormat=spec_format)
    job = job_with_secrets(9101)
    worker = make_worker(tmp_path, 301, [job])
    assert messenger.setup_access_points([worker])
    assert messenger.feed_jobs(worker, [job])
    ap = worker.get_access_point()
    spec_path = os.path.join(ap, messenger.jobSpecFileName)
    assert mode(ap) == 0o700
    assert mode(spec_path) == 0o600
    assert "secret-value-42" in open(spec_path).read()  # the worker (same user) gets them
    # fed again over a file left world-readable: still owner only
    os.chmod(spec_path, 0o644)
    assert messenger.feed_jobs(worker, [job])
    assert mode(spec_path) == 0o600


def test_multijobs_sub_access_points_and_descriptions(tmp_path):
    messenger = SharedFileMessenger()
    jobs = [job_with_secrets(9201), job_with_secrets(9202)]
    worker = make_worker(tmp_path, 302, jobs, WorkSpec.MT_MultiJobs)
    assert messenger.setup_access_points([worker]) and messenger.feed_jobs(worker, jobs)
    assert mode(worker.get_access_point()) == 0o700
    for job in jobs:
        sub = messenger.get_access_point(worker, job.PandaID)
        assert mode(sub) == 0o700 and mode(os.path.join(sub, messenger.jobSpecFileName)) == 0o600


def test_the_job_description_stays_out_of_the_log_tarball(tmp_path):
    messenger = SharedFileMessenger()
    job = job_with_secrets(9301)
    worker = make_worker(tmp_path, 303, [job])
    assert messenger.setup_access_points([worker]) and messenger.feed_jobs(worker, [job])
    ap = worker.get_access_point()
    with open(os.path.join(ap, "payload.log"), "w") as stream:
        stream.write("payload ran\n")
    assert messenger.post_processing(worker, [job], worker.mapType) is True
    with tarfile.open(os.path.join(ap, job.get_logfile_info()["lfn"])) as tar:
        names = tar.getnames()
    assert "payload.log" in names and payload_file_names()["jobSpecFile"] not in names
    assert messenger.jobSpecFileName not in names
