"""The cfg key table at work: one line per bad value, required keys, feature warnings, typed reads."""

from __future__ import annotations

from pathlib import Path

import pytest

import harvester_env
from pandaharvester.errors import ConfigError
from pandaharvester.harvesterconfig import harvester_config, panda_common, schema
from pandaharvester.harvesterconfig._parser import convert_value


def _cfg_path(home: Path) -> str:
    return str(home / "etc" / "panda" / "panda_harvester.cfg")


def test_the_test_instance_cfg_has_no_problem_and_no_warning(fresh_home) -> None:
    fresh_home()
    assert schema.validate() == []
    assert schema.feature_warnings() == []


# the values that killed an agent thread or gave a bare Python error before they were checked at start
ISSUE_BAD_VALUES = [
    ("monitor", "sleepTime", "abc", "must be a number from 0 to 1,000,000,000 (seconds)"),
    ("monitor", "lockInterval", "abc", "must be a number from 0 to 1,000,000,000 (seconds)"),
    ("monitor", "nThreads", "abc", "must be an integer from 0 to 1000 (number of threads, 0 for none)"),
    ("jobfetcher", "maxJobs", "abc", "must be an integer from 0 to 1,000,000,000"),
    ("propagator", "nJobsInBulk", "abc", "must be an integer from 1 to 1,000,000,000"),
    ("master", "logDir", "/etc/passwd", "is not a directory: it must be a writable directory (or one that can be "
                                        "created)"),
]


@pytest.mark.parametrize("section, key, value, requirement", ISSUE_BAD_VALUES + [
    ("monitor", "maxWorkers", "0", "must be an integer from 1 to 1,000,000,000"),
    ("propagator", "minMessageLevel", "LOUD", "must be one of CRITICAL, ERROR, WARNING, INFO, DEBUG, NOTSET"),
    ("db", "engine", "oracle", "must be one of sqlite, mariadb, mysql"),
    ("db", "tablePrefix", "site-A", "must be a letter followed by letters, digits or _ (at most 20 characters)"),
    ("pandacon", "transport", "curl", "must be one of requests, pycurl"),
    ("submitter", "respectSleepTime", "true", "must be True or False"),
    ("submitter", "activateWorkerFactor", "often", "must be one of auto or a number ≥ 0"),
    ("watcher", "mailPort", "70000", "must be an integer from 1 to 65535"),
    ("qconf", "resolverConfig", "[1, 2]", "must be a JSON object (continuation lines indented)"),
    ("log_level", "monitor", "LOUD", "must be one of CRITICAL, ERROR, WARNING, INFO, DEBUG, NOTSET"),
])
def test_a_bad_value_gives_one_line_naming_file_section_key_and_value(fresh_home, section, key, value,
                                                                      requirement) -> None:
    home = fresh_home({section: {key: value}})
    shown = repr(convert_value(section, key, value, {}))  # '0' is read as the integer 0
    assert schema.validate() == [f"{_cfg_path(home)} [{section}] {key} = {shown}: {requirement}"]


def test_log_dir_below_a_file_cannot_be_created(fresh_home) -> None:
    home = fresh_home({"master": {"logDir": "/etc/passwd/logs"}})
    [line] = schema.validate()
    assert line.startswith(f"{_cfg_path(home)} [master] logDir = '/etc/passwd/logs': cannot be created")


def test_good_values_of_every_kind_pass(fresh_home, tmp_path) -> None:
    fresh_home({"monitor": {"sleepTime": "0.5", "nThreads": "0"}, "submitter": {"activateWorkerFactor": "auto"},
                "db": {"engine": "SQLite"}, "master": {"logDir": str(tmp_path / "new" / "logs")},
                "log_level": {"monitor": "debug"}, "qconf": {"resolverConfig": '{"refreshPeriod": 60}'}})
    assert schema.validate() == []


def test_several_problems_give_one_line_each(fresh_home) -> None:
    fresh_home({"monitor": {"sleepTime": "abc"}, "sweeper": {"keepFailed": "-1"}})
    problems = schema.validate()
    assert len(problems) == 2
    assert "[sweeper] keepFailed = -1: must be a number from 0 to 200000 (hours)" in problems[1]


