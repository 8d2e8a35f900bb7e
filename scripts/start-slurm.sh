#!/usr/bin/env bash
# start-slurm.sh — a single-machine SLURM cluster (munged, slurmctld,
# slurmd) for trying and testing slurm/*.sbatch. Debian 12, as root, no
# systemd: `bash scripts/install-deps.sh` installs slurm-wlm and munge.
#
#   bash scripts/start-slurm.sh     # start, wait until the node is idle
#   sbatch --wait slurm/train.sbatch configs/multitask.yaml runs/multitask
#   bash scripts/stop-slurm.sh      # stop what this start started
#
# Idempotent: a daemon whose pid file names a live process is left alone,
# so a second start on a healthy cluster only checks it. Everything it
# owns lives under $MIMO_SLURM_DIR (pid files, logs, spool, controller
# state, owner records); the one file outside it is /etc/slurm/slurm.conf
# (where sbatch, srun, sinfo look), which it writes only if absent or
# written by itself.
#
# Shared safely: each start runs for an owner (MIMO_SLURM_OWNER, default
# the calling shell's session), takes a lease and records which daemons it
# started — none when they were already running. The matching
# stop-slurm.sh (same owner) stops only those, and only once no other
# owner holds a lease (scripts/slurm-owner.bash).
#
# Knobs (environment):
#   MIMO_SLURM_DIR      state directory              [/tmp/mimo-slurm]
#   MIMO_SLURM_CPUS     CPUs the node advertises     [4: 4 tasks fit; more
#                       than the cores is fine here, SlurmdParameters=
#                       config_overrides]
#   MIMO_SLURM_TIMEOUT  seconds to wait for an idle node  [30]
#   MIMO_SLURM_OWNER    who this start runs for      [session-<sid>]
#   MIMO_SLURM_OWNER_PID  a process whose end ends the owner's lease
#                       [the session leader; none if MIMO_SLURM_OWNER is set]
set -euo pipefail

STATE=${MIMO_SLURM_DIR:-/tmp/mimo-slurm}
CPUS=${MIMO_SLURM_CPUS:-4}
TIMEOUT=${MIMO_SLURM_TIMEOUT:-30}
CONF=/etc/slurm/slurm.conf
MARK="# written by mimo scripts/start-slurm.sh"
MUNGE_SOCKET=/run/munge/munge.socket.2

