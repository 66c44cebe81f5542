"""Queue config sources (file, URL, cache, [qconf]), reloading, configID history, DB store."""

from __future__ import annotations

import http.server
import json
import threading

import pytest

from pandaharvester.harvestercore.queue_config_loader import QueueConfigSettings, resolve_config_path
from pandaharvester.harvestercore.queue_config_mapper import QueueConfigMapper

from test_queue_config_helpers import cache_of, full_queue, make_mapper, write_json


# ---------------------------------------------------------------- file location
def test_config_path_resolution(tmp_path, monkeypatch):
    assert resolve_config_path("/abs/q.json") == "/abs/q.json"
    monkeypatch.setenv("PANDA_HOME", str(tmp_path))
    assert resolve_config_path("q.json") == "/etc/panda/q.json"  # not under PANDA_HOME yet
    (tmp_path / "etc" / "panda").mkdir(parents=True)
    (tmp_path / "etc" / "panda" / "q.json").write_text("{}")
    assert resolve_config_path("q.json") == str(tmp_path / "etc" / "panda" / "q.json")
    monkeypatch.delenv("PANDA_HOME")
    assert resolve_config_path("q.json") == "/etc/panda/q.json"


def test_relative_config_file_under_panda_home(tmp_path, monkeypatch):
    monkeypatch.setenv("PANDA_HOME", str(tmp_path))
    (tmp_path / "etc" / "panda").mkdir(parents=True)
    write_json(tmp_path / "etc" / "panda" / "my_qconf.json", {"HOMEQ": full_queue()})
    assert make_mapper("my_qconf.json").has_queue("HOMEQ")


def test_settings_from_harvester_config(fresh_home):
    from pandaharvester.harvesterconfig import harvester_config

    home = fresh_home({"qconf": {"configFile": "home_qconf.json", "queueList": "Q1 Q2", "updateInterval": "30",
                                 "checkInterval": "60", "configFromCacher": "False"}})
    settings = QueueConfigSettings.from_harvester_config()
    assert settings.queue_list == ["Q1", "Q2"] and settings.update_interval == 30
    assert settings.check_interval == 30  # never longer than updateInterval
    write_json(home / "etc" / "panda" / "home_qconf.json", {"Q1": full_queue(), "Q3": full_queue()})
    mapper = QueueConfigMapper(update_db=False, id="from-cfg", check_plugins=False,
                               cache_reader=lambda *a: None)
    try:
        assert sorted(mapper.get_all_queues()) == ["Q1", "Q3"]
        assert list(mapper.get_active_queues()) == ["Q1"]
    finally:
        QueueConfigMapper.reset("from-cfg")
    assert harvester_config is not None


# ---------------------------------------------------------------- URL and cache
@pytest.fixture()
def http_server(tmp_path):
    """A tiny HTTP server serving files from tmp_path/www; yields (base_url, directory)."""
    www = tmp_path / "www"
    www.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(www), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", www
    server.shutdown()
    server.server_close()


def test_http_url_source_with_local_overlay(tmp_path, http_server):
    base_url, www = http_server
    write_json(www / "remote.json", {"R_TEMPLATE": full_queue(maxWorkers=2), "RQ": {"templateQueueName": "R_TEMPLATE"},
                                     "BOTH": full_queue(maxWorkers=1, nNewWorkers=1)})
    local = write_json(tmp_path / "local.json", {"BOTH": {"maxWorkers": 7}, "LOCALQ": full_queue()})
    mapper = make_mapper(local, config_url=f"{base_url}/remote.json")
    assert sorted(mapper.get_all_queues()) == ["BOTH", "LOCALQ", "RQ"]
    assert mapper.get_queue("RQ").maxWorkers == 2
    both = mapper.get_queue("BOTH")
    assert both.maxWorkers == 7 and both.nNewWorkers == 1
    assert mapper.errors == []


def test_http_url_errors(http_server):
    base_url, www = http_server
    (www / "broken.json").write_text('{"Q": }')
    mapper = make_mapper(None, config_url=f"{base_url}/broken.json")
    mapper.load_data()
    assert len(mapper.errors) == 1 and "line 1 column 7" in str(mapper.errors[0])
    assert mapper.errors[0].source == f"{base_url}/broken.json"
    missing = make_mapper(None, config_url=f"{base_url}/missing.json")
    missing.load_data()
    assert len(missing.errors) == 1 and "cannot fetch queue config" in str(missing.errors[0])
    assert "404" in str(missing.errors[0])


