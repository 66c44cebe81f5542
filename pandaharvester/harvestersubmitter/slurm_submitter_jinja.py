"""``SlurmSubmitterJinja``: ``SlurmSubmitter`` with a Jinja2 template (``pip install pandaharvester[jinja]``).

The template sees every placeholder of ``SlurmSubmitter`` as a variable (``{{ nCorePerNode }}``,
``{{ accessPoint }}``, ...), plus ``workspec`` (the WorkSpec) and ``jobspecs`` (its JobSpecs), so
``{% for job in jobspecs %}`` loops work. An undefined name is an error naming the template,
not an empty string.

Shell safety: an expression whose value has shell syntax or a control character
(``$ ` ; | & < > ( ) ' " \\``, newline, ...) is refused (the worker is not submitted, the
error names the value) unless it goes through the ``shquote`` filter (``{{ x | shquote }}``:
``shlex.quote``, for use outside quotes) or is a ``templateParams`` value (the site's own shell code).
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from .script_quoting import UnsafeValue
from .slurm_submitter import SlurmSubmitter

_UNSAFE = re.compile(r"[$`;|&<>()'\"\\\x00-\x08\x0a-\x1f\x7f]")


class _Vetted(str):
    """Text the template may write as it is: shell-quoted, or the site's own templateParams."""


def _finalize(value: Any) -> Any:
    if isinstance(value, _Vetted) or value is None or isinstance(value, (bool, int, float)):
        return value
    text = str(value)
    if _UNSAFE.search(text):
        raise UnsafeValue(f"the value {text[:200]!r} has shell syntax or a control character and is used "
                          "unquoted in the Jinja template: write {{ ... | shquote }}, or fix the value")
    return value


class SlurmSubmitterJinja(SlurmSubmitter):
    """Renders ``templateFile`` with Jinja2."""

    def render(self, template: str, placeholders: dict[str, Any], workspec: Any) -> str:
        try:
            import jinja2
        except ImportError as exc:
            raise ValueError("SlurmSubmitterJinja needs Jinja2: pip install 'pandaharvester[jinja]'") from exc
        values = dict(placeholders)
        for name in self.templateParams or {}:
            if isinstance(values.get(name), str):
                values[name] = _Vetted(values[name])
        try:
            env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                                     finalize=_finalize)
            env.filters["shquote"] = lambda value: _Vetted(shlex.quote(str(value)))
            compiled = env.from_string(template)
            return compiled.render(**values, workspec=workspec, jobspecs=workspec.get_jobspec_list() or [])
        except jinja2.TemplateError as exc:
            raise ValueError(f"Jinja2 error in {self.templateFile}: {type(exc).__name__}: {exc}") from exc
