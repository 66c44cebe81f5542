"""Reading panda_harvester.cfg: where it lives, how its sources are merged, how values convert.

Sources, later ones winning key by key:

1. the cfg file: ``$HARVESTER_CONFIG_FILE`` when set (it must exist), else the first of
   ``$PANDA_HOME/etc/panda/panda_harvester.cfg`` and ``/etc/panda/panda_harvester.cfg``;
2. the instance config downloaded from ``$HARVESTER_INSTANCE_CONFIG_URL`` (file://, http://,
   https://), which overrides and extends the file (it may also stand alone);
3. the JSON configmap ``$PANDA_HOME/etc/configmap/panda_harvester_configmap.json``,
   ``{section: {key: value}}``, which may add sections.

Raw strings are converted by :func:`convert_value`. Nothing here keeps state: the module API
in ``harvester_config`` calls :func:`load` and keeps the result.
"""

from __future__ import annotations

import ast
import configparser
import contextlib
import json
import os
import re
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from pandaharvester.errors import ConfigError
from pandaharvester.harvesterconfig._section import is_secret_key

CFG_FILE_NAME = "panda_harvester.cfg"
CONFIGMAP_RELPATH = os.path.join("etc", "configmap", "panda_harvester_configmap.json")
ENV_CONFIG_FILE = "HARVESTER_CONFIG_FILE"
ENV_CONFIG_URL = "HARVESTER_INSTANCE_CONFIG_URL"
URL_TIMEOUT = 30.0
MAX_HARVESTER_ID_LENGTH = 50

