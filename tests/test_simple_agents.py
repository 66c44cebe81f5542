"""The simple agents: Watcher, Cacher, CredManager, CommandManager, ServiceMonitor."""

from __future__ import annotations

import datetime
import http.server
import json
import logging
import os
import signal
import subprocess
import threading
from pathlib import Path

import pytest

from pandaharvester.harvesterbody.cacher import Cacher, parse_data_entries
from pandaharvester.harvesterbody.watcher import Watcher, line_time, read_tail
from pandaharvester.harvestercore import core_utils

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


class ListLog:
    """A logger stand-in that records lines."""

    def __init__(self):
        self.lines = []

    def _add(self, level, msg, *args, **kwargs):
        self.lines.append((level, msg % args if args else msg))

    def debug(self, msg, *a, **k):
        self._add("DEBUG", msg, *a)

    def info(self, msg, *a, **k):
        self._add("INFO", msg, *a)

    def warning(self, msg, *a, **k):
        self._add("WARNING", msg, *a)

    def error(self, msg, *a, **k):
        self._add("ERROR", msg, *a)

    def text(self):
        return "\n".join(line for _level, line in self.lines)


def need_db():
    pytest.importorskip("pandaharvester.harvestercore.db_proxy_pool")


# ======================================================================== Watcher
def write_log(path: Path, times: list[datetime.datetime]) -> None:
    with open(path, "w") as stream:
        for i, stamp in enumerate(times):
            stream.write(f"{stamp.strftime(TIME_FORMAT)},{i % 1000:03d} panda.log.db_proxy: DEBUG line {i}\n")


@pytest.fixture()
def watcher_home(fresh_home, tmp_path, monkeypatch):
    def make(**watcher_cfg):
        cfg = {"logFileNameList": "panda-watched.log", "maxStalled": 60, "nMessages": 10, "maxDuration": 5,
               "checkInterval": 180, "actions": "terminate"}
        cfg.update(watcher_cfg)
        fresh_home({"watcher": cfg})
        monkeypatch.setenv("PANDA_LOCK_DIR", str(tmp_path))
        core_utils.configure_logging(None)
        sent = []
        watcher = Watcher(single_mode=True, signal_sender=sent.append)
        log_dir = Path(watcher.log_dir())
        log_dir.mkdir(parents=True, exist_ok=True)
        return watcher, log_dir / "panda-watched.log", sent

    return make


def test_read_tail_and_line_time(tmp_path):
    path = tmp_path / "x.log"
    now = datetime.datetime(2026, 1, 2, 3, 4, 5)
    write_log(path, [now + datetime.timedelta(seconds=i) for i in range(5000)])
    tail = read_tail(str(path), 3)
    assert [line.split()[-1] for line in tail] == ["4997", "4998", "4999"]
    assert line_time(tail[-1]) == datetime.datetime(2026, 1, 2, 4, 27, 24, 999000)
    assert line_time("no time stamp here") is None


def test_watcher_detects_stalled_log_and_terminates(watcher_home):
    watcher, path, sent = watcher_home()
    old = datetime.datetime.now() - datetime.timedelta(minutes=10)
    write_log(path, [old + datetime.timedelta(seconds=i * 0.1) for i in range(20)])
    problems = watcher.execute()
    assert problems == ["last log message is too old in panda-watched.log. seems to be stalled"]
    assert sent == [signal.SIGTERM]


def test_watcher_detects_slow_logging(watcher_home):
    watcher, path, sent = watcher_home(actions="")
    start = datetime.datetime.now() - datetime.timedelta(seconds=30)
    write_log(path, [start + datetime.timedelta(seconds=3 * i) for i in range(10)])  # 10 lines took 27 s > 5
    assert watcher.execute() == ["slow message generation in panda-watched.log. seems to be a performance issue"]
    assert sent == []  # no action configured


def test_watcher_acts_on_too_many_error_lines(watcher_home):
    watcher, path, sent = watcher_home(maxErrors=2)
    now = datetime.datetime.now()
    with open(path, "w") as stream:
        for i in range(10):
            level = "ERROR" if i in (2, 5, 7) else "DEBUG"  # "ERROR" inside a message does not count
            stream.write(f"{now.strftime(TIME_FORMAT)},{i:03d} panda.log.submitter: {level} run cycle ERROR {i}\n")
    assert watcher.execute() == ["3 error messages in the last 10 messages of panda-watched.log "
                                 "(more than [watcher] maxErrors=2)"]
    assert sent == [signal.SIGTERM]


