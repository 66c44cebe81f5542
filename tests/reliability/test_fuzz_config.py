"""Bad input: panda_harvester.cfg and the queue config JSON fuzzed with hypothesis.

The daemon either starts correctly or refuses with one clear line naming the file, the section
or queue, the key and the value; never a traceback, never a half-started daemon, never an agent
thread that dies later. Unknown sections and keys get a warning with the closest known name.

Most cases run in-process through what the master runs at start (``master_cli.check_config``
for the cfg, ``QueueConfigMapper.load_data`` for the queue config); a smaller sample starts the
real daemon. CI: a fixed seed (``derandomize``), a few hundred cases; ``--full``: 1,000+ each.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harvester_env  # noqa: E402
from figures import full, record  # noqa: E402
from fuzz_config_cases import (  # noqa: E402
    IMPLEMENTED, KNOWN_SECTIONS, Case, CfgModel, cfg_case, example_queue_config, names, one_line,
    queue_config_case,
)
from test_master import MASTER, env_for, make_home  # noqa: E402

from pandaharvester.harvesterconfig import harvester_config, schema  # noqa: E402

EXIT_CONFIG = 78
N_INPROC = 2000 if full() else 500
N_DAEMON_CFG, N_DAEMON_QC = (100, 100) if full() else (15, 10)
FUZZ = settings(max_examples=N_INPROC, derandomize=not full(), deadline=None, database=None,
                suppress_health_check=list(HealthCheck))
# a daemon run takes seconds: a failing case is reported as found, not shrunk for minutes
DAEMON_PHASES = [Phase.explicit, Phase.generate]


class Tally:
    """Outcomes of one fuzz test, printed as a figure; ``tracebacks=0`` because a traceback fails the test."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.counts = {"cases": 0, "started": 0, "refused": 0}

    def add(self, outcome: str) -> None:
        self.counts["cases"] += 1
        self.counts[outcome] += 1

    def record(self, **extra: int) -> None:
        fields = dict(self.counts)
        if "queue_refused" in extra:  # the daemon never refuses a queue config: it leaves bad queues out
            del fields["refused"]
        fields.update(extra, tracebacks=0)
        record(f"reliability: {self.name} " + " ".join(f"{k}={v}" for k, v in fields.items()))


@pytest.fixture(scope="module")
def fuzz_home(tmp_path_factory, harvester_home):
    home = make_home(tmp_path_factory.mktemp("fuzz_cfg"))
    yield home
    harvester_env.activate(harvester_home)


def base_cfg(home: Path) -> CfgModel:
    return CfgModel.parse((home / "etc" / "panda" / "panda_harvester.cfg").read_text())


# ---------------------------------------------------------------------------- cfg, in-process
def check_cfg_case(home: Path, case: Case) -> tuple[str, list[str], list[str]]:
    """Write the case, run the master's start-up check in-process; (outcome, problems, warnings)."""
    from pandaharvester.harvesterbody import master_cli

    path = home / "etc" / "panda" / "panda_harvester.cfg"
    path.write_bytes(case.data)
    os.environ["PANDA_HOME"] = str(home)
    harvester_config.reload()
    problems, warnings = master_cli.check_config()  # must never raise
    for line in problems + warnings:
        assert one_line(line), (case, line)
    if not problems:
        for key in IMPLEMENTED:  # every key the agents read is readable as checked
            schema.cfg_value(key.section, key.name)
        return "started", problems, warnings
    if case.kind != "truncate":  # a cut can lose several sections: one line each
        assert len(problems) == 1, (case, problems)
    line = problems[0]
    for each in problems:
        assert str(path) in each, (case, each)
    if case.kind == "value":  # a plugin's line names both keys: [s] moduleName = 'm' / className = 'c'
        assert names(line, f"[{case.section}] {case.key}") or names(line, f"[{case.section}] ", f" {case.key} = "), \
            (case, line)
    elif case.kind == "dup_key":
        assert names(line, f"[{case.section}] {case.key}"), (case, line)
    elif case.kind == "dup_section":
        assert names(line, f"[{case.section}]"), (case, line)
    return "refused", problems, warnings


def check_cfg_warnings(case: Case, warnings: list[str]) -> None:
    """A typo of a known key or section is named in a warning with the closest known name."""
    if case.kind == "typo_key":
        hits = [w for w in warnings if f"unknown key [{case.section}] {case.key} in " in w]
        assert len(hits) == 1, (case, warnings)
        if len(case.typo_of) > 3:
            assert "did you mean " in hits[0], (case, hits)
    if case.kind == "typo_section" and case.typo_of in KNOWN_SECTIONS:
        hits = [w for w in warnings if f"[{case.section}]" in w]
        assert len(hits) == 1 and "did you mean [" in hits[0], (case, warnings)