def test_a_secret_value_is_masked_in_the_line(fresh_home) -> None:
    fresh_home({"watcher": {"mailPassword": "[1, 2]"}})
    [line] = schema.validate()
    assert "[watcher] mailPassword = '********': must be a single value" in line
    assert "1, 2" not in line


def _drop_key(home: Path, section: str, key: str) -> None:
    harvester_env.drop_key(home, section, key)
    harvester_config.reload()


def test_a_missing_required_key_says_what_to_add(fresh_home) -> None:
    home = fresh_home()
    _drop_key(home, "monitor", "maxWorkers")
    assert schema.validate() == [f"{_cfg_path(home)} [monitor] maxWorkers is not set: add 'maxWorkers = 500' "
                                 "under [monitor] (workers checked in one cycle); see etc/panda_harvester.cfg.rpmnew"]


def test_a_missing_harvester_id_is_a_problem(fresh_home) -> None:
    home = fresh_home()
    _drop_key(home, "master", "harvester_id")
    [line] = schema.validate()
    assert line.startswith(f"{_cfg_path(home)} [master] harvester_id is not set: add 'harvester_id = ...' "
                           "under [master] (the id of this instance as registered in the PanDA server")


def test_the_templates_fixme_is_a_problem(fresh_home) -> None:
    fresh_home({"master": {"harvester_id": "FIXME"}})
    [line] = schema.validate()
    assert "[master] harvester_id = 'FIXME' still holds the template's FIXME: replace it with the id" in line


def test_keys_of_unimplemented_features_are_not_checked_but_warned_when_turned_on(fresh_home) -> None:
    home = fresh_home({"monitor": {"pluginCacheEnable": "True", "pluginCacheRefreshInterval": "soon"},
                       "apfmon": {"active": "True"}, "zipper": {"usePostZipping": "True"},
                       "file_syncer": {"pluginConfigs": '[{"module": "m", "name": "n"}]'}})
    assert schema.validate() == []
    warnings = schema.feature_warnings()
    where = _cfg_path(home)
    assert warnings == [
        f"{where} [monitor] pluginCacheEnable = True: the monitor plugin cache is not implemented in this "
        "Harvester: plugins are called every check",
        f"{where} [zipper] usePostZipping = True: two-stage zipping (async_zip_output then post_zip_output) is not "
        "implemented in this Harvester: outputs are zipped in one step with zip_output",
        f"{where} [apfmon] active = True: APFMon reporting is not implemented in this Harvester: nothing is sent "
        "to [apfmon] base_url",
        f"{where} [file_syncer] pluginConfigs = [{{'module': 'm', 'name': 'n'}}]: the file syncer agent is not "
        "implemented in this Harvester: no file is synced",
    ]


def test_an_unknown_key_of_a_known_section_is_warned_with_the_likely_key(fresh_home) -> None:
    home = fresh_home({"monitor": {"sleeptime": "5"}, "my_plugin_section": {"anything": "1"}})
    assert schema.feature_warnings() == [f"unknown key [monitor] sleeptime in {_cfg_path(home)}: did you mean "
                                         "sleepTime? (it has no effect)"]


def test_cfg_value_checks_and_falls_back_to_the_table_default(fresh_home) -> None:
    fresh_home({"monitor": {"sleepTime": "7"}})
    assert schema.cfg_value("monitor", "sleepTime") == 7
    assert schema.cfg_value("submitter", "activateWorkerFactor") == 1.0  # not in the test cfg: table default
    assert schema.cfg_value("submitter", "activateWorkerFactor", 5) == 5  # the caller's default wins
    assert schema.cfg_value("no_such_section", "x", 3) == 3
    home = fresh_home({"monitor": {"sleepTime": "abc"}})
    with pytest.raises(ConfigError) as err:
        schema.cfg_value("monitor", "sleepTime")
    assert str(err.value) == (f"{_cfg_path(home)} [monitor] sleepTime = 'abc': must be a number from 0 to "
                              "1,000,000,000 (seconds)")


def test_cfg_value_gives_a_choice_as_the_table_spells_it(fresh_home) -> None:
    """``activateWorkerFactor = AUTO`` passed the check, then float('AUTO') killed the start (found by the fuzzer)."""
    fresh_home({"submitter": {"activateWorkerFactor": " AUTO "}, "db": {"engine": "SQLite"}})
    assert schema.validate() == []
    assert schema.cfg_value("submitter", "activateWorkerFactor") == "auto"
    assert schema.cfg_value("db", "engine") == "sqlite"
    from pandaharvester.harvesterbody.worker_adjuster import WorkerAdjuster

    assert WorkerAdjuster(None).activate_worker_factor == "auto"


