#!/usr/bin/env bash
# MariaDB for the tests of the MariaDB engine: start the machine's server when it is down and make
# the test account (user harvester_test, which may create and drop the hv_* scratch databases the
# tests make, one per test session, so that several checkouts can test on one server at a time).
#
# Usage: scripts/setup_mariadb.sh [start|status]      (default: start)
# Idempotent: the server is never stopped or restarted, only started when it does not answer; the
# user and grants are (re)applied every time. Needs root (or a root login to the server without a
# password, as on the development machine).
#
# Environment: HARVESTER_TEST_MARIADB_HOST / _PORT (default 127.0.0.1 / 3306),
# HARVESTER_TEST_MARIADB_USER (default harvester_test), HARVESTER_TEST_MARIADB_PASSWORD_FILE (default
# /etc/panda/harvester_test_mariadb.pw, made 0600 with a random password when missing; the tests
# read it from there).
set -euo pipefail

HOST=${HARVESTER_TEST_MARIADB_HOST:-127.0.0.1}
PORT=${HARVESTER_TEST_MARIADB_PORT:-3306}
TEST_USER=${HARVESTER_TEST_MARIADB_USER:-harvester_test}
PW_FILE=${HARVESTER_TEST_MARIADB_PASSWORD_FILE:-/etc/panda/harvester_test_mariadb.pw}

log() { echo "setup_mariadb: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

client() { mariadb -h "$HOST" -P "$PORT" -u root "$@"; }
up() { client -e 'SELECT 1' >/dev/null 2>&1; }

start_server() {
    up && return 0
    [ -x /usr/sbin/mariadbd ] || die "MariaDB is down at $HOST:$PORT and /usr/sbin/mariadbd is missing: apt-get install mariadb-server"
    log "MariaDB at $HOST:$PORT is down: starting it"
    mkdir -p /run/mysqld
    chown mysql:mysql /run/mysqld 2>/dev/null || true
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql
    local deadline=$((SECONDS + 60))
    until up; do
        [ $SECONDS -lt $deadline ] || die "MariaDB not answering on $HOST:$PORT 60 s after start (see its error log)"
        sleep 0.2
    done
}

password() {
    if [ ! -s "$PW_FILE" ]; then
        mkdir -p "$(dirname "$PW_FILE")"
        (umask 077 && head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' >"$PW_FILE")
    fi
    chmod 600 "$PW_FILE"
    head -n 1 "$PW_FILE"
}

ensure_user() {
    # the password goes through stdin, never argv; hv\_% is every scratch database of the tests
    local pw
    pw=$(password)
    client <<SQL || die "cannot create the user $TEST_USER in MariaDB at $HOST:$PORT"
CREATE USER IF NOT EXISTS '$TEST_USER'@'localhost' IDENTIFIED BY '$pw';
CREATE USER IF NOT EXISTS '$TEST_USER'@'127.0.0.1' IDENTIFIED BY '$pw';
ALTER USER '$TEST_USER'@'localhost' IDENTIFIED BY '$pw';
ALTER USER '$TEST_USER'@'127.0.0.1' IDENTIFIED BY '$pw';
GRANT ALL ON \`hv\\_%\`.* TO '$TEST_USER'@'localhost';
GRANT ALL ON \`hv\\_%\`.* TO '$TEST_USER'@'127.0.0.1';
GRANT PROCESS, CONNECTION ADMIN ON *.* TO '$TEST_USER'@'localhost';
GRANT PROCESS, CONNECTION ADMIN ON *.* TO '$TEST_USER'@'127.0.0.1';
SQL
}

connectors() {
    # mysqlclient ([db] useMySQLdb = True) builds against libmariadb: Debian's libmariadb-dev and
    # pkg-config first, then the module into the venv of scripts/test.sh
    local venv=${HARVESTER_VENV:-$(dirname "$0")/../.venv}
    [ -x "$venv/bin/python" ] || return 0
    "$venv/bin/python" -c 'import MySQLdb' 2>/dev/null && return 0
    if ! dpkg-query -W -f='${Status}' libmariadb-dev 2>/dev/null | grep -q "install ok installed" \
            || ! command -v pkg-config >/dev/null; then
        log "installing libmariadb-dev and pkg-config (for mysqlclient)"
        apt-get install -y -q libmariadb-dev pkg-config >/dev/null || die "apt-get install libmariadb-dev pkg-config failed"
    fi
    log "installing mysqlclient into $venv"
    "$venv/bin/pip" install -q 'mysqlclient>=2.1' || die "pip install mysqlclient failed"
}

case "${1:-start}" in
    start) start_server; ensure_user; connectors; log "MariaDB up at $HOST:$PORT, test user $TEST_USER (password in $PW_FILE)" ;;
    status) up && { log "MariaDB up at $HOST:$PORT"; exit 0; } || { log "MariaDB down at $HOST:$PORT"; exit 3; } ;;
    *) die "usage: $0 [start|status]" ;;
esac
