"""SharedFileMessenger: a worker's reports are used whole or not at all, and the unusable ones are named."""

from __future__ import annotations

import json
import os

from pandaharvester.harvestermessenger.base_messenger import BaseMessenger, payload_file_names
from pandaharvester.harvestermessenger.shared_file_messenger import SharedFileMessenger

from test_messenger import make_job, make_worker

NAMES = payload_file_names()
DUMP = NAMES["eventStatusDumpJsonFile"]


def setup(tmp_path, panda_id: int = 7001):
    messenger = SharedFileMessenger()
    worker = make_worker(tmp_path, 81, [make_job(panda_id)])
    messenger.setup_access_points([worker])
    ap = worker.get_access_point()
    out_path = os.path.join(ap, f"out.{panda_id}.root")
    with open(out_path, "w") as stream:
        stream.write("data")
    return messenger, worker, ap, out_path


def write(ap: str, name: str, text: str) -> str:
    path = os.path.join(ap, name)
    with open(path, "w") as stream:
        stream.write(text)
    return path


def test_dump_with_an_unusable_entry_is_not_used_at_all_and_is_named(tmp_path):
    messenger, worker, ap, out_path = setup(tmp_path)
    entries = [{"path": out_path, "type": "output"},
               {"path": os.path.join(ap, "missing.root"), "type": "output"}]  # no fsize, no such file
    write(ap, DUMP, json.dumps({"7001": entries}))
    assert messenger.get_files_to_stage_out(worker) == {}, "half a job's outputs reported as all of them"
    read_path = os.path.join(ap, DUMP + ".read")
    problems = messenger.get_unreadable_reports(worker)
    assert list(problems) == [7001] and list(problems[7001]) == [read_path]
    assert "entry 1 of PandaID=7001" in problems[7001][read_path] and "FileNotFoundError" in problems[7001][read_path]
    assert os.path.exists(read_path)  # kept
    open(os.path.join(ap, "missing.root"), "w").close()  # the file turns up
    files = messenger.get_files_to_stage_out(worker)
    assert sorted(files[7001]) == ["missing.root", "out.7001.root"]
    assert messenger.get_unreadable_reports(worker) == {}


def test_dump_of_the_wrong_shape_is_kept_and_named(tmp_path):
    messenger, worker, ap, _out = setup(tmp_path)
    write(ap, DUMP, json.dumps([{"path": "x"}]))
    assert messenger.get_files_to_stage_out(worker) == {}
    read_path = os.path.join(ap, DUMP + ".read")
    assert os.path.exists(read_path)
    assert "not of the form" in messenger.get_unreadable_reports(worker)[7001][read_path]


def test_newer_dump_replaces_an_unreadable_one(tmp_path):
    messenger, worker, ap, out_path = setup(tmp_path)
    good = json.dumps({"7001": [{"path": out_path, "type": "output"}]})
    write(ap, DUMP, good[:20])
    assert messenger.get_files_to_stage_out(worker) == {}
    assert messenger.get_unreadable_reports(worker)
    write(ap, DUMP, good)  # the worker writes it again
    files = messenger.get_files_to_stage_out(worker)
    assert files[7001]["out.7001.root"][0]["fsize"] == 4
    assert not os.path.exists(os.path.join(ap, DUMP)) and messenger.get_unreadable_reports(worker) == {}


def test_unreadable_attributes_and_job_report_are_named(tmp_path):
    messenger, worker, ap, _out = setup(tmp_path)
    attrs = write(ap, NAMES["workerAttributesFile"], json.dumps(["finished"]))
    report = write(ap, NAMES["jobReportFile"], '{"exitCode": ')
    assert messenger.get_work_attributes(worker) == {7001: {}}
    problems = messenger.get_unreadable_reports(worker)[7001]
    assert "not a JSON object" in problems[attrs] and "JSONDecodeError" in problems[report]
    write(ap, NAMES["workerAttributesFile"], json.dumps({"jobStatus": "finished"}))
    write(ap, NAMES["jobReportFile"], json.dumps({"exitCode": 0}))
    assert messenger.get_unreadable_reports(worker) == {}
    assert messenger.get_work_attributes(worker)[7001]["metaData"] == {"exitCode": 0}


def test_readable_reports_and_no_reports_are_not_named(tmp_path):
    messenger, worker, ap, out_path = setup(tmp_path)
    assert messenger.get_unreadable_reports(worker) == {}
    write(ap, DUMP, json.dumps({"7001": [{"path": out_path, "type": "output"}]}))
    assert messenger.get_files_to_stage_out(worker)
    assert messenger.get_unreadable_reports(worker) == {}  # taken, readable, not yet acknowledged
    assert BaseMessenger().get_unreadable_reports(worker) == {}
