"""The master as a real process, at start: cfg checks, feature warnings, log levels, and agent death."""

from __future__ import annotations

import re
import subprocess
import textwrap
from pathlib import Path

import pytest

from harvester_env import drop_key
from test_config_schema import ISSUE_BAD_VALUES
from test_master import MASTER, env_for, make_home, master_log, need_stack

EXIT_CONFIG = 78


def run_single(home: Path, timeout: float = 60, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(MASTER + ["--single", "--foreground"], env=env or env_for(home), cwd=str(home),
                          capture_output=True, text=True, timeout=timeout)


def log_files(home: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted((home / "logs").glob("panda-*.log"))}


# ---------------------------------------------------------------- bad values stop the start
@pytest.mark.parametrize("section, key, value, requirement", ISSUE_BAD_VALUES)
def test_a_bad_cfg_value_stops_the_start_with_one_line(tmp_path, section, key, value, requirement):
    home = make_home(tmp_path, {section: {key: value}})
    res = subprocess.run(MASTER + ["--foreground"], env=env_for(home), cwd=str(home), capture_output=True,
                         text=True, timeout=30)
    cfg = home / "etc" / "panda" / "panda_harvester.cfg"
    assert res.returncode == EXIT_CONFIG, res.stderr
    assert res.stderr.splitlines() == [f"{cfg} [{section}] {key} = {value!r}: {requirement}"]
    assert "Traceback" not in res.stderr + res.stdout
    assert master_log(home) == ""  # refused before logging, the DB or any thread


def test_a_missing_harvester_id_is_fatal(tmp_path):
    home = make_home(tmp_path)
    drop_key(home, "master", "harvester_id")
    res = subprocess.run(MASTER + ["--foreground"], env=env_for(home), cwd=str(home), capture_output=True,
                         text=True, timeout=30)
    assert res.returncode == EXIT_CONFIG, res.stderr
    [line] = res.stderr.splitlines()
    assert "[master] harvester_id is not set: add 'harvester_id = ...' under [master] (the id of this instance " \
           "as registered in the PanDA server" in line


def test_a_bad_panda_common_level_stops_the_start(tmp_path):
    home = make_home(tmp_path, log_level="LOUD")
    res = run_single(home)
    assert res.returncode == EXIT_CONFIG, res.stderr
    assert res.stderr.splitlines() == [f"{home}/etc/panda/panda_common.cfg [logger] log_level = 'LOUD': must be one "
                                       "of CRITICAL, ERROR, WARNING, INFO, DEBUG, NOTSET"]


# ---------------------------------------------------------------- unimplemented features
def test_each_unimplemented_feature_turned_on_gets_one_warning_at_start(tmp_path):
    need_stack()
    home = make_home(tmp_path, {"monitor": {"pluginCacheEnable": True}, "apfmon": {"active": True},
                                "stager": {"usePostZipping": True}})
    res = run_single(home)
    assert res.returncode == 0, res.stderr
    warnings = [line for line in master_log(home).splitlines() if " WARNING " in line]
    for needle in ("[monitor] pluginCacheEnable = True: the monitor plugin cache is not implemented",
                   "[apfmon] active = True: APFMon reporting is not implemented",
                   "[stager] usePostZipping = True: two-stage zipping (async_zip_output then post_zip_output) is not "
                   "implemented"):
        assert sum(needle in line for line in warnings) == 1, (needle, warnings)


def test_no_feature_warning_when_nothing_unimplemented_is_on(tmp_path):
    need_stack()
    home = make_home(tmp_path)
    res = run_single(home)
    assert res.returncode == 0, res.stderr
    assert "not implemented" not in master_log(home)


# ---------------------------------------------------------------- log levels
def test_default_level_is_info_and_panda_commons_level_is_honoured(tmp_path):
    need_stack()
    homes = {}
    for name, level in (("none", None), ("info", "INFO"), ("debug", "DEBUG")):
        homes[name] = make_home(tmp_path / name, log_level=level)
        res = run_single(homes[name])
        assert res.returncode == 0, res.stderr
    for name in ("none", "info"):
        logs = log_files(homes[name])
        assert "INFO start : version" in logs["panda-master.log"]  # INFO lines are there
        debug = [f"{file}: {line}" for file, text in logs.items() for line in text.splitlines() if " DEBUG " in line]
        assert not debug, debug[:5]
        assert "panda-cacher.log" not in logs  # its cycle logs DEBUG lines only
    logs = log_files(homes["debug"])
    assert " DEBUG " in logs["panda-cacher.log"] and "done : took" in logs["panda-cacher.log"]


def test_log_level_section_sets_one_logger_below_the_default(tmp_path):
    need_stack()
    home = make_home(tmp_path, {"log_level": {"cacher": "DEBUG"}}, log_level="INFO")
    res = run_single(home)
    assert res.returncode == 0, res.stderr
    logs = log_files(home)
    assert " DEBUG " in logs["panda-cacher.log"]
    assert not any(" DEBUG " in text for file, text in logs.items() if file != "panda-cacher.log")


def test_panda_common_logdir_is_used_when_log_dir_is_not_set(tmp_path):
    need_stack()
    home = make_home(tmp_path, log_level=None)
    drop_key(home, "master", "logDir")
    common_dir = tmp_path / "common_logs"
    (home / "etc" / "panda" / "panda_common.cfg").write_text(f"[logger]\nlogdir = {common_dir}\n")
    res = run_single(home)
    assert res.returncode == 0, res.stderr
    assert "terminated" in (common_dir / "panda-master.log").read_text()


# ---------------------------------------------------------------- agent death
DYING_CRED_MANAGER = textwrap.dedent('''
    """A credential manager that calls sys.exit() when run by the agent thread (not at start in the master)."""
    import sys
    import threading

    from pandaharvester.harvestercredmanager.dummy_cred_manager import DummyCredManager


    CALLS = []


    class DyingCredManager(DummyCredManager):
        def check_credential(self):
            # the master's own check at start (on a plugin-call helper thread) passes; the agent's dies
            CALLS.append(threading.current_thread().name)
            if len(CALLS) > 1:
                sys.exit("dying cred manager")
            return True
''')


def test_an_agent_thread_that_dies_stops_harvester_with_a_non_zero_status(tmp_path):
    need_stack()
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "dying_cred_manager.py").write_text(DYING_CRED_MANAGER)
    home = make_home(tmp_path, {"credmanager": {"moduleName": "dying_cred_manager", "className": "DyingCredManager",
                                                "sleepTime": 1}})
    env = env_for(home)
    env["PYTHONPATH"] = f"{plugins}:{env['PYTHONPATH']}"
    proc = subprocess.Popen(MASTER + ["--foreground"], env=env, cwd=str(home), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        _out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail(f"master kept running after its CredManager thread died:\n{master_log(home)}")
    assert proc.returncode == 1, err
    agent_log = (home / "logs" / "panda-cred_manager.log").read_text()
    assert re.search(r"CRITICAL run <id=\S+> thread CredManager died: SystemExit: dying cred manager", agent_log)
    assert "Traceback" in agent_log and "dying_cred_manager.py" in agent_log
    log = master_log(home)
    assert re.search(r"CRITICAL agent thread CredManager died \(SystemExit: dying cred manager; traceback in "
                     r"panda-cred_manager\.log\): stopping all agents, harvester exits with status 1", log), log
    assert "abandoned" not in log  # the other agents stopped within stopTimeout
    assert log.rstrip().endswith("terminated with exit status 1: an agent thread died")
