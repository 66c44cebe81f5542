"""core_utils helpers plugins rely on."""

from __future__ import annotations

import threading
import time

import pytest

from pandaharvester.harvestercore import core_utils


def test_encrypt_decrypt_round_trip_and_wrong_phrase() -> None:
    secret = core_utils.encrypt_string("phrase", "mail-password")
    assert "mail-password" not in secret
    assert core_utils.decrypt_string("phrase", secret) == "mail-password"
    # a fresh IV each time: the same text never encrypts to the same string
    assert core_utils.encrypt_string("phrase", "mail-password") != secret
    with pytest.raises(UnicodeDecodeError):
        core_utils.decrypt_string("other phrase", core_utils.encrypt_string("phrase", "x" * 64))


def test_sleep_returns_at_once_when_stopped() -> None:
    stop = threading.Event()
    threading.Timer(0.1, stop.set).start()
    start = time.monotonic()
    assert core_utils.sleep(30, stop) is True
    assert time.monotonic() - start < 2


def test_create_shards_and_unique_queue_name() -> None:
    assert list(core_utils.create_shards(range(5), 2)) == [[0, 1], [2, 3], [4]]
    assert core_utils.get_unique_queue_name("PQ", "SCORE", "ANY") == "PQ:SCORE:ANY"


def test_file_lock_skips_within_interval(tmp_path) -> None:
    lock_file = str(tmp_path / "lock")
    with core_utils.get_file_lock(lock_file, 60):
        pass
    with pytest.raises(IOError):
        with core_utils.get_file_lock(lock_file, 60):
            pass


def test_adler32_matches_known_value(tmp_path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"Wikipedia")
    assert core_utils.calc_adler32(str(path)) == "11e60398"


# ----------------------------------------------------------------------------- back-off and choices
@pytest.mark.parametrize("nth, kwargs, expected", [
    (1, {}, 1),
    (3, {}, 3),
    (0, {}, 1),  # "before the first retry" counts as the first
    (3, {"increment": 5}, 11),  # 1 + 2 * 5
    (3, {"increment": 5, "min_seconds": 10}, 20),
    (10, {"increment": 5, "max_seconds": 30}, 30),
    (4, {"max_retries": 3}, False),
    (3, {"max_retries": 3}, 3),
    (50, {"max_retries": 0}, 50),  # 0 / None: no limit
])
def test_retry_period_sec_matches_the_original(nth, kwargs, expected) -> None:
    assert core_utils.retry_period_sec(nth, **kwargs) == expected


def test_make_choice_list_is_per_mille() -> None:
    choices = core_utils.make_choice_list({"rc_test2": 50, "ptest": 5}, default="managed")
    assert len(choices) == 1000
    assert choices.count("rc_test2") == 50 and choices.count("ptest") == 5 and choices.count("managed") == 945
    # weights above 1000 in total are scaled down; nothing is left for the default
    scaled = core_utils.make_choice_list({"a": 1500, "b": 500}, default="d")
    assert (scaled.count("a"), scaled.count("b"), scaled.count("d")) == (750, 250, 0)
    assert core_utils.make_choice_list(None, default="x") == ["x"] * 1000


