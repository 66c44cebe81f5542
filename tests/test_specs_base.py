"""SpecBase: column metadata, change tracking, DB row round trips, blob encoding, pickling."""

from __future__ import annotations

import datetime
import json
import pickle
import sqlite3

import pytest

from pandaharvester.harvestercore.cache_spec import CacheSpec
from pandaharvester.harvestercore.command_spec import CommandSpec
from pandaharvester.harvestercore.diag_spec import DiagSpec
from pandaharvester.harvestercore.event_spec import EventSpec
from pandaharvester.harvestercore.file_spec import FileSpec
from pandaharvester.harvestercore.job_spec import JobSpec
from pandaharvester.harvestercore.job_worker_relation_spec import JobWorkerRelationSpec
from pandaharvester.harvestercore.panda_queue_spec import PandaQueueSpec
from pandaharvester.harvestercore.process_lock_spec import ProcessLockSpec
from pandaharvester.harvestercore.queue_config_dump_spec import QueueConfigDumpSpec
from pandaharvester.harvestercore.seq_number_spec import SeqNumberSpec
from pandaharvester.harvestercore.service_metrics_spec import ServiceMetricSpec
from pandaharvester.harvestercore.spec_base import PythonObjectEncoder, SpecBase, as_python_object
from pandaharvester.harvestercore.work_spec import WorkSpec

ALL_SPECS = [
    CacheSpec, CommandSpec, DiagSpec, EventSpec, FileSpec, JobSpec, JobWorkerRelationSpec, PandaQueueSpec,
    ProcessLockSpec, QueueConfigDumpSpec, SeqNumberSpec, ServiceMetricSpec, WorkSpec,
]


class Sample(SpecBase):
    attributesWithTypes = (
        "sampleID:integer primary key autoincrement",
        "name:text / index",
        "code:text / unique",
        "counter:integer",
        "payload:blob",
        "extra:blob",
        "stamp:timestamp / index",
        "note:varchar(500)",
    )
    zeroAttrs = ("counter",)
    skipAttrsToSlim = ("payload",)


# ---------------------------------------------------------------------- metadata
def test_column_metadata():
    assert Sample.column_list() == ("sampleID", "name", "code", "counter", "payload", "extra", "stamp", "note")
    assert Sample.attributes == Sample.column_list()
    assert Sample.column_types()["sampleID"] == "integer primary key autoincrement"
    assert Sample.column_types()["note"] == "varchar(500)"
    assert Sample.column_types()["name"] == "text"
    assert Sample.indexed_columns() == ("name", "stamp")
    assert Sample.unique_columns() == ("code",)
    assert Sample.blob_columns() == frozenset({"payload", "extra"})
    assert Sample.serializedAttrs == {"payload", "extra"}
    assert Sample.primary_key() == "sampleID"
    assert Sample.slim_column_list() == ("sampleID", "name", "code", "counter", "extra", "stamp", "note")


def test_sql_fragments():
    assert Sample.column_names() == "sampleID,name,code,counter,payload,extra,stamp,note"
    assert Sample.column_names(prefix="s") == "s.sampleID,s.name,s.code,s.counter,s.payload,s.extra,s.stamp,s.note"
    assert Sample.column_names(slim=True) == "sampleID,name,code,counter,extra,stamp,note"
    assert Sample.bind_values_expression() == "VALUES(:sampleID,:name,:code,:counter,:payload,:extra,:stamp,:note)"
    s = Sample()
    assert s.bind_update_changes_expression() == " "
    s.note = "x"
    s.name = "n"
    assert s.bind_update_changes_expression() == "name=:name,note=:note "


@pytest.mark.parametrize("cls", ALL_SPECS)
def test_every_spec_is_consistent(cls):
    cols = cls.column_list()
    assert len(cols) == len(set(cols)) > 0
    assert set(cls.zeroAttrs) <= set(cols)
    assert cls.blob_columns() <= set(cols)
    assert set(cls.indexed_columns()) <= set(cols)
    spec = cls()
    assert all(hasattr(spec, c) for c in cols)
    assert len(spec.values_list()) == len(cols)
    assert set(spec.values_map()) == {":" + c for c in cols}