CFG_TALLY = Tally("fuzz_cfg")


def with_value(base: CfgModel, section: str, key: str, value: str) -> Case:
    model = base.copy()
    model.set(section, key, value)
    return Case("value", model.render().encode(), section, key, value)


def renamed_section(base: CfgModel, name: str, wrong: str) -> Case:
    text = base.render().replace(f"[{name}]\n", f"[{wrong}]\n")
    return Case("typo_section", text.encode(), wrong, typo_of=name)


def test_fuzz_cfg_in_process(fuzz_home):
    base = base_cfg(fuzz_home)
    text = base.render().encode()

    # what the fuzzer found: multi-line parse errors, an undecodable byte, thread waits that overflow,
    # a missing [pandacon] only found when the communicator started, a section typo with no warning
    @FUZZ
    @given(cfg_case(base))
    @example(Case("junk_line", b"0\n" + text))
    @example(Case("junk_line", text.replace(b"[db]\n", b"[db]\njunk\n")))
    @example(Case("bytes", text.replace(b"[db]\n", b"[db]\n\xff\n")))
    @example(with_value(base, "monitor", "sleepTime", "1e10"))
    @example(with_value(base, "monitor", "sleepTime", "1e999"))
    @example(with_value(base, "monitor", "nThreads", "100000"))
    @example(renamed_section(base, "pandacon", "andacon"))
    @example(renamed_section(base, "fifo", "ifo"))
    @example(with_value(base, "communicator", "className", "NoSuchClass"))
    def run(case: Case) -> None:
        outcome, _problems, warnings = check_cfg_case(fuzz_home, case)
        if outcome == "started":
            check_cfg_warnings(case, warnings)
        CFG_TALLY.add(outcome)

    run()
    CFG_TALLY.record()
    assert CFG_TALLY.counts["started"] and CFG_TALLY.counts["refused"]


# ---------------------------------------------------------------------------- queue config, in-process
QC_TALLY = Tally("fuzz_queue_config")


def load_queue_config(path: Path, case: Case) -> tuple[object, list[str]]:
    """Write the case and load it as the master does (plugins imported); (mapper, warnings)."""
    from pandaharvester.harvestercore.queue_config_loader import QueueConfigSettings
    from pandaharvester.harvestercore.queue_config_mapper import QueueConfigMapper

    path.write_bytes(case.data)
    mapper = QueueConfigMapper(update_db=False, id=f"fuzz-{time.monotonic_ns()}", check_plugins=True,
                               settings=QueueConfigSettings(config_file=str(path)),
                               cache_reader=lambda *a, **k: None)
    warnings: list[str] = []
    import logging

    class Grab(logging.Handler):
        def emit(self, rec: logging.LogRecord) -> None:
            if rec.levelno == logging.WARNING:
                warnings.append(rec.getMessage())

    logger = logging.getLogger("panda.log.queue_config_mapper")
    grab = Grab()
    logger.addHandler(grab)
    try:
        mapper.load_data(force=True)  # must never raise
    finally:
        logger.removeHandler(grab)
        QueueConfigMapper.reset(mapper_id(mapper))
    return mapper, warnings


def mapper_id(mapper) -> str | None:
    for key, value in type(mapper)._instances.items():
        if value is mapper:
            return key
    return None


def parses(data: bytes) -> bool:
    import json

    try:
        json.loads(data.decode("utf-8"))
    except ValueError:
        return False
    return True