# ----------------------------------------------------------------------------- small classes
def test_synchronize_serialises_calls() -> None:
    inside = []
    overlaps = []

    @core_utils.synchronize
    def critical(i: int) -> int:
        inside.append(i)
        if len(inside) > 1:
            overlaps.append(list(inside))
        time.sleep(0.01)
        inside.remove(i)
        return i * 2

    results = []
    threads = [threading.Thread(target=lambda i=i: results.append(critical(i))) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [0, 2, 4, 6, 8, 10] and overlaps == []
    assert critical.__name__ == "critical"


def test_singletons_by_id_and_by_thread() -> None:
    class PerId(metaclass=core_utils.SingletonWithID):
        def __init__(self, id=None):
            self.made_in = threading.get_ident()

    class PerThread(metaclass=core_utils.SingletonWithThreadAndID):
        def __init__(self, id=None):
            pass

    assert PerId(id="a") is PerId(id="a") and PerId(id="a") is not PerId(id="b") and PerId() is PerId()
    here = PerThread(id="a")
    assert PerThread(id="a") is here
    other = []
    thread = threading.Thread(target=lambda: other.append((PerThread(id="a"), PerId(id="a"))))
    thread.start()
    thread.join()
    assert other[0][0] is not here and other[0][1] is PerId(id="a")


def test_dict_tuple_hybrid_reads_by_name_and_packs_a_spec() -> None:
    from pandaharvester.harvestercore.process_lock_spec import ProcessLockSpec

    row = core_utils.DictTupleHybrid(("submitter", "host_1-a", None))
    row.set_attributes(["processName", "lockedBy", "lockTime"])
    assert row[1] == "host_1-a" and row["lockedBy"] == "host_1-a" and row.processName == "submitter"
    assert row._asdict() == {"processName": "submitter", "lockedBy": "host_1-a", "lockTime": None}
    assert row.attributes == ["processName", "lockedBy", "lockTime"]
    spec = ProcessLockSpec()
    spec.pack(row)
    assert (spec.processName, spec.lockedBy) == ("submitter", "host_1-a") and not spec.has_updated_attributes()
    with pytest.raises(KeyError):
        row["nope"]  # noqa: B018
    with pytest.raises(AttributeError):
        row.nope  # noqa: B018
    bare = core_utils.DictTupleHybrid((1,))
    with pytest.raises(AttributeError, match="set_attributes"):
        bare._asdict()


def test_safe_dict_map_with_lock_and_pickle_text() -> None:
    assert "{a}-{b}".format_map(core_utils.SafeDict(a=1)) == "1-{b}"
    shared = core_utils.get_global_dict()
    assert shared is core_utils.get_global_dict()
    with shared:
        shared["k"] = 3
    assert "k" in shared and shared["k"] == 3 and dict(shared.iteritems())["k"] == 3
    data = {"x": [1, 2], "when": core_utils.naive_utcnow()}
    text = core_utils.pickle_to_text(data)
    assert isinstance(text, str) and text.isascii()
    assert core_utils.unpickle_from_text(text) == data


def test_stopwatch() -> None:
    watch = core_utils.get_stopwatch()
    time.sleep(0.02)
    assert watch.get_elapsed_time().startswith(" : took ") and watch.get_elapsed_time().endswith(" sec")
    assert watch.get_elapsed_time_in_sec(precise=True) >= 0.02
    assert watch.get_elapsed_time_in_sec() == 0 and isinstance(watch.get_elapsed_time_in_sec(), int)
    assert watch.startTime.tzinfo is None
    watch.reset()
    assert watch.get_elapsed_seconds() < 0.02


# ----------------------------------------------------------------------------- identity, labels
def test_get_pid_and_pilot_types() -> None:
    import os
    import socket

    pid = core_utils.get_pid()
    host, rest = pid.rsplit("_", 1)
    os_pid, thread_hex = rest.split("-")
    assert host == socket.gethostname() and int(os_pid) == os.getpid()
    assert int(thread_hex, 16) == threading.get_ident()
    for label, pilot_type in (("rc_test", "RC"), ("rc_test2", "RC"), ("rc_alrb", "ALRB"), ("ptest", "PT"),
                              ("managed", "PR"), (None, "PR")):
        assert core_utils.prod_source_label_to_pilot_type(label) == pilot_type
    assert core_utils.special_pilot_type_to_prod_source_label("RC") == "rc_test2"
    assert core_utils.special_pilot_type_to_prod_source_label("PR") is None
    from pandaharvester.harvestercore.job_spec import JobSpec

    job = JobSpec()
    job.jobParams = {"prodSourceLabel": "rc_test"}
    assert job.get_pilot_type() == core_utils.prod_source_label_to_pilot_type("rc_test") == "RC"


# ----------------------------------------------------------------------------- files
def test_file_lock_held_by_another_process(tmp_path) -> None:
    import subprocess
    import sys

    lock_file = tmp_path / "lock"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl, sys, time\n"
         f"f = open({str(lock_file)!r}, 'a+')\n"
         "fcntl.flock(f, fcntl.LOCK_EX)\n"
         "print('locked', flush=True)\n"
         "time.sleep(30)\n"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        ran = []
        with pytest.raises(IOError, match="locked by another process"):
            with core_utils.get_file_lock(str(lock_file), 0):
                ran.append(1)
        assert ran == []
    finally:
        holder.kill()
        holder.wait()
    with core_utils.get_file_lock(str(lock_file), 0):  # free again, and the interval is 0
        pass


def test_set_file_permission(tmp_path) -> None:
    import os
    import stat

    top = tmp_path / "a.txt"
    top.write_text("x")
    os.chmod(top, 0o644)
    sub = tmp_path / "d" / "e"
    sub.mkdir(parents=True)
    inner = sub / "b.txt"
    inner.write_text("y")
    os.chmod(inner, 0o666)
    core_utils.set_file_permission(str(top))
    assert stat.S_IMODE(os.stat(top).st_mode) == 0o600
    core_utils.set_file_permission(str(tmp_path / "d"))
    assert stat.S_IMODE(os.stat(inner).st_mode) == 0o600
    core_utils.set_file_permission(str(tmp_path / "missing"))  # absent: nothing to do, no error


# ----------------------------------------------------------------------------- logging helpers
def test_make_logger_prefix_and_dump_error_message(caplog) -> None:
    import logging

    base = core_utils.setup_logger("test_core_utils")
    assert base.name == "panda.log.test_core_utils"

    def some_method():
        return core_utils.make_logger(base, "workerID=7")

    log = some_method()
    with caplog.at_level(logging.DEBUG, logger=base.name):
        log.info("hello")
        try:
            raise ValueError("broken thing")
        except ValueError:
            text = core_utils.dump_error_message(log)
        quiet = core_utils.dump_error_message(log, "not logged", no_message=True)
    messages = [record.getMessage() for record in caplog.records]
    assert messages[0] == "some_method <workerID=7> hello"
    assert "ValueError broken thing" in text and "Traceback" in text
    assert any("ValueError broken thing" in m and m.startswith("some_method <workerID=7>") for m in messages)
    assert quiet == "not logged" and not any("not logged" in m for m in messages)
    plain = core_utils.make_logger(base, method_name="m")
    assert plain.prefix == "m :"


def test_ids_text_names_each_id_so_a_grep_for_one_finds_the_batch_line():
    from pandaharvester.harvestercore.log_utils import ids_text

    line = f"inputs ready: {ids_text('PandaID', [11, 12, 13])}"
    assert "PandaID=12" in line and line.endswith("PandaID=11 PandaID=12 PandaID=13")
    assert ids_text("workerID", iter(())) == ""
