#!/usr/bin/env python3
"""A stand-in for the PanDA pilot, for tests and the demo. Standard library only.

Run in a worker's access point (as ``DummySubmitter`` does)::

    python -m pandaharvester.harvestertest.dummy_pilot --access-point DIR --sleep 5
    python /path/to/dummy_pilot.py --access-point DIR --config DIR/dummy_pilot_conf.json

It speaks the shared-file protocol of ``SharedFileMessenger``: it reads the PandaIDs file and
the job description(s) Harvester wrote, runs for ``--sleep`` seconds while touching the
heartbeat file (asking for and processing event ranges for event-service jobs), then writes
per job: output files with real content, a log tarball, the files-to-stage-out dump
(``{PandaID: [{path, type, fsize, chksum, guid[, eventRangeID, eventStatus]}]}``), the job
report and the worker attributes (``jobStatus`` finished or failed); the reports named in
``corruptFiles`` (their file-name keys, e.g. ``eventStatusDumpJsonFile``) are written cut in
half, as a crash mid-write leaves them. Last it writes its own status file
``dummy_pilot_status.json`` ({status, pid, startTime, endTime, exitCode, diag}), which is what
``DummyMonitor`` reads. With no PandaIDs file (pull mode) it just runs.

SIGTERM/SIGINT end it early with jobStatus failed and exit code 143. File names default to
the cfg template's ``[payload_interaction]`` values; the config JSON may override them.
"""

from __future__ import annotations

import argparse
import configparser
import json
import os
import signal
import socket
import sys
import tarfile
import time
import uuid
import zlib
from typing import Any, Callable
from urllib.parse import parse_qsl

STATUS_FILE = "dummy_pilot_status.json"
CONFIG_FILE = "dummy_pilot_conf.json"
PILOT_LOG = "pilotlog.txt"

DEFAULT_FILE_NAMES = {
    "workerAttributesFile": "worker_attributes.json",
    "jobReportFile": "jobReport.json",
    "eventStatusDumpJsonFile": "event_status.dump.json",
    "jobRequestFile": "worker_requestjob.json",
    "jobSpecFile": "pandaJobData.out",
    "eventRequestFile": "worker_requestevents.json",
    "eventRangesFile": "JobsEventRanges.json",
    "updateEventsFile": "worker_updateevents.json",
    "xmlPoolCatalogFile": "PoolFileCatalog_H.xml",
    "pandaIDsFile": "worker_pandaids.json",
    "killWorkerFile": "kill_worker.json",
    "heartbeatFile": "worker_heartbeat.json",
}

DEFAULTS: dict[str, Any] = {
    "sleepTime": 3.0,
    "fail": False,
    "failureExitCode": 65,
    "failurePilotErrorCode": 1305,
    "heartbeatInterval": 1.0,
    "outputFileSize": 1024,
    "nEventRangesToRequest": 2,
    "requestEvents": False,
    "workerID": None,
    "mapType": None,
    "instant": False,
    # fault knob: file-name keys (e.g. "eventStatusDumpJsonFile") of reports written corrupt
    "corruptFiles": [],
}

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


class PilotTerminated(Exception):
    """Raised inside the run when a termination signal arrives."""


def adler32_of(path: str) -> str:
    """Adler-32 of a file as 8 hex digits (PanDA's checksum form without the ``ad:`` prefix)."""
    value = 1
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            value = zlib.adler32(chunk, value)
    return f"{value & 0xFFFFFFFF:08x}"


def write_file(path: str, data: bytes, atomic: bool = True) -> None:
    """Write ``data`` to ``path``; ``atomic``: through a temporary file and a rename, so that
    Harvester never reads half a file (an instant run needs none: nobody looks meanwhile)."""
    if not atomic:
        with open(path, "wb") as stream:
            stream.write(data)
        return
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "wb") as stream:
        stream.write(data)
    os.replace(tmp, path)