def check_queue_case(path: Path, base: dict, case: Case) -> str:
    mapper, warnings = load_queue_config(path, case)
    errors = [str(e) for e in mapper.errors]
    for line in errors + warnings:
        assert one_line(line), (case, line)
    for error in mapper.errors:
        assert error.source == str(path), (case, str(error))
    if case.kind == "bad_json" and parses(case.data):  # the edit left valid JSON (a comma inside a string)
        return "refused" if errors else "started"
    if case.kind in ("bad_json", "bytes", "top_type", "empty"):
        assert mapper.queueConfig == {} and len(errors) == 1, (case, errors)
        assert str(path) in errors[0], (case, errors)
        return "refused"
    bad = case.section
    others = set(base) - {bad}
    # the other queues always load (a template broken breaks the queues using it)
    templates = {name for name, entry in base.items() if entry.get("isTemplateQueue") or name.endswith("_TEMPLATE")}
    users = {name for name, entry in base.items() if entry.get("templateQueueName") == bad}
    for name in others - templates - users:
        assert name in mapper.queueConfig, (case, name, errors)
    assert all(error.queue_name in {bad} | users for error in mapper.errors), (case, errors)
    if case.kind == "dup_key":
        assert any(f"queue {bad!r} is defined twice" in w for w in warnings), (case, warnings)
    mine = [e for e in mapper.errors if e.queue_name == bad]
    if bad in mapper.queueConfig or (bad in templates and not mine):
        if case.kind == "typo_key" and case.typo_of != case.key:
            assert any(f"{case.key!r}" in w and "did you mean" in w for w in warnings), (case, warnings)
        return "started"
    assert mine or case.kind == "entry_type", (case, errors)
    for error in mine[:1]:
        line = str(error)
        assert str(path) in line and repr(bad) in line, (case, line)
        no_template = case.key == "templateQueueName" and case.value is None  # then plugins are missing
        if case.kind in ("value", "plugin_value", "plugin_import", "drop_plugin", "template") and not no_template:
            assert case.key in line, (case, line)
    return "refused"


def test_fuzz_queue_config_in_process(tmp_path):
    import json

    base = example_queue_config(tmp_path)
    path = tmp_path / "panda_queueconfig.json"
    baseline, _warnings = load_queue_config(path, Case("base", json.dumps(base).encode()))
    assert baseline.errors == []
    assert set(baseline.queueConfig) == {n for n, e in base.items() if not e.get("isTemplateQueue")}

    good = json.dumps(base).encode()
    bad_template = dict(base, LOCAL_PUSH=dict(base["LOCAL_PUSH"], templateQueueName=[]))

    # what the fuzzer found: UnicodeDecodeError and TypeError out of load_data, null taken as "no queues"
    @FUZZ
    @given(queue_config_case(base))
    @example(Case("bytes", b"\xff" + good))
    @example(Case("top_type", b"null"))
    @example(Case("value", json.dumps(bad_template).encode(), "LOCAL_PUSH", "templateQueueName", []))
    def run(case: Case) -> None:
        QC_TALLY.add(check_queue_case(path, base, case))

    run()
    QC_TALLY.record()
    assert QC_TALLY.counts["started"] and QC_TALLY.counts["refused"]


# ---------------------------------------------------------------------------- the real daemon
AGENT_LOGS = {"CredManager": "cred_manager", "CommandManager": "command_manager", "Cacher": "cacher",
              "Watcher": "watcher", "JobFetcher": "job_fetcher", "Propagator": "propagator", "Monitor": "monitor",
              "Preparator": "preparator", "Submitter": "submitter", "Stager": "stager", "EventFeeder": "event_feeder",
              "Sweeper": "sweeper", "ServiceMonitor": "service_monitor"}
RUN_AFTER_FIRST_CYCLES = 1.2