def test_watcher_error_check_is_off_by_default(watcher_home):
    watcher, path, sent = watcher_home()
    now = datetime.datetime.now()
    with open(path, "w") as stream:
        for i in range(10):
            stream.write(f"{now.strftime(TIME_FORMAT)},{i:03d} panda.log.submitter: ERROR failed {i}\n")
    assert watcher.execute() == []
    assert sent == []


def test_watcher_healthy_log_needs_no_action(watcher_home):
    watcher, path, sent = watcher_home()
    start = datetime.datetime.now() - datetime.timedelta(seconds=2)
    write_log(path, [start + datetime.timedelta(seconds=0.1 * i) for i in range(20)])
    assert watcher.execute() == []
    assert sent == []


def test_watcher_checks_are_spaced_by_check_interval(watcher_home):
    watcher, path, sent = watcher_home()
    write_log(path, [datetime.datetime.now() - datetime.timedelta(hours=1)])
    assert watcher.execute()  # first check acts
    assert watcher.execute() == []  # within checkInterval: skipped (file lock)
    assert sent == [signal.SIGTERM]


def test_watcher_waits_check_interval_after_start_when_looping(watcher_home):
    watcher, path, sent = watcher_home()
    write_log(path, [datetime.datetime.now() - datetime.timedelta(hours=1)])
    watcher.set_single_mode(False)
    assert watcher.execute() == []  # too early after start
    assert sent == []


def test_watcher_terminate_action_stops_a_real_process(watcher_home):
    _w, path, _sent = watcher_home()
    victim = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        watcher = Watcher(single_mode=True, signal_sender=lambda sig: os.killpg(victim.pid, sig))
        write_log(path, [datetime.datetime.now() - datetime.timedelta(hours=1)])
        assert watcher.execute()
        assert victim.wait(timeout=10) == -signal.SIGTERM
    finally:
        if victim.poll() is None:
            victim.kill()


# ======================================================================== Cacher (no DB)
class FakeCommunicator:
    def __init__(self):
        self.calls = []

    def get_resource_types(self):
        self.calls.append("get_resource_types")
        return [{"resource_name": "SCORE"}], ""

    def get_job_stats(self):
        return None, "server said no"

    def get_key_pair(self, public, private):
        return {"publicKey": public, "privateKey": private}, ""


def bare_cacher(communicator=None) -> Cacher:
    cacher = Cacher.__new__(Cacher)
    cacher.communicator = communicator or FakeCommunicator()
    return cacher


def test_parse_data_entries():
    entries = ["a.json||file:/x", "b|sub|http://h/x|/tmp/d.json", "broken|only", ""]
    assert parse_data_entries(entries) == [("a.json", None, "file:/x", None), ("b", "sub", "http://h/x", "/tmp/d.json")]


def test_cacher_get_data_file_json_text_and_env(tmp_path, monkeypatch):
    cacher, log = bare_cacher(), ListLog()
    (tmp_path / "a.json").write_text('{"k": [1, 2]}')
    (tmp_path / "b.txt").write_text("plain text")
    assert cacher.get_data(f"file:{tmp_path}/a.json", log) == (True, {"k": [1, 2]})
    assert cacher.get_data(f"file://{tmp_path}/a.json", log) == (True, {"k": [1, 2]})
    assert cacher.get_data(f"file:{tmp_path}/b.txt", log) == (True, "plain text")
    monkeypatch.setenv("CACHER_TEST_DIR", str(tmp_path))
    assert cacher.get_data("file:${CACHER_TEST_DIR}/a.json", log) == (True, {"k": [1, 2]})
    monkeypatch.delenv("CACHER_TEST_DIR")
    assert cacher.get_data("file:${CACHER_TEST_DIR}/a.json", log) == (False, None)
    assert "undefined environment variable: CACHER_TEST_DIR" in log.text()
    assert cacher.get_data(f"file:{tmp_path}/missing.json", log) == (False, None)
    assert "No such file" in log.text()


def test_cacher_get_data_panda_server_and_cache(tmp_path):
    communicator = FakeCommunicator()
    cacher, log = bare_cacher(communicator), ListLog()
    assert cacher.get_data("panda_server:get_resource_types", log) == (True, [{"resource_name": "SCORE"}])
    assert cacher.get_data("panda_server:get_job_stats", log) == (False, None)
    assert "server said no" in log.text()
    assert cacher.get_data("panda_server:no_such_method", log) == (False, None)
    assert cacher.get_data("panda_cache:pub&priv", log) == (True, {"publicKey": "pub", "privateKey": "priv"})
    assert cacher.get_data("gopher://old", log) == (False, None)
    assert "unsupported protocol for gopher://old" in log.text()


