"""The master as a real process: --version, --single, --foreground + signals, pid file, daemon mode."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import harvester_env

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
MASTER = [PYTHON, "-m", "pandaharvester.harvesterbody.master"]

THREADED = ("jobfetcher", "propagator", "monitor", "preparator", "submitter", "stager", "eventfeeder", "sweeper")


def need_stack():
    """The master needs the DB, queue config and communicator layers."""
    for module in ("pandaharvester.harvestercore.db_proxy_pool", "pandaharvester.harvestercore.queue_config_mapper",
                   "pandaharvester.harvestercore.communicator_pool"):
        pytest.importorskip(module)


def make_home(tmp_path: Path, overrides: dict | None = None, log_level: str | None = "DEBUG") -> Path:
    """A PANDA_HOME for a master subprocess (does not touch this process's cfg).

    ``log_level``: written to ``$PANDA_HOME/etc/panda/panda_common.cfg`` (these tests read the
    DEBUG line ending each cycle); None writes no panda_common.cfg (default level INFO).
    """
    home = tmp_path / "home"
    (home / "etc" / "panda").mkdir(parents=True)
    if log_level is not None:
        harvester_env.write_panda_common_cfg(home, log_level)
    (home / "etc" / "panda" / "panda_queueconfig.json").write_text("{}")
    cache_source = home / "cache_source.json"
    cache_source.write_text(json.dumps({"answer": 42}))
    cfg = {
        "cacher": {"data": f"\nanswer.json||file:{cache_source}", "sleepTime": 1},
        "pandacon": {"server_api_url_ssl": "https://127.0.0.1:9/api/v1", "cache_api_url_ssl": "https://127.0.0.1:9/api/v1",
                     "timeout": 2, "maxRetries": 0},
        "service_monitor": {"active": True, "sleepTime": 1, "pidfile": str(home / "harvester.pid")},
        "commandmanager": {"sleepTime": 1},
        "watcher": {"sleepTime": 1},
        "master": {"stopTimeout": 20},
    }
    for section in THREADED:
        cfg.setdefault(section, {})["nThreads"] = 1
    for section, values in (overrides or {}).items():
        cfg.setdefault(section, {}).update(values)
    harvester_env.write_cfg(home, cfg)
    return home


def env_for(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PANDA_HOME"] = str(home)
    env.pop("HARVESTER_INSTANCE_CONFIG_URL", None)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def master_log(home: Path) -> str:
    path = home / "logs" / "panda-master.log"
    return path.read_text() if path.exists() else ""


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def start_foreground(home: Path, *extra: str) -> subprocess.Popen:
    proc = subprocess.Popen(MASTER + ["--foreground", *extra], env=env_for(home), cwd=str(home),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ok = wait_for(lambda: "started CommandManager" in master_log(home) or proc.poll() is not None)
    if proc.poll() is not None or not ok:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"master did not start (rc={proc.returncode}):\n{err}\n{master_log(home)}")
    return proc


def stop(proc: subprocess.Popen, timeout: float = 30) -> tuple[int, str, str]:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"master did not stop within {timeout} s: {err}")
    return proc.returncode, out, err


# ---------------------------------------------------------------- no DB needed
def test_version_prints_release_and_commit(tmp_path):
    home = make_home(tmp_path)
    res = subprocess.run(MASTER + ["--version"], env=env_for(home), capture_output=True, text=True, timeout=30)
    from pandaharvester import panda_pkg_info

    assert res.returncode == 0, res.stderr
    assert f"Version : {panda_pkg_info.release_version}" in res.stdout
    assert "Last commit :" in res.stdout


def test_refuses_to_start_when_pid_file_is_held_by_live_process(tmp_path):
    home = make_home(tmp_path)
    pid_file = home / "harvester.pid"
    pid_file.write_text(f"{os.getpid()}\n")  # this pytest process: certainly alive
    res = subprocess.run(MASTER + ["--foreground", "--single", "--pid", str(pid_file)], env=env_for(home),
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 1
    assert f"pid file {pid_file} is held by running process {os.getpid()}" in res.stderr
    assert pid_file.read_text().strip() == str(os.getpid())  # left alone


def test_refuses_empty_pid_file(tmp_path):
    home = make_home(tmp_path)
    pid_file = home / "harvester.pid"
    pid_file.write_text("")
    res = subprocess.run(MASTER + ["--foreground", "--pid", str(pid_file)], env=env_for(home),
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 1
    assert "holds no pid" in res.stderr


def test_bad_option_is_rejected(tmp_path):
    home = make_home(tmp_path)
    res = subprocess.run(MASTER + ["--profile_mode", "x"], env=env_for(home), capture_output=True, text=True, timeout=30)
    assert res.returncode == 2
    assert "--profile_mode" in res.stderr


# ---------------------------------------------------------------- full stack
def test_single_mode_runs_one_cycle_of_each_agent_and_exits(tmp_path):
    need_stack()
    home = make_home(tmp_path)
    stale = home / "harvester.pid"
    stale.write_text("999999999\n")  # a dead pid: stale file is replaced
    host_file = home / "hostname.txt"
    res = subprocess.run(MASTER + ["--single", "--foreground", "--pid", str(stale), "--hostname_file", str(host_file)],
                         env=env_for(home), cwd=str(home), capture_output=True, text=True, timeout=60)
    log = master_log(home)
    assert res.returncode == 0, res.stderr + log
    assert "start : version =" in log and "terminated" in log
    assert not stale.exists()
    assert host_file.read_text().strip()
    logs = home / "logs"
    for name in ("cred_manager", "command_manager", "cacher", "watcher", "service_monitor"):
        text = (logs / f"panda-{name}.log").read_text()
        assert text.count("done : took") == 1, (name, text)
    assert "refreshed key=answer.json" in (logs / "panda-cacher.log").read_text()


def test_rotate_log_rolls_the_previous_logs_over_before_start(tmp_path):
    need_stack()
    home = make_home(tmp_path)
    logs = home / "logs"
    logs.mkdir(exist_ok=True)
    (logs / "panda-submitter.log").write_text("previous run\n")
    res = subprocess.run(MASTER + ["--single", "--foreground", "--rotate_log"], env=env_for(home), cwd=str(home),
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr + master_log(home)
    assert (logs / "panda-submitter.log.1").read_text() == "previous run\n"
    current = (logs / "panda-submitter.log").read_text()
    assert "previous run" not in current and "done : took" in current


def test_foreground_sigterm_stops_cleanly_and_removes_pid_file(tmp_path):
    need_stack()
    home = make_home(tmp_path)
    pid_file = home / "harvester.pid"
    proc = start_foreground(home, "--pid", str(pid_file))
    assert pid_file.read_text().strip() == str(proc.pid)
    # a second instance is refused while the first runs
    res = subprocess.run(MASTER + ["--foreground", "--pid", str(pid_file)], env=env_for(home),
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 1 and f"held by running process {proc.pid}" in res.stderr
    started = time.monotonic()
    rc, _out, err = stop(proc)
    assert rc == 0, err
    assert time.monotonic() - started < 15
    assert not pid_file.exists()
    log = master_log(home)
    assert "got SIGTERM: stopping after the current cycles" in log
    assert log.rstrip().endswith("terminated")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGUSR2])
def test_other_stop_signals_stop_cleanly_too(tmp_path, sig):
    need_stack()
    home = make_home(tmp_path)
    pid_file = home / "harvester.pid"
    proc = start_foreground(home, "--pid", str(pid_file))
    proc.send_signal(sig)
    try:
        _out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"master did not stop on {sig.name} within 30 s")
    assert proc.returncode == 0, err
    assert not pid_file.exists()
    log = master_log(home)
    assert f"got {sig.name}: stopping after the current cycles" in log and log.rstrip().endswith("terminated")


def test_sigusr1_dumps_thread_stacks(tmp_path):
    need_stack()
    home = make_home(tmp_path)
    proc = start_foreground(home)
    try:
        proc.send_signal(signal.SIGUSR1)
        assert wait_for(lambda: "--- thread CommandManager" in master_log(home), timeout=10), master_log(home)
        log = master_log(home)
        assert "got SIGUSR1: stacks of all threads" in log
        assert "--- thread MainThread" in log
        assert 'File "' in log  # real frames
        assert proc.poll() is None  # still running
    finally:
        rc, _out, err = stop(proc)
    assert rc == 0, err


def test_sighup_reopens_log_files(tmp_path):
    need_stack()
    home = make_home(tmp_path)
    proc = start_foreground(home)
    try:
        current = home / "logs" / "panda-master.log"
        rotated = home / "logs" / "panda-master.log.1"
        os.rename(current, rotated)
        proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: current.exists() and "reopened log files" in current.read_text(), timeout=10)
        assert "reopened log files" not in rotated.read_text()
        assert "start : version" in rotated.read_text()
    finally:
        rc, _out, err = stop(proc)
    assert rc == 0, err
    assert "terminated" in current.read_text()


def test_daemon_mode_detaches_writes_pid_and_stops_on_sigterm(tmp_path):
    need_stack()
    home = make_home(tmp_path)
    pid_file = home / "harvester.pid"
    launcher = subprocess.run(MASTER + ["--pid", str(pid_file)], env=env_for(home), cwd=str(home),
                              capture_output=True, text=True, timeout=30)
    assert launcher.returncode == 0, launcher.stderr
    assert wait_for(lambda: pid_file.exists() and pid_file.read_text().strip().isdigit(), timeout=20)
    pid = int(pid_file.read_text())
    try:
        assert wait_for(lambda: "started CommandManager" in master_log(home), timeout=20), master_log(home)
        assert os.getsid(pid) != os.getsid(0)  # detached into a session of its own
    finally:
        os.kill(pid, signal.SIGTERM)
    assert wait_for(lambda: not pid_file.exists(), timeout=30), master_log(home)
    assert wait_for(lambda: "terminated" in master_log(home), timeout=10)


def test_n_threads_per_agent_from_each_cfg_section(tmp_path):
    need_stack()
    home = make_home(tmp_path, {"submitter": {"nThreads": 2}, "monitor": {"nThreads": 3}})
    proc = start_foreground(home)
    try:
        assert wait_for(lambda: "started Sweeper" in master_log(home), timeout=20), master_log(home)
        log = master_log(home)
        assert "started Submitter x2" in log and "started Monitor x3" in log and "started Propagator x1" in log
        proc.send_signal(signal.SIGUSR1)
        assert wait_for(lambda: "--- thread Monitor-3" in master_log(home), timeout=10), master_log(home)
        names = set(re.findall(r"--- thread (\S+) ", master_log(home)))
        assert {"Submitter-1", "Submitter-2", "Monitor-1", "Monitor-2", "Monitor-3", "Propagator"} <= names, names
        assert "Monitor-4" not in names and "Submitter-3" not in names
    finally:
        rc, _out, err = stop(proc)
    assert rc == 0, err


# ---------------------------------------------------------------- identity (in this process)
@pytest.mark.skipif(os.geteuid() != 0, reason="switching uid/gid needs root")
def test_daemon_context_takes_uid_gid_from_master_uname_gname_and_keeps_umask(fresh_home, tmp_path):
    import grp
    import pwd

    from pandaharvester.errors import ConfigError
    from pandaharvester.harvesterbody import master_cli

    fresh_home({"master": {"uname": "nobody", "gname": "nogroup"}})
    identity = master_cli.resolve_identity()
    assert (identity.uid, identity.gid) == (pwd.getpwnam("nobody").pw_uid, grp.getgrnam("nogroup").gr_gid)
    old_umask = os.umask(0o027)
    try:
        context = master_cli.daemon_context(identity, str(tmp_path))
    finally:
        os.umask(old_umask)
    assert (context.uid, context.gid, context.umask) == (identity.uid, identity.gid, 0o027)
    assert context.detach_process is not False
    fresh_home({"master": {"uname": "no-such-user-here", "gname": "root"}})
    with pytest.raises(ConfigError, match=r"\[master\] uname='no-such-user-here'"):
        master_cli.resolve_identity()


def test_shutdown_closes_every_db_connection(fresh_home):
    need_stack()
    from pandaharvester.harvesterbody.master import Master
    from pandaharvester.harvestercore.db_proxy_pool import DBProxyPool
    from pandaharvester.harvestercore.queue_config_mapper import QueueConfigMapper

    DBProxyPool.reset()
    QueueConfigMapper.reset()
    fresh_home({"db": {"nConnections": 3}})
    master = Master(single_mode=True, daemon_mode=False)
    pool = master.dbProxy
    borrowed = [pool.get() for _ in range(3)]  # three connections made, as busy agents would
    for proxy in borrowed:
        pool.put(proxy)
    master.shutdown()
    for proxy in borrowed:  # each sqlite3 connection of the pool is closed
        with pytest.raises(sqlite3.ProgrammingError, match="closed"):
            proxy._con.execute("SELECT 1")
    DBProxyPool.reset()
    QueueConfigMapper.reset()


def test_tune_gc_freezes_start_up_objects_and_raises_the_young_threshold():
    import gc

    from pandaharvester.harvesterbody import master_cli

    before = gc.get_threshold()
    try:
        master_cli.tune_gc()
        assert gc.get_threshold() == (50_000, 20, 20)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
