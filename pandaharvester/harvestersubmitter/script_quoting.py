r"""Placeholders in a batch script template, filled in so that bash and sbatch read each value literally.

:func:`render_script` replaces ``{name}`` / ``{name:spec}`` (``{{``/``}}``: literal braces; any
other ``{...}``, e.g. shell's ``${VAR:-x}``, is left alone) and escapes each value for the place
in the script it lands in, so that a value holding shell syntax (``$(touch pwned)``, backticks,
``;``, ``|``, quotes) reaches the job as the same characters, never as code:

- outside quotes (and inside ``$(...)`` or backticks): ``shlex.quote`` when the value has a
  character the shell treats specially or a blank (a plain value -- letters, digits,
  ``/._-:=@%+,`` -- is written as it is, as before); inside backticks also ``\`` before ``\``, backtick, ``$``;
- inside double quotes: ``\\`` before ``$``, backtick, ``"`` and ``\\``;
- inside single quotes: ``'`` written as ``'\\''``;
- in a here-document: ``\\`` before ``$``, backtick and ``\\`` (nothing for a quoted delimiter, ``<<'EOF'``);
- on an ``#SBATCH`` line (parsed by sbatch, not bash): double-quoted for sbatch when it has
  blanks, quotes or backslashes (``\\"`` and ``\\\\`` inside sbatch's double quotes);
- in any other comment: as it is.

A value with a control character (newline, carriage return, NUL, ...) is refused with a
ValueError naming the placeholder: a newline would end an ``#SBATCH`` line or a comment and start
a command. Names in ``code_names`` (the queue config's ``templateParams``: shell code the site
wrote, such as a pilot command) are inserted as they are.
"""

from __future__ import annotations

import re
import shlex
from typing import Any, Iterable

class UnsafeValue(ValueError):
    """A placeholder's value cannot be written into a batch script safely (the worker is not submitted)."""


TOKEN = re.compile(r"\{\{|\}\}|\{(\w+)(?::([^{}]*))?\}")
_PLAIN = re.compile(r"[\w@%+=:,./-]*")  # written as is outside quotes
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_HEREDOC = re.compile(r"<<(-?)[ \t]*(['\"]?)([A-Za-z_]\w*)\2")
_WORD_START = " \t\n;&|()"

# contexts
BARE, DOUBLE, SINGLE, COMMENT, SBATCH, SBATCH_DOUBLE, SBATCH_SINGLE, HEREDOC, HEREDOC_LITERAL, SUBST, TICK = range(11)


def escape(value: str, context: int) -> str:
    """``value`` written so that the shell (or sbatch) reads it literally in ``context``."""
    if context in (BARE, SUBST, TICK):
        if _PLAIN.fullmatch(value):
            return value
        quoted = shlex.quote(value)
        # inside backticks, \, ` and $ are read once before the command runs
        return re.sub(r"([\\`$])", r"\\\1", quoted) if context == TICK else quoted
    if context == DOUBLE:
        return re.sub(r'([$`"\\])', r"\\\1", value)
    if context == SINGLE:
        return value.replace("'", "'\\''")
    if context == HEREDOC:
        return re.sub(r"([$`\\])", r"\\\1", value)
    if context == SBATCH:
        return value if re.fullmatch(r"[^\s'\"\\]*", value) else '"' + re.sub(r'(["\\])', r"\\\1", value) + '"'
    if context == SBATCH_DOUBLE:
        return re.sub(r'(["\\])', r"\\\1", value)
    if context == SBATCH_SINGLE and "'" in value:
        raise UnsafeValue("contains ' inside an #SBATCH line's single quotes (sbatch has no escape there): "
                         "use double quotes around the placeholder")
    return value  # COMMENT, HEREDOC_LITERAL, SBATCH_SINGLE