@pytest.fixture()
def http_server():
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            if self.path == "/ok.json":
                body, code = b'{"queues": ["A"]}', 200
            elif self.path == "/bad.json":
                body, code = b"not json", 200
            else:
                body, code = b"nope", 500
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_cacher_get_data_http(http_server):
    cacher, log = bare_cacher(), ListLog()
    assert cacher.get_data(f"{http_server}/ok.json", log) == (True, {"queues": ["A"]})
    assert cacher.get_data(f"{http_server}/bad.json", log) == (False, None)
    assert "corrupted json" in log.text()
    assert cacher.get_data(f"{http_server}/boom", log) == (False, None)
    assert "StatusCode=500" in log.text()


# ======================================================================== with the DB
@pytest.fixture()
def db_home(fresh_home, tmp_path):
    """A fresh home with the tables made; returns a function applying cfg overrides first."""
    need_db()

    def make(overrides=None):
        home = fresh_home(overrides or {})
        from pandaharvester.harvestercore.db_proxy_pool import DBProxyPool
        from pandaharvester.harvestercore.queue_config_mapper import QueueConfigMapper

        qcm = QueueConfigMapper()
        db = DBProxyPool()
        try:
            db.make_tables(qcm, None)
        except TypeError:
            db.make_tables(qcm)
        return home, db, qcm

    return make


def test_cacher_refreshes_file_entry_into_db_and_dump(db_home, tmp_path):
    source = tmp_path / "source.json"
    source.write_text(json.dumps({"answer": 42}))
    dump = tmp_path / "dump.json"
    _home, db, _qcm = db_home({"cacher": {"data": f"\nanswer.json||file:{source}|{dump}", "refreshInterval": 10}})
    cacher = Cacher(FakeCommunicator(), single_mode=True)
    cacher.execute()
    assert db.get_cache("answer.json").data == {"answer": 42}
    assert json.loads(dump.read_text()) == {"answer": 42}
    # fresh: not fetched again unless forced
    source.write_text(json.dumps({"answer": 43}))
    cacher.execute(skip_lock=True)
    assert db.get_cache("answer.json").data == {"answer": 42}
    cacher.execute(force_update=True, skip_lock=True)
    assert db.get_cache("answer.json").data == {"answer": 43}


def test_cacher_panda_server_entry_with_emulator(db_home, tmp_path):
    pytest.importorskip("pandaharvester.harvestertest.panda_emulator.launcher")
    from pandaharvester.harvestertest.panda_emulator.launcher import start_emulator

    with start_emulator(tmp_path / "emu") as emu:
        _home, db, _qcm = db_home({
            "cacher": {"data": "\nresource_types.json||panda_server:get_resource_types"},
            "pandacon": {"server_api_url_ssl": emu.base_url, "cache_api_url_ssl": emu.base_url, "maxRetries": 0}})
        from pandaharvester.harvestercore.communicator_pool import CommunicatorPool

        cacher = Cacher(CommunicatorPool(), single_mode=True)
        cacher.start()
        cacher.join(30)
        spec = db.get_cache("resource_types.json")
        assert spec is not None and isinstance(spec.data, list) and spec.data


class RecordingCredManager:
    """A credmanager plugin for tests: invalid once, then valid; counts calls per instance."""

    log: list = []

    def __init__(self, **kwargs):
        for key, value in kwargs.items():
            setattr(self, key, value)
        self.valid = False

    def check_credential(self):
        RecordingCredManager.log.append(("check", getattr(self, "setup_name", None)))
        if getattr(self, "voms", None) == "explode":
            raise RuntimeError("plugin exploded")
        return self.valid

    def renew_credential(self):
        RecordingCredManager.log.append(("renew", getattr(self, "setup_name", None)))
        self.valid = True
        return True, ""

    def check_credential_lifetime(self):
        return 12.7


