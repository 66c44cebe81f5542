"""The reports a worker leaves for its jobs, as the shared-file messenger reads them: whole or not at all.

The outputs dump (``eventStatusDumpJsonFile``, ``{PandaID: [file/event dicts]}``), the worker
attributes (``workerAttributesFile``, a JSON object: the job's end state) and the job report
(``jobReportFile``, any JSON: the job's metaData) carry what a job produced and how it ended.
A report that does not parse, is not of its shape or (the dump) has an entry that cannot be
used is *unreadable*: none of it is used and the file is kept, and
:func:`report_problem` says why, so that the monitor holds the job rather than end it without
its outputs (``SharedFileMessenger.get_unreadable_reports``, ``harvesterbody/monitor_checks.py``).
An event update file taken for reading counts too (its events would be lost with the job).

The requests a worker makes (event ranges, PandaIDs in pull mode, kill) are checked here for
their shape; the entries that cannot be used are named (the messenger logs them).
"""

from __future__ import annotations

import json
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
    """Why the report at ``path`` (of ``kind``: KIND_OUTPUTS, KIND_OBJECT, KIND_ANY, KIND_EVENTS) cannot be used;
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
    if kind == KIND_EVENTS:
        try:
            parse_event_updates(data)
        except ValueError as exc:
            return str(exc)
    return ""


# ---------------------------------------------------------------------------- requests and updates
KIND_EVENTS = "events"
# a kill request's content is only looked at for a diagnostic: read this much of it at most
KILL_REQUEST_PEEK = 65536


def parse_event_updates(data: Any) -> dict[int, list]:
    """``{PandaID: [event dicts]}`` of an event update file's content; ValueError naming the bad part."""
    if not isinstance(data, dict):
        raise ValueError(f"not of the form {{PandaID: [event dicts]}} but a JSON {type(data).__name__}")
    updates: dict[int, list] = {}
    for key, items in data.items():
        try:
            panda_id = int(key)
        except (TypeError, ValueError):
            raise ValueError(f"key {key!r} is not a PandaID") from None
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            raise ValueError(f"PandaID={key}: not a list of event dicts but {str(items)[:200]}")
        updates[panda_id] = items
    return updates


def read_event_updates(path: str) -> tuple[dict | None, str]:
    """``(parse_event_updates result, "")`` or ``(None, why)`` for an event update file."""
    try:
        ok, data, why = load_json(path)
    except FileNotFoundError as exc:
        return None, f"{type(exc).__name__}: {exc}"
    if not ok:
        return None, why
    try:
        return parse_event_updates(data), ""
    except ValueError as exc:
        return None, str(exc)


def parse_event_request(data: Any) -> tuple[dict, list[str]]:
    """``({PandaID: request params}, [problems])`` of an event request file's content: the entries
    that are not ``PandaID: {params}`` are left out, each named in the problems."""
    if not isinstance(data, dict):
        return {}, [f"not of the form {{PandaID: {{nRanges, ...}}}} but a JSON {type(data).__name__}"]
    requests: dict = {}
    problems: list[str] = []
    for key, params in data.items():
        try:
            int(key)
        except (TypeError, ValueError):
            problems.append(f"key {key!r} is not a PandaID")
            continue
        if not isinstance(params, dict):
            problems.append(f"PandaID={key}: not a dict of request parameters but {str(params)[:200]}")
            continue
        if "nRanges" in params:
            try:
                int(params["nRanges"])
            except (TypeError, ValueError):
                problems.append(f"PandaID={key}: nRanges={params['nRanges']!r} is not a number")
                continue
        requests[key] = params
    return requests, problems


def parse_panda_ids(data: Any) -> tuple[list, list[str]]:
    """``([PandaIDs], [problems])`` of a PandaIDs file's content (a JSON list of PandaIDs)."""
    if not isinstance(data, list):
        return [], [f"not a JSON list of PandaIDs but a JSON {type(data).__name__}"]
    ids: list = []
    problems: list[str] = []
    for item in data:
        if isinstance(item, bool) or not isinstance(item, (int, str)) or not str(item).strip().isdigit():
            problems.append(f"{str(item)[:100]!r} is not a PandaID")
        else:
            ids.append(int(item))
    return ids, problems


def kill_request_note(path: str) -> str:
    """"" when the kill request file is empty or JSON, else what is odd about it (for a diagnostic).

    The file's existence is the request (as in the original Harvester: pilots and wrappers
    ``touch`` it or write anything); its content is never required."""
    try:
        if os.path.isdir(path):
            return "it is a directory"
        with open(path, "rb") as stream:
            head = stream.read(KILL_REQUEST_PEEK + 1)
    except OSError as exc:
        return f"it cannot be read ({type(exc).__name__}: {exc})"
    if not head.strip():
        return ""
    if len(head) > KILL_REQUEST_PEEK:
        return f"it holds more than {KILL_REQUEST_PEEK} bytes"
    try:
        json.loads(head.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        return f"its content is not JSON ({type(exc).__name__}: {str(exc)[:100]}; starts {head[:40]!r})"
    return ""
