"""The reports a worker leaves for its jobs, as the shared-file messenger reads them: whole or not at all.

The outputs dump (``eventStatusDumpJsonFile``, ``{PandaID: [file/event dicts]}``), the worker
attributes (``workerAttributesFile``, a JSON object: the job's end state) and the job report
(``jobReportFile``, any JSON: the job's metaData) carry what a job produced and how it ended.
A report that does not parse, is not of its shape or (the dump) has an entry that cannot be
used is *unreadable*: none of it is used and the file is kept, and
:func:`report_problem` says why, so that the monitor holds the job rather than end it without
its outputs (``SharedFileMessenger.get_unreadable_reports``, ``harvesterbody/monitor_checks.py``).
"""

from __future__ import annotations

import os
import uuid
from typing import Any

from pandaharvester.harvestercore import core_utils

from .shared_file_io import load_json

# what each report must be, by its kind
KIND_OUTPUTS = "outputs"
KIND_OBJECT = "object"
KIND_ANY = "any"


def parse_outputs_dump(data: Any) -> tuple[dict, dict, int]:
    """``(files, events, n_entries)`` of a dump's content: ``{PandaID: {lfn: [file dicts]}}`` and
    ``{PandaID: [event dicts]}``. ValueError naming the bad part when any of it cannot be used
    (an output left out would be an output lost)."""
    if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
        raise ValueError("not of the form {PandaID: [file dicts]}")
    files: dict = {}
    events: dict = {}
    n_data = 0
    size_map: dict = {}
    chksum_map: dict = {}
    for key, entries in data.items():
        try:
            panda_id = int(key)
        except (TypeError, ValueError):
            raise ValueError(f"key {key!r} is not a PandaID") from None
        for index, info in enumerate(entries):
            try:
                n_data += 1
                event_range_id = info.get("eventRangeID")
                if "path" in info:
                    pfn = info["path"]
                    lfn = os.path.basename(pfn)
                    if pfn not in size_map:
                        size_map[pfn] = info["fsize"] if "fsize" in info else os.stat(pfn).st_size
                    if pfn not in chksum_map:
                        chksum_map[pfn] = info["chksum"] if "chksum" in info else core_utils.calc_adler32(pfn)
                    entry = {"path": pfn, "fsize": size_map[pfn], "type": info["type"],
                             "guid": info.get("guid") or str(uuid.uuid4()), "chksum": chksum_map[pfn]}
                    if info["type"] in ("log", "output", "checkpoint"):
                        entry["isZip"] = 0
                    elif info["type"] == "zip_output":
                        entry["isZip"] = 1
                    elif "isZip" in info:
                        entry["isZip"] = info["isZip"]
                    files.setdefault(panda_id, {}).setdefault(lfn, []).append(entry)
                    if info["type"] not in ("es_output", "zip_output"):
                        continue
                    entry["eventRangeID"] = event_range_id
                events.setdefault(panda_id, []).append(
                    {"eventRangeID": event_range_id, "eventStatus": info["eventStatus"]})
            except Exception as exc:
                raise ValueError(f"entry {index} of PandaID={key} ({str(info)[:200]}) cannot be used: "
                                 f"{type(exc).__name__}: {exc}") from None
    return files, events, n_data


def read_outputs_dump(path: str) -> tuple[tuple[dict, dict, int] | None, str]:
    """``(parse_outputs_dump result, "")``, or ``(None, why)`` when the dump is unreadable.
    A missing file raises ``FileNotFoundError``."""
    ok, data, why = load_json(path)
    if not ok:
        return None, why
    try:
        return parse_outputs_dump(data), ""
    except ValueError as exc:
        return None, str(exc)


def report_problem(path: str, kind: str) -> str:
    """Why the report at ``path`` (of ``kind``: KIND_OUTPUTS, KIND_OBJECT, KIND_ANY) cannot be used;
    "" when it can, or when there is no such file."""
    try:
        if kind == KIND_OUTPUTS:
            return read_outputs_dump(path)[1]
        ok, data, why = load_json(path)
    except FileNotFoundError:
        return ""
    if not ok:
        return why
    if kind == KIND_OBJECT and not isinstance(data, dict):
        return f"not a JSON object but {type(data).__name__}"
    return ""