def test_cred_manager_checks_and_renews(db_home):
    RecordingCredManager.log = []
    plugin_configs = json.dumps([{"module": "test_simple_agents", "name": "RecordingCredManager",
                                  "configs": {"prod": {"outCertFile": "/tmp/prod"}}}])
    db_home({"credmanager": {"moduleName": "\ntest_simple_agents\ntest_simple_agents",
                             "className": "\nRecordingCredManager\nRecordingCredManager",
                             "inCertFile": "\n/dev/null\n/dev/null", "outCertFile": "\n/tmp/a\n/tmp/b",
                             "voms": "\nfine\nexplode", "pluginConfigs": "\n" + plugin_configs, "sleepTime": 1800}})
    from pandaharvester.harvesterbody.cred_manager import CredManager
    from pandaharvester.harvestercore.queue_config_mapper import QueueConfigMapper

    manager = CredManager(QueueConfigMapper(), single_mode=True)
    assert len(manager.exe_cores) == 3
    manager.execute()
    assert ("renew", "prod") in RecordingCredManager.log
    assert sum(1 for kind, _ in RecordingCredManager.log if kind == "renew") == 2  # the exploding one never renews
    assert manager.execute_monit() == {"/tmp/a": 12.7, "/tmp/b": 12.7, "/tmp/prod": 12.7}


def test_cred_manager_with_dummy_plugin(db_home):
    pytest.importorskip("pandaharvester.harvestercredmanager.dummy_cred_manager")
    db_home()
    from pandaharvester.harvesterbody.cred_manager import CredManager
    from pandaharvester.harvestercore.queue_config_mapper import QueueConfigMapper

    manager = CredManager(QueueConfigMapper(), single_mode=True)
    assert [type(core).__name__ for core in manager.exe_cores] == ["DummyCredManager"]
    manager.start()
    manager.join(10)
    assert manager.nCycles == 1


def test_command_manager_stores_and_acks_commands(db_home, tmp_path):
    pytest.importorskip("pandaharvester.harvestertest.panda_emulator.launcher")
    from pandaharvester.harvestertest.panda_emulator.launcher import start_emulator

    with start_emulator(tmp_path / "emu") as emu:
        _home, db, qcm = db_home({
            "commandmanager": {"commands_bulk_size": 2},
            "pandacon": {"server_api_url_ssl": emu.base_url, "cache_api_url_ssl": emu.base_url, "maxRetries": 0}})
        from pandaharvester.harvesterbody.command_manager import CommandManager
        from pandaharvester.harvestercore.communicator_pool import CommunicatorPool

        harvester_id = "test-harvester"
        ids = [emu.add_command(harvester_id, "KILL_WORKERS", {"status": ["submitted"]}) for _ in range(3)]
        manager = CommandManager(CommunicatorPool(), qcm, single_mode=True)
        manager.bootstrap()
        assert manager.lastHeartbeat is not None
        assert manager.run_one_cycle() is True  # a full bulk of 2: run again at once
        assert manager.run_one_cycle() is False
        assert emu.state()["commands"][harvester_id] == {"sent": 3}  # delivered, not yet acknowledged
        heartbeat = emu.state()["heartbeats"][harvester_id]["data"]
        assert "sw_version" in heartbeat and "startTime" in heartbeat
        received = db.get_commands_for_receiver("sweeper")
        assert sorted(spec.command_id for spec in received) == sorted(ids)
        manager.run_one_cycle()  # acknowledges the processed commands
        assert db.get_commands_ack() in ([], None)
        assert emu.state()["commands"].get(harvester_id, {}) == {}  # acknowledged: gone from PanDA


def test_command_manager_daemon_takes_a_full_bulk_again_at_once(db_home, tmp_path):
    pytest.importorskip("pandaharvester.harvestertest.panda_emulator.launcher")
    from pandaharvester.harvestertest.panda_emulator.launcher import start_emulator

    with start_emulator(tmp_path / "emu") as emu:
        _home, db, qcm = db_home({
            "commandmanager": {"commands_bulk_size": 2, "sleepTime": 60},
            "pandacon": {"server_api_url_ssl": emu.base_url, "cache_api_url_ssl": emu.base_url, "maxRetries": 0}})
        from pandaharvester.harvesterbody.command_manager import CommandManager
        from pandaharvester.harvestercore.communicator_pool import CommunicatorPool

        ids = [emu.add_command("test-harvester", "KILL_WORKERS", {"status": ["submitted"]}) for _ in range(3)]
        manager = CommandManager(CommunicatorPool(), qcm)  # not single mode: the process lock counts
        manager.bootstrap()
        assert manager.run_one_cycle() is True  # a full bulk: the lock is given back for the next cycle
        assert manager.run_one_cycle() is False  # ... which runs at once, not a sleep time later
        assert sorted(spec.command_id for spec in db.get_commands_for_receiver("sweeper")) == sorted(ids)
        assert manager.run_one_cycle() is False  # the lock is held now: no cycle within the sleep time
        assert db.get_process_lock("commandmanager", "someone-else", 60) is False


