#!/usr/bin/env bash
# stop-slurm.sh — stop the daemons scripts/start-slurm.sh started (slurmd,
# slurmctld, munged), each by the PID in its pid file under
# $MIMO_SLURM_DIR [/tmp/mimo-slurm], never by name: daemons it did not
# start are left alone. SIGTERM, then SIGKILL after 10 s. Idempotent.
# Jobs still running keep running in their slurmstepd; scancel them first.
# `--hosts`: the cluster of `start-slurm.sh --hosts` (state in
# /tmp/mimo-slurm-hosts): every node's slurmd, slurmctld, its munged.
set -uo pipefail

case ${1:-} in
--hosts) STATE=${MIMO_SLURM_DIR:-/tmp/mimo-slurm-hosts} ;;
"") STATE=${MIMO_SLURM_DIR:-/tmp/mimo-slurm} ;;
*) echo "usage: bash scripts/stop-slurm.sh [--hosts]" >&2; exit 2 ;;
esac
say() { echo "stop-slurm.sh: $*"; }

# stop NAME PIDFILE
stop() {
    local name=$1 file=$2 pid
    if [ ! -s "$file" ]; then
        say "$name: no pid file ($file); not started by start-slurm.sh"
        return 0
    fi
    pid=$(cat "$file")
    if [ -z "$pid" ] || [ "$(cat "/proc/$pid/comm" 2>/dev/null)" != "$name" ]; then
        say "$name: pid ${pid:-?} from $file is not running"
        rm -f "$file"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 100); do
        [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ] || break
        sleep 0.1
    done
    if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ]; then
        say "$name (pid $pid) ignored SIGTERM for 10 s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null
    fi
    rm -f "$file"
    say "$name (pid $pid) stopped"
}

[ "$(id -u)" -eq 0 ] || { echo "stop-slurm.sh: error: run me as root" >&2; exit 1; }
[ -e "$STATE/slurmd.pid" ] || [ "${1:-}" != --hosts ] && stop slurmd "$STATE/slurmd.pid"
for f in "$STATE"/slurmd-*.pid; do # --hosts: one per node
    [ -e "$f" ] && stop slurmd "$f"
done
stop slurmctld "$STATE/slurmctld.pid"
stop munged "$STATE/munge/munged.pid"
