"""Supplemental worker error codes (reported to PanDA as the worker's errorCode).

Codes are >= 1000 except SUCCEEDED. :class:`ErrorMessagePatternHandler` maps a batch system /
CE message (hold reason, remove reason, ...) to a code; the first matching pattern wins, the
catch-all 9000 comes last.
"""

from __future__ import annotations

import re
from typing import Mapping


class ErrorMessagePatternHandler:
    """Finds the error code whose regular expression matches a message."""

    def __init__(self, code_pattern_map: Mapping[int, str]) -> None:
        self._code_pattern_map = dict(code_pattern_map)
        # compiled once; dict order is the matching order
        self._compiled = [(re.compile(pattern), code) for code, pattern in self._code_pattern_map.items()]

    def get_error_code(self, message: str | None) -> int | None:
        """Code of the first pattern found in ``message`` (re.search), or None."""
        if message is None:
            return None
        for regex, code in self._compiled:
            if regex.search(message):
                return code
        return None


# code → pattern, in matching order (more specific patterns first inside each family).
# Families: 2xxx pilot wrapper, 3xxx HTCondor schedd/transfer, 4xxx CE (HTCondor-CE, ARC),
# 5xxx batch system and Kubernetes, 8xxx kill/remove reasons, 9000 anything else.
_MESSAGE_PATTERNS: dict[int, str] = {
    2001: r"wrapper fault",
    2002: r"wrapper killed stuck pilot",
    2064: r"wrapper got cvmfs repos issue",
    2080: r"pilot proxy invalid or with insufficient timeleft",
    3121: r"Failed to start gridmanager",
    3131: r"Failed to start GAHP",
    3132: r"Failed to provide GAHP with token",
    3190: r"Unspecified gridmanager error",
    3200: r"Error connecting to schedd .*",
    3601: r"Transfer output files failure at execution point .* while sending files to access point .*",
    3631: r"File stage-in failed: Transfer of .* failed: Forbidden",
    3632: r"File stage-in failed: Transfer of .* failed: Not Found",
    3636: r"File stage-in failed: Transfer of .* failed: HTTP response .*",
    3637: r"File stage-in failed: Transfer of .* failed: curl_easy_perform\(\) failed .*",
    3639: r"File stage-in failed: .*",
    3641: r"File stage-out failed: Transfer of .* failed: Forbidden",
    3642: r"File stage-out failed: Transfer of .* failed: Not Found",
    3646: r"File stage-out failed: Transfer of .* failed: HTTP response .*",
    3647: r"File stage-out failed: Transfer of .* failed: curl_easy_perform\(\) failed .*",
    3649: r"File stage-out failed: .*",
    3681: r"curl_easy_perform.* failed .*",
    3811: r"condor job .* not found",
    3812: r"cannot get JobStatus of job .*",
    3831: r"Payload execution error: returned non-zero .*",
    3841: r"cannot get ExitCode of job .*",
    3842: r"got invalid ExitCode .* of job .*",
    4101: r"Job disappeared from remote schedd",
    4102: r"Error locating schedd .*",
    4103: r"Schedd .* didn't send expected files",
    4104: r"Error receiving files from schedd .*",
    4201: r"LRMS error: .* Node fail",
    4211: r"LRMS error: .* job killed: vmem",
    4214: r"LRMS error: .* job killed: cput",
    4215: r"LRMS error: .* job killed: wall",
    4219: r"LRMS error: .* job killed: .*",
    4220: r"LRMS error: .* Job missing from .*",
    4241: r"LRMS error: .* Job failed with unknown exit code",
    4242: r"LRMS error: .* Job failed but .* reported .*",
    4244: r"LRMS error: .* Job failed .*",
    4245: r"LRMS error: .* Job was lost with unknown exit code",
    4247: r"LRMS error: .* Job was killed by .*",
    4248: r"LRMS error: .* Job was .*",
    4249: r"LRMS error: .* Job .*",
    4260: r"LRMS error: .* PeriodicRemove evaluated to TRUE",
    4261: r"LRMS error: .* RemoveReason: .*",
    4290: r"LRMS error: .*",
    4311: r"ARC_JOB_NEW timed out",
    4312: r"ARC_JOB_KILL timed out",
    4313: r"ARC_JOB_CLEAN timed out",
    4314: r"ARC_DELEGATION_NEW timed out",
    4315: r"ARC_JOB_STAGE_IN timed out",
    4316: r"ARC_JOB_STAGE_OUT timed out",
    4319: r"ARC_.* timed out",
    4351: r"ARC job failed: Job submission to .* failed",
    4352: r"ARC job failed: Job is canceled by external request",
    4353: r"ARC job failed: Failed extracting LRMS ID due to some internal error",
    4360: r"New job submission is not allowed",
    4361: r"Forbidden",
    4362: r"Job could not be cleaned",
    4363: r"ARC job has no credentials",
    4364: r"Failed to find valid session directory",
    4390: r"ARC job failed: .*",
    4391: r"ARC job failed for unknown reason",
    5110: r"Job has gone over cgroup memory limit of .*",
    5116: r"peak memory usage exceeded .*",
    5511: r"Number of submitted jobs would exceed MAX_JOBS_SUBMITTED",
    5512: r"Number of submitted jobs would exceed MAX_JOBS_PER_OWNER",
    5519: r"Number of submitted jobs would exceed .*",
    5520: r"The job exceeded allowed .* duration of .*",
    5571: r".* Second start not allowed",
    5572: r"job aborted due to .*",
    5601: r"submission command failed \(exit code = .*\).*",
    5602: r"no jobId in submission script's output .*",
    5699: r"Slurm .*",
    5801: r"Job has reached the specified backoff limit",
    5881: r"container not terminated yet (.*) while pod Succeeded",
    5882: r"container terminated by k8s for reason .*",
    8970: r"Python-initiated action\. \(by user .*\)",
    8971: r"via condor_rm .*",
    8981: r"removed by SYSTEM_PERIODIC_REMOVE due to job restarted undesirably",
    8982: r"removed by SYSTEM_PERIODIC_REMOVE due to job held time exceeded .*",
    8983: r"removed by SYSTEM_PERIODIC_REMOVE due to job status unchanged time exceeded .*",
    8984: r"removed by SYSTEM_PERIODIC_REMOVE due to job staying in queue time exceeded .*",
    8985: r"removed by SYSTEM_PERIODIC_REMOVE due to job remote status outdated time exceeded .*",
    8990: r"removed by SYSTEM_PERIODIC_REMOVE due to .*",
    8991: r"Remove Reason unknown",
    9000: r".*",
}


class WorkerErrors:
    """Named worker error codes and the message → code table."""

    error_codes = {
        "SUCCEEDED": 0,
        "UNKNOWN": 1000,
        "PREEMPTED": 1001,
        "GENERAL_ERROR": 9000,
    }

    error_message_pattern_map = _MESSAGE_PATTERNS

    message_pattern_handler = ErrorMessagePatternHandler(_MESSAGE_PATTERNS)
