"""Several instances on one database: ``[db] tablePrefix`` keeps their rows apart, the registry
refuses an instance the tables of another one, the sequence stays shared (both engines)."""

from __future__ import annotations

import pytest

import mariadb_helpers
from pandaharvester.errors import DBError
from pandaharvester.harvestercore.db import instance_tables
from pandaharvester.harvestercore.db_proxy import DBProxy
from pandaharvester.harvestercore.db_proxy_pool import DBProxyPool
from test_db_fixtures import _module_mariadb, db_engine, db_overrides, insert_workers, make_job, make_worker  # noqa: F401


@pytest.fixture()
def instance(fresh_home, db_overrides):
    """``instance(harvester_id, prefix)``: the cfg of that instance on the test's one database, and a
    DBProxy of it with its tables made (as the daemon does at start)."""
    made: list[DBProxy] = []

    def start(harvester_id: str, prefix: str = "") -> DBProxy:
        fresh_home({"master": {"harvester_id": harvester_id}, "db": dict(db_overrides, tablePrefix=prefix)})
        DBProxyPool.reset()
        proxy = DBProxy()
        made.append(proxy)
        proxy.make_tables(None, None)
        return proxy

    yield start
    for proxy in made:
        proxy.close()
    DBProxyPool.reset()


def _names(proxy: DBProxy, kind: str) -> set[str]:
    """Physical table or index names in the test's database."""
    if proxy.engine.name == "sqlite":
        import sqlite3

        con = sqlite3.connect(proxy.engine.path)
        try:
            return {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type=?", (kind,))
                    if not row[0].startswith("sqlite_")}
        finally:
            con.close()
    con = mariadb_helpers.admin_connection(proxy.settings.schema)
    try:
        cur = con.cursor()
        if kind == "table":
            cur.execute("SHOW TABLES")
        else:
            cur.execute("SELECT DISTINCT index_name FROM information_schema.statistics WHERE table_schema=DATABASE() "
                        "AND index_name != 'PRIMARY'")
        return {row[0] for row in cur.fetchall()}
    finally:
        con.close()


def _count(proxy: DBProxy, table: str) -> int:
    (n,) = proxy.execute(f"SELECT COUNT(*) FROM {table}").fetchone()
    proxy.commit()
    return n


def test_two_instances_on_one_database_see_only_their_own_rows(instance):
    a = instance("H_A", "A_")
    job = make_job(site="Q1")
    assert a.insert_jobs([job])
    insert_workers(a, [make_worker(site="Q1", status="submitted")])
    b = instance("H_B", "B_")
    insert_workers(b, [make_worker(site="Q1", status="running")])

    assert (_count(a, "job_table"), _count(a, "work_table")) == (1, 1)
    assert (_count(b, "job_table"), _count(b, "work_table")) == (0, 1)
    # a picker of one instance never gets the other's rows
    got_a = a.get_workers_to_update(100, 0, 600, "monitor-a")
    got_b = b.get_workers_to_update(100, 0, 600, "monitor-b")
    statuses = {w.status for by_queue in got_a.values() for sets in by_queue.values() for ws in sets for w in ws}
    assert statuses == {"submitted"}
    statuses = {w.status for by_queue in got_b.values() for sets in by_queue.values() for ws in sets for w in ws}
    assert statuses == {"running"}

    tables = _names(a, "table")
    assert {"A_job_table", "B_job_table", "A_work_table", "B_pq_table", "seq_table", "instance_table"} <= tables
    assert "job_table" not in tables and "A_seq_table" not in tables
    # the indexes carry the prefix too (SQLite's index names are per file)
    assert {"A_idx_computingSite_job_table", "B_idx_computingSite_job_table", "A_idxh_work_status_mod"} <= _names(a, "index")


def test_worker_ids_stay_unique_across_instances(instance):
    a = instance("H_A", "A_")
    b = instance("H_B", "B_")
    ids = [a.get_next_seq_number("SEQ_workerID"), b.get_next_seq_number("SEQ_workerID"),
           a.get_next_seq_number("SEQ_workerID")]
    assert len(set(ids)) == 3 and ids == sorted(ids)


def test_an_instance_is_refused_the_tables_another_instance_owns(instance):
    a = instance("H_A")
    assert a.insert_jobs([make_job(site="Q1")])
    with pytest.raises(DBError) as refused:
        instance("H_B")
    text = str(refused.value)
    assert "[db] tablePrefix = (empty)" in text and "belong to instance H_A" in text
    assert "not to harvester_id H_B" in text and "tablePrefix = H_B_" in text
    assert "DELETE FROM instance_table WHERE tablePrefix=''" in text
    # nothing of the owner's was touched; its own restart (or a second process of it) is accepted
    again = instance("H_A")
    assert _count(again, "job_table") == 1
    rows = instance_tables.registered_instances(again)
    assert [(r["tablePrefix"], r["harvesterID"]) for r in rows] == [("", "H_A")]


def test_an_existing_database_is_claimed_by_its_first_start_after_the_upgrade(instance):
    a = instance("H_A")
    assert a.insert_jobs([make_job(site="Q1")])
    # a database of a version without the registry
    a.execute("DROP TABLE instance_table")
    a.commit()
    again = instance("H_A")
    assert _count(again, "job_table") == 1
    assert [r["harvesterID"] for r in instance_tables.registered_instances(again)] == ["H_A"]


def test_a_bad_prefix_is_refused_by_the_engine_too():
    with pytest.raises(DBError, match=r"\[db\] tablePrefix = 'x-y' cannot start table names"):
        instance_tables.table_names("x-y")


def test_the_renamer_changes_whole_names_only():
    names = instance_tables.TableNames("P_")
    sql = ("SELECT j.PandaID FROM job_table j, jw_table r WHERE r.PandaID=j.PandaID AND "
           "j.status IN (SELECT 1 FROM seq_table) ; CREATE INDEX idx_computingSite_job_table ON job_table(PandaID)")
    assert names.sql(sql) == ("SELECT j.PandaID FROM P_job_table j, P_jw_table r WHERE r.PandaID=j.PandaID AND "
                              "j.status IN (SELECT 1 FROM seq_table) ; CREATE INDEX P_idx_computingSite_job_table ON "
                              "P_job_table(PandaID)")
    assert names.logical("P_idx_computingSite_job_table") == "idx_computingSite_job_table"
    assert names.logical("seq_table") == "seq_table"


def test_admin_lists_the_instances_of_the_database(instance, capsys):
    from pandaharvester.harvesterscripts.harvester_admin import main as admin_main

    instance("H_A", "A_")
    instance("H_B")
    assert admin_main(["db", "instances"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" host=")[0] for line in lines] == ["tablePrefix=(none) harvester_id=H_B",
                                                           "tablePrefix=A_ harvester_id=H_A"]
