"""Queue config validation: one clear error per problem, and bad queues never take good ones down."""

from __future__ import annotations

import logging

import pytest

from pandaharvester.errors import QueueConfigError

from test_queue_config_helpers import full_queue, load, make_mapper, plugin, write_json


def only_error(mapper, queue_name=None):
    errors = [e for e in mapper.errors if queue_name is None or e.queue_name == queue_name]
    assert len(errors) == 1, [str(e) for e in mapper.errors]
    assert isinstance(errors[0], QueueConfigError)
    return errors[0]


def test_invalid_json_names_file_line_and_column(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{\n  "Q": {\n    "maxWorkers": 3,,\n  }\n}\n')
    mapper = make_mapper(path)
    assert mapper.get_all_queues() == {}
    error = only_error(mapper)
    assert error.source == str(path)
    assert "line 3 column 21" in str(error) and str(path) in str(error)


def test_missing_local_file_is_one_error(tmp_path):
    mapper = make_mapper(tmp_path / "absent.json")
    assert mapper.get_all_queues() == {}
    error = only_error(mapper)
    assert "cannot read queue config file" in str(error) and "absent.json" in str(error)


def test_top_level_and_entry_types(tmp_path):
    mapper = load(tmp_path, ["not", "a", "dict"])
    assert "top level must be a JSON object" in str(only_error(mapper))
    mapper = load(tmp_path, {"GOOD": full_queue(), "BAD": "text"})
    assert list(mapper.get_all_queues()) == ["GOOD"]
    assert "must be a JSON object" in str(only_error(mapper, "BAD"))


@pytest.mark.parametrize("attrs, key, fragment", [
    ({"maxWorkers": "abc"}, "maxWorkers", "must be an integer (or null), got str 'abc'"),
    ({"nQueueLimitJob": [1]}, "nQueueLimitJob", "must be an integer"),
    ({"maxSubmissionAttempts": "x"}, "maxSubmissionAttempts", "must be an integer"),
    ({"mapType": "OneToTwo"}, "mapType", "must be one of NoJob, OneToOne, ManyToOne, OneToMany"),
    ({"runMode": "master"}, "runMode", "must be one of self, slave"),
    ({"truePilot": "yes"}, "truePilot", "must be true or false"),
    ({"useJobLateBinding": 1}, "useJobLateBinding", "must be true or false"),
    ({"prodSourceLabel": 5}, "prodSourceLabel", "must be a string"),
    ({"queueStatus": ["online"]}, "queueStatus", "must be a string or null"),
    ({"getJobCriteria": "a=1,b"}, "getJobCriteria", "'b' of 'a=1,b' is not 'key=value'"),
    ({"submitter": {"module": "x.y"}}, "submitter", "lacks 'name'"),
    ({"monitor": {"name": "M", "extra": 1}}, "monitor", "lacks 'module'"),
    ({"throttler": "SimpleThrottler"}, "throttler", "must be a dict with 'module' and 'name'"),
    ({"credmanagers": [{"module": "m"}]}, "credmanagers", "list of dicts each with 'module' and 'name'"),
    ({"submitter": plugin(middleware="nowhere")}, "submitter", "middleware 'nowhere' does not name a dict"),
])
def test_bad_value_gives_one_error_naming_queue_and_key(tmp_path, attrs, key, fragment):
    mapper = load(tmp_path, {"GOOD": full_queue(), "BAD": full_queue(**attrs)})
    assert list(mapper.get_all_queues()) == ["GOOD"]
    error = only_error(mapper)
    assert (error.queue_name, error.key) == ("BAD", key)
    assert fragment in str(error) and "'BAD'" in str(error) and f"'{key}'" in str(error)


def test_missing_mandatory_plugins_one_error_each(tmp_path):
    entry = full_queue()
    del entry["messenger"], entry["workerMaker"]
    mapper = load(tmp_path, {"GOOD": full_queue(), "BAD": entry})
    assert list(mapper.get_all_queues()) == ["GOOD"]
    assert sorted(e.key for e in mapper.errors) == ["messenger", "workerMaker"]
    assert all(e.queue_name == "BAD" and "mandatory plugin section" in str(e) for e in mapper.errors)


def test_unknown_template(tmp_path):
    mapper = load(tmp_path, {"T_TEMPLATE": full_queue(), "GOOD": {"templateQueueName": "T_TEMPLATE"},
                             "BAD": {"templateQueueName": "NOPE"}})
    assert list(mapper.get_all_queues()) == ["GOOD"]
    error = only_error(mapper)
    assert (error.queue_name, error.key) == ("BAD", "templateQueueName")
    assert "unknown template 'NOPE' (known templates: T_TEMPLATE)" in str(error)


def test_plugin_import_check_on_and_off(tmp_path):
    bad = full_queue(submitter=plugin("pandaharvester.no_such_module", "Nope"),
                     monitor=plugin("collections", "NoSuchClass"))
    mapper = load(tmp_path, {"GOOD": full_queue(), "BAD": bad}, check_plugins=True)
    assert list(mapper.get_all_queues()) == ["GOOD"]
    by_key = {e.key: str(e) for e in mapper.errors}
    assert sorted(by_key) == ["monitor", "submitter"]
    assert "pandaharvester.no_such_module" in by_key["submitter"] and "'BAD'" in by_key["submitter"]
    assert "has no class 'NoSuchClass'" in by_key["monitor"]
    relaxed = load(tmp_path, {"GOOD": full_queue(), "BAD": bad}, check_plugins=False)
    assert sorted(relaxed.get_all_queues()) == ["BAD", "GOOD"] and relaxed.errors == []


# ---------------------------------------------------------------- bad input (found by the fuzzer)
def test_a_file_that_is_not_utf8_is_one_error_with_line_and_column(tmp_path):
    path = tmp_path / "q.json"
    path.write_bytes(b'{\n  "Q": {"x": "\xff"}\n}\n')
    mapper = make_mapper(path)
    assert mapper.get_all_queues() == {}  # no UnicodeDecodeError out of load_data
    assert str(only_error(mapper)) == (f"[{path}]: byte 0xff at line 2 column 15 is not UTF-8 text: "
                                       "save the file as UTF-8")


def test_a_file_holding_null_is_an_error_not_an_empty_config(tmp_path):
    mapper = load(tmp_path, None)
    assert "top level must be a JSON object {queueName: {...}}, got null" in str(only_error(mapper))


@pytest.mark.parametrize("value", [[], {"a": 1}, 5])
def test_a_template_name_of_the_wrong_type_is_an_error(tmp_path, value):
    mapper = load(tmp_path, {"GOOD": full_queue(), "BAD": full_queue(templateQueueName=value)})  # TypeError before
    error = only_error(mapper, "BAD")
    assert error.key == "templateQueueName" and "must be the name of a template queue (a string) or null" in str(error)
    assert list(mapper.get_all_queues()) == ["GOOD"]


def test_a_typo_of_a_queue_key_is_warned_with_the_known_name(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="panda.log.queue_config_mapper"):
        mapper = load(tmp_path, {"Q": full_queue(maxWorker=3, siteSpecificThing=1),
                                 "T_TEMPLATE": full_queue(nQueueLimitWorkr=1)})
    assert list(mapper.get_all_queues()) == ["Q"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sum("queue 'Q': unknown key 'maxWorker': did you mean maxWorkers?" in w for w in warnings) == 1
    assert sum("template 'T_TEMPLATE': unknown key 'nQueueLimitWorkr': did you mean nQueueLimitWorker?" in w
               for w in warnings) == 1
    assert not any("siteSpecificThing" in w for w in warnings)  # not close to a known key: a plugin's own


def test_a_queue_or_key_given_twice_is_warned(tmp_path, caplog):
    path = tmp_path / "q.json"
    path.write_text('{"Q": {"maxWorkers": 1, "maxWorkers": 2}, "R": {}, "R": {"maxWorkers": 3}}')
    with caplog.at_level(logging.WARNING, logger="panda.log.queue_config_mapper"):
        make_mapper(path).load_data()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sum(f"[{path}] queue 'R' is defined twice: only the last definition is used" in w for w in warnings) == 1
    assert sum(f"[{path}] key 'maxWorkers' is given twice in one object: only the last value is used" in w
               for w in warnings) == 1


def test_a_typo_of_module_or_of_a_role_is_named_in_the_error(tmp_path):
    queue = full_queue()
    queue["submitter"] = {"moduel": "x", "name": "y"}
    queue["sweepr"] = queue.pop("sweeper")
    mapper = load(tmp_path, {"Q": queue})
    by_key = {e.key: str(e) for e in mapper.errors}
    assert by_key["submitter"].endswith("lacks 'module' (dotted module path and class name); 'moduel' looks like "
                                        "a typo of 'module'")
    assert by_key["sweeper"].endswith("'sweepr' looks like a typo of it")


def test_errors_are_logged(tmp_path, caplog):
    with caplog.at_level(logging.ERROR, logger="panda.log.queue_config_mapper"):
        load(tmp_path, {"BAD": full_queue(maxWorkers="abc")})
    assert any("'BAD'" in record.getMessage() and "maxWorkers" in record.getMessage() for record in caplog.records)


def test_errors_reset_on_reload(tmp_path):
    path = write_json(tmp_path / "q.json", {"BAD": full_queue(maxWorkers="abc")})
    mapper = make_mapper(path)
    mapper.load_data()
    assert len(mapper.errors) == 1
    write_json(path, {"BAD": full_queue(maxWorkers=3)})
    mapper.load_data(force=True)
    assert mapper.errors == [] and mapper.has_queue("BAD")


def test_reload_keeps_last_good_config_of_a_queue_that_became_bad(tmp_path):
    path = write_json(tmp_path / "q.json", {"A": full_queue(maxWorkers=3), "B": full_queue(maxWorkers=4),
                                            "GONE": full_queue()})
    mapper = make_mapper(path)
    mapper.load_data()
    good_a = mapper.get_queue("A")
    # A is broken by an edit, GONE is removed on purpose, B changes validly
    write_json(path, {"A": full_queue(maxWorkers="three"), "B": full_queue(maxWorkers=5)})
    mapper.load_data(force=True)
    assert (only_error(mapper).queue_name, only_error(mapper).key) == ("A", "maxWorkers")
    assert mapper.get_queue("A") is good_a and mapper.get_queue("A").maxWorkers == 3
    assert "A" in mapper.get_active_queues() and mapper.kept_previous == ["A"]
    assert mapper.get_queue("B").maxWorkers == 5
    assert not mapper.has_queue("GONE")  # removed from a readable file: really gone
    # fixed: the new version replaces the kept one
    write_json(path, {"A": full_queue(maxWorkers=6), "B": full_queue(maxWorkers=5)})
    mapper.load_data(force=True)
    assert mapper.errors == [] and mapper.kept_previous == []
    assert mapper.get_queue("A").maxWorkers == 6 and mapper.get_queue("A").configID != good_a.configID


def test_reload_keeps_every_queue_while_the_file_is_unreadable(tmp_path, caplog):
    path = write_json(tmp_path / "q.json", {"A": full_queue(), "B": full_queue()})
    mapper = make_mapper(path)
    before = dict(mapper.get_all_queues())
    path.write_text('{"A": {"maxWorkers": 3,')  # half-written by an editor
    with caplog.at_level(logging.ERROR, logger="panda.log.queue_config_mapper"):
        mapper.load_data(force=True)
    error = only_error(mapper)
    assert error.queue_name is None and "invalid JSON" in str(error) and str(path) in str(error)
    assert mapper.get_all_queues() == before and sorted(mapper.kept_previous) == ["A", "B"]
    assert sorted(mapper.get_active_queues()) == ["A", "B"]
    kept_lines = [r.getMessage() for r in caplog.records if "keeping the previous one" in r.getMessage()]
    assert len(kept_lines) == 2 and all(f"configID={before['A'].configID}" in line or
                                        f"configID={before['B'].configID}" in line for line in kept_lines)
    # a first load has nothing to keep
    fresh = make_mapper(path)
    assert fresh.get_all_queues() == {} and fresh.kept_previous == []