def test_file_url_from_environment(tmp_path, monkeypatch):
    remote = write_json(tmp_path / "remote.json", {"ENVQ": full_queue()})
    monkeypatch.setenv("HARVESTER_QUEUE_CONFIG_URL", remote.as_uri())
    mapper = make_mapper(None)
    assert mapper.has_queue("ENVQ") and mapper.errors == []
    bad_scheme = make_mapper(None, config_url="ftp://example.org/q.json")
    bad_scheme.load_data()
    assert "unsupported URL scheme 'ftp'" in str(bad_scheme.errors[0])


def test_config_from_cacher(tmp_path):
    cached = {"CACHEQ": full_queue(maxWorkers=3), "C_TEMPLATE": full_queue(maxWorkers=9)}
    local = write_json(tmp_path / "local.json", {"LQ": {"templateQueueName": "C_TEMPLATE"}})
    mapper = make_mapper(local, config_from_cacher=True, cache_reader=cache_of({"queues_config_file": cached}))
    assert sorted(mapper.get_all_queues()) == ["CACHEQ", "LQ"]
    assert mapper.get_queue("LQ").maxWorkers == 9
    as_text = make_mapper(None, config_from_cacher=True,
                          cache_reader=cache_of({"queues_config_file": json.dumps(cached)}))
    assert sorted(as_text.get_all_queues()) == ["CACHEQ"] and as_text.errors == []
    wrong = make_mapper(None, config_from_cacher=True, cache_reader=cache_of({"queues_config_file": [1]}))
    wrong.load_data()
    assert "cached queue config is not a JSON object" in str(wrong.errors[0])


def test_cacher_falls_back_to_url_when_cache_is_absent(tmp_path):
    remote = write_json(tmp_path / "remote.json", {"URLQ": full_queue()})
    mapper = make_mapper(None, config_from_cacher=True, config_url=remote.as_uri())
    assert mapper.has_queue("URLQ")


# ---------------------------------------------------------------- reloading
class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_reload_respects_check_interval_and_sees_file_change(tmp_path):
    path = write_json(tmp_path / "q.json", {"Q1": full_queue()})
    mapper = make_mapper(path, check_interval=5, update_interval=600)
    clock = mapper._clock = FakeClock()
    assert sorted(mapper.get_all_queues()) == ["Q1"]
    write_json(path, {"Q1": full_queue(), "Q2": full_queue(maxWorkers=22)})
    clock.now += 2  # within checkInterval: not even looked at
    assert sorted(mapper.get_all_queues()) == ["Q1"]
    clock.now += 4  # past checkInterval: the file changed, so reload
    assert sorted(mapper.get_all_queues()) == ["Q1", "Q2"]
    clock.now += 6  # nothing changed and updateInterval not reached: no reload
    before = mapper.lastUpdate
    mapper.get_all_queues()
    assert mapper.lastUpdate == before


def test_periodic_reload_of_url_source_after_update_interval(tmp_path):
    remote = write_json(tmp_path / "remote.json", {"A": full_queue()})
    mapper = make_mapper(None, config_url=remote.as_uri(), check_interval=5, update_interval=60)
    clock = mapper._clock = FakeClock()
    assert list(mapper.get_all_queues()) == ["A"]
    write_json(remote, {"B": full_queue()})
    clock.now += 30
    assert list(mapper.get_all_queues()) == ["A"]  # URL content is only re-read every updateInterval
    clock.now += 31
    assert list(mapper.get_all_queues()) == ["B"]
    mapper.load_data(force=True)
    assert list(mapper.queueConfig) == ["B"]


