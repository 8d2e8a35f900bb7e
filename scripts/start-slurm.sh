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
# owner holds a lease (scripts/slurm-owner.bash). Each cluster (the
# one-node one, --hosts) has its own leases, in its own state directory.
#
# Several nodes: `--hosts` makes a cluster of the hosts of
# scripts/hosts.sh (network namespaces mimo-h1.., each a node of its own
# name and address, one slurmd in each; slurmctld on this machine at the
# bridge's 10.200.0.1). It is a second cluster, apart from the one-node
# one (both can run): its own munged, ports 6827/6828, state in
# /tmp/mimo-slurm-hosts and config in $MIMO_SLURM_DIR/slurm.conf (not
# /etc/slurm), so commands need SLURM_CONF set (it prints the line):
#
#   bash scripts/hosts.sh up 2
#   bash scripts/start-slurm.sh --hosts
#   export SLURM_CONF=/tmp/mimo-slurm-hosts/slurm.conf
#   sbatch -N 2 slurm/multinode.sbatch configs/multitask.yaml runs/mt
#   bash scripts/stop-slurm.sh --hosts
#
# Knobs (environment):
#   MIMO_SLURM_DIR      state directory    [/tmp/mimo-slurm; --hosts:
#                       /tmp/mimo-slurm-hosts]
#   MIMO_SLURM_CPUS     CPUs the node advertises     [4: 4 tasks fit; more
#                       than the cores is fine here, SlurmdParameters=
#                       config_overrides; --hosts: 2 per node]
#   MIMO_SLURM_TIMEOUT  seconds to wait for an idle node  [30]
#   MIMO_SLURM_OWNER    who this start runs for      [session-<sid>]
#   MIMO_SLURM_OWNER_PID  a process whose end ends the owner's lease
#                       [the session leader; none if MIMO_SLURM_OWNER is set]
set -euo pipefail

HOSTS=
case ${1:-} in
--hosts) HOSTS=1 ;;
"") ;;
*) echo "usage: bash scripts/start-slurm.sh [--hosts]" >&2; exit 2 ;;
esac
MARK="# written by mimo scripts/start-slurm.sh"
TIMEOUT=${MIMO_SLURM_TIMEOUT:-30}
if [ -z "$HOSTS" ]; then
    STATE=${MIMO_SLURM_DIR:-/tmp/mimo-slurm}
    CPUS=${MIMO_SLURM_CPUS:-4}
    CONF=/etc/slurm/slurm.conf
    MUNGE_SOCKET=/run/munge/munge.socket.2
else
    STATE=${MIMO_SLURM_DIR:-/tmp/mimo-slurm-hosts}
    CPUS=${MIMO_SLURM_CPUS:-2}
    CONF=$STATE/slurm.conf
    MUNGE_SOCKET=$STATE/munge/munge.socket
    HOSTS_STATE=${MIMO_HOSTS_DIR:-/run/mimo-hosts}/state
    export SLURM_CONF=$CONF
fi

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

# The nodes: "localhost", or the hosts of scripts/hosts.sh
if [ -z "$HOSTS" ]; then
    nodes=localhost
    node_lines="NodeName=localhost NodeAddr=127.0.0.1"
else
    nodes=
    [ -s "$HOSTS_STATE" ] && nodes=$(sed -n 's/^netns //p' "$HOSTS_STATE" | sort -t h -k 2 -n | tr '\n' ' ')
    [ -n "$nodes" ] || die "no hosts: run 'bash scripts/hosts.sh up N' first"
    node_lines=
    for h in $nodes; do
        addr=$(ip netns exec "$h" ip -4 -o addr show dev eth0 | awk '{sub("/.*", "", $4); print $4}')
        [ -n "$addr" ] || die "host $h has no address (scripts/hosts.sh status)"
        node_lines+="NodeName=$h NodeAddr=$addr"$'\n'
        mkdir -p "$STATE/spool/$h" "$STATE/tmp/$h" # (PMIx: one tmp per node)
    done
    node_lines=${node_lines%$'\n'}
fi

