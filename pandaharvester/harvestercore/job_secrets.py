"""PanDA's job ``secrets``, kept out of the DB: one owner-only file per job in a 0700 directory.

A job from PanDA may carry the user's ``secrets`` (a JSON string). They must reach the pilot
(the job description the messenger writes, mode 0600) but nowhere else: not the DB, whose
dumps and backups travel, and not the logs. :meth:`JobSpec.convert_job_json` takes them out of
``jobParams`` into the in-memory ``JobSpec.secrets``; inserting the job into the DB stores them
here (``<dir>/<PandaID>.json``, mode 0600, written atomically), deleting the job from the DB
removes the file, and :meth:`JobSpec.get_job_params` puts them back into the description.

The directory is ``[db] jobSecretsDir``, by default ``$PANDA_HOME/var/lib/harvester/job_secrets``
(made 0700; an existing one is tightened to 0700). Its files never leave the host: the
instance's processes share it, as they share the SQLite file.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any, Iterable

from pandaharvester.harvestercore.log_utils import make_logger, setup_logger

DIR_MODE = 0o700
FILE_MODE = 0o600
SUFFIX = ".json"

_logger = setup_logger("job_secrets")
_made: set[str] = set()
_lock = threading.Lock()


def default_dir() -> str:
    return os.path.join(os.environ.get("PANDA_HOME", "/"), "var", "lib", "harvester", "job_secrets")


def secrets_dir() -> str:
    """``[db] jobSecretsDir`` (absolute), else :func:`default_dir`."""
    try:
        from pandaharvester.harvesterconfig import harvester_config

        value = getattr(harvester_config.db, "jobSecretsDir", None)
    except Exception:
        value = None
    if value is None or not str(value).strip() or str(value).strip() == "None":
        return default_dir()
    return os.path.abspath(str(value).strip())


def ensure_dir(directory: str | None = None) -> str:
    """Make the directory (0700) if needed; returns it. OSError when it cannot be made."""
    directory = directory or secrets_dir()
    with _lock:
        if directory in _made and os.path.isdir(directory):
            return directory
        os.makedirs(directory, DIR_MODE, exist_ok=True)
        if os.stat(directory).st_mode & 0o077:
            os.chmod(directory, DIR_MODE)
        _made.add(directory)
    return directory


def _path(directory: str, panda_id: Any) -> str:
    return os.path.join(directory, f"{int(panda_id)}{SUFFIX}")


def save(secrets_by_id: dict[int, Any]) -> list[int]:
    """Store each job's secrets; returns the PandaIDs that could not be stored (logged as errors)."""
    if not secrets_by_id:
        return []
    failed = []
    try:
        directory = ensure_dir()
    except OSError as exc:
        make_logger(_logger, method_name="save").error(
            f"cannot make the job secrets directory {secrets_dir()} ({exc.strerror}): the jobs "
            + " ".join(f"PandaID={i}" for i in secrets_by_id) + " go to their pilots without secrets; "
            "set [db] jobSecretsDir to a writable directory")
        return list(secrets_by_id)
    for panda_id, value in secrets_by_id.items():
        path = _path(directory, panda_id)
        tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
            with os.fdopen(fd, "w") as stream:
                json.dump(value, stream)
            os.replace(tmp, path)
        except (OSError, TypeError, ValueError) as exc:
            failed.append(panda_id)
            make_logger(_logger, f"PandaID={panda_id}", method_name="save").error(
                f"cannot store the job's secrets in {directory}: "
                f"{getattr(exc, 'strerror', None) or type(exc).__name__}; the job goes to its pilot without them")
            try:
                os.unlink(tmp)
            except OSError:
                pass
    return failed


def load(panda_id: Any) -> Any:
    """The stored secrets of a job, or None (none stored, or unreadable: logged)."""
    try:
        path = _path(secrets_dir(), panda_id)
    except (TypeError, ValueError):
        return None
    try:
        with open(path) as stream:
            return json.load(stream)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        make_logger(_logger, f"PandaID={panda_id}", method_name="load").error(
            f"cannot read the job's secrets from {path}: {getattr(exc, 'strerror', None) or type(exc).__name__}")
        return None


def remove(panda_ids: Iterable[Any]) -> int:
    """Delete the stored secrets of these jobs; returns how many files were removed."""
    directory = secrets_dir()
    if not os.path.isdir(directory):
        return 0
    n = 0
    for panda_id in panda_ids:
        try:
            os.unlink(_path(directory, panda_id))
            n += 1
        except (OSError, TypeError, ValueError):
            pass
    return n


def stored_ids(older_than: float = 0.0) -> list[int]:
    """PandaIDs with stored secrets (only files at least ``older_than`` seconds old)."""
    import time

    directory = secrets_dir()
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return []
    limit = time.time() - older_than
    ids = []
    for entry in entries:
        name = entry.name
        if not (name.endswith(SUFFIX) and name[:-len(SUFFIX)].isdigit()):
            continue
        try:
            if older_than and entry.stat().st_mtime > limit:
                continue
        except OSError:
            continue
        ids.append(int(name[:-len(SUFFIX)]))
    return ids