def run_daemon(home: Path) -> tuple[str, str]:
    """Start the daemon on ``home``; ('refused', stderr) or ('started', stderr) after it ran its
    first cycle of every agent, a few more seconds, and stopped with status 0 on SIGTERM."""
    pid_file = home / "harvester.pid"
    logs = home / "logs"
    db = home / "harvester.db"
    for stale in [pid_file, db, *logs.glob("*")]:
        stale.unlink(missing_ok=True)
    proc = subprocess.Popen(MASTER + ["--foreground", "--pid", str(pid_file)], env=env_for(home), cwd=str(home),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    started: dict[str, int] | None = None
    while time.monotonic() < deadline and proc.poll() is None:
        master = (logs / "panda-master.log").read_text() if (logs / "panda-master.log").exists() else ""
        if "started ServiceMonitor" in master or "ServiceMonitor disabled" in master:
            started = {cls: int(n) for cls, n in _started(master)}
            pending = [cls for cls, n in started.items() if n and not _cycled(logs, cls)]
            if not pending:
                break
        time.sleep(0.1)
    if proc.poll() is not None:
        out, err = proc.communicate()
        assert "Traceback" not in out + err, err
        assert proc.returncode != 0, f"exited 0 by itself:\n{err}"
        assert proc.returncode == EXIT_CONFIG, f"rc={proc.returncode} after start:\n{err}\n{_all_logs(logs)}"
        assert not pid_file.exists(), "pid file left behind"
        assert not db.exists(), "DB written before the refusal"
        assert not (logs / "panda-master.log").exists() or "started" not in (logs / "panda-master.log").read_text()
        return "refused", err
    try:
        assert started is not None, f"agents did not all start in 30 s:\n{_all_logs(logs)[-3000:]}"
        time.sleep(RUN_AFTER_FIRST_CYCLES)
        assert proc.poll() is None, f"stopped by itself (rc={proc.poll()}):\n{_all_logs(logs)[-3000:]}"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            out, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
    text = _all_logs(logs)
    assert "Traceback" not in out + err, err
    assert proc.returncode == 0, f"rc={proc.returncode}:\n{err}\n{text[-3000:]}"
    for needle in (" died", "CRITICAL"):
        assert needle not in text, [line for line in text.splitlines() if needle in line][:5]
    assert not pid_file.exists()
    return "started", err


def _started(master_log: str) -> list[tuple[str, str]]:
    import re

    return re.findall(r"started (\w+) x(\d+)", master_log)


def _cycled(logs: Path, cls: str) -> bool:
    path = logs / f"panda-{AGENT_LOGS.get(cls, cls.lower())}.log"
    return path.exists() and "done : took" in path.read_text()


def _all_logs(logs: Path) -> str:
    return "".join(f"==> {p.name}\n{p.read_text(errors='replace')}" for p in sorted(logs.glob("*.log")))


DAEMON_CFG_TALLY = Tally("fuzz_cfg_daemon")


def short_sleeps(model: CfgModel) -> CfgModel:
    """Every agent cycles every second (a few cycles in the run), one thread each."""
    for key in IMPLEMENTED:
        if key.name == "sleepTime":
            model.set(key.section, "sleepTime", "1")
    return model


def test_fuzz_cfg_daemon(tmp_path):
    home = make_home(tmp_path)
    base = short_sleeps(base_cfg(home))
    path = home / "etc" / "panda" / "panda_harvester.cfg"
    path.write_text(base.render())
    assert run_daemon(home)[0] == "started"

    @settings(FUZZ, max_examples=N_DAEMON_CFG, phases=DAEMON_PHASES)
    @given(cfg_case(base, subprocess_safe=True))
    @example(with_value(base, "db", "nConnections", "1"))  # was: the start hung (pool of one, nested DB call)
    @example(with_value(base, "communicator", "moduleName", "no_such_module"))  # was: rc=1 after logs were made
    @example(with_value(base, "submitter", "activateWorkerFactor", "AUTO"))  # was: float('AUTO') traceback
    @example(with_value(base, "monitor", "sleepTime", "1e10"))  # was: OverflowError killed the Monitor thread
    @example(renamed_section(base, "pandacon", "andacon"))  # was: rc=1 after the DB and logs were made
    def run(case: Case) -> None:
        path.write_bytes(case.data)
        outcome, err = run_daemon(home)
        if outcome == "refused":
            lines = err.splitlines()
            assert lines and all(str(path) in line for line in lines), (case, err)
            assert len(lines) == 1 or case.kind == "truncate", (case, err)
        DAEMON_CFG_TALLY.add(outcome)

    run()
    DAEMON_CFG_TALLY.record()


DAEMON_QC_TALLY = Tally("fuzz_queue_config_daemon")


def test_fuzz_queue_config_daemon(tmp_path):
    import json

    home = make_home(tmp_path)
    path = home / "etc" / "panda" / "panda_harvester.cfg"
    path.write_text(short_sleeps(base_cfg(home)).render())
    qpath = home / "etc" / "panda" / "panda_queueconfig.json"
    base = example_queue_config(home)
    qpath.write_text(json.dumps(base))
    assert run_daemon(home)[0] == "started"

    @settings(FUZZ, max_examples=N_DAEMON_QC, phases=DAEMON_PHASES)
    @given(queue_config_case(base))
    def run(case: Case) -> None:
        qpath.write_bytes(case.data)
        outcome, _err = run_daemon(home)  # a bad queue never stops the daemon: it is left out
        log = home / "logs" / "panda-queue_config_mapper.log"
        errors = [line for line in log.read_text().splitlines() if " ERROR " in line]
        if errors:  # each problem logged on one line naming the file (and the queue, when it is one queue's)
            assert all(str(qpath) in line for line in errors), (case, errors)
            queue_errors[0] += 1
        DAEMON_QC_TALLY.add(outcome)

    queue_errors = [0]
    run()
    DAEMON_QC_TALLY.record(queue_refused=queue_errors[0])
