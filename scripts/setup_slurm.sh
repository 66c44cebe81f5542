#!/usr/bin/env bash
# A single-node Slurm on this machine for the Slurm plugins' tests, the demo's --slurm flavour and
# bench/slurm_bench.py: Debian's slurm-wlm packages, munged, slurmctld, slurmd, and slurmdbd on the
# machine's MariaDB (127.0.0.1:3306; its own database and user) so that sacct works.
#
# Usage: scripts/setup_slurm.sh [install|start|status|stop]      (default: start)
#   install  apt-get install the packages (if missing), write slurm.conf / slurmdbd.conf
#   start    install, then start whatever daemon is down and wait until the node is idle
#   status   print each daemon's state; exit 0 when all are up, 3 otherwise
#   stop     SIGTERM slurmd, slurmctld, slurmdbd (and munged if this script started it)
# Idempotent: running `start` again starts only what is down. MariaDB is never stopped or restarted;
# it is started only when it is down. Needs root (the daemons run as root, as in the tests).
#
# Environment: SLURM_LOCAL_CPUS (CPUs the node advertises, default 64: many small jobs at once),
# SLURM_LOCAL_STATE (state, pid and log directory, default /var/spool/slurm-local),
# SLURM_LOCAL_DB_HOST / SLURM_LOCAL_DB_PORT (MariaDB, default 127.0.0.1 / 3306).
set -euo pipefail

CPUS=${SLURM_LOCAL_CPUS:-64}
STATE=${SLURM_LOCAL_STATE:-/var/spool/slurm-local}
DB_HOST=${SLURM_LOCAL_DB_HOST:-127.0.0.1}
DB_PORT=${SLURM_LOCAL_DB_PORT:-3306}
DB_NAME=slurm_acct_db
DB_USER=slurm
CONF_DIR=/etc/slurm
CLUSTER=localcluster
PACKAGES=(slurmctld slurmd slurm-client munge slurmdbd)

