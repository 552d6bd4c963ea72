#!/usr/bin/env bash
# Bring up a single-node SLURM cluster on this machine, for trying and testing profiles/slurm.
#
#   sudo tests/cluster/up.sh      (as root; safe to run again: what already runs is left running)
#   tests/cluster/down.sh         stops it again
#
# What it sets up (Debian/Ubuntu, no systemd needed):
#   munge (authentication), MariaDB + slurmdbd (job accounting, so that `sacct` answers the
#   executor plugin's status checks), slurmctld + slurmd for one node named after this host, with
#   all its cores and memory, and two fake GPUs (GRES gpu:2 on /dev/null and /dev/zero) so that
#   jobs asking for `--gpus=1` are scheduled and accounted like on a GPU cluster.
#   One partition, $ALNSFW_SLURM_PARTITION (default `debug`, the default partition), and one
#   account, $ALNSFW_SLURM_ACCOUNT (default `alnsfw`), with the calling user in it.
#
# Environment: ALNSFW_SLURM_PARTITION, ALNSFW_SLURM_ACCOUNT, ALNSFW_SLURM_CLUSTER (default alnsfw),
#   ALNSFW_SLURM_NO_INSTALL=1 to fail instead of running apt-get when packages are missing.
set -euo pipefail

PARTITION="${ALNSFW_SLURM_PARTITION:-debug}"
ACCOUNT="${ALNSFW_SLURM_ACCOUNT:-alnsfw}"
CLUSTER="${ALNSFW_SLURM_CLUSTER:-alnsfw}"
JOB_USER="${SUDO_USER:-$(id -un)}"
DB_PASS="alnsfw-slurmdbd"   # local test database, reachable only through localhost
CONF_DIR=/etc/slurm
RUN_DIR=/run/slurm
LOG_DIR=/var/log/slurm

