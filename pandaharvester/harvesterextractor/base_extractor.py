"""Base class of extractors: find auxiliary inputs (e.g. container images) of a job."""

from __future__ import annotations

from typing import Any

from pandaharvester.harvestercore.plugin_base import PluginBase

AUX_INPUT = "aux_input"


class BaseExtractor(PluginBase):
    """Subclasses implement ``get_aux_inputs(jobspec)`` with the help of :meth:`make_aux_inputs`."""

    def __init__(self, **kwarg: Any) -> None:
        PluginBase.__init__(self, **kwarg)

    @staticmethod
    def make_aux_inputs(url_list: list[str]) -> dict[str, dict]:
        """{lfn: {scope, INTERNAL_FileType, INTERNAL_URL}} for URLs (lfn = last path element)."""
        try:
            from pandaharvester.harvestercore.file_spec import FileSpec

            file_type = FileSpec.AUX_INPUT
        except (ImportError, AttributeError):
            file_type = AUX_INPUT
        return {url.split("/")[-1]: {"scope": "aux_input", "INTERNAL_FileType": file_type, "INTERNAL_URL": url}
                for url in url_list}

    def get_aux_inputs(self, jobspec: Any) -> dict[str, dict]:
        """Auxiliary inputs of ``jobspec`` (none by default)."""
        return {}
