"""Test side of the FIFO backends: a scratch place per backend (SQLite file, MariaDB database,
Redis key prefix) and the cfg overrides that point the FIFOs at it."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

BACKENDS = ("sqlite", "mysql", "redis")
MYSQL = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}
REDIS = {"host": "127.0.0.1", "port": 6379}
MODULES = {"sqlite": ("pandaharvester.harvesterfifo.sqlite_fifo", "SqliteFifo"),
           "mysql": ("pandaharvester.harvesterfifo.mysql_fifo", "MysqlFifo"),
           "redis": ("pandaharvester.harvesterfifo.redis_fifo", "RedisFifo")}


def _mysql_connect(database: str | None = None) -> Any:
    import pymysql

    return pymysql.connect(host=MYSQL["host"], port=MYSQL["port"], user=MYSQL["user"], password=MYSQL["password"],
                           database=database, autocommit=True, connect_timeout=5)


def _wait(check: Any, what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            check()
            return
        except Exception as exc:  # noqa: BLE001 - retried until the deadline
            last = exc
            time.sleep(0.3)
    pytest.fail(f"{what} is not reachable: {last}")


def ensure_mariadb() -> None:
    """MariaDB on 127.0.0.1:3306, started when it is down."""
    try:
        _mysql_connect().close()
        return
    except Exception:
        pass
    daemon = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
    if not os.path.exists(daemon):
        pytest.skip("MariaDB is not installed on this machine (no mariadbd)")
    subprocess.run(["start-stop-daemon", "--start", "--oknodo", "--background", "--exec", daemon], check=False)
    _wait(lambda: _mysql_connect().close(), "MariaDB on 127.0.0.1:3306")


def ensure_redis() -> None:
    """Redis on 127.0.0.1:6379, started when it is down (as scripts/setup_redis.sh does)."""
    import redis

    def ping() -> None:
        redis.Redis(socket_connect_timeout=2, **REDIS).ping()

    try:
        ping()
        return
    except Exception:
        pass
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("Redis is not installed on this machine (no redis-server)")
    subprocess.run([server, "--daemonize", "yes", "--bind", "127.0.0.1", "--port", "6379", "--save", "",
                    "--appendonly", "no"], check=False, stdout=subprocess.DEVNULL)
    _wait(ping, "Redis on 127.0.0.1:6379")


def scratch_fifo_cfg(backend: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """Yield the ``[fifo]`` overrides of a scratch place for ``backend``; cleaned up afterwards."""
    module, cls = MODULES[backend]
    cfg: dict[str, Any] = {"fifoModule": module, "fifoClass": cls,
                           "database_filename": str(tmp_path / "$(TITLE)_fifo.db")}
    if backend == "sqlite":
        yield cfg
        return
    if backend == "redis":
        ensure_redis()
        cfg.update(redisHost=REDIS["host"], redisPort=REDIS["port"])
        yield cfg
        return
    ensure_mariadb()
    schema = f"hv_{uuid.uuid4().hex[:12]}"
    conn = _mysql_connect()
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{schema}`")
    cfg.update(db_host=MYSQL["host"], db_port=MYSQL["port"], db_user=MYSQL["user"], db_password=MYSQL["password"],
               db_schema=schema)
    try:
        yield cfg
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{schema}`")
        conn.close()


def unique_title() -> str:
    """A FIFO title nobody else uses (Redis keys and MariaDB tables are named after it)."""
    return f"t{uuid.uuid4().hex[:10]}"


def redis_cleanup(title: str) -> None:
    """Remove the Redis keys of the FIFO ``title``."""
    import redis

    conn = redis.Redis(**REDIS)
    keys = list(conn.scan_iter(f"{title}-fifo_id-*"))
    if keys:
        conn.delete(*keys)
