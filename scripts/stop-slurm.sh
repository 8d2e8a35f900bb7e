#!/usr/bin/env bash
# stop-slurm.sh — stop the daemons the matching scripts/start-slurm.sh
# started (slurmd, slurmctld, munged), each by the PID in its pid file
# under $MIMO_SLURM_DIR [/tmp/mimo-slurm], never by name. SIGTERM, then
# SIGKILL after 10 s. Idempotent.
#
# "Matching": run for the same owner as the start (MIMO_SLURM_OWNER,
# default the calling shell's session; see scripts/slurm-owner.bash). It
# releases that owner's lease and stops the daemons recorded as that
# owner's — unless another owner still holds a lease: then they stay up,
# handed to that owner, and a line says so. Daemons it did not start
# (another owner's, an older start-slurm.sh's, a munged found running)
# are left running, each with a line saying why.
# Jobs still running keep running in their slurmstepd; scancel them first.
# `--hosts`: the cluster of `start-slurm.sh --hosts` (state, leases and
# owner records in /tmp/mimo-slurm-hosts): every node's slurmd, slurmctld,
# its munged, under the same rules.
set -uo pipefail

case ${1:-} in
--hosts) HOSTS=1 STATE=${MIMO_SLURM_DIR:-/tmp/mimo-slurm-hosts} ;;
"") HOSTS='' STATE=${MIMO_SLURM_DIR:-/tmp/mimo-slurm} ;;
*) echo "usage: bash scripts/stop-slurm.sh [--hosts]" >&2; exit 2 ;;
esac
say() { echo "stop-slurm.sh: $*"; }

# stop KEY PIDFILE
stop() {
    local key=$1 file=$2 name comm pid
    name=$(label_of "$key") comm=$(comm_of "$key")
    pid=$(cat "$file")
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 100); do
        [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$comm" ] || break
        sleep 0.1
    done
    if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$comm" ]; then
        say "$name (pid $pid) ignored SIGTERM for 10 s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null
    fi
    rm -f "$file" "$STATE/owner/$key"
    say "$name (pid $pid) stopped"
}

[ "$(id -u)" -eq 0 ] || { echo "stop-slurm.sh: error: run me as root" >&2; exit 1; }
# shellcheck source=scripts/slurm-owner.bash
source "$(dirname "$0")/slurm-owner.bash"
owner_init
if [ ! -d "$STATE" ]; then
    say "no $STATE: start-slurm.sh${HOSTS:+ --hosts} has not run; nothing to stop"
    exit 0
fi
mkdir -p "$STATE/leases" "$STATE/owner"
lock
prune
if [ -f "$STATE/leases/$OWNER" ]; then
    rm -f "$STATE/leases/$OWNER"
    say "owner $OWNER released its lease"
else
    say "owner $OWNER holds no lease (never started, or already stopped)"
fi
others=$(leases "" | tr '\n' ' ')
others=${others% }

# The daemons, slurmds first: one "slurmd", or (--hosts) a "slurmd-NODE"
# per node that has a pid file or an owner record
if [ -z "$HOSTS" ]; then
    keys=(slurmd)
else
    mapfile -t keys < <(for f in "$STATE"/slurmd-*.pid "$STATE"/owner/slurmd-*; do
        [ -e "$f" ] && basename "$f" .pid
    done | sort -u)
    [ ${#keys[@]} -gt 0 ] || say "slurmd: no pid file ($STATE/slurmd-NODE.pid): none started by start-slurm.sh --hosts runs"
fi
keys+=(slurmctld munged)

for key in "${keys[@]}"; do
    name=$(label_of "$key")
    file=$(pidfile_of "$key")
    if [ ! -s "$file" ]; then
        say "$name: no pid file ($file): none started by start-slurm.sh runs"
        rm -f "$STATE/owner/$key"
        continue
    fi
    pid=$(cat "$file")
    if ! alive "$(comm_of "$key")" "$file"; then
        say "$name: pid ${pid:-?} from $file is not running"
        rm -f "$file" "$STATE/owner/$key"
        continue
    fi
    o=$(owner_of "$key")
    if [ -z "$o" ]; then
        say "$name (pid $pid) left running: no owner record (started by hand or by an older start-slurm.sh)"
    elif [ "$o" != "$OWNER" ] && lease_live "$o"; then
        say "$name (pid $pid) left running: owner $o started it and still uses it"
    elif [ -n "$others" ]; then
        echo "${others%% *}" >"$STATE/owner/$key"
        say "$name (pid $pid) left running: owner(s) $others still use it;" \
            "owner ${others%% *}'s stop-slurm.sh${HOSTS:+ --hosts} will stop it"
    else
        [ "$o" = "$OWNER" ] ||
            say "$name (pid $pid): its owner $o has ended and no one holds a lease: stopping it"
        stop "$key" "$file"
    fi
done