say() { echo "start-slurm.sh: $*"; }
die() { echo "start-slurm.sh: error: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run me as root (munged runs as user munge, slurmd as root)"
for b in munged mungekey slurmctld slurmd sinfo scontrol; do
    command -v "$b" >/dev/null ||
        die "'$b' not found: install slurm-wlm and munge (bash scripts/install-deps.sh)"
done
getent passwd munge >/dev/null || die "no user 'munge': is the munge package installed?"

# shellcheck source=scripts/slurm-owner.bash
source "$(dirname "$0")/slurm-owner.bash"
owner_init
waitpid() { # waitpid NAME PIDFILE: up to 5 s for the daemon's pid file
    for _ in $(seq 50); do alive "$1" "$2" && return 0; sleep 0.1; done
    return 1
}
logs() { # the last lines of every log, for an error message
    local f
    for f in "$STATE"/log/*.log; do
        [ -f "$f" ] && { echo "--- $f (last 15 lines)"; tail -n 15 "$f"; }
    done >&2
}

mkdir -p "$STATE"/{ctld,spool,log,munge,leases,owner}
chmod 755 "$STATE"
chown munge:munge "$STATE/munge"
lock

# --- slurm.conf ----------------------------------------------------------
if [ -f "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
    die "$CONF exists and was not written by this script; not touching it"
fi
mem=$(awk '/^MemTotal:/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)
mkdir -p /etc/slurm
cat >"$CONF.tmp" <<EOF
$MARK (state: $STATE)
ClusterName=mimo
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=pmix
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
ReturnToService=2
MinJobAge=5
MailProg=/bin/true
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$CPUS Sockets=1 CoresPerSocket=$CPUS ThreadsPerCore=1 RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
if cmp -s "$CONF.tmp" "$CONF"; then
    rm -f "$CONF.tmp"
else
    if alive slurmctld "$STATE/slurmctld.pid" || alive slurmd "$STATE/slurmd.pid"; then
        say "note: $CONF changed while the daemons run; stop-slurm.sh and start again to apply it"
    fi
    mv "$CONF.tmp" "$CONF"
fi

# --- this owner's lease (before any daemon starts: a concurrent stop by
# another owner then leaves them running) ------------------------------------
prune
if [ -f "$STATE/leases/$OWNER" ]; then
    say "owner $OWNER already holds a lease"
else
    printf 'holder=%s\nstarted=\n' "$HOLDER" >"$STATE/leases/$OWNER"
fi
started=()
# mine DAEMON: this start started DAEMON: record it as this owner's
mine() {
    echo "$OWNER" >"$STATE/owner/$1"
    sed -i "s/^started=.*/& $1/" "$STATE/leases/$OWNER"
    started+=("$1")
}
# found DAEMON: DAEMON already runs; name its owner, and take it over if
# that owner's lease has ended (dropped above): someone must stop it
found() {
    local o pid
    pid=$(cat "$(pidfile_of "$1")")
    o=$(owner_of "$1")
    if [ -z "$o" ]; then
        say "$1 already running (pid $pid; no owner record: not stopped by stop-slurm.sh)"
    elif [ "$o" = "$OWNER" ] || lease_live "$o"; then
        say "$1 already running (pid $pid, owner $o)"
    else
        echo "$OWNER" >"$STATE/owner/$1"
        say "$1 already running (pid $pid); its owner $o has ended: owner $OWNER takes it over"
    fi
}

# --- munged --------------------------------------------------------------
if alive munged "$STATE/munge/munged.pid"; then
    found munged
elif munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    say "a munged not started by this script answers on $MUNGE_SOCKET; using it"
else
    if [ ! -s /etc/munge/munge.key ]; then
        mungekey --create --keyfile /etc/munge/munge.key
        chown munge:munge /etc/munge/munge.key
        chmod 600 /etc/munge/munge.key
    fi
    install -d -o munge -g munge -m 755 /run/munge
    runuser -u munge -- munged --pid-file="$STATE/munge/munged.pid" \
        --log-file="$STATE/munge/munged.log" 9>&- ||
        { tail -n 20 "$STATE/munge/munged.log" >&2 || true; die "munged did not start"; }
    mine munged
    say "munged started (pid $(cat "$STATE/munge/munged.pid"))"
fi
for _ in $(seq 50); do
    munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break
    sleep 0.1
done
munge -n | unmunge >/dev/null || die "munge does not answer on $MUNGE_SOCKET"

# --- slurmctld -----------------------------------------------------------
if alive slurmctld "$STATE/slurmctld.pid"; then
    found slurmctld
elif scontrol ping 2>/dev/null | grep -q "is UP"; then
    die "a slurmctld not started by this script answers; stop it first (or use it)"
else
    # (9>&-: a daemon must not inherit the lock)
    if ! { slurmctld -c 9>&- && waitpid slurmctld "$STATE/slurmctld.pid"; }; then
        logs
        die "slurmctld did not start"
    fi
    mine slurmctld
    say "slurmctld started (pid $(cat "$STATE/slurmctld.pid"))"
fi

# --- slurmd --------------------------------------------------------------
if alive slurmd "$STATE/slurmd.pid"; then
    found slurmd
else
    if ! { slurmd -N localhost 9>&- && waitpid slurmd "$STATE/slurmd.pid"; }; then
        logs
        die "slurmd did not start"
    fi
    mine slurmd
    say "slurmd started (pid $(cat "$STATE/slurmd.pid"))"
fi

say "owner $OWNER started ${started[*]:-nothing}"

# --- wait for an idle node ---------------------------------------------------
deadline=$((SECONDS + TIMEOUT))
state=
while [ "$SECONDS" -lt "$deadline" ]; do
    if scontrol ping 2>/dev/null | grep -q "is UP"; then
        state=$(sinfo -h -N -n localhost -o %T 2>/dev/null | head -n 1)
        case $state in
        idle | mixed | allocated | completing)
            say "up: node localhost is $state, $(sinfo -h -N -n localhost -o %c) CPUs" \
                "(sinfo, squeue, sbatch work; logs in $STATE/log)"
            exit 0
            ;;
        esac
    fi
    sleep 0.2
done
logs
scontrol ping >&2 || true
sinfo -N -l >&2 || true
die "node localhost not idle after ${TIMEOUT} s (state '${state:-no answer}'); see the logs above"