def test_command_manager_resends_the_startup_heartbeat_until_panda_takes_it(db_home, tmp_path):
    pytest.importorskip("pandaharvester.harvestertest.panda_emulator.launcher")
    from pandaharvester.harvestertest.panda_emulator.launcher import start_emulator

    with start_emulator(tmp_path / "emu") as emu:
        _home, _db, qcm = db_home({
            "pandacon": {"server_api_url_ssl": emu.base_url, "cache_api_url_ssl": emu.base_url, "maxRetries": 0}})
        from pandaharvester.harvesterbody.command_manager import CommandManager
        from pandaharvester.harvestercore.communicator_pool import CommunicatorPool

        emu.set_faults(rate=1.0, kinds=["http503"], endpoints=["harvester/heartbeat"])
        manager = CommandManager(CommunicatorPool(), qcm, single_mode=True)
        manager.bootstrap()  # PanDA is down at start: nothing recorded
        manager.run_one_cycle()
        assert manager.lastHeartbeat is None and manager.startupData is not None
        emu.set_faults(rate=0.0)
        manager.run_one_cycle()  # back: the start-up data, not an empty heartbeat
        heartbeat = emu.state()["heartbeats"]["test-harvester"]["data"]
        assert "sw_version" in heartbeat and "startTime" in heartbeat
        assert manager.startupData is None and manager.lastHeartbeat is not None


def test_service_monitor_stores_metrics(db_home, tmp_path):
    _home, db, qcm = db_home({"service_monitor": {"disk_volumes": "tmp"}})
    from pandaharvester.harvesterbody.service_monitor import ServiceMonitor

    pid_file = tmp_path / "master.pid"
    pid_file.write_text(f"{os.getpid()}\n")
    monitor = ServiceMonitor(str(pid_file), single_mode=True, queue_config_mapper=qcm)
    assert monitor.pid == os.getpid()
    monitor.start()
    monitor.join(30)
    assert monitor.nCycles == 1
    rows = db.get_service_metrics(datetime.datetime(2000, 1, 1))
    assert rows, "no service metrics stored"
    text = json.dumps(rows, default=str)
    for key in ("rss_mib", "memory_pc", "cpu_pc", "volume_tmp_pc", "cert_lifetime"):
        assert key in text


def test_service_monitor_metrics_without_db_write(db_home, tmp_path):
    _home, _db, qcm = db_home({"service_monitor": {"disk_volumes": "tmp,no_such_volume_xyz"}})
    from pandaharvester.harvesterbody.service_monitor import ServiceMonitor

    monitor = ServiceMonitor(str(tmp_path / "missing.pid"), single_mode=True, queue_config_mapper=qcm)
    assert monitor.pid == os.getpid()  # unreadable pid file: this process
    child = subprocess.Popen(["sleep", "5"])
    try:
        metrics = monitor.collect_metrics()
    finally:
        child.kill()
        child.wait()
    assert metrics["rss_mib"] > 1
    assert 0 <= metrics["volume_tmp_pc"] <= 100
    assert metrics["volume_no_such_volume_xyz_pc"] is None



def test_watcher_does_not_time_a_log_above_debug(watcher_home, caplog):
    """At INFO (the default) a quiet log is normal: no stalled alarm, and one warning saying how to get it."""
    watcher, path, sent = watcher_home(checkInterval=0)
    old = datetime.datetime.now() - datetime.timedelta(minutes=10)
    write_log(path, [old + datetime.timedelta(seconds=i * 0.1) for i in range(20)])
    watched = core_utils.setup_logger("watched")
    watched.setLevel(logging.INFO)
    try:
        assert watcher.execute() == [] and watcher.execute() == [] and sent == []
        notes = [r.getMessage() for r in caplog.records if "maxStalled and maxDuration are not checked" in r.getMessage()]
        assert len(notes) == 1 and "set [log_level] watched = DEBUG" in notes[0], notes
        watched.setLevel(logging.DEBUG)
        assert watcher.execute() == ["last log message is too old in panda-watched.log. seems to be stalled"]
    finally:
        watched.setLevel(logging.DEBUG)
