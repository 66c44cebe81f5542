"""Pilot error codes, as used by monitor plugins to report payload failures.

When the ``panda-pilot`` package is installed its complete code table and exit-code
translation are used; otherwise a built-in subset of the common codes is available, so that
plugins importing this module work everywhere.
"""

from __future__ import annotations

from typing import Any

try:  # the pilot's own table, when present
    from pilot.common.errorcodes import ErrorCodes as _PilotErrorCodes  # type: ignore[import-not-found]
    from pilot.util import auxiliary as _pilot_aux  # type: ignore[import-not-found]
except Exception:  # noqa: BLE001 - pilot not installed (or broken): use the subset below
    _PilotErrorCodes = None
    _pilot_aux = None


class _BuiltinErrorCodes:
    """The most used pilot error codes (values as in the PanDA pilot)."""

    GENERALERROR = 1008
    NOLOCALSPACE = 1098
    STAGEINFAILED = 1099
    REPLICANOTFOUND = 1100
    NOSUCHFILE = 1103
    SETUPFAILURE = 1110
    STAGEOUTFAILED = 1137
    PANDAKILL = 1144
    LOOPINGJOB = 1150
    STAGEINTIMEOUT = 1151
    STAGEOUTTIMEOUT = 1152
    NOPROXY = 1163
    KILLSIGNAL = 1200
    SIGTERM = 1201
    SIGQUIT = 1202
    SIGSEGV = 1203
    SIGXCPU = 1204
    USERKILL = 1205
    SIGBUS = 1206
    SIGUSR1 = 1207
    PAYLOADOUTOFMEMORY = 1212
    REACHEDMAXTIME = 1213
    UNKNOWNPAYLOADFAILURE = 1220
    FAILEDBYSERVER = 1236

    _error_messages = {
        GENERALERROR: "General pilot error, consult batch log",
        NOLOCALSPACE: "Not enough local space",
        STAGEINFAILED: "Failed to stage-in file",
        REPLICANOTFOUND: "Replica not found",
        NOSUCHFILE: "No such file or directory",
        SETUPFAILURE: "Failed during payload setup",
        STAGEOUTFAILED: "Failed to stage-out file",
        PANDAKILL: "This job was killed by panda server",
        LOOPINGJOB: "Looping job killed by pilot",
        STAGEINTIMEOUT: "File transfer timed out during stage-in",
        STAGEOUTTIMEOUT: "File transfer timed out during stage-out",
        NOPROXY: "Grid proxy not valid",
        KILLSIGNAL: "Job terminated by unknown kill signal",
        SIGTERM: "Job killed by signal: SIGTERM",
        SIGQUIT: "Job killed by signal: SIGQUIT",
        SIGSEGV: "Job killed by signal: SIGSEGV",
        SIGXCPU: "Job killed by signal: SIGXCPU",
        USERKILL: "Job killed by user",
        SIGBUS: "Job killed by signal: SIGBUS",
        SIGUSR1: "Job killed by signal: SIGUSR1",
        PAYLOADOUTOFMEMORY: "Payload ran out of memory",
        REACHEDMAXTIME: "Reached maximum batch system time limit",
        UNKNOWNPAYLOADFAILURE: "Job failed due to unknown reason (consult log file)",
        FAILEDBYSERVER: "Failed by server",
    }


_Base: Any = _PilotErrorCodes if _PilotErrorCodes is not None else _BuiltinErrorCodes


class PilotErrors(_Base):
    """Pilot error codes with lookup helpers (names as in the original harvester)."""

    pilot_error_msg: dict[int, str] = dict(_Base._error_messages)

    getErrorCodes = [1097, 1099, 1100, 1103, 1107, 1113, 1130, 1145, 1151, 1164, 1167, 1168, 1171, 1175, 1178, 1179, 1180, 1182]
    putErrorCodes = [1101, 1114, 1122, 1131, 1132, 1133, 1134, 1135, 1136, 1137, 1138, 1140, 1141, 1152, 1154, 1155, 1181]
    recoverableErrorCodes = [0] + putErrorCodes

    # codes after which the pilot resubmits the job
    PilotResubmissionErrorCodes = [
        1008, 1098, 1099, 1110, 1113, 1114, 1115, 1116, 1117, 1137, 1139, 1151, 1152, 1171, 1172,
        1177, 1179, 1180, 1181, 1182, 1188, 1189, 1195, 1196, 1197, 1219,
    ]
    # codes allowing a FAX fail-over
    PilotFAXErrorCodes = [1103] + PilotResubmissionErrorCodes

    # payload exit code → (pilot error code, ...) translation, only with the pilot package
    pilot_code_dict: dict = _pilot_aux.get_error_code_translation_dictionary() if _pilot_aux is not None else {}
    avail_exit_codes = [value[0] for value in pilot_code_dict.values()]

    def getPilotErrorDiag(self, code: int = 0) -> str:
        """Text of an error code ("Unknown pilot error code" when unknown)."""
        return self.pilot_error_msg.get(code, "Unknown pilot error code")

    def isGetErrorCode(self, code: int = 0) -> bool:
        """True for stage-in error codes."""
        return code in self.getErrorCodes

    def isPutErrorCode(self, code: int = 0) -> bool:
        """True for stage-out error codes."""
        return code in self.putErrorCodes

    @classmethod
    def isRecoverableErrorCode(cls, code: int = 0) -> bool:
        """True for codes after which the job can be recovered."""
        return code in cls.recoverableErrorCodes

    def isPilotResubmissionErrorCode(self, code: int = 0) -> bool:
        """True for codes that make the pilot resubmit the job."""
        return code in self.PilotResubmissionErrorCodes

    def isPilotFAXErrorCode(self, code: int = 0) -> bool:
        """True for codes allowing a FAX fail-over."""
        return code in self.PilotFAXErrorCodes

    @classmethod
    def getErrorStr(cls, code: int) -> str:
        """Text of an error code, "" when unknown."""
        return cls.pilot_error_msg.get(code, "")

    def getErrorName(self, code: int) -> str | None:
        """Constant name of an error code, or None."""
        for klass in type(self).__mro__:
            for name, value in vars(klass).items():
                if name.isupper() and value == code and isinstance(value, int):
                    return name
        return None

    def convertToPilotErrors(self, exit_code: int) -> tuple[int | None, str]:
        """(pilot error code, diag) for a payload exit code known to the pilot, else (None, "")."""
        if _pilot_aux is not None and exit_code in self.avail_exit_codes:
            code = _pilot_aux.convert_to_pilot_error_code(exit_code)
            return code, self.getPilotErrorDiag(code)
        return None, ""


class PilotException(Exception):
    """An exception carrying a pilot error code (and its description)."""

    def __init__(self, message: str, code: int = PilotErrors.GENERALERROR, state: str = "", *args: Any) -> None:
        super().__init__(*args)
        self.message = message
        self.state = state
        self.code = code

    @property
    def code(self) -> int:
        return self._code

    @code.setter
    def code(self, code: int) -> None:
        self._code = code
        self.code_description = PilotErrors.getErrorStr(code)

    def __str__(self) -> str:
        extra = f" : {self.args}" if self.args else ""
        return f"{type(self).__name__}: {self.code}: {self.message}{extra}"

    def __repr__(self) -> str:
        extra = f" : {self.args!r}" if self.args else ""
        return f"{type(self).__name__}: {self.code!r}: {self.message!r}{extra}"