def test_primary_keys_as_in_original():
    assert WorkSpec.primary_key() == "workerID"
    assert WorkSpec.column_types()["workerID"] == "integer primary key"
    assert JobSpec.primary_key() == "PandaID"
    assert FileSpec.column_types()["fileID"] == "integer primary key autoincrement"
    assert PandaQueueSpec.column_types()["uniqueName"] == "text primary key"
    assert CacheSpec.primary_key() == "mainKey"
    assert ProcessLockSpec.primary_key() == "processName"
    assert SeqNumberSpec.primary_key() == "numberName"
    assert DiagSpec.primary_key() == "diagID"
    assert QueueConfigDumpSpec.unique_columns() == ("dumpUniqueName",)
    assert EventSpec.primary_key() is None
    assert JobWorkerRelationSpec.indexed_columns() == ("PandaID", "workerID")


# ---------------------------------------------------------------------- change tracking
def test_defaults_and_zero_attrs():
    s = Sample()
    assert s.counter == 0 and s.name is None and s.payload is None
    assert not s.has_updated_attributes()
    assert s.get_changed_attributes() == {}


def test_change_tracking_records_only_real_changes():
    s = Sample()
    s.name = None  # same value: not a change
    s.counter = 0
    assert not s.has_updated_attributes()
    s.name = "a"
    s.counter = 3
    s.not_a_column = 42  # plain attribute, never tracked
    assert s.get_changed_attributes() == {"name": "a", "counter": 3}
    assert s.not_a_column == 42
    s.reset_changed_list()
    s.name = "a"
    assert not s.has_updated_attributes()
    s.force_update("name")
    s.force_update("not_a_column")
    assert s.get_changed_attributes() == {"name": "a"}
    s.force_not_update("name")
    s.force_not_update("name")  # twice is harmless
    assert not s.has_updated_attributes()


def test_in_place_blob_change_needs_force_update():
    s = Sample()
    s.payload = {"a": 1}
    s.reset_changed_list()
    s.payload["b"] = 2
    assert not s.has_updated_attributes()
    s.force_update("payload")
    assert s.values_map(only_changed=True) == {":payload": json.dumps({"a": 1, "b": 2})}


def test_set_attributes_with_dict():
    s = Sample()
    s.set_attributes_with_dict({"name": "x", "counter": 5, "helper": "h"})
    assert (s.name, s.counter, s.helper) == ("x", 5, "h")
    assert set(s.get_changed_attributes()) == {"name", "counter"}


# ---------------------------------------------------------------------- values and pack
def test_values_list_and_map():
    s = Sample()
    s.counter = None  # zero attribute: written as 0
    s.payload = {"k": [1, 2]}
    s.name = "n"
    values = s.values_list()
    assert values == [None, "n", None, 0, '{"k": [1, 2]}', "null", None, None]
    # counter went 0 -> None: a change, written as 0
    assert s.values_map(only_changed=True) == {":payload": '{"k": [1, 2]}', ":name": "n", ":counter": 0}
    assert s.values_list(only_changed=True) == ["n", 0, '{"k": [1, 2]}']


def test_blob_round_trip_with_datetimes_and_sets():
    stamp = datetime.datetime(2024, 1, 2, 3, 4, 5, 678901)
    s = Sample()
    s.payload = {"when": stamp, "ids": {3, 1}, "nested": [{"t": stamp}], "n": None}
    s.stamp = stamp
    text = s.values_map()[":payload"]
    assert isinstance(text, str)
    json.loads(text)  # valid JSON
    back = Sample.from_values(s.values_list())
    assert back.payload == {"when": stamp, "ids": {1, 3}, "nested": [{"t": stamp}], "n": None}
    assert back.stamp == stamp
    assert not back.has_updated_attributes()


