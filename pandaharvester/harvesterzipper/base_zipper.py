"""Base class of zipper plugins (and of stagers): pack output files into zip (tar) files.

Each FileSpec in ``jobspec.outFiles`` handed to a zipper is a zip file whose members are its
``associatedFiles``. ``zipDir`` says where zip files go: ``${SRCDIR}`` (default: beside the
first member), ``${WORKDIR}`` (the worker's access point) or a directory. Archives are made
with Python's tarfile (no shell), written under a temporary name and renamed into place under
a DB object lock so concurrent stagers never clobber one another.
"""

from __future__ import annotations

import multiprocessing
import os
import tarfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pandaharvester.harvestercore import core_utils
from pandaharvester.harvestercore.plugin_base import PluginBase

_local_lock = threading.Lock()


# the zipping settings, read from [zipper] and else from [stager] (as the original does)
ZIP_KEYS = ("maxJobsToZip", "maxFilesPerJobToZip", "zipInterval", "lockInterval", "nThreadsForZip")


def zip_setting(key: str, default: Any) -> Any:
    """A zipping setting (one of :data:`ZIP_KEYS`): ``[zipper] key`` when set, else ``[stager] key``, else ``default``."""
    from pandaharvester.harvesterconfig import harvester_config

    if key not in ZIP_KEYS:
        raise ValueError(f"{key} is not a zipping setting: use one of {ZIP_KEYS}")

    for name in ("zipper", "stager"):
        section = getattr(harvester_config, name, None)
        if section is not None and key in section:
            return getattr(section, key)
    return default


def n_threads_for_zip() -> int:
    """``nThreadsForZip`` (:func:`zip_setting`), else the number of CPUs."""
    try:
        n_threads = zip_setting("nThreadsForZip", None)
        if n_threads is not None:
            return max(int(n_threads), 1)
    except Exception:  # no cfg (a plugin used on its own)
        pass
    return multiprocessing.cpu_count()


class BaseZipper(PluginBase):
    """Zipping helpers shared by zippers and stagers."""

    def __init__(self, **kwarg: Any) -> None:
        self.zipDir = "${SRCDIR}"
        self.zip_tmp_log: Any = None
        self.zip_jobSpec: Any = None
        PluginBase.__init__(self, **kwarg)

    def _zip_dir_for(self, jobspec: Any, filespec: Any) -> str:
        if self.zipDir == "${SRCDIR}":
            return os.path.dirname(next(iter(filespec.associatedFiles)).path)
        if self.zipDir == "${WORKDIR}":
            return jobspec.get_workspec_list()[0].get_access_point()
        return self.zipDir

    def simple_zip_output(self, jobspec: Any, tmp_log: Any) -> tuple[bool | None, str]:
        """Make every zip file of the job locally; sets path, fsize and chksum of each."""
        tmp_log.debug("start")
        self.zip_tmp_log = tmp_log
        self.zip_jobSpec = jobspec
        try:
            out_files = list(jobspec.outFiles)
            arg_list = []
            for filespec in out_files:
                members = []
                for member in filespec.associatedFiles:
                    if member.path and os.path.exists(member.path):
                        members.append(member.path)
                    else:
                        member.status = "failed"
                arg_list.append({"zipPath": os.path.join(self._zip_dir_for(jobspec, filespec), filespec.lfn),
                                 "associatedFiles": members})
            with ThreadPoolExecutor(max_workers=n_threads_for_zip()) as pool:
                results = list(pool.map(self.make_one_zip, arg_list))
            for filespec, (ok, err, info) in zip(out_files, results):
                if ok is not True:
                    tmp_log.error(f"got {ok} with {err} when zipping {filespec.lfn}")
                    return ok, f"failed to zip with {err}"
                filespec.path, filespec.fsize, filespec.chksum = info["path"], info["fsize"], info["chksum"]
                tmp_log.debug(f"{filespec.lfn}: path={filespec.path} fsize={filespec.fsize} chksum={filespec.chksum}")
        except Exception:
            err = core_utils.dump_error_message(tmp_log)
            return False, f"failed to zip with {err}"
        tmp_log.debug("done")
        return True, ""

    def _lock(self, name: str) -> bool:
        db = getattr(self, "dbInterface", None)
        if db is None:
            return _local_lock.acquire(timeout=60)
        for _ in range(60):
            if db.get_object_lock(name, lock_interval=60):
                return True
            time.sleep(1)
        return False

    def _unlock(self, name: str) -> None:
        db = getattr(self, "dbInterface", None)
        if db is None:
            _local_lock.release()
        else:
            db.release_object_lock(name)

    def make_one_zip(self, arg_dict: dict) -> tuple[bool | None, str, dict]:
        """Make one zip file; (True, "", {path, fsize, chksum}) or (False/None, error, {})."""
        zip_path = arg_dict["zipPath"]
        lfn = os.path.basename(zip_path)
        log = self.zip_tmp_log
        try:
            if log is not None:
                log.debug(f"{lfn} start zipPath={zip_path} with {len(arg_dict['associatedFiles'])} files")
            if not os.path.exists(zip_path):
                tmp_path = f"{zip_path}.{uuid.uuid4()}"
                with tarfile.open(tmp_path, "w") as tar:
                    for path in arg_dict["associatedFiles"]:
                        tar.add(path, arcname=os.path.basename(path))
                lock_name = f"zip.lock.{lfn}"
                if not self._lock(lock_name):
                    os.remove(tmp_path)
                    return None, f"failed to lock for {lfn}", {}
                try:
                    if not os.path.exists(zip_path):
                        os.replace(tmp_path, zip_path)
                    else:
                        os.remove(tmp_path)
                finally:
                    self._unlock(lock_name)
            info = {"path": zip_path, "fsize": os.stat(zip_path).st_size, "chksum": core_utils.calc_adler32(zip_path)}
        except Exception:
            err = core_utils.dump_error_message(log) if log is not None else "zip error"
            return False, f"failed to zip with {err}", {}
        return True, "", info

    def ssh_zip_output(self, jobspec: Any, tmp_log: Any) -> tuple[bool, str]:
        """Remote zipping over ssh is not provided by this implementation."""
        msg = "ssh zipping is not implemented; use SimpleZipper (zip on a shared file system)"
        tmp_log.error(msg)
        return False, msg
