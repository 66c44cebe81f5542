"""Job parameters of GitLab-pipeline workers (the original's ``harvestermisc.gitlab_utils``).

The GitLab plugins keep a worker's job parameters (which include the job's ``secrets``) in a
JSON file in the worker's access point; the file is written 0600.
"""

from __future__ import annotations

import json
import os
from typing import Any

job_params_file = "__job_params__"


def make_file_path(work_spec: Any) -> str:
    """``<access point>/__job_params__`` of a worker."""
    return os.path.join(work_spec.get_access_point(), job_params_file)


def get_job_params(work_spec: Any) -> Any:
    """The job parameters stored for ``work_spec``."""
    with open(make_file_path(work_spec)) as stream:
        return json.load(stream)


def store_job_params(work_spec: Any, params: Any) -> None:
    """Store ``params`` for ``work_spec`` (owner-only: they carry the job's secrets)."""
    path = make_file_path(work_spec)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as stream:
        json.dump(params, stream)
