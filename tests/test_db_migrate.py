"""harvester-admin db migrate --from-sqlite: a SQLite DB copied into MariaDB, state and sequences kept."""

from __future__ import annotations

import pytest

import mariadb_helpers
from pandaharvester.errors import DBError
from pandaharvester.harvestercore.db.engine import DBSettings
from pandaharvester.harvestercore.db_proxy import DBProxy
from pandaharvester.harvestercore.db_proxy_pool import DBProxyPool
from pandaharvester.harvesterscripts.harvester_admin import main as admin_main
from test_db_fixtures import ago, insert_workers, make_job, make_worker


def _old_sqlite_db(path: str) -> None:
    db = DBProxy(settings=DBSettings(database_filename=path))
    db.make_tables(None, None)
    insert_workers(db, [make_worker(i, status="running", mod_ago=60) for i in range(1, 21)])
    jobs = [make_job(100 + i, status="running", sub_status="running", propagatorTime=ago(7200), n_in=2)
            for i in range(10)]
    assert db.insert_jobs(jobs)
    assert db.get_next_seq_numbers("SEQ_workerID", 41) == list(range(2, 43))
    got = db.get_workers_to_update(5, 0, 600, "old-monitor")  # a lock taken before the move
    assert sum(len(s) for q in got.values() for sets in q.values() for s in sets) == 5
    db.close()


@pytest.mark.mariadb
def test_sqlite_db_is_copied_into_mariadb(tmp_path, fresh_home, capsys):
    source = str(tmp_path / "old.db")
    _old_sqlite_db(source)
    with mariadb_helpers.mariadb_database() as overrides:
        fresh_home({"db": overrides})
        DBProxyPool.reset()
        assert admin_main(["db", "migrate", "--from-sqlite", source]) == 0
        assert "copied" in capsys.readouterr().out
        db = DBProxy()
        worker = db.get_worker_with_id(7)
        assert worker.status == "running" and worker.computingSite == "Q1"
        assert sorted(f.lfn for f in db.get_job(105).inFiles) == ["in.105.0", "in.105.1"]
        assert db.get_next_seq_number("SEQ_workerID") == 43  # numbering goes on
        # the old monitor's locks are kept (they expire after lockInterval as on SQLite)
        cur = db.execute("SELECT COUNT(*) FROM work_table WHERE lockedBy='old-monitor'")
        assert cur.fetchone()[0] == 5
        db.commit()
        assert len(db.get_jobs_to_propagate(50, 600, 0, "prop")) == 10
        # a second copy is refused: nothing merged
        with pytest.raises(DBError, match="copy into an empty database"):
            from pandaharvester.harvestercore.db.migrate import migrate_sqlite

            migrate_sqlite(source)
        db.close()
    DBProxyPool.reset()
