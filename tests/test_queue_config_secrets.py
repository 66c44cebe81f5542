"""Queue-config secrets are masked in qcdump_table, and the versions read back still build working plugins."""

from __future__ import annotations

import json

import pytest

from pandaharvester.harvestercore.queue_config_loader import QueueConfigSettings
from pandaharvester.harvestercore.queue_config_mapper import QueueConfigMapper

from test_queue_config_helpers import full_queue, plugin, write_json

SECRET = "s3cr3t-Pa55"
NAME = "SECQ"


def queue_with_secret(**attrs):
    entry = full_queue(**attrs)
    entry["submitter"] = dict(plugin(), password=SECRET, user="atlas", nested={"api_key": SECRET + "-k"})
    return entry


@pytest.fixture()
def db_mapper(tmp_path, fresh_home):
    fresh_home()
    from pandaharvester.harvestercore.db_proxy import DBProxy
    from pandaharvester.harvestercore.queue_config_store import DBConfigStore

    proxy = DBProxy()
    proxy.make_tables(None, None)
    path = tmp_path / "q.json"
    made = []

    def make(queues):
        write_json(path, queues)
        mapper_id = f"secrets-{len(made)}"
        made.append(mapper_id)
        mapper = QueueConfigMapper(id=mapper_id, check_plugins=False,
                                   settings=QueueConfigSettings(config_file=str(path)),
                                   cache_reader=lambda *a: None, store=DBConfigStore(DBProxy()))
        assert mapper.has_queue(NAME)  # loaded (and dumped) now
        return mapper

    yield make, proxy, path
    for mapper_id in made:
        QueueConfigMapper.reset(mapper_id)


def stored_dumps(proxy) -> list[tuple]:
    rows = proxy.cur.execute("SELECT configID, dumpUniqueName, checksum, data FROM qcdump_table")
    return [tuple(row) for row in rows]


def test_secrets_are_masked_in_the_dump_and_restored_for_plugins(db_mapper):
    make, proxy, path = db_mapper
    mapper = make({NAME: queue_with_secret(maxWorkers=1)})
    rows = stored_dumps(proxy)
    assert rows and all(SECRET not in str(row) for row in rows), rows
    data = json.loads(rows[0][3])
    assert data["submitter"]["password"] == "********" and data["submitter"]["nested"]["api_key"] == "********"
    assert data["submitter"]["user"] == "atlas"  # not a secret
    current = mapper.get_queue(NAME)
    by_id = mapper.get_queue(NAME, current.configID)  # what the monitor/sweeper use for a worker
    assert by_id.submitter["password"] == SECRET and by_id.submitter["nested"]["api_key"] == SECRET + "-k"
    # an older version, read back from the DB by another process, builds plugins with the secret too
    first_id = current.configID
    write_json(path, {NAME: queue_with_secret(maxWorkers=2)})
    other = make({NAME: queue_with_secret(maxWorkers=2)})
    assert other.get_queue(NAME).configID != first_id
    old = other.get_queue(NAME, first_id)
    assert old.maxWorkers == 1 and old.submitter["password"] == SECRET
    assert all(SECRET not in str(row) for row in stored_dumps(proxy))


def test_a_changed_password_alone_makes_no_new_version(db_mapper):
    make, proxy, _path = db_mapper
    first = make({NAME: queue_with_secret()}).get_queue(NAME).configID
    entry = queue_with_secret()
    entry["submitter"]["password"] = "rotated-Pa55"
    mapper = make({NAME: entry})
    assert mapper.get_queue(NAME).configID == first
    assert mapper.get_queue(NAME, first).submitter["password"] == "rotated-Pa55"
    assert len(stored_dumps(proxy)) == 1


def test_dumps_stored_in_clear_by_an_older_version_are_masked(db_mapper):
    from pandaharvester.harvestercore.time_utils import naive_utcnow

    make, proxy, _path = db_mapper
    make({NAME: queue_with_secret()})
    # a recent row as the previous code stored it: the secret in clear
    config_id, _unique_name, _checksum, data = stored_dumps(proxy)[0]
    clear = json.loads(data)
    clear["submitter"]["password"] = SECRET
    clear["maxWorkers"] = 7
    old_id = config_id + 100
    proxy.cur.execute("INSERT INTO qcdump_table (configID, queueName, checksum, dumpUniqueName, creationTime, data) "
                      "VALUES (?, ?, ?, ?, ?, ?)", (old_id, NAME, "old", f"{NAME}_old",
                                                     naive_utcnow().strftime("%Y-%m-%d %H:%M:%S.%f"),
                                                     json.dumps(clear)))
    proxy.commit()
    assert SECRET in str(stored_dumps(proxy))
    mapper = make({NAME: queue_with_secret()})  # loading the dumps masks it
    from pandaharvester.harvestercore.db_proxy import DBProxy

    reader = DBProxy()  # a fresh connection: what is committed
    rows = {row[0]: row for row in stored_dumps(reader)}
    assert old_id in rows and all(SECRET not in str(row) for row in rows.values()), rows
    old = mapper.get_queue(NAME, old_id)
    assert old.maxWorkers == 7 and old.submitter["password"] == SECRET  # from the current config
