"""Start-up check: credential files the cfg names must be readable by their owner only.

Checked (when the file exists and is a regular file; a missing one is reported by whoever reads it):

- ``[pandacon] key_file``, the token file of ``auth_token = file:<path>``, ``multihost_auth_config``
  and the key/token files each of its hosts names;
- ``[pandacon] cert_file`` and the cert files above when they hold a private key (a proxy);
- ``[credmanager] inCertFile`` / ``outCertFile`` (and ``certFile``, and the ``inCertFile``,
  ``outCertFile``, ``key`` and ``cert`` of each ``pluginConfigs`` entry) when they hold a
  private key;
- the cfg file itself when it holds a password or token in clear (``[db] password``, ...):
  it must not be readable by others (group may read it: sites often share it with an admin group).

A file readable or writable by group or others makes one line: where it is set, the key, the
path, its mode and ``run chmod 600 <path>``; :func:`master_cli.check_config` stops the start.
"""

from __future__ import annotations

import json
import os
import stat
from typing import Any, Iterator

from pandaharvester.harvesterconfig._section import is_secret_key

_PLACEHOLDERS = ("", "FIXME", "None")
_KEY_MARK = b"PRIVATE KEY-----"


def _holds_private_key(path: str) -> bool:
    try:
        with open(path, "rb") as stream:
            return _KEY_MARK in stream.read(1 << 20)
    except OSError:
        return False


def _regular_mode(path: str) -> int | None:
    """Permission bits of a regular file, None for anything else (missing, /dev/null, a directory)."""
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None
    return stat.S_IMODE(info.st_mode) if stat.S_ISREG(info.st_mode) else None


def _items(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value if str(v).strip()]
    text = str(value).strip()
    if "," in text and "\n" not in text:
        return [v.strip() for v in text.split(",") if v.strip()]
    return [v.strip() for v in text.splitlines() if v.strip()]


def _token_path(spec: Any) -> str | None:
    text = str(spec or "").strip()
    return text[len("file:"):].strip() or None if text.startswith("file:") else None


def _pandacon_files(section: dict[str, Any]) -> Iterator[tuple[str, str, bool]]:
    """``(key, path, always)``: ``always`` False = a credential only when it holds a private key."""
    key_file = str(section.get("key_file") or "").strip()
    cert_file = str(section.get("cert_file") or "").strip()
    if key_file and key_file not in _PLACEHOLDERS:
        yield "key_file", key_file, True
    if cert_file and cert_file not in _PLACEHOLDERS:
        yield "cert_file", cert_file, False
    token = _token_path(section.get("auth_token"))
    if token:
        yield "auth_token", token, True
    multihost = str(section.get("multihost_auth_config") or "").strip()
    if multihost and multihost not in _PLACEHOLDERS:
        yield "multihost_auth_config", multihost, True
        try:
            with open(multihost) as stream:
                hosts = json.load(stream)
        except (OSError, ValueError):
            hosts = {}
        for host, values in (hosts.items() if isinstance(hosts, dict) else ()):
            if not isinstance(values, dict):
                continue
            for name, always in (("key_file", True), ("cert_file", False)):
                if values.get(name):
                    yield f"multihost_auth_config {host} {name}", str(values[name]), always
            token = _token_path(values.get("auth_token"))
            if token:
                yield f"multihost_auth_config {host} auth_token", token, True


def _credmanager_files(section: dict[str, Any]) -> Iterator[tuple[str, str, bool]]:
    for name in ("inCertFile", "certFile", "outCertFile"):
        for path in _items(section.get(name)):
            yield name, path, False
    configs = section.get("pluginConfigs")
    if isinstance(configs, str):
        try:
            configs = json.loads(configs)
        except ValueError:
            configs = None
    for i, entry in enumerate(configs if isinstance(configs, list) else []):
        if not isinstance(entry, dict):
            continue
        for name in ("inCertFile", "outCertFile", "cert", "key"):
            if entry.get(name):
                yield f"pluginConfigs[{i}] {name}", str(entry[name]), name == "key"


def problems(config: Any = None) -> list[str]:
    """One line per credential file readable or writable by group or others (see the module docstring)."""
    if config is None:
        from pandaharvester.harvesterconfig import harvester_config as config  # type: ignore[no-redef]
    lines: list[str] = []
    seen: set[str] = set()
    sections = config.sections()

    def values(name: str) -> dict[str, Any]:
        return dict(config.get_section(name).items()) if name in sections else {}

    checks = [("pandacon", _pandacon_files(values("pandacon"))),
              ("credmanager", _credmanager_files(values("credmanager")))]
    for section, found in checks:
        for key, path, always in found:
            path = os.path.abspath(os.path.expanduser(path))
            mode = _regular_mode(path)
            if mode is None or not mode & 0o077 or path in seen:
                continue
            if not always and not _holds_private_key(path):
                continue  # a public certificate
            seen.add(path)
            where = config.origin_of(section, key.split()[0].split("[")[0])
            lines.append(f"{where} [{section}] {key}: {path} has mode {mode:04o}, readable or writable by group or "
                         f"others; a credential file must be readable by its owner only: run chmod 600 {path}")
    lines += _cfg_file_problems(config, sections)
    return lines


def _cfg_file_problems(config: Any, sections: list[str]) -> list[str]:
    """The cfg file holding a secret in clear must not be readable by others."""
    holders: dict[str, str] = {}
    for section in sections:
        for key, value in config.get_section(section).items():
            if not is_secret_key(key) or isinstance(value, bool) or str(value).strip() in _PLACEHOLDERS:
                continue
            if key == "auth_token" and str(value).strip().startswith("file:"):
                continue
            origin = config.origin_of(section, key)
            if os.path.isfile(origin):
                holders.setdefault(origin, f"[{section}] {key}")
    lines = []
    for path, example in holders.items():
        mode = _regular_mode(path)
        if mode is not None and mode & 0o006:
            lines.append(f"{path} holds {example} in clear and has mode {mode:04o}, readable by others: "
                         f"run chmod 600 {path} (or 640 with a group of admins)")
    return lines
