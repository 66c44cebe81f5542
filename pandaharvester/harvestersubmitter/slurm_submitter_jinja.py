"""``SlurmSubmitterJinja``: ``SlurmSubmitter`` with a Jinja2 template (``pip install pandaharvester[jinja]``).

The template sees every placeholder of ``SlurmSubmitter`` as a variable (``{{ nCorePerNode }}``,
``{{ accessPoint }}``, ...), plus ``workspec`` (the WorkSpec) and ``jobspecs`` (its JobSpecs), so
``{% for job in jobspecs %}`` loops work. An undefined name is an error naming the template,
not an empty string.
"""

from __future__ import annotations

from typing import Any

from .slurm_submitter import SlurmSubmitter


class SlurmSubmitterJinja(SlurmSubmitter):
    """Renders ``templateFile`` with Jinja2."""

    def render(self, template: str, placeholders: dict[str, Any], workspec: Any) -> str:
        try:
            import jinja2
        except ImportError as exc:
            raise ValueError("SlurmSubmitterJinja needs Jinja2: pip install 'pandaharvester[jinja]'") from exc
        try:
            compiled = jinja2.Template(template, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
            return compiled.render(**placeholders, workspec=workspec, jobspecs=workspec.get_jobspec_list() or [])
        except jinja2.TemplateError as exc:
            raise ValueError(f"Jinja2 error in {self.templateFile}: {type(exc).__name__}: {exc}") from exc
