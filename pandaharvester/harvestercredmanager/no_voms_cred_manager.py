"""NoVomsCredManager: keep a grid proxy valid with ``voms-proxy-info`` / ``voms-proxy-init``.

The original's default credential manager, with its keys:

- ``outCertFile``: the proxy to keep valid; ``inCertFile``: the long-lived credential (a file
  holding a certificate and its unencrypted key, or a proxy) it is signed with, via ``-noregen``;
- ``genFromKeyCert`` with ``cert`` / ``key``: sign with a certificate/key pair instead;
- ``voms``: the VOMS attribute to ask for (``-voms``); unset, empty or ``dummy`` for a plain proxy;
- ``lifetime`` (hours, 96) and ``checkPeriod`` (hours, 1): the proxy is renewed when less than
  ``lifetime - checkPeriod`` hours (rounded up to whole hours) are left
  (``voms-proxy-info -exists -hours``);
- ``renewCommand`` (``voms-proxy-init``), ``lifetimeOptFormat`` (``-valid {lifetime}:00``) and
  ``extraRenewOpts`` (``""``): the renewal command line, split on whitespace;
- ``commandTimeout`` (seconds, 120; ours): how long one command may run.

Commands run as argument lists. The renewed proxy is written to a temporary file beside
``outCertFile`` (mode 0600) and moved over it only when the command succeeded, so a failed
renewal never replaces or truncates the current proxy.
"""

from __future__ import annotations

import logging
import math
import os
import re
import subprocess
import tempfile
from typing import Any

from pandaharvester.harvestercore import core_utils

from .base_cred_manager import BaseCredManager

_logger = core_utils.setup_logger("no_voms_cred_manager")

# voms-proxy-init prints a progress line of dots/pluses while it makes the key pair
_PROGRESS = re.compile(r"[.+*\n]{8,}")
_NO_VOMS = ("", "dummy", "none")


def _as_bool(value: Any) -> bool:
    """A cfg/JSON flag: True, 1, "true"/"yes"/"1" (any case) are true."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "yes", "1", "on")
    return bool(value)


def _hours_text(value: float) -> str:
    """``95`` rather than ``95.0`` for whole hours (what the commands expect)."""
    return str(int(value)) if float(value).is_integer() else str(value)


def _tidy(text: str) -> str:
    """A command's output on one line, without the key-generation progress dots."""
    return " ".join(_PROGRESS.sub(" ", text or "").split())


def run_command(argv: list[str], timeout: float, tmp_log: Any) -> tuple[int, str, str]:
    """Run ``argv`` (no shell); ``(return code, stdout, stderr)``, rc -1 if it could not run.

    Output goes to the DEBUG log; a missing command or a timeout is explained in ``stderr``.
    """
    if tmp_log.isEnabledFor(logging.DEBUG):
        tmp_log.debug(f"run {' '.join(argv)}")
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, encoding="utf-8",
                              errors="replace", timeout=timeout, check=False, umask=0o077)
    except FileNotFoundError:
        return -1, "", f"{argv[0]} not found: install the VOMS clients (Debian/EL package voms-clients)"
    except subprocess.TimeoutExpired:
        return -1, "", f"{argv[0]} did not finish within {timeout:g} s (commandTimeout)"
    except OSError as exc:
        return -1, "", f"cannot run {argv[0]}: {exc}"
    stdout, stderr = _tidy(proc.stdout), _tidy(proc.stderr)
    if tmp_log.isEnabledFor(logging.DEBUG):
        tmp_log.debug(f"retCode={proc.returncode} stdout={stdout} stderr={stderr}")
    return proc.returncode, stdout, stderr


