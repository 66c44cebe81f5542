"""AuxExtractor: the auxiliary inputs of a job (transformation, sandbox, container image)."""

from __future__ import annotations

import re
from typing import Any

from .base_extractor import BaseExtractor

_SOURCE_URL = re.compile(r" --sourceURL\s+(\S+)")
_USER_SANDBOX = re.compile(r"-a\s+(\S+)")  # analysis jobs: the user's sandbox
_PROD_SANDBOX = re.compile(r"-i\s+(\S+)")  # other jobs


class AuxExtractor(BaseExtractor):
    """Finds URLs of auxiliary inputs in the job parameters.

    - ``transformation`` when it is a URL (``http...``);
    - with ``--sourceURL <url>`` in ``jobPars`` (also stored as ``jobParams["sourceURL"]``): the
      sandbox ``<url>/cache/<file>``, ``<file>`` from ``-a <file>`` for ``prodSourceLabel`` "user"
      jobs, else from ``-i <file>``;
    - ``container_name``, prefixed by ``containerPrefix`` (a plugin key) unless it starts with it.
    """

    def __init__(self, **kwarg: Any) -> None:
        self.containerPrefix: str | None = None
        BaseExtractor.__init__(self, **kwarg)

    def get_aux_inputs(self, jobspec: Any) -> dict[str, dict]:
        """{lfn: {scope, INTERNAL_FileType, INTERNAL_URL}} of the job's auxiliary inputs."""
        params = jobspec.jobParams
        job_pars = params.get("jobPars") or ""
        urls: list[str] = []
        transformation = params.get("transformation")
        if transformation is not None and transformation.startswith("http"):
            urls.append(transformation)
        source = _SOURCE_URL.search(job_pars)
        if source is not None:
            source_url = source.group(1)
            params["sourceURL"] = source_url
            pattern = _USER_SANDBOX if params.get("prodSourceLabel") == "user" else _PROD_SANDBOX
            sandbox = pattern.search(job_pars)
            if sandbox is not None:
                urls.append(f"{source_url}/cache/{sandbox.group(1)}")
        if "container_name" in params:
            image = params["container_name"]
            if self.containerPrefix is not None and not image.startswith(self.containerPrefix):
                image = self.containerPrefix + image
            urls.append(image)
        return self.make_aux_inputs(urls)