def test_origin_names_the_source_that_set_the_key(fresh_home) -> None:
    home = fresh_home()
    configmap = home / "etc" / "configmap" / "panda_harvester_configmap.json"
    configmap.parent.mkdir(parents=True)
    configmap.write_text('{"monitor": {"sleepTime": "abc"}}')
    harvester_config.reload()
    assert schema.validate() == [f"{configmap} [monitor] sleepTime = 'abc': must be a number from 0 to "
                                 "1,000,000,000 (seconds)"]


# ----------------------------------------------------------------------------- bad input (found by the fuzzer)
def _rewrite(home: Path, edit) -> Path:
    path = Path(_cfg_path(home))
    path.write_bytes(edit(path.read_bytes()))
    harvester_config.reload()
    return path


def _load_error(home: Path, edit) -> str:
    _rewrite(home, edit)
    with pytest.raises(ConfigError) as err:
        harvester_config.ensure_loaded()
    return str(err.value)


@pytest.mark.parametrize("edit, message", [
    (lambda b: b"0\n" + b, "line 1: '0' comes before any [section] header: put it under a section, or remove it"),
    (lambda b: b.replace(b"[db]\n", b"[db]\njunk here\n", 1),
     "is not 'key = value': fix it, indent it if it continues the value above, or comment it out with #"),
    (lambda b: b + b"\n[master]\nuname = root\n", "section [master] appears twice: merge the two [master] sections"),
    (lambda b: b.replace(b"[db]\n", b"[db]\nengine = sqlite\n", 1), "[db] engine is set twice in [db]"),
    (lambda b: b.replace(b"[db]\n", b"[db]\n\xff\n", 1),
     "column 1: byte 0xff is not UTF-8 text: save the file as UTF-8"),
])
def test_a_cfg_that_does_not_parse_gives_one_line_with_the_line_number(fresh_home, edit, message) -> None:
    home = fresh_home()
    line = _load_error(home, edit)
    assert "\n" not in line and line.startswith(f"{_cfg_path(home)} line ") and message in line, line


def test_a_missing_required_section_is_one_line_naming_its_keys_and_the_typo(fresh_home) -> None:
    home = fresh_home()
    _rewrite(home, lambda b: b.replace(b"[monitor]\n", b"[monitr]\n"))
    assert schema.validate() == [
        f"{_cfg_path(home)} has no [monitor] section ([monitr] looks like a typo of it): add it with maxWorkers = "
        "500, lockInterval = 600, checkInterval = 300; see etc/panda_harvester.cfg.rpmnew"]
    assert f"unknown section [monitr] in {_cfg_path(home)}: did you mean [monitor]? (its keys have no effect)" \
        in schema.feature_warnings()
    _rewrite(home, lambda b: b"")
    assert schema.validate() == [f"{_cfg_path(home)} holds no [section] at all: start from "
                                 "etc/panda_harvester.cfg.rpmnew"]


def test_a_missing_required_key_names_the_typo_next_to_it(fresh_home) -> None:
    home = fresh_home()
    _rewrite(home, lambda b: b.replace(b"\nmaxWorkers = 500", b"\nmaxWorker = 500", 1))
    [line] = schema.validate()
    assert "[monitor] maxWorkers is not set" in line and line.endswith("([monitor] maxWorker looks like a typo of it)")


@pytest.mark.parametrize("section, key, value, requirement", [
    ("monitor", "sleepTime", "1e10", "must be a number from 0 to 1,000,000,000 (seconds)"),  # OverflowError in wait
    ("monitor", "sleepTime", "1e999", "must be a number from 0 to 1,000,000,000 (seconds)"),  # inf
    ("sweeper", "keepFailed", "1e9", "must be a number from 0 to 200000 (hours)"),  # datetime overflow
    ("monitor", "nThreads", "100000", "must be an integer from 0 to 1000 (number of threads, 0 for none)"),
    ("db", "nConnections", "99999", "must be an integer from 1 to 1000 (connections made at start)"),
    ("submitter", "activateWorkerFactor", "1e999", "must be one of auto or a number ≥ 0"),
])
def test_values_too_large_to_use_are_refused_at_start(fresh_home, section, key, value, requirement) -> None:
    home = fresh_home({section: {key: value}})
    shown = repr(convert_value(section, key, value, {}))
    assert schema.validate() == [f"{_cfg_path(home)} [{section}] {key} = {shown}: {requirement}"]