log() { echo "setup_slurm: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (it installs packages and starts the Slurm daemons as root)"

# ------------------------------------------------------------------ install
missing_packages() {
    local p
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
    done
}

install_packages() {
    local missing
    missing=$(missing_packages)
    [ -z "$missing" ] && return 0
    log "installing $(echo $missing)"
    export DEBIAN_FRONTEND=noninteractive
    # shellcheck disable=SC2086
    if ! apt-get install -y -q $missing >"$STATE/log/apt.log" 2>&1; then
        log "apt-get install failed; refreshing the package lists and retrying"
        apt-get update -q >>"$STATE/log/apt.log" 2>&1 || die "apt-get update failed; see $STATE/log/apt.log"
        # shellcheck disable=SC2086
        apt-get install -y -q $missing >>"$STATE/log/apt.log" 2>&1 \
            || die "apt-get install $missing failed; see $STATE/log/apt.log"
    fi
}

db_password() {
    # one random password per machine, kept 0600 beside the state (never printed)
    local file="$STATE/dbd.password"
    if [ ! -s "$file" ]; then
        (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$file")
    fi
    cat "$file"
}

mem_mb() {
    awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo
}

slurm_conf() {
    cat <<EOF
# written by scripts/setup_slurm.sh: single-node test cluster
ClusterName=$CLUSTER
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
ReturnToService=2
MpiDefault=none
MailProg=/bin/true
SlurmdParameters=config_overrides
SwitchType=switch/none
# finished jobs stay visible to squeue/scontrol for 10 minutes; sacct keeps them for good
MinJobAge=600
MaxJobCount=20000
# fast turnaround for tests
SchedulerParameters=sched_interval=1,defer_batch
KillWait=5
InactiveLimit=0
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$(mem_mb) State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
}

slurmdbd_conf() {
    cat <<EOF
# written by scripts/setup_slurm.sh
AuthType=auth/munge
DbdHost=localhost
DbdPort=6819
SlurmUser=root
PidFile=$STATE/slurmdbd.pid
LogFile=$STATE/log/slurmdbd.log
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=$DB_HOST
StoragePort=$DB_PORT
StorageUser=$DB_USER
StoragePass=$(db_password)
StorageLoc=$DB_NAME
EOF
}

# write $2 (content) to $1 with mode $3 when it differs; prints "changed" when it wrote
write_if_changed() {
    local path=$1 content=$2 mode=$3
    if [ -f "$path" ] && [ "$(cat "$path")" = "$content" ]; then
        chmod "$mode" "$path"
        return 0
    fi
    (umask 077; printf '%s\n' "$content" >"$path.tmp")
    chmod "$mode" "$path.tmp"
    mv "$path.tmp" "$path"
    echo changed
}

write_configs() {
    mkdir -p "$CONF_DIR"
    local changed=""
    changed+=$(write_if_changed "$CONF_DIR/slurm.conf" "$(slurm_conf)" 644)
    changed+=$(write_if_changed "$CONF_DIR/slurmdbd.conf" "$(slurmdbd_conf)" 600)
    if [ -n "$changed" ]; then
        echo changed
    fi
}

do_install() {
    mkdir -p "$STATE/ctld" "$STATE/d" "$STATE/log"
    chmod 700 "$STATE"
    install_packages
    write_configs
}

# ------------------------------------------------------------------ processes
# pid from a pid file when that process runs the expected program
running_pid() {
    local pidfile=$1 name=$2 pid
    [ -s "$pidfile" ] || return 1
    pid=$(tr -dc '0-9' <"$pidfile")
    [ -n "$pid" ] && [ -r "/proc/$pid/comm" ] || return 1
    [ "$(cat "/proc/$pid/comm")" = "$name" ] || return 1
    echo "$pid"
}

mariadb_up() { mariadb -h "$DB_HOST" -P "$DB_PORT" -u root -e 'SELECT 1' >/dev/null 2>&1; }
munged_up() { running_pid /run/munge/munged.pid munged >/dev/null; }
slurmdbd_up() { running_pid "$STATE/slurmdbd.pid" slurmdbd >/dev/null; }
slurmctld_up() { running_pid "$STATE/slurmctld.pid" slurmctld >/dev/null; }
slurmd_up() { running_pid "$STATE/slurmd.pid" slurmd >/dev/null; }

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
    local seconds=$1 what=$2
    shift 2
    local deadline=$((SECONDS + seconds))
    until "$@"; do
        [ $SECONDS -lt $deadline ] || die "$what not ready after ${seconds}s (logs in $STATE/log)"
        sleep 0.2
    done
}

start_mariadb() {
    mariadb_up && return 0
    log "MariaDB at $DB_HOST:$DB_PORT is down: starting it"
    mkdir -p /run/mysqld
    chown mysql:mysql /run/mysqld
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql
    wait_for 60 "MariaDB" mariadb_up
}

ensure_database() {
    # the accounting database and its user (the password goes through stdin, never argv)
    local password
    password=$(db_password)
    mariadb -h "$DB_HOST" -P "$DB_PORT" -u root <<SQL || die "cannot create $DB_NAME / user $DB_USER in MariaDB"
CREATE DATABASE IF NOT EXISTS $DB_NAME;
CREATE USER IF NOT EXISTS '$DB_USER'@'localhost' IDENTIFIED BY '$password';
CREATE USER IF NOT EXISTS '$DB_USER'@'127.0.0.1' IDENTIFIED BY '$password';
ALTER USER '$DB_USER'@'localhost' IDENTIFIED BY '$password';
ALTER USER '$DB_USER'@'127.0.0.1' IDENTIFIED BY '$password';
GRANT ALL ON $DB_NAME.* TO '$DB_USER'@'localhost';
GRANT ALL ON $DB_NAME.* TO '$DB_USER'@'127.0.0.1';
SQL
}

start_munged() {
    munged_up && return 0
    mkdir -p /run/munge
    chown munge:munge /run/munge
    chmod 755 /run/munge
    runuser -u munge -- /usr/sbin/munged
    touch "$STATE/munged.ours"
    wait_for 10 "munged" munged_up
}

node_idle() { sinfo -h -n localhost -o '%t' 2>/dev/null | grep -qE '^(idle|mix|alloc)'; }
sacct_ready() { sacct -n -X -j 1 >/dev/null 2>&1; }
cluster_registered() { sacctmgr -n -P list cluster format=cluster 2>/dev/null | grep -qx "$CLUSTER"; }

do_start() {
    local changed
    changed=$(do_install)
    if [ -n "$changed" ] && { slurmctld_up || slurmd_up || slurmdbd_up; }; then
        log "configuration changed: restarting the Slurm daemons"
        do_stop_slurm
    fi
    start_munged
    start_mariadb
    ensure_database
    if ! slurmdbd_up; then
        log "starting slurmdbd"
        slurmdbd
        wait_for 30 "slurmdbd" slurmdbd_up
    fi
    wait_for 30 "slurmdbd accepting connections" sacct_ready
    if ! slurmctld_up; then
        log "starting slurmctld"
        slurmctld
        wait_for 30 "slurmctld" slurmctld_up
    fi
    if ! slurmd_up; then
        log "starting slurmd"
        slurmd -N localhost
        wait_for 30 "slurmd" slurmd_up
    fi
    wait_for 60 "node localhost idle in sinfo" node_idle
    if ! cluster_registered; then
        sacctmgr -i add cluster "$CLUSTER" >/dev/null 2>&1 || true
        wait_for 30 "cluster $CLUSTER registered in slurmdbd" cluster_registered
    fi
    log "Slurm is up ($CPUS CPUs on node localhost, accounting in $DB_NAME)"
}

# ------------------------------------------------------------------ stop / status
stop_pids() {  # stop_pids PID...: SIGTERM all, wait for all
    local pid deadline
    [ $# -gt 0 ] || return 0
    kill -TERM "$@" 2>/dev/null || true
    deadline=$((SECONDS + 30))
    for pid in "$@"; do
        while [ -d "/proc/$pid" ] && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
        [ -d "/proc/$pid" ] && { log "PID $pid ignored SIGTERM: SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; }
    done
    return 0
}

do_stop_slurm() {
    local pids=() pid
    pid=$(running_pid "$STATE/slurmd.pid" slurmd) && pids+=("$pid")
    pid=$(running_pid "$STATE/slurmctld.pid" slurmctld) && pids+=("$pid")
    pid=$(running_pid "$STATE/slurmdbd.pid" slurmdbd) && pids+=("$pid")
    stop_pids "${pids[@]}"
}

do_stop() {
    do_stop_slurm
    if [ -f "$STATE/munged.ours" ]; then
        local pid
        pid=$(running_pid /run/munge/munged.pid munged) && stop_pids "$pid"
        rm -f "$STATE/munged.ours"
    fi
    log "stopped (MariaDB left running)"
}

do_status() {
    local rc=0 name
    for name in mariadb munged slurmdbd slurmctld slurmd; do
        if "${name}_up"; then
            echo "$name: up"
        else
            echo "$name: down"
            rc=3
        fi
    done
    if slurmctld_up; then
        sinfo -h -o 'node %n: %t, %c CPUs, %m MB' 2>/dev/null || true
    fi
    return $rc
}

case "${1:-start}" in
    install) do_install >/dev/null ;;
    start) do_start ;;
    status) do_status ;;
    stop) do_stop ;;
    *) die "unknown action '$1' (use install, start, status or stop)" ;;
esac
