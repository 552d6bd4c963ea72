#!/usr/bin/env bash
# Stop the single-node SLURM cluster that tests/cluster/up.sh started (as root; safe to run again).
# Running and pending jobs are cancelled first. Configuration, the accounting database and the
# packages are kept, so `up.sh` brings the same cluster back in seconds.
set -uo pipefail

RUN_DIR=/run/slurm
log() { echo "[cluster/down] $*"; }

stop_pidfile() {  # stop_pidfile NAME PIDFILE
    local name=$1 file=$2 pid
    [[ -s "$file" ]] || return 0
    pid=$(cat "$file")
    kill -0 "$pid" 2>/dev/null || { rm -f "$file"; return 0; }
    log "stopping $name ($pid)"
    kill "$pid"
    for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || { rm -f "$file"; return 0; }; sleep 0.25; done
    kill -9 "$pid" 2>/dev/null
    rm -f "$file"
}

if command -v scancel >/dev/null && scontrol ping >/dev/null 2>&1; then
    scancel --user="${SUDO_USER:-$(id -un)}" 2>/dev/null || true
fi
stop_pidfile slurmd "$RUN_DIR/slurmd.pid"
stop_pidfile slurmctld "$RUN_DIR/slurmctld.pid"
stop_pidfile slurmdbd "$RUN_DIR/slurmdbd.pid"
if mysqladmin --protocol=socket ping >/dev/null 2>&1; then
    log "stopping MariaDB"
    mysqladmin --protocol=socket shutdown
fi
stop_pidfile munged /run/munge/munged.pid
log "cluster stopped"