class _Scanner:
    """Follows bash's quoting through the template, one character at a time."""

    def __init__(self) -> None:
        self.stack = [BARE]
        self.line_start = True
        self.heredocs: list[tuple[str, bool, bool]] = []  # pending: (delimiter, literal, strip tabs)
        self.body: tuple[str, bool, bool] | None = None  # the here-document being read

    @property
    def context(self) -> int:
        if self.body is not None:
            return HEREDOC_LITERAL if self.body[1] else HEREDOC
        return self.stack[-1]

    def feed(self, text: str, i: int) -> int:
        """Consume the template's text at ``i`` (not a placeholder); the next index."""
        c = text[i]
        if self.body is not None:
            return self._feed_body(text, i)
        top = self.stack[-1]
        if c == "\n":
            if top in (COMMENT, SBATCH, SBATCH_DOUBLE, SBATCH_SINGLE):
                self.stack.pop()
            if self.heredocs:
                self.body = self.heredocs.pop(0)
            self.line_start = True
            return i + 1
        at_word_start = self.line_start or (i > 0 and text[i - 1] in _WORD_START)
        self.line_start = False
        if top in (COMMENT, SBATCH_SINGLE) and not (top == SBATCH_SINGLE and c == "'"):
            return i + 1
        if top in (SBATCH, SBATCH_DOUBLE, SBATCH_SINGLE):
            return self._feed_sbatch(text, i, top)
        if top == SINGLE:
            if c == "'":
                self.stack.pop()
            return i + 1
        if c == "\\":
            return i + 2
        if c == "`":
            if top == TICK:
                self.stack.pop()
            else:
                self.stack.append(TICK)
            return i + 1
        if c == "$" and text.startswith("$(", i):
            self.stack.append(SUBST)
            return i + 2
        if top == DOUBLE:
            if c == '"':
                self.stack.pop()
            return i + 1
        # BARE, SUBST, TICK
        if c == ")" and top == SUBST:
            self.stack.pop()
        elif c == "(" and top == SUBST:
            self.stack.append(SUBST)
        elif c == '"':
            self.stack.append(DOUBLE)
        elif c == "'":
            self.stack.append(SINGLE)
        elif c == "#" and at_word_start:
            sbatch = top == BARE and text.startswith("#SBATCH", i) and (i == 0 or text[i - 1] == "\n")
            self.stack.append(SBATCH if sbatch else COMMENT)
        elif c == "<":
            match = _HEREDOC.match(text, i)
            if match:
                self.heredocs.append((match.group(3), bool(match.group(2)), bool(match.group(1))))
                return match.end()
        return i + 1

    def _feed_sbatch(self, text: str, i: int, top: int) -> int:
        c = text[i]
        if top == SBATCH_DOUBLE:
            if c == "\\":
                return i + 2
            if c == '"':
                self.stack.pop()
        elif top == SBATCH_SINGLE:
            self.stack.pop()  # the closing quote
        elif c == '"':
            self.stack.append(SBATCH_DOUBLE)
        elif c == "'":
            self.stack.append(SBATCH_SINGLE)
        return i + 1

    def _feed_body(self, text: str, i: int) -> int:
        """Inside a here-document: a whole line equal to the delimiter ends it."""
        delimiter, _literal, strip_tabs = self.body  # type: ignore[misc]
        if self.line_start:
            end = text.find("\n", i)
            line = text[i:] if end < 0 else text[i:end]
            if (line.lstrip("\t") if strip_tabs else line) == delimiter:
                self.body = self.heredocs.pop(0) if self.heredocs else None
                return len(text) if end < 0 else end + 1
        self.line_start = text[i] == "\n"
        return i + 1


def render_script(template: str, placeholders: dict[str, Any], code_names: Iterable[str] = ()) -> str:
    """The template with its placeholders filled in and escaped (module docstring)."""
    code = set(code_names)
    scanner = _Scanner()
    out: list[str] = []
    i = 0
    while i < len(template):
        match = TOKEN.match(template, i)
        if match is None:
            j = scanner.feed(template, i)
            out.append(template[i:j])
            i = j
            continue
        text = match.group(0)
        name, spec = match.group(1), match.group(2)
        if text in ("{{", "}}"):
            out.append(text[0])
        elif name not in placeholders:
            out.append(text)
        elif name in code:
            out.append(format(placeholders[name], spec or ""))
        else:
            value = format(placeholders[name], spec or "")
            if _CONTROL.search(value):
                raise UnsafeValue(f"placeholder {name}={value!r} contains a control character (newline, ...): "
                                 "it cannot go into a batch script; fix the value")
            try:
                out.append(escape(value, scanner.context))
            except UnsafeValue as exc:
                raise UnsafeValue(f"placeholder {name}={value!r} {exc}") from None
        scanner.line_start = False
        i = match.end()
    return "".join(out)