def test_pandacon_without_a_server_url_is_refused_at_start(fresh_home) -> None:
    from pandaharvester.harvesterbody import master_cli

    home = fresh_home()
    _rewrite(home, lambda b: b.replace(b"[pandacon]\n", b"[pandacn]\n"))
    problems, _warnings = master_cli.check_config()
    assert problems == [f"{_cfg_path(home)} has no [pandacon] section: add it with server_api_url_ssl = "
                        "https://pandaserver.cern.ch:25443/api/v1 (the PanDA server); "
                        "see etc/panda_harvester.cfg.rpmnew"]


@pytest.mark.parametrize("section, values, line", [
    ("communicator", {"moduleName": "no_such_module"}, "[communicator] moduleName = 'no_such_module' / className = "
     "'PandaCommunicator': module 'no_such_module' cannot be imported (ModuleNotFoundError: No module named "
     "'no_such_module'): fix the names"),
    ("credmanager", {"className": "Nope"}, "[credmanager] moduleName = "
     "'pandaharvester.harvestercredmanager.dummy_cred_manager' / className = 'Nope': module "
     "'pandaharvester.harvestercredmanager.dummy_cred_manager' has no class 'Nope': fix the names"),
    ("qconf", {"resolverModule": "no_such", "resolverClass": "X"}, "[qconf] resolverModule = 'no_such' / "
     "resolverClass = 'X': module 'no_such' cannot be imported"),
])
def test_a_plugin_named_in_the_cfg_that_does_not_import_is_refused_at_start(fresh_home, section, values, line):
    from pandaharvester.harvesterbody import master_cli

    home = fresh_home({section: values})
    problems, _warnings = master_cli.check_config()
    assert len(problems) == 1 and problems[0].startswith(f"{_cfg_path(home)} {line}"), problems


def test_the_table_rejects_a_key_declared_twice() -> None:
    key = schema.Key("s", "k", schema.Int())
    with pytest.raises(ValueError, match=r"\[s\] k is declared twice"):
        schema.Table((key, key))


# ----------------------------------------------------------------------------- panda_common.cfg
def test_panda_common_logger_section_is_merged_in_panda_commons_order(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    user = tmp_path / "user" / "etc" / "panda"
    user.mkdir(parents=True)
    (user / "panda_common.cfg").write_text("[logger]\nlog_level = WARNING\nlogdir = /srv/logs\n")
    home = tmp_path / "home" / "etc" / "panda"
    home.mkdir(parents=True)
    (home / "panda_common.cfg").write_text("[logger]\nlog_level = DEBUG\n")
    found = panda_common.read_logger_section({"PANDA_HOME": str(tmp_path / "home")})
    assert (found.log_level, found.log_dir) == ("DEBUG", "/srv/logs")  # PANDA_HOME's file wins key by key
    assert found.problems() == [] and found.warnings() == []


def test_panda_common_bad_level_and_rotation_are_reported(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    home = tmp_path / "etc" / "panda"
    home.mkdir(parents=True)
    cfg = home / "panda_common.cfg"
    cfg.write_text("[logger]\nlog_level = LOUD\nrotating_policy = time\n")
    found = panda_common.read_logger_section({"PANDA_HOME": str(tmp_path)})
    assert found.problems() == [f"{cfg} [logger] log_level = 'LOUD': must be one of CRITICAL, ERROR, WARNING, "
                                "INFO, DEBUG, NOTSET"]
    [warning] = found.warnings()
    assert warning.startswith(f"{cfg} [logger] rotating_policy = 'time': log rotation by Harvester is not implemented")
    cfg.write_text("log_level = DEBUG\n")  # no section header
    [problem] = panda_common.read_logger_section({"PANDA_HOME": str(tmp_path)}).problems()
    assert problem == (f"{cfg} line 1: 'log_level = DEBUG' comes before any [section] header: put it under a "
                       "section, or remove it")