# ``$$`` (a literal dollar), ``${NAME}`` or ``$NAME``. ``$(TITLE)`` (the FIFO file-name
# placeholder) and a lone ``$`` match none of these and stay as written.
_ENV_RE = re.compile(r"\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
_INT_RE = re.compile(r"[+-]?\d+")
_FLOAT_RE = re.compile(r"[+-]?(?:\d+\.\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]?\d+[eE][+-]?\d+")
_LITERALS = {"True": True, "False": False, "None": None}
# values kept as strings whatever they look like
_VERBATIM_KEYS = {("master", "harvester_id")}


@dataclass
class RawConfig:
    """What :func:`read_sources` found: raw values per section plus provenance."""

    sections: dict[str, dict[str, Any]] = field(default_factory=dict)
    files_read: list[str] = field(default_factory=list)
    searched: list[str] = field(default_factory=list)
    # (section, key) → the source (file, URL, configmap) whose value is in force
    origins: dict[tuple[str, str], str] = field(default_factory=dict)

    def origin(self, section: str, key: str) -> str:
        """Where ``[section] key`` was set (all sources read, if unknown)."""
        return self.origins.get((section, key)) or ", ".join(self.files_read)

    def note_origin(self, parser: configparser.ConfigParser, source: str) -> None:
        """Record ``source`` for every key ``parser`` holds."""
        for section in parser.sections():
            for key in parser.options(section):
                self.origins[(section, key)] = source


def make_parser() -> configparser.ConfigParser:
    """A ConfigParser as the cfg needs it: case-kept keys, no ``%`` interpolation."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    return parser


def candidate_paths(env: Mapping[str, str]) -> list[Path]:
    """Paths searched, in order, for the cfg file when ``HARVESTER_CONFIG_FILE`` is unset."""
    paths = []
    if env.get("PANDA_HOME"):
        paths.append(Path(env["PANDA_HOME"]) / "etc" / "panda" / CFG_FILE_NAME)
    paths.append(Path("/etc/panda") / CFG_FILE_NAME)
    return paths


def find_cfg_file(env: Mapping[str, str]) -> tuple[Path | None, list[str]]:
    """The cfg file to read (or None) and the list of places looked at."""
    explicit = env.get(ENV_CONFIG_FILE)
    if explicit:
        path = Path(explicit).expanduser().absolute()
        if not path.is_file():
            raise ConfigError(f"{ENV_CONFIG_FILE}={explicit} does not name a readable file: "
                              f"fix the path or unset {ENV_CONFIG_FILE} to use $PANDA_HOME/etc/panda/{CFG_FILE_NAME}")
        return path, [str(path)]
    searched = []
    for path in candidate_paths(env):
        searched.append(str(path))
        if path.is_file():
            return path, searched
    return None, searched


def fetch_url(url: str, timeout: float = URL_TIMEOUT) -> str:
    """Download the instance config at ``url`` (file://, http://, https://) as text."""
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme not in ("file", "http", "https"):
        raise ConfigError(f"{ENV_CONFIG_URL}={url}: unsupported URL scheme {scheme!r}: "
                          "use file://, http:// or https://")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (scheme checked)
            data = response.read()
    except urllib.error.HTTPError as exc:
        raise ConfigError(f"failed to download the instance config from {ENV_CONFIG_URL}={url}: "
                          f"HTTP {exc.code} {exc.reason}") from exc
    except (OSError, ValueError) as exc:
        raise ConfigError(f"failed to download the instance config from {ENV_CONFIG_URL}={url}: {exc}") from exc
    return decode_cfg_text(data, f"the instance config from {ENV_CONFIG_URL}={url}")


def decode_cfg_text(data: bytes, source: str) -> str:
    """``data`` as UTF-8 text; else a :class:`ConfigError` naming the line and column of the first bad byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError(f"{source} line {line} column {column}: byte 0x{data[exc.start]:02x} is not UTF-8 text: "
                          "save the file as UTF-8 (or remove the character)") from exc


def syntax_error_line(source: str, exc: configparser.Error) -> str:
    """One line for a configparser error: where (source, line), what, and what to do."""
    if isinstance(exc, configparser.MissingSectionHeaderError):
        return (f"{source} line {exc.lineno}: {exc.line.strip()[:80]!r} comes before any [section] header: "
                f"put it under a section, or remove it")
    if isinstance(exc, configparser.ParsingError):
        lineno, line = exc.errors[0]
        with contextlib.suppress(ValueError, SyntaxError):
            line = repr(str(ast.literal_eval(line)).strip()[:80])  # configparser keeps repr(line)
        more = f" (and {len(exc.errors) - 1} more such lines)" if len(exc.errors) > 1 else ""
        return (f"{source} line {lineno}: {line} is not 'key = value'{more}: fix it, indent it "
                "if it continues the value above, or comment it out with #")
    if isinstance(exc, configparser.DuplicateOptionError):
        return (f"{source} line {exc.lineno}: [{exc.section}] {exc.option} is set twice in [{exc.section}]: "
                "keep only one of them")
    if isinstance(exc, configparser.DuplicateSectionError):
        return (f"{source} line {exc.lineno}: section [{exc.section}] appears twice: merge the two "
                f"[{exc.section}] sections into one")
    return f"{source} is not a valid cfg file: {' '.join(str(exc).split())}"


def _read_configmap(path: Path) -> dict[str, dict[str, Any]]:
    try:
        with open(path, encoding="utf-8") as stream:
            data = json.load(stream)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the configmap {path}: {exc}: fix or remove the file") from exc
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ConfigError(f"the configmap {path} must hold a JSON object {{section: {{key: value}}}}")
    return data


def read_sources(env: Mapping[str, str]) -> RawConfig:
    """Read every source (file, instance URL, configmap) into one raw mapping.

    Raises :class:`ConfigError` when nothing can be read or a source is broken.
    """
    raw = RawConfig()
    parser = make_parser()
    path, raw.searched = find_cfg_file(env)
    if path is not None:
        try:
            with open(path, "rb") as stream:
                text = decode_cfg_text(stream.read(), str(path))
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror or exc}: check the path and its "
                              "permissions") from exc
        try:
            parser.read_string(text, source=str(path))
        except configparser.Error as exc:
            raise ConfigError(syntax_error_line(str(path), exc)) from exc
        raw.files_read.append(str(path))
        raw.note_origin(parser, str(path))
    url = env.get(ENV_CONFIG_URL)
    if url:
        text = fetch_url(url)
        try:
            parser.read_string(text, source=url)
            alone = make_parser()
            alone.read_string(text, source=url)
        except configparser.Error as exc:
            raise ConfigError(syntax_error_line(f"the instance config from {ENV_CONFIG_URL}={url}", exc)) from exc
        raw.files_read.append(url)
        raw.note_origin(alone, url)
    if not raw.files_read:
        raise ConfigError(
            f"no {CFG_FILE_NAME} found; searched: {', '.join(raw.searched)}. "
            f"Set PANDA_HOME so that $PANDA_HOME/etc/panda/{CFG_FILE_NAME} exists, or set "
            f"{ENV_CONFIG_FILE}=/path/to/{CFG_FILE_NAME} (start from etc/panda_harvester.cfg.rpmnew)")
    for section in parser.sections():
        raw.sections[section] = dict(parser.items(section, raw=True))
    if env.get("PANDA_HOME"):
        cm_path = Path(env["PANDA_HOME"]) / CONFIGMAP_RELPATH
        if cm_path.is_file():
            for section, values in _read_configmap(cm_path).items():
                raw.sections.setdefault(section, {}).update(values)
                raw.origins.update({(section, key): str(cm_path) for key in values})
            raw.files_read.append(str(cm_path))
    return raw


def short_hostname() -> str:
    """This host's name without the domain (what ``$HOSTNAME`` means in the cfg)."""
    return socket.gethostname().split(".")[0]


def expand_env(text: str, env: Mapping[str, str], section: str, key: str, secret: bool | None = None) -> str:
    """Replace ``${VAR}``/``$VAR`` by environment values; ``$$`` gives a literal ``$``.

    ``$HOSTNAME`` is the short host name (shells rarely export it). A variable that is not
    set raises :class:`ConfigError` naming the section, the key and the variable.

    A secret (``secret``, by default: ``key`` names a password, token, ...) is taken as written
    unless the whole value is one reference (``password = $DB_PASSWORD``): a ``$`` inside a
    password is part of it, and an error must not quote a piece of it.
    """
    if "$" not in text:
        return text
    if secret is None:
        secret = is_secret_key(key)
    if secret:
        whole = _ENV_RE.fullmatch(text)
        if whole is None or whole.group(1):
            return text

    def substitute(match: re.Match[str]) -> str:
        if match.group(1):
            return "$"
        name = match.group(2) or match.group(3)
        if name == "HOSTNAME":
            return short_hostname()
        if name not in env:
            raise ConfigError(f"[{section}] {key} uses the environment variable ${{{name}}} which is not set: "
                              f"export {name} before starting harvester, or write $$ for a literal '$'")
        return env[name]

    return _ENV_RE.sub(substitute, text)


def _expand_nested(obj: Any, env: Mapping[str, str], section: str, key: str, secret: bool = False) -> Any:
    """:func:`expand_env` on every string inside a JSON value; keys such as "password" are secrets."""
    secret = secret or is_secret_key(key)
    if isinstance(obj, str):
        return expand_env(obj, env, section, key, secret)
    if isinstance(obj, list):
        return [_expand_nested(item, env, section, key, secret) for item in obj]
    if isinstance(obj, dict):
        return {k: _expand_nested(v, env, section, key, secret or is_secret_key(str(k))) for k, v in obj.items()}
    return obj


def _looks_like_json(text: str) -> bool:
    stripped = text.strip()
    return (stripped[:1], stripped[-1:]) in (("[", "]"), ("{", "}"))


def convert_scalar(text: str) -> Any:
    """``True``/``False``/``None`` → bool/None, integers → int, decimals → float, else the text."""
    if text in _LITERALS:
        return _LITERALS[text]
    if _INT_RE.fullmatch(text):
        return int(text)
    if _FLOAT_RE.fullmatch(text):
        return float(text)
    return text


def convert_value(section: str, key: str, value: Any, env: Mapping[str, str]) -> Any:
    """Turn one raw value into what ``harvester_config.<section>.<key>`` returns.

    Strings: environment variables expanded; a multi-line value that is a JSON list/object is
    parsed (strings inside it expanded; invalid JSON is an error); any other multi-line value
    becomes the list of its stripped non-empty lines; a one-line JSON list/object is parsed
    when it is valid JSON; any other one-line value goes through :func:`convert_scalar`.
    Non-string values (from the JSON configmap) keep their type, strings inside expanded.
    """
    if not isinstance(value, str):
        return _expand_nested(value, env, section, key)
    if (section, key) in _VERBATIM_KEYS:
        return expand_env(value, env, section, key)
    if "\n" in value:
        if _looks_like_json(value):
            try:
                parsed = json.loads(value)
            except ValueError as exc:
                raise ConfigError(f"[{section}] {key} looks like JSON but does not parse: {exc}: "
                                  f"fix the JSON (continuation lines must be indented)") from exc
            return _expand_nested(parsed, env, section, key)
        return [expand_env(line.strip(), env, section, key) for line in value.split("\n") if line.strip()]
    if _looks_like_json(value):
        try:
            return _expand_nested(json.loads(value), env, section, key)
        except ValueError:
            pass  # a one-line value such as "[abc]" that is not JSON stays text
    return convert_scalar(expand_env(value, env, section, key))


def validate_harvester_id(value: Any, sources: str) -> None:
    """``[master] harvester_id``: non-empty, at most 50 characters, no whitespace."""
    text = str(value)
    problem = None
    if not text:
        problem = "is empty"
    elif len(text) > MAX_HARVESTER_ID_LENGTH:
        problem = f"is {len(text)} characters long (at most {MAX_HARVESTER_ID_LENGTH} allowed)"
    elif any(ch.isspace() for ch in text):
        problem = "contains whitespace"
    if problem:
        raise ConfigError(f"[master] harvester_id = {text!r} in {sources} {problem}: set it to the id registered "
                          f"in the PanDA server (≤ {MAX_HARVESTER_ID_LENGTH} characters, no spaces)")


def load(env: Mapping[str, str]) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Read all sources and convert every value: ``({section: {key: value}}, files_read)``."""
    values, files_read, _origins = load_with_origins(env)
    return values, files_read


def load_with_origins(env: Mapping[str, str]) -> tuple[dict[str, dict[str, Any]], list[str], dict[tuple[str, str], str]]:
    """:func:`load` plus, per ``(section, key)``, the source (file, URL, configmap) whose value is in force."""
    raw = read_sources(env)
    converted: dict[str, dict[str, Any]] = {}
    for section, values in raw.sections.items():
        converted[section] = {}
        for key, value in values.items():
            try:
                converted[section][key] = convert_value(section, key, value, env)
            except ConfigError as exc:
                raise ConfigError(f"{raw.origin(section, key)}: {exc}") from exc
    master = converted.get("master", {})
    if "harvester_id" in master:
        validate_harvester_id(master["harvester_id"], raw.origin("master", "harvester_id"))
    origins = {(section, key): raw.origin(section, key) for section, values in converted.items() for key in values}
    return converted, raw.files_read, origins
