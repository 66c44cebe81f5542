"""File helpers of the shared-file messenger: atomic writes, tolerant JSON reads, log tarballs.

Atomic writes go through a temporary file in the same directory and ``os.replace``, so a
reader (the worker, or Harvester) never sees half a file. A file carrying secrets (the job
description holds PanDA's ``secrets``) is written :data:`SECRET_FILE_MODE`, and access points
are made :data:`ACCESS_POINT_MODE` (the worker runs as Harvester's user). The temporary name carries the
process ID and a per-process counter, so concurrent writers (threads, processes) never share
one; a write that fails removes its temporary file.
"""

from __future__ import annotations

import fnmatch
import itertools
import json
import os
import re
import tarfile
import uuid
from typing import Any, Callable

from pandaharvester.harvestercore import core_utils

# files that go into a log tarball
LOG_PATTERNS = ("*.log", "*.txt", "*.xml", "*.json", "log*")

# permissions of a file carrying secrets, and of the directories shared with a worker
SECRET_FILE_MODE = 0o600
ACCESS_POINT_MODE = 0o700

_tmp_counter = itertools.count()


def _tmp_name(path: str) -> str:
    return f"{path}.tmp.{os.getpid()}.{next(_tmp_counter)}"


def write_text_atomic(path: str, text: str, mode: int | None = None) -> None:
    """Write ``text`` to ``path`` through a temporary file and ``os.replace``; ``mode``: the file's
    permission bits from its creation on (e.g. :data:`SECRET_FILE_MODE`), else the umask's default."""
    tmp_path = _tmp_name(path)
    try:
        if mode is None:
            stream = open(tmp_path, "w")
        else:
            stream = os.fdopen(os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode), "w")
        with stream:
            stream.write(text)
        os.replace(tmp_path, path)
    except BaseException:
        try:
            os.remove(tmp_path)
        except OSError:
            pass
        raise


def write_json_atomic(path: str, data: Any, mode: int | None = None) -> None:
    """Write ``data`` as JSON to ``path`` through a temporary file and ``os.replace`` (``mode``: as
    in :func:`write_text_atomic`).

    Encoded in one go (``json.dumps``, the C encoder) and written at once: ``json.dump`` runs the
    pure-Python encoder and writes every fragment separately.
    """
    write_text_atomic(path, json.dumps(data), mode)


UNREADABLE_NOTE = "the file is kept and read again next cycle (corrupt or still being written)"


def load_json(path: str) -> tuple[bool, Any, str]:
    """``(True, data, "")`` when ``path`` parses as JSON, else ``(False, None, "<Type>: <message>")``.
    A missing file raises ``FileNotFoundError`` (the callers tell "absent" from "unreadable")."""
    try:
        with open(path) as stream:
            text = stream.read()
        return True, json.loads(text), ""
    except FileNotFoundError:
        raise
    except Exception as exc:
        return False, None, f"{type(exc).__name__}: {exc}"


def read_json_file(path: str, tmp_log: Any, worker_id: Any) -> tuple[bool, Any]:
    """(True, data) when ``path`` parses, (False, None) with a logged error otherwise."""
    try:
        ok, data, why = load_json(path)
    except FileNotFoundError as exc:
        ok, data, why = False, None, f"{type(exc).__name__}: {exc}"
    if not ok:
        tmp_log.error(f"cannot read JSON file {path} written by workerID={worker_id}: {why}; {UNREADABLE_NOTE}")
    return ok, data


def read_json_if_present(path: str, get_log: Callable[[], Any], worker_id: Any) -> tuple[bool, Any] | None:
    """None when ``path`` does not exist, else :func:`read_json_file`'s ``(ok, data)``; one ``open``
    rather than a ``stat`` first. ``get_log()`` gives the logger, made only for an error."""
    try:
        ok, data, why = load_json(path)
    except FileNotFoundError:
        return None
    if not ok:
        get_log().error(f"cannot read JSON file {path} written by workerID={worker_id}: {why}; {UNREADABLE_NOTE}")
    return ok, data


def make_log_tarball(dir_name: str, tar_path: str, max_depth: int | None = None,
                     extra_patterns: list[str] | None = None, exclude: tuple[str, ...] = ()) -> int:
    """Pack files of ``dir_name`` matching the log patterns into the gzipped tar ``tar_path``.

    Returns the number of files packed. Paths inside the tarball are relative to ``dir_name``.
    """
    patterns = list(LOG_PATTERNS) + list(extra_patterns or [])
    tar_abs = os.path.abspath(tar_path)
    members = []
    base_depth = dir_name.rstrip(os.sep).count(os.sep)
    for root, dirs, files in os.walk(dir_name):
        depth = root.rstrip(os.sep).count(os.sep) - base_depth + 1
        if max_depth is not None and depth >= max_depth:
            dirs[:] = []
        for name in files:
            path = os.path.join(root, name)
            if os.path.abspath(path) == tar_abs or name in exclude or ".tmp." in name:
                continue
            if any(fnmatch.fnmatch(name, patt) for patt in patterns):
                members.append(path)
    tmp_path = f"{tar_path}.tmp.{uuid.uuid4().hex[:8]}"
    with tarfile.open(tmp_path, "w:gz") as tar:
        for path in members:
            try:
                tar.add(path, arcname=os.path.relpath(path, dir_name))
            except OSError:
                continue  # vanished meanwhile
    os.replace(tmp_path, tar_path)
    return len(members)


def scan_files_in_dir(dir_name: str, patterns: list[str] | None = None,
                      zip_patterns: list[str] | None = None) -> list[dict]:
    """Describe leftover event-service outputs in ``dir_name`` (regex patterns on file names)."""
    file_list = []
    for root, _dirs, filenames in os.walk(dir_name):
        for filename in filenames:
            is_zipped = bool(zip_patterns) and any(re.search(p, filename) for p in zip_patterns)
            if not is_zipped and patterns and not any(re.search(p, filename) for p in patterns):
                continue
            pfn = os.path.join(root, filename)
            base = {"path": pfn, "fsize": os.stat(pfn).st_size, "guid": str(uuid.uuid4()),
                    "chksum": core_utils.calc_adler32(pfn), "eventStatus": "finished"}
            if is_zipped:
                with tarfile.open(pfn) as tar:
                    lfns = [os.path.basename(info.name) for info in tar.getmembers()]
                base["type"] = "zip_output"
            else:
                lfns = [filename]
                base["type"] = "es_output"
            for lfn in lfns:
                file_list.append(dict(base, eventRangeID=lfn.split(".")[-1]))
    return file_list