# ---------------------------------------------------------------- history by configID
def test_config_ids_and_history_in_memory(tmp_path):
    path = write_json(tmp_path / "q.json", {"Q": full_queue(maxWorkers=1), "OTHER": full_queue()})
    mapper = make_mapper(path)
    first = mapper.get_queue("Q")
    first_id = first.configID
    assert mapper.has_queue("Q", first_id) and not mapper.has_queue("Q", 999)
    write_json(path, {"Q": full_queue(maxWorkers=2), "OTHER": full_queue()})
    mapper.load_data(force=True)
    second = mapper.get_queue("Q")
    assert second.configID != first_id and second.maxWorkers == 2
    assert mapper.get_queue("OTHER").configID == mapper.get_all_queues()["OTHER"].configID
    historical = mapper.get_queue("Q", first_id)
    assert historical.maxWorkers == 1 and historical.configID == first_id and historical.queueName == "Q"
    assert mapper.get_queue("Q", 12345) is second  # unknown configID: the current config
    assert set(mapper.get_all_queues_with_config_ids()) == {first_id, second.configID,
                                                          mapper.get_queue("OTHER").configID}
    # status changes do not make a new version; going back to old content reuses its configID
    write_json(path, {"Q": full_queue(maxWorkers=1, queueStatus="offline"), "OTHER": full_queue()})
    mapper.load_data(force=True)
    assert mapper.get_queue("Q").configID == first_id and "Q" not in mapper.get_active_queues()


def test_db_store_history(tmp_path, fresh_home):
    fresh_home()
    from pandaharvester.harvestercore.db_proxy import DBProxy
    from pandaharvester.harvestercore.queue_config_store import DBConfigStore

    proxy = DBProxy()
    proxy.make_tables(None, None)
    name = "DBQ"
    path = write_json(tmp_path / "q.json", {name: full_queue(maxWorkers=1), "IDLE": full_queue()})
    settings = QueueConfigSettings(config_file=str(path), queue_list=[name])
    mapper = QueueConfigMapper(id="db-history", check_plugins=False, settings=settings,
                               cache_reader=lambda *a: None, store=DBConfigStore(proxy))
    try:
        first_id = mapper.get_queue(name).configID
        assert isinstance(first_id, int) and mapper.errors == []
        write_json(path, {name: full_queue(maxWorkers=2), "IDLE": full_queue()})
        mapper.load_data(force=True)
        assert mapper.get_queue(name).configID != first_id
        assert mapper.get_queue(name, first_id).maxWorkers == 1
        # another mapper (another process) finds the same configIDs in the DB
        other = QueueConfigMapper(id="db-history-2", check_plugins=False, settings=settings,
                                  cache_reader=lambda *a: None, store=DBConfigStore(DBProxy()))
        assert other.get_queue(name).configID == mapper.get_queue(name).configID
        assert set(other.get_all_queues_with_config_ids()) >= {first_id, mapper.get_queue(name).configID}
        # pq_table holds the active queue only
        rows = proxy.cur.execute("SELECT DISTINCT queueName FROM pq_table").fetchall()
        assert [row[0] for row in rows] == [name]
    finally:
        QueueConfigMapper.reset("db-history")
        QueueConfigMapper.reset("db-history-2")


def test_update_db_uses_the_db_store(tmp_path, fresh_home):
    fresh_home()
    path = write_json(tmp_path / "q.json", {"Q": full_queue()})
    mapper = QueueConfigMapper(update_db=True, id="with-db", check_plugins=False,
                               settings=QueueConfigSettings(config_file=str(path)), cache_reader=lambda *a: None)
    try:
        assert mapper.store.persistent is True
    finally:
        QueueConfigMapper.reset("with-db")


def test_update_db_falls_back_to_memory_when_the_db_cannot_be_used(tmp_path, monkeypatch, caplog):
    from pandaharvester.harvestercore import queue_config_store

    def no_db():
        raise ImportError("no module named db_proxy_pool")

    monkeypatch.setattr(queue_config_store, "get_db_proxy", no_db)
    path = write_json(tmp_path / "q.json", {"Q": full_queue()})
    with caplog.at_level("WARNING", logger="panda.log.queue_config_mapper"):
        mapper = QueueConfigMapper(update_db=True, id="fallback", check_plugins=False,
                                   settings=QueueConfigSettings(config_file=str(path)), cache_reader=lambda *a: None)
    try:
        assert mapper.store.persistent is False
        assert any("DB not available" in r.getMessage() and "db_proxy_pool" in r.getMessage() for r in caplog.records)
        assert mapper.has_queue("Q") and isinstance(mapper.get_queue("Q").configID, int)
    finally:
        QueueConfigMapper.reset("fallback")