def test_encoder_and_hook_directly():
    stamp = datetime.datetime(2020, 5, 6, 7, 8, 9)
    text = json.dumps({"a": stamp}, cls=PythonObjectEncoder)
    assert "_non_json_object" in text
    assert json.loads(text, object_hook=as_python_object) == {"a": stamp}
    # a broken payload is left as stored instead of raising
    assert json.loads('{"_non_json_object": "bm90IGEgcGlja2xl"}', object_hook=as_python_object) == {
        "_non_json_object": "bm90IGEgcGlja2xl"
    }


def test_pack_from_mapping_sequence_and_slim():
    row = {"sampleID": 1, "name": "n", "code": "c", "counter": 2, "payload": '{"a": 1}', "extra": "null",
           "stamp": None, "note": "hi"}
    s = Sample()
    s.pack(row)
    assert s.payload == {"a": 1} and s.extra is None and s.note == "hi"
    assert not s.has_updated_attributes()
    s2 = Sample()
    s2.pack(row, slim=True)
    assert s2.payload is None and s2.name == "n"
    s3 = Sample()
    s3.pack([1, "n", "c", 2, "[1]", "not json", None, "hi"])
    assert s3.payload == [1] and s3.extra == "not json"
    s4 = Sample()
    s4.pack([1, "n", "c", 2, '{"e": 1}', None, "hi"], slim=True)  # slim column order
    assert s4.payload is None and s4.extra == {"e": 1} and s4.note == "hi"
    with pytest.raises(ValueError):
        Sample().pack([1, 2, 3])


def test_pack_from_sqlite_row():
    conn = sqlite3.connect(":memory:")
    conn.row_factory = sqlite3.Row
    cols = ",".join(f"{n} {t.split()[0]}" for n, t in Sample.column_types().items())
    conn.execute(f"CREATE TABLE t ({cols})")
    src = Sample()
    src.sampleID, src.name, src.payload = 7, "row", {"when": datetime.datetime(2021, 1, 1)}
    conn.execute(f"INSERT INTO t ({Sample.column_names()}) {Sample.bind_values_expression()}",
                 {k[1:]: v for k, v in src.values_map().items()})
    row = conn.execute(f"SELECT {Sample.column_names()} FROM t").fetchone()
    s = Sample.from_values(row)
    assert s.sampleID == 7 and s.payload == {"when": datetime.datetime(2021, 1, 1)} and s.counter == 0
    plain = conn.execute(f"SELECT {Sample.column_names(slim=True)} FROM t").fetchone()
    s2 = Sample()
    s2.pack(tuple(plain), slim=True)
    assert s2.name == "row" and s2.payload is None


def test_set_blob_attribute():
    s = Sample()
    s.set_blob_attribute("payload", '{"x": 1}')
    assert s.payload == {"x": 1} and not s.has_updated_attributes()
    s.set_blob_attribute("payload", "{broken")
    assert s.payload == {"x": 1}


# ---------------------------------------------------------------------- pickling
def test_pickle_round_trip_empties_change_list():
    s = Sample()
    s.name = "p"
    s.payload = {"t": datetime.datetime(2022, 2, 2)}
    s.helper = [1]
    back = pickle.loads(pickle.dumps(s))
    assert type(back) is Sample
    assert (back.name, back.payload, back.helper) == ("p", {"t": datetime.datetime(2022, 2, 2)}, [1])
    assert not back.has_updated_attributes()
    back.name = "q"
    assert back.get_changed_attributes() == {"name": "q"}


def test_construction_is_cheap():
    import time

    start = time.perf_counter()
    for i in range(20000):
        w = WorkSpec()
        w.workerID = i
        w.status = "running"
    elapsed = time.perf_counter() - start
    assert elapsed < 2.0, f"20k WorkSpecs took {elapsed:.2f}s"