log() { echo "[cluster/up] $*"; }
die() { echo "[cluster/up] ERROR: $*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "run as root (it installs packages and starts system daemons)"

# ---------------------------------------------------------------- packages
need_pkgs=()
for pkg in slurm-wlm slurmdbd munge mariadb-server; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
        || need_pkgs+=("$pkg")
done
if ((${#need_pkgs[@]})); then
    [[ "${ALNSFW_SLURM_NO_INSTALL:-0}" == 1 ]] && die "missing packages: ${need_pkgs[*]}"
    log "installing ${need_pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

# ---------------------------------------------------------------- helpers
pid_alive() {  # pid_alive PIDFILE: true when the file names a live process of that daemon
    local pid
    [[ -s "$1" ]] || return 1
    pid=$(cat "$1")
    # A pid file left by a daemon that died (e.g. the machine restarted) may name another process.
    [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == "$(basename "$1" .pid)" ]]
}
wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...: poll COMMAND until it succeeds
    local limit=$1 what=$2; shift 2
    local t=0
    until "$@" >/dev/null 2>&1; do
        ((t++ < limit * 2)) || die "timed out after ${limit}s waiting for $what"
        sleep 0.5
    done
}
CHANGED=0
write_if_changed() {  # write_if_changed PATH MODE OWNER < content; sets CHANGED=1 if it differed
    local path=$1 mode=$2 owner=$3 tmp
    tmp=$(mktemp)
    cat >"$tmp"
    if [[ -f "$path" ]] && cmp -s "$tmp" "$path"; then
        rm -f "$tmp"
    else
        install -m "$mode" -o "${owner%:*}" -g "${owner#*:}" "$tmp" "$path"
        rm -f "$tmp"
        CHANGED=1
        log "wrote $path"
    fi
}

mkdir -p "$CONF_DIR" "$RUN_DIR" "$LOG_DIR" /var/spool/slurmctld /var/spool/slurmd /run/munge /run/mysqld
chown slurm:slurm "$RUN_DIR" "$LOG_DIR" /var/spool/slurmctld
chown munge:munge /run/munge
chown mysql:mysql /run/mysqld

# ---------------------------------------------------------------- munge
if [[ ! -s /etc/munge/munge.key ]]; then
    log "creating the munge key"
    mungekey --create --keyfile=/etc/munge/munge.key
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key
if ! pid_alive /run/munge/munged.pid; then
    log "starting munged"
    runuser -u munge -- /usr/sbin/munged
fi
wait_for 20 munge bash -c 'munge -n | unmunge'

# ---------------------------------------------------------------- MariaDB (accounting store)
if ! mysqladmin --protocol=socket ping >/dev/null 2>&1; then
    log "starting MariaDB"
    [[ -d /var/lib/mysql/mysql ]] || mysql_install_db --user=mysql >/dev/null
    setsid nohup mysqld_safe --user=mysql --skip-syslog >"$LOG_DIR/mariadb-start.log" 2>&1 </dev/null &
    wait_for 60 MariaDB mysqladmin --protocol=socket ping
fi
mysql --protocol=socket <<SQL
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
SQL

# ---------------------------------------------------------------- SLURM configuration
NODE=$(hostname -s)
# `slurmd -C` prints the node's real hardware line: CPUs, sockets, cores, threads, RealMemory.
NODE_HW=$(slurmd -C | head -1 | sed -E 's/^NodeName=[^ ]+ //; s/ UpTime=.*//')
[[ -n "$NODE_HW" ]] || die "slurmd -C printed no node line"

write_if_changed "$CONF_DIR/slurmdbd.conf" 0600 slurm:slurm <<EOF
# Written by tests/cluster/up.sh: accounting daemon of the local test cluster.
AuthType=auth/munge
DbdHost=localhost
DbdPort=6819
SlurmUser=slurm
PidFile=$RUN_DIR/slurmdbd.pid
LogFile=$LOG_DIR/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
EOF
SLURMDBD_CHANGED=$CHANGED
CHANGED=0

write_if_changed "$CONF_DIR/slurm.conf" 0644 root:root <<EOF
# Written by tests/cluster/up.sh: a one-node test cluster with two fake GPUs.
ClusterName=$CLUSTER
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=slurm
AuthType=auth/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
SlurmctldPidFile=$RUN_DIR/slurmctld.pid
SlurmdPidFile=$RUN_DIR/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
# A client gives up on an unreachable controller after this many seconds less one (default 10).
# Snakemake's SLURM plugin runs scontrol show config when it is imported, so at every Snakemake
# start on this machine: once this cluster is stopped (make cluster-down, a reboot), each start
# waited 9 s with the default, 2 s with this. One node on localhost answers in milliseconds.
# (No backticks in this comment: the heredoc is unquoted, they would run a command.)
MessageTimeout=3
# Finished jobs stay visible to squeue for 10 minutes (the plugin's squeue status mode needs it).
MinJobAge=600
KillWait=5
InactiveLimit=0
GresTypes=gpu
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819
AccountingStorageTRES=gres/gpu
# Keep each job's --comment (the plugin writes rule and wildcards there) for sacct.
AccountingStoreFlags=job_comment
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
NodeName=$NODE NodeAddr=127.0.0.1 $NODE_HW Gres=gpu:2 State=UNKNOWN
PartitionName=$PARTITION Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF

write_if_changed "$CONF_DIR/gres.conf" 0644 root:root <<EOF
# Written by tests/cluster/up.sh: two fake GPUs, so GPU requests are scheduled and accounted.
Name=gpu File=/dev/null
Name=gpu File=/dev/zero
EOF

# A changed configuration needs restarted daemons; unchanged ones that run are left alone.
stop_pidfile() {
    if pid_alive "$1"; then
        local pid
        pid=$(cat "$1")
        kill "$pid"
        for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.25; done
        kill -9 "$pid" 2>/dev/null || true
    fi
}
if ((CHANGED)); then
    log "slurm.conf changed: restarting slurmctld and slurmd"
    stop_pidfile "$RUN_DIR/slurmd.pid"
    stop_pidfile "$RUN_DIR/slurmctld.pid"
fi
if ((SLURMDBD_CHANGED)); then
    stop_pidfile "$RUN_DIR/slurmdbd.pid"
fi

# ---------------------------------------------------------------- daemons
if ! pid_alive "$RUN_DIR/slurmdbd.pid"; then
    log "starting slurmdbd"
    /usr/sbin/slurmdbd
fi
wait_for 60 slurmdbd bash -c 'sacctmgr -n list cluster >/dev/null'

if ! pid_alive "$RUN_DIR/slurmctld.pid"; then
    log "starting slurmctld"
    /usr/sbin/slurmctld
fi
wait_for 60 slurmctld scontrol ping

if ! pid_alive "$RUN_DIR/slurmd.pid"; then
    log "starting slurmd"
    /usr/sbin/slurmd
fi

# The cluster registers itself with slurmdbd when slurmctld first connects; add it if not yet.
sacctmgr -n list cluster format=cluster | grep -qw "$CLUSTER" \
    || sacctmgr -i add cluster "$CLUSTER" >/dev/null
sacctmgr -n list account format=account | grep -qw "$ACCOUNT" \
    || sacctmgr -i add account "$ACCOUNT" cluster="$CLUSTER" description="alnsfw test" \
        organization=alnsfw >/dev/null
sacctmgr -n list user "$JOB_USER" withassoc format=account | grep -qw "$ACCOUNT" \
    || sacctmgr -i add user "$JOB_USER" account="$ACCOUNT" defaultaccount="$ACCOUNT" \
        cluster="$CLUSTER" >/dev/null

# A node that was down (e.g. a killed slurmd) comes back idle.
node_ready() {
    local state
    state=$(sinfo -h -n "$NODE" -o %T | head -1)
    case "$state" in
        idle*|mixed*|allocated*|completing*) return 0 ;;
        down*|drain*|fail*) scontrol update nodename="$NODE" state=resume >/dev/null 2>&1; return 1 ;;
        *) return 1 ;;
    esac
}
wait_for 60 "node $NODE to be idle" node_ready
wait_for 30 "sacct" sacct -n -X -S now-1minute

log "cluster '$CLUSTER' is up: node $NODE ($NODE_HW, gpu:2 fake), partition '$PARTITION'," \
    "account '$ACCOUNT' for user '$JOB_USER'"
sinfo -o "%P %a %D %T %N %c %m %G"