class NoVomsCredManager(BaseCredManager):
    """Checks the proxy's remaining lifetime and renews it with ``voms-proxy-init``."""

    def __init__(self, **kwarg: Any) -> None:
        self.inCertFile: str | None = None
        self.outCertFile: str | None = None
        self.voms: str | None = None
        BaseCredManager.__init__(self, **kwarg)
        self.setupMap = dict(vars(self))
        self.genFromKeyCert = _as_bool(self.setupMap.get("genFromKeyCert"))
        self.key = self.setupMap.get("key")
        self.cert = self.setupMap.get("cert")
        self.checkPeriod = float(self.setupMap.get("checkPeriod", 1))
        self.lifetime = float(self.setupMap.get("lifetime", 96))
        self.renewCommand = self.setupMap.get("renewCommand", "voms-proxy-init")
        self.extraRenewOpts = self.setupMap.get("extraRenewOpts", "")
        self.lifetimeOptFormat = self.setupMap.get("lifetimeOptFormat", "-valid {lifetime}:00")
        self.commandTimeout = float(self.setupMap.get("commandTimeout", 120))

    # ------------------------------------------------------------ command lines
    def _log(self, method_name: str) -> Any:
        return self.make_logger(_logger, f"outCertFile={self.outCertFile}", method_name=method_name)

    def check_command(self) -> list[str]:
        """``voms-proxy-info -exists -hours <ceil(lifetime - checkPeriod)> -file <outCertFile>``."""
        # -hours takes whole hours: a fractional threshold is rounded up (renew early, not late)
        threshold = math.ceil(max(self.lifetime - self.checkPeriod, 0))
        return ["voms-proxy-info", "-exists", "-hours", str(threshold), "-file", str(self.outCertFile)]

    def lifetime_command(self) -> list[str]:
        """``voms-proxy-info -timeleft -file <outCertFile>``."""
        return ["voms-proxy-info", "-timeleft", "-file", str(self.outCertFile)]

    def renew_command(self, out_file: str | None = None) -> list[str]:
        """The renewal command writing the proxy to ``out_file`` (default ``outCertFile``)."""
        argv = _split(self.renewCommand) + ["-rfc"]
        if self.genFromKeyCert:
            cert, key = self.cert, self.key
        else:
            argv.append("-noregen")
            cert = key = self.inCertFile
        voms = self.voms.strip() if isinstance(self.voms, str) else self.voms
        if voms and str(voms).lower() not in _NO_VOMS:
            argv += ["-voms", str(voms)]
        argv += ["-out", out_file or str(self.outCertFile)]
        argv += _split(str(self.lifetimeOptFormat).format(lifetime=_hours_text(self.lifetime)))
        argv += [f"-cert={cert}", f"-key={key}"]
        return argv + _split(self.extraRenewOpts)

    def _setup_error(self) -> str | None:
        if not self.outCertFile:
            return "outCertFile is not set: name the proxy file to keep valid"
        if self.genFromKeyCert and not (self.cert and self.key):
            return "genFromKeyCert needs both cert and key (the user certificate and its key file)"
        if not self.genFromKeyCert and not self.inCertFile:
            return "inCertFile is not set: name the long-lived credential, or use genFromKeyCert with cert/key"
        return None

    # ------------------------------------------------------------ plugin interface
    def check_credential(self) -> bool:
        """True when ``outCertFile`` holds a proxy valid for more than ``lifetime - checkPeriod`` hours."""
        tmp_log = self._log("check_credential")
        if not self.outCertFile:
            tmp_log.error("outCertFile is not set: name the proxy file to keep valid")
            return False
        ret_code, _stdout, stderr = run_command(self.check_command(), self.commandTimeout, tmp_log)
        if ret_code < 0:
            tmp_log.error(stderr)
        return ret_code == 0

    def check_credential_lifetime(self) -> float | None:
        """Hours left on ``outCertFile`` (``voms-proxy-info -timeleft``), None when unknown."""
        tmp_log = self._log("check_credential_lifetime")
        if not self.outCertFile:
            return None
        ret_code, stdout, stderr = run_command(self.lifetime_command(), self.commandTimeout, tmp_log)
        if ret_code != 0:
            tmp_log.warning(f"no lifetime: retCode={ret_code} {stderr or stdout}")
            return None
        try:
            return int(stdout.split()[-1]) / 3600
        except (ValueError, IndexError):
            tmp_log.warning(f"no lifetime: voms-proxy-info -timeleft printed {stdout!r}, not seconds")
            return None

    def renew_credential(self) -> tuple[bool, str]:
        """Make a new proxy at ``outCertFile`` (0600); ``(ok, "<stdout> <stderr>")``."""
        tmp_log = self._log("renew_credential")
        problem = self._setup_error()
        if problem is not None:
            return False, problem
        out_file = str(self.outCertFile)
        directory = os.path.dirname(os.path.abspath(out_file))
        try:
            fd, tmp_path = tempfile.mkstemp(prefix=f".{os.path.basename(out_file)}.", suffix=".new", dir=directory)
        except OSError as exc:
            return False, f"cannot write beside {out_file}: {exc}"
        os.close(fd)  # an empty 0600 file the command overwrites
        try:
            ret_code, stdout, stderr = run_command(self.renew_command(tmp_path), self.commandTimeout, tmp_log)
            message = f"{stdout} {stderr}".strip()
            if ret_code != 0:
                return False, f"retCode={ret_code} {message}"
            if os.path.getsize(tmp_path) == 0:
                return False, f"{self.renewCommand} succeeded but wrote no proxy to -out {tmp_path}: {message}"
            os.chmod(tmp_path, 0o600)
            os.replace(tmp_path, out_file)
        finally:
            if os.path.exists(tmp_path):
                os.unlink(tmp_path)
        tmp_log.info(f"renewed {out_file}")
        return True, message


def _split(value: Any) -> list[str]:
    """A command-line fragment from the cfg: a string split on whitespace, or a list as is."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(item) for item in value]
    return str(value).split()
