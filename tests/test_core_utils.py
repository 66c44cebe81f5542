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