def write_json(path: str, data: Any, atomic: bool = True) -> None:
    """Write JSON (atomically by default, see :func:`write_file`)."""
    write_file(path, json.dumps(data).encode(), atomic)  # one write: json.dump writes every fragment


def _read_text(path: str) -> str | None:
    """The text of ``path``, None if there is no such file (one ``open``, no ``stat`` first)."""
    try:
        with open(path) as stream:
            return stream.read()
    except (FileNotFoundError, NotADirectoryError):
        return None


def utc_string(epoch: float) -> str:
    return time.strftime(TIME_FORMAT, time.gmtime(epoch))


class DummyPilot:
    """One pilot run in ``access_point``; ``run()`` returns the exit code."""

    def __init__(self, access_point: str, conf: dict[str, Any], sleep: Callable[[float], None] = time.sleep,
                 log: Callable[[str], None] | None = None):
        self.ap = access_point
        self.conf = dict(DEFAULTS, **{k: v for k, v in conf.items() if v is not None})
        self.names = dict(DEFAULT_FILE_NAMES, **(conf.get("fileNames") or {}))
        self.sleep = sleep
        self.log_lines: list[str] = []
        self._print = log or (lambda text: print(text, flush=True))
        self.start = time.time()
        self.pid = None if self.conf["instant"] else os.getpid()
        # an instant run happens inside the submitter's call: no reader before it has ended
        self.atomic = not self.conf["instant"]

    # -------------------------------------------------------------- helpers
    def log(self, text: str) -> None:
        line = f"{utc_string(time.time())} dummy_pilot: {text}"
        self.log_lines.append(line)
        self._print(line)

    def path(self, name_key: str, sub_dir: str | None = None) -> str:
        return os.path.join(sub_dir or self.ap, self.names[name_key])

    def write_status(self, status: str, exit_code: int | None = None, diag: str = "") -> None:
        data = {"status": status, "pid": self.pid, "workerID": self.conf["workerID"], "startTime": self.start,
                "instant": bool(self.conf["instant"])}
        if status in ("finished", "failed"):
            data.update(endTime=time.time(), exitCode=exit_code, diag=diag)
        write_json(os.path.join(self.ap, STATUS_FILE), data, self.atomic)

    def heartbeat(self) -> None:
        write_json(self.path("heartbeatFile"), {"time": time.time(), "pid": self.pid})

    def job_dir(self, panda_id: str) -> str:
        sub = os.path.join(self.ap, str(panda_id))
        return sub if os.path.isdir(sub) else self.ap

    # -------------------------------------------------------------- jobs
    def load_jobs(self) -> dict[str, dict]:
        """{PandaID (str): job params} from the files Harvester wrote (empty in pull mode)."""
        jobs: dict[str, dict] = {}
        panda_ids: list[str] = []
        text = _read_text(self.path("pandaIDsFile"))
        if text is not None:
            panda_ids = [str(i) for i in json.loads(text)]
        candidates = [self.path("jobSpecFile", os.path.join(self.ap, i)) for i in panda_ids]
        candidates.append(self.path("jobSpecFile"))
        for spec_path in candidates:
            text = _read_text(spec_path)
            if text is None:
                continue
            try:
                data = json.loads(text)
            except ValueError:  # cgi-encoded job description
                params = dict(parse_qsl(text))
                data = {params.get("PandaID", "0"): params}
            for key, params in data.items():
                if not panda_ids or str(key) in panda_ids:
                    jobs[str(key)] = params
        return jobs

    def wants_events(self, params: dict) -> bool:
        flag = params.get("eventService")
        return bool(self.conf["requestEvents"]) or flag in (True, "True", "true", 1, "1")

    def wait(self, seconds: float, jobs: dict[str, dict]) -> dict[str, list]:
        """Sleep ``seconds`` with heartbeats; request and collect event ranges. {PandaID: ranges}."""
        ranges: dict[str, list] = {}
        es_jobs = [i for i, p in jobs.items() if self.wants_events(p)]
        requested = False
        end = time.time() + seconds
        while True:
            if not self.conf["instant"]:
                self.heartbeat()
            for panda_id in es_jobs:
                feed_path = self.path("eventRangesFile", self.job_dir(panda_id))
                if os.path.exists(feed_path):
                    with open(feed_path) as stream:
                        fed = json.load(stream)
                    os.replace(feed_path, feed_path + ".consumed")
                    for key, items in fed.items():
                        ranges.setdefault(str(key), []).extend(items)
                        self.log(f"got {len(items)} event ranges for PandaID={key}")
            if es_jobs and not requested and not self.conf["instant"]:
                request = {i: {"pandaID": int(i), "nRanges": self.conf["nEventRangesToRequest"],
                               "taskID": jobs[i].get("taskID"), "jobsetID": jobs[i].get("jobsetID")}
                           for i in es_jobs}
                write_json(self.path("eventRequestFile"), request)
                requested = True
                self.log(f"requested event ranges for {es_jobs}")
            remaining = end - time.time()
            if remaining <= 0:
                return ranges
            self.sleep(min(remaining, max(float(self.conf["heartbeatInterval"]), 0.05)))

    def make_outputs(self, panda_id: str, params: dict, ranges: list, failed: bool) -> list[dict]:
        """Write the job's output files and log tarball; their stage-out descriptions."""
        work_dir = self.job_dir(panda_id)
        log_lfn = params.get("logFile") or f"log.{panda_id}.job.log.tgz"
        outs = [lfn for lfn in str(params.get("outFiles") or "").split(",") if lfn and lfn != log_lfn]
        size = int(self.conf["outputFileSize"])
        entries: list[dict] = []
        if not failed:
            for lfn in outs:
                path = os.path.join(work_dir, lfn)
                entries.append(self._describe(path, "output", self._write_payload(path, f"{panda_id}:{lfn}", size)))
        for rng in ranges:
            range_id = rng.get("eventRangeID")
            if failed:
                entries.append({"eventRangeID": range_id, "eventStatus": "failed"})
                continue
            path = os.path.join(work_dir, f"es_output.{panda_id}.{range_id}")
            data = self._write_payload(path, f"{panda_id}:{range_id}", max(size // 4, 16))
            entries.append(dict(self._describe(path, "es_output", data), eventRangeID=range_id,
                                eventStatus="finished"))
        inputs = [lfn for lfn in str(params.get("inFiles") or "").split(",") if lfn]
        found = [lfn for lfn in inputs if os.path.exists(os.path.join(work_dir, lfn))]
        self.log(f"PandaID={panda_id} inputs {len(found)}/{len(inputs)} present, {len(outs)} outputs, "
                 f"{len(ranges)} event ranges, {'failed' if failed else 'finished'}")
        log_path = os.path.join(work_dir, log_lfn)
        data = self._write_log_tarball(log_path, panda_id)
        entries.append(dict(self._describe(log_path, "log", data), guid=params.get("logGUID") or str(uuid.uuid4())))
        return entries

    def _write_payload(self, path: str, seed: str, size: int) -> bytes:
        """Write ``size`` bytes of payload output to ``path``; returns them."""
        line = f"dummy payload output {seed}\n".encode()
        data = (line * (size // len(line) + 1))[:size]
        write_file(path, data, self.atomic)
        return data

    @staticmethod
    def _describe(path: str, file_type: str, data: bytes | None = None) -> dict:
        """The stage-out description of the file at ``path``; size and checksum of ``data`` when
        given (what was just written there), else read from the file."""
        if data is None:
            fsize, chksum = os.stat(path).st_size, adler32_of(path)
        else:
            fsize, chksum = len(data), f"{zlib.adler32(data) & 0xFFFFFFFF:08x}"
        return {"path": path, "type": file_type, "fsize": fsize, "chksum": chksum, "guid": str(uuid.uuid4())}

    def _write_log_tarball(self, path: str, panda_id: str) -> bytes:
        """Write the log tarball (the pilot log as ``<PandaID>/pilotlog.txt``, gzipped); returns its
        bytes. A one-member tar made in memory (the member's ustar header from ``tarfile``, the data
        padded to 512-byte blocks, the two zero blocks that end an archive), gzipped with a small
        zlib window: what ``tarfile``'s own gzip mode writes, less the padding to a 10 kB record
        that readers do not need, in a fraction of its time."""
        text = ("\n".join(self.log_lines) + "\n").encode()
        info = tarfile.TarInfo(f"{panda_id}/{PILOT_LOG}")
        info.size = len(text)
        info.mtime = int(time.time())
        try:
            header = info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "surrogateescape")
        except ValueError:  # a name too long for ustar
            header = info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
        raw = header + text + b"\0" * (-len(text) % tarfile.BLOCKSIZE) + b"\0" * (2 * tarfile.BLOCKSIZE)
        packer = zlib.compressobj(1, zlib.DEFLATED, 16 + 9, 1)  # gzip wrapper, 512-byte window
        data = packer.compress(raw) + packer.flush()
        write_file(path, data, self.atomic)
        return data

    def report_job(self, panda_id: str, params: dict, entries: list[dict], failed: bool, diag: str) -> None:
        work_dir = self.job_dir(panda_id)
        end = time.time()
        n_events = sum(1 for e in entries if e.get("eventStatus") == "finished")
        exit_code = int(self.conf["failureExitCode"]) if failed else 0
        attrs = {"jobStatus": "failed" if failed else "finished", "startTime": utc_string(self.start),
                 "endTime": utc_string(end), "cpuConsumptionTime": max(int(end - self.start), 1),
                 "cpuConsumptionUnit": "s", "coreCount": params.get("coreCount") or 1, "nEvents": n_events,
                 "exeErrorCode": exit_code, "exeErrorDiag": diag if failed else "", "node": socket.gethostname()}
        if failed:
            attrs.update(pilotErrorCode=int(self.conf["failurePilotErrorCode"]), pilotErrorDiag=diag)
        report = {"reportVersion": "dummy-1.0", "exitCode": exit_code, "exitMsg": diag if failed else "OK",
                  "files": {"output": [{"subFiles": [{"name": os.path.basename(e["path"]), "file_size": e["fsize"],
                                                      "file_guid": e["guid"]}]}
                                       for e in entries if e.get("type") == "output"]},
                  "resource": {"executor": {"dummy": {"wallTime": round(end - self.start, 3)}}}}
        self.write_report("jobReportFile", work_dir, report)
        if entries:
            self.write_report("eventStatusDumpJsonFile", work_dir, {panda_id: entries})
        self.write_report("workerAttributesFile", work_dir, attrs)

    def write_report(self, name_key: str, work_dir: str, data: Any) -> None:
        """Write one report as JSON; cut in half when ``corruptFiles`` names it (fault knob)."""
        text = json.dumps(data).encode()
        if name_key in (self.conf["corruptFiles"] or ()):
            text = text[:len(text) // 2]
            self.log(f"wrote {self.names[name_key]} corrupt (corruptFiles)")
        write_file(self.path(name_key, work_dir), text, self.atomic)

    # -------------------------------------------------------------- main
    def run(self) -> int:
        """Play the pilot once; returns the process exit code (0, failureExitCode or 143)."""
        if not self.conf["instant"]:  # an instant run ends inside submit_workers: nobody can see it running
            self.write_status("running")
        self.log(f"start in {self.ap} pid={self.pid} workerID={self.conf['workerID']}")
        jobs: dict[str, dict] = {}
        ranges: dict[str, list] = {}
        failed = bool(self.conf["fail"])
        diag = "dummy pilot: failure requested (failure knob)" if failed else ""
        exit_code = int(self.conf["failureExitCode"]) if failed else 0
        try:
            jobs = self.load_jobs()
            self.log(f"{len(jobs)} jobs: {sorted(jobs)}" if jobs else "no job description (pull mode)")
            ranges = self.wait(0 if self.conf["instant"] else float(self.conf["sleepTime"]), jobs)
        except PilotTerminated as exc:
            failed, diag, exit_code = True, f"dummy pilot: terminated by {exc}", 143
        except Exception as exc:  # a broken job description must still end in a report
            failed, diag, exit_code = True, f"dummy pilot: {type(exc).__name__}: {exc}", 70
        for panda_id, params in jobs.items():
            try:
                entries = self.make_outputs(panda_id, params, ranges.get(panda_id, []), failed)
                self.report_job(panda_id, params, entries, failed, diag)
            except Exception as exc:
                failed, diag, exit_code = True, f"dummy pilot: reporting PandaID={panda_id}: {exc}", 70
        self.log(f"end status={'failed' if failed else 'finished'} exitCode={exit_code} {diag}")
        self.write_status("failed" if failed else "finished", exit_code, diag)
        return exit_code


def harvester_file_names() -> dict[str, str]:
    """``[payload_interaction]`` of the Harvester cfg in the environment (a batch job started by
    Harvester inherits ``PANDA_HOME`` or ``HARVESTER_CONFIG_FILE``), or {} without one."""
    path = os.environ.get("HARVESTER_CONFIG_FILE") or os.path.join(
        os.environ.get("PANDA_HOME", "/"), "etc", "panda", "panda_harvester.cfg")
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    try:
        parser.read(path)
    except configparser.Error:
        return {}
    if not parser.has_section("payload_interaction"):
        return {}
    return {k: v for k, v in parser.items("payload_interaction") if k in DEFAULT_FILE_NAMES}


def load_config(access_point: str, config_path: str | None) -> dict[str, Any]:
    """The pilot config JSON (``<access point>/dummy_pilot_conf.json`` by default), or {}.

    Without ``fileNames`` in it, the names come from the Harvester cfg in the environment.
    """
    path = config_path or os.path.join(access_point, CONFIG_FILE)
    conf: dict[str, Any] = {}
    if os.path.exists(path):
        with open(path) as stream:
            conf = json.load(stream)
    if not conf.get("fileNames"):
        names = harvester_file_names()
        if names:
            conf["fileNames"] = names
    return conf


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description="Dummy PanDA pilot for Harvester tests")
    parser.add_argument("--access-point", required=True, help="the worker's access point directory")
    parser.add_argument("--config", help=f"config JSON (default <access point>/{CONFIG_FILE})")
    parser.add_argument("--sleep", type=float, help="seconds to run")
    parser.add_argument("--fail", action="store_true", default=None, help="end with jobStatus failed")
    parser.add_argument("--exit-code", type=int, dest="failureExitCode", help="exit code when failing")
    parser.add_argument("--heartbeat-interval", type=float, dest="heartbeatInterval")
    parser.add_argument("--output-size", type=int, dest="outputFileSize", help="bytes per output file")
    parser.add_argument("--worker-id", type=int, dest="workerID")
    args = parser.parse_args(argv)
    conf = load_config(args.access_point, args.config)
    overrides = {"sleepTime": args.sleep, "fail": args.fail, "failureExitCode": args.failureExitCode,
                 "heartbeatInterval": args.heartbeatInterval, "outputFileSize": args.outputFileSize,
                 "workerID": args.workerID}
    conf.update({k: v for k, v in overrides.items() if v is not None})
    conf["instant"] = False

    def on_signal(signum: int, _frame: Any) -> None:
        raise PilotTerminated(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    pilot = DummyPilot(args.access_point, conf)
    try:
        return pilot.run()
    except PilotTerminated:  # a signal during the final reporting
        pilot.write_status("failed", 143, "dummy pilot: terminated while reporting")
        return 143


if __name__ == "__main__":
    sys.exit(main())