# --- slurm.conf ----------------------------------------------------------
if [ -f "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
    die "$CONF exists and was not written by this script; not touching it"
fi
node_suffix='' pid_suffix=''
[ -n "$HOSTS" ] && node_suffix=/%n pid_suffix=-%n
mem=$(awk '/^MemTotal:/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)
[ -n "$HOSTS" ] && mem=$((mem / $(wc -w <<<"$nodes"))) # the nodes share it
mkdir -p "$(dirname "$CONF")"
{
if [ -z "$HOSTS" ]; then
    cat <<EOF
$MARK (state: $STATE)
ClusterName=mimo
SlurmctldHost=localhost(127.0.0.1)
EOF
else
    # slurmctld listens on every address of this machine; the nodes reach
    # it at the bridge's. Ports and munged apart from the one-node cluster.
    cat <<EOF
$MARK --hosts (state: $STATE)
ClusterName=mimohosts
SlurmctldHost=localhost(10.200.0.1)
SlurmctldPort=6827
SlurmdPort=6828
AuthInfo=socket=$MUNGE_SOCKET
EOF
fi
cat <<EOF
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
SlurmdSpoolDir=$STATE/spool$node_suffix
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd$pid_suffix.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd$pid_suffix.log
EOF
# one slurmd per node on this machine (%n: the node's name); the PMIx
# plugin's directories, under TmpFS, must differ between them
[ -n "$HOSTS" ] && echo "TmpFS=$STATE/tmp/%n"
while read -r line; do
    echo "$line CPUs=$CPUS Sockets=1 CoresPerSocket=$CPUS ThreadsPerCore=1 RealMemory=$mem State=UNKNOWN"
done <<<"$node_lines"
echo "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP"
} >"$CONF.tmp"
if cmp -s "$CONF.tmp" "$CONF"; then
    rm -f "$CONF.tmp"
else
    if alive slurmctld "$STATE/slurmctld.pid" || alive slurmd "$STATE/slurmd.pid" ||
        alive slurmd "$STATE/slurmd-${nodes%% *}.pid"; then
        say "note: $CONF changed while the daemons run; stop-slurm.sh${HOSTS:+ --hosts} and start again to apply it"
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
# mine KEY: this start started the daemon KEY (slurm-owner.bash): record
# it as this owner's
mine() {
    echo "$OWNER" >"$STATE/owner/$1"
    sed -i "s/^started=.*/& $1/" "$STATE/leases/$OWNER"
    started+=("$1")
}
# found KEY: the daemon KEY already runs; name its owner, and take it over
# if that owner's lease has ended (dropped above): someone must stop it
found() {
    local o pid name
    pid=$(cat "$(pidfile_of "$1")")
    o=$(owner_of "$1")
    name=$(label_of "$1")
    if [ -z "$o" ]; then
        say "$name already running (pid $pid; no owner record: not stopped by stop-slurm.sh)"
    elif [ "$o" = "$OWNER" ] || lease_live "$o"; then
        say "$name already running (pid $pid, owner $o)"
    else
        echo "$OWNER" >"$STATE/owner/$1"
        say "$name already running (pid $pid); its owner $o has ended: owner $OWNER takes it over"
    fi
}

# --- munged (--hosts: a munged of its own, socket and seed, beside the
# machine's) ---------------------------------------------------------------
if alive munged "$STATE/munge/munged.pid"; then
    found munged
elif munge -S "$MUNGE_SOCKET" -n 2>/dev/null | unmunge -S "$MUNGE_SOCKET" >/dev/null 2>&1; then
    say "a munged not started by this script answers on $MUNGE_SOCKET; using it"
else
    if [ ! -s /etc/munge/munge.key ]; then
        mungekey --create --keyfile /etc/munge/munge.key
        chown munge:munge /etc/munge/munge.key
        chmod 600 /etc/munge/munge.key
    fi
    install -d -o munge -g munge -m 755 "$(dirname "$MUNGE_SOCKET")"
    munged_args=(--pid-file="$STATE/munge/munged.pid" --log-file="$STATE/munge/munged.log")
    [ -n "$HOSTS" ] && munged_args+=(--socket="$MUNGE_SOCKET" --seed-file="$STATE/munge/munged.seed")
    runuser -u munge -- munged "${munged_args[@]}" 9>&- ||
        { tail -n 20 "$STATE/munge/munged.log" >&2 || true; die "munged did not start"; }
    mine munged
    say "munged started (pid $(cat "$STATE/munge/munged.pid"))"
fi
for _ in $(seq 50); do
    munge -S "$MUNGE_SOCKET" -n 2>/dev/null | unmunge -S "$MUNGE_SOCKET" >/dev/null 2>&1 && break
    sleep 0.1
done
munge -S "$MUNGE_SOCKET" -n | unmunge -S "$MUNGE_SOCKET" >/dev/null ||
    die "munge does not answer on $MUNGE_SOCKET"

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

# --- slurmd: one per node, recorded as "slurmd" (one node) or
# "slurmd-NODE" (--hosts: each in its host's namespace, under the host's
# name, by scripts/hosts.sh exec)
for node in $nodes; do
    if [ -z "$HOSTS" ]; then
        key=slurmd
        start=(slurmd -N localhost)
    else
        key=slurmd-$node
        start=(bash "$(dirname "$0")/hosts.sh" exec "$node" slurmd -N "$node" -f "$CONF")
    fi
    pidf=$(pidfile_of "$key")
    if alive slurmd "$pidf"; then
        found "$key"
        continue
    fi
    if ! { "${start[@]}" 9>&- && waitpid slurmd "$pidf"; }; then
        logs
        die "$(label_of "$key") did not start"
    fi
    mine "$key"
    say "$(label_of "$key") started (pid $(cat "$pidf"))"
done

say "owner $OWNER started ${started[*]:-nothing}"

# --- wait until every node is idle ---------------------------------------
deadline=$((SECONDS + TIMEOUT))
states=
want=$(for _ in $nodes; do echo ok; done)
while [ "$SECONDS" -lt "$deadline" ]; do
    if scontrol ping 2>/dev/null | grep -q "is UP"; then
        states=$(for node in $nodes; do
            sinfo -h -N -n "$node" -o %T 2>/dev/null | head -n 1
        done)
        if [ "$(sed -E 's/^(idle|mixed|allocated|completing)$/ok/' <<<"$states")" = "$want" ]; then
            say "up: $(for node in $nodes; do
                echo "node $node is $(sinfo -h -N -n "$node" -o '%T, %c CPUs')"
            done | paste -sd ';' | sed 's/;/; /g') (sinfo, squeue, sbatch work; logs in $STATE/log)"
            [ -n "$HOSTS" ] && say "for sbatch, srun, squeue: export SLURM_CONF=$CONF"
            exit 0
        fi
    fi
    sleep 0.2
done
logs
scontrol ping >&2 || true
sinfo -N -l >&2 || true
die "nodes not idle after ${TIMEOUT} s (states: $(paste -sd ' ' <<<"${states:-no answer}")); see the logs above"
