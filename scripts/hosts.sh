#!/usr/bin/env bash
# hosts.sh — several "hosts" on one machine, to try mimo's multi-host paths
# (node-shared memory within a host, TCP between hosts, SLURM across
# nodes) on a laptop or a CI machine. Each host is a network namespace with
# its own address on a bridge; processes started in it (by mpirun through
# the launch agent below, or by `hosts.sh exec`) also get their own
# hostname, so Open MPI and SLURM see separate nodes. Linux, as root
# (CAP_NET_ADMIN); needs iproute2 (ip, tc) and util-linux (unshare, nsenter).
#
#   bash scripts/hosts.sh up N [--rate R] [--delay D]
#       create (or reconcile to) N hosts mimo-h1..mimo-hN at 10.200.0.11.. on
#       the bridge mimo-br0 (10.200.0.1, the machine's own side), each link
#       limited to R (tc rate: 1gbit, 10gbit, 100mbit, ...) in both
#       directions, D of added one-way delay (netem: 1ms); prints the
#       mpirun options. `up` again with other N/R/D changes only that.
#   bash scripts/hosts.sh down        remove everything `up` created
#   bash scripts/hosts.sh opts [K]    the mpirun options, K ranks per host [1]
#   bash scripts/hosts.sh exec HOST CMD...   run CMD in HOST (as mpirun does)
#   bash scripts/hosts.sh link HOST up|down  plug / unplug HOST's cable
#   bash scripts/hosts.sh status      what exists, the limits, the options
#
# MIMO_HOSTS_BED=B (1..9) makes a separate test bed beside the default one
# (B unset or 0), so that a benchmark never touches the hosts a test or
# another user has up: hosts mimoB-h1.., links mimoB-vN, the bridge
# mimoB-br0 on 10.(200+B).0.0/24, its state in /run/mimoB-hosts.
#
#   eval "mpirun $(bash scripts/hosts.sh opts 2) -np 4 -x OMP_NUM_THREADS=1 build/mimo train ..."
#
# Everything it creates is first recorded in a state file
# ($MIMO_HOSTS_DIR/state, default /run/mimo-hosts): `down` deletes exactly
# the recorded objects that still exist (also after a crash of `up`, or of
# whatever used the hosts), then the state; objects of the same name that
# it did not create make `up` stop with an error, untouched. Processes
# still running in a host's namespace are listed and left alone (the
# namespace then lives on until they end).
# The hosts share the machine's file system, so the mimo binary, data and
# run directories are seen by every host at the same path. Traffic stays
# on the 10.200.0.0/24 addresses of the bridge and the hosts: no route to
# anything else is added, and no address outside it is ever used.
set -euo pipefail

BED=${MIMO_HOSTS_BED:-0}
[[ $BED =~ ^[0-9]$ ]] || { echo "hosts.sh: error: MIMO_HOSTS_BED must be a digit (0-9), not '$BED'" >&2; exit 2; }
NAME=mimo$([ "$BED" = 0 ] && echo - || echo "$BED-") # mimo- or mimoB-
STATE_DIR=${MIMO_HOSTS_DIR:-/run/${NAME}hosts}
STATE=$STATE_DIR/state
AGENT=$STATE_DIR/agent
PREFIX=${NAME}h        # host (and namespace) names: mimo-h1, mimo-h2, ...
VETH=${NAME}v          # the machine's ends of their cables: mimo-v1, ...
BRIDGE=${NAME}br0
NET=10.$((200 + BED)).0
MAX=50

say() { echo "hosts.sh: $*" >&2; }
die() { echo "hosts.sh: error: $*" >&2; exit 1; }
usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
}

# ---- the state file: one "KIND NAME" line per object, written before the
# object is made, so that `down` after any crash knows everything.
recorded() { [ -f "$STATE" ] && grep -qxF "$1 $2" "$STATE"; }
record() {
    recorded "$1" "$2" && return 0
    mkdir -p "$STATE_DIR"
    echo "$1 $2" >>"$STATE"
}
forget() { [ -f "$STATE" ] && { grep -vxF "$1 $2" "$STATE" >"$STATE.tmp" || true; mv "$STATE.tmp" "$STATE"; }; }
setting() { [ -f "$STATE_DIR/settings" ] && sed -n "s/^$1=//p" "$STATE_DIR/settings" | tail -n 1; }
hosts() { [ -f "$STATE" ] && sed -n 's/^netns //p' "$STATE" | sort -t h -k 2 -n; }

netns_exists() { [ -e "/run/netns/$1" ]; }
link_exists() { ip link show dev "$1" >/dev/null 2>&1; }

need_root() {
    [ "$(id -u)" -eq 0 ] || die "run me as root (network namespaces need CAP_NET_ADMIN)"
    for b in ip tc unshare nsenter; do
        command -v "$b" >/dev/null || die "'$b' not found: install iproute2 and util-linux"
    done
}

# ---- the launch agent: mpirun calls it as `agent [ssh options] HOST CMD`
# (plm_rsh_agent); it runs CMD in HOST's namespace under HOST's hostname.
# nsenter, not `ip netns exec`: that one also mounts a fresh /sys, without
# /sys/fs/cgroup, which slurmd needs.
write_agent() {
    mkdir -p "$STATE_DIR"
    cat >"$AGENT.tmp" <<'EOF'
#!/bin/sh
# mimo hosts.sh launch agent: "ssh HOST CMD" = run CMD in host HOST
while [ $# -gt 0 ]; do case "$1" in -*) shift ;; *) break ;; esac; done
host=$1; shift
[ -e "/run/netns/$host" ] || { echo "hosts.sh agent: no host '$host' (scripts/hosts.sh up N)" >&2; exit 255; }
exec nsenter --net="/run/netns/$host" unshare --uts sh -c 'hostname "$1" && eval "$2"' sh "$host" "$*"
EOF
    chmod 755 "$AGENT.tmp"
    mv "$AGENT.tmp" "$AGENT"
}

# opts [K]: the mpirun options for every host, K ranks (slots) each
opts() {
    local k=${1:-1} list=() h
    [ -x "$AGENT" ] && [ -n "$(hosts)" ] || die "no hosts: run 'scripts/hosts.sh up N' first"
    for h in $(hosts); do list+=("$h:$k"); done
    # - keepalive on the daemons' connections: a host whose link dies is
    #   noticed within ~5 + 2 x 3 s, and the job ended (Open MPI's default,
    #   300 + 20 x 9 s, leaves the other ranks waiting in a collective)
    # - every host's ranks share this machine's cores, but each host's
    #   daemon thinks the cores are its own: no binding (each would bind
    #   its first rank to core 0, all on one core), and yield when idle
    #   (busy polling would starve the ranks that have work: steps 20-50x
    #   slower with 2 hosts x 2 ranks on 2 cores)
    echo "--mca plm_rsh_agent $AGENT --mca oob_tcp_if_include $NET.0/24" \
        "--mca btl_tcp_if_include $NET.0/24 --mca btl self,vader,tcp" \
        "--mca oob_tcp_keepalive_time 5 --mca oob_tcp_keepalive_intvl 2" \
        "--mca oob_tcp_keepalive_probes 3 --mca mpi_yield_when_idle 1" \
        "--bind-to none -H $(IFS=,; echo "${list[*]}")"
}

# shape IFACE NETNS|"": the rate and delay limits on IFACE's egress
shape() {
    local dev=$1 ns=$2 rate delay
    rate=$(setting rate) delay=$(setting delay)
    local tcx=(tc)
    [ -n "$ns" ] && tcx=(ip netns exec "$ns" tc)
    "${tcx[@]}" qdisc del dev "$dev" root >/dev/null 2>&1 || true
    if [ -n "$rate" ] && [ -n "$delay" ]; then
        "${tcx[@]}" qdisc add dev "$dev" root handle 1: tbf rate "$rate" burst 512kb latency 200ms &&
            "${tcx[@]}" qdisc add dev "$dev" parent 1:1 handle 10: netem delay "$delay" limit 100000
    elif [ -n "$rate" ]; then
        # burst: a 64 KB GSO segment must fit; latency bounds the queue
        "${tcx[@]}" qdisc add dev "$dev" root tbf rate "$rate" burst 512kb latency 200ms
    elif [ -n "$delay" ]; then
        "${tcx[@]}" qdisc add dev "$dev" root netem delay "$delay" limit 100000
    fi
}

up() {
    local n='' rate='' delay=''
    while [ $# -gt 0 ]; do
        case $1 in
        --rate) rate=${2:?--rate needs a value (1gbit, 10gbit, ...)}; shift 2 ;;
        --rate=*) rate=${1#*=}; shift ;;
        --delay) delay=${2:?--delay needs a value (1ms, ...)}; shift 2 ;;
        --delay=*) delay=${1#*=}; shift ;;
        [0-9]*) n=$1; shift ;;
        *) usage ;;
        esac
    done
    [[ $n =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] && [ "$n" -le $MAX ] ||
        die "up needs a number of hosts from 1 to $MAX"
    need_root

    # the bridge: the machine's side of the hosts' network
    mkdir -p "$STATE_DIR"
    if ! recorded bridge $BRIDGE; then
        link_exists $BRIDGE && die "a link named $BRIDGE exists and was not made by hosts.sh; not touching it"
        record bridge $BRIDGE
    fi
    link_exists $BRIDGE || ip link add $BRIDGE type bridge
    ip addr replace $NET.1/24 dev $BRIDGE
    ip link set $BRIDGE up
    # the limits: tried on the bridge (ours) before any host is touched
    if [ -n "$delay" ]; then
        tc qdisc replace dev $BRIDGE root netem delay "$delay" >/dev/null 2>&1 ||
            die "--delay needs tc's netem qdisc (kernel module sch_netem), which this kernel lacks or rejects '$delay'; no host changed"
        tc qdisc del dev $BRIDGE root
    fi
    if [ -n "$rate" ]; then
        tc qdisc replace dev $BRIDGE root tbf rate "$rate" burst 512kb latency 200ms >/dev/null 2>&1 ||
            die "tc cannot limit a link to '$rate' (tbf; rates look like 100mbit, 1gbit, 10gbit); no host changed"
        tc qdisc del dev $BRIDGE root
    fi
    printf 'rate=%s\ndelay=%s\n' "$rate" "$delay" >"$STATE_DIR/settings"

    local i h v
    for i in $(seq 1 "$n"); do
        h=$PREFIX$i v=$VETH$i
        if ! recorded netns "$h"; then
            netns_exists "$h" && die "a network namespace '$h' exists and was not made by hosts.sh; not touching it"
            link_exists "$v" && die "a link named $v exists and was not made by hosts.sh; not touching it"
        fi
        record netns "$h"
        record link "$v"
        netns_exists "$h" || ip netns add "$h"
        if ! link_exists "$v"; then
            ip -n "$h" link del eth0 >/dev/null 2>&1 || true
            ip link add "$v" type veth peer name eth0 netns "$h"
        fi
        ip link set "$v" master $BRIDGE up
        ip -n "$h" addr replace $NET.$((10 + i))/24 dev eth0
        ip -n "$h" link set lo up
        ip -n "$h" link set eth0 up
        # each host's NIC: R out of the host (eth0) and R into it (the
        # bridge port), as a full-duplex link to a non-blocking switch
        shape "$v" "" || die "tc cannot shape $v (rate '$rate', delay '$delay')"
        shape eth0 "$h" || die "tc cannot shape eth0 in $h"
    done
    # fewer hosts than before: remove the extra ones
    for h in $(hosts); do
        i=${h#"$PREFIX"}
        [ "$i" -gt "$n" ] && remove_host "$i"
    done
    write_agent
    # every host answers (a TCP connect to a closed port: "refused" = reachable)
    for h in $(hosts); do
        ip netns exec "$h" ip -4 addr show dev eth0 | grep -q "inet $NET\." ||
            die "host $h has no address"
    done
    say "$n host(s) up: $(hosts | tr '\n' ' ')(bridge $BRIDGE $NET.1)${rate:+, links at $rate}${delay:+, +$delay one way}"
    opts 1
}

# del_link NAME: delete a link of ours if it is there (a veth also goes
# when its peer's namespace does, so it may vanish at any moment)
del_link() {
    ip link del "$1" 2>/dev/null || true
    link_exists "$1" && die "could not delete link $1"
    return 0
}

remove_host() {
    local h=$PREFIX$1 v=$VETH$1 pids
    # the cable first (its peer, the host's eth0, goes with it), then the host
    recorded link "$v" && del_link "$v"
    forget link "$v"
    if recorded netns "$h" && netns_exists "$h"; then
        pids=$(ip netns pids "$h" 2>/dev/null | tr '\n' ' ')
        [ -n "$pids" ] && say "note: processes still in $h (left alone; the namespace goes when they end): $pids"
        ip netns del "$h" || say "could not delete namespace $h"
    fi
    forget netns "$h"
}

down() {
    need_root
    [ -f "$STATE" ] || { say "nothing to remove (no $STATE)"; rm -f "$AGENT" "$STATE_DIR/settings"; return 0; }
    local h
    for h in $(hosts); do remove_host "${h#"$PREFIX"}"; done
    # links recorded without their namespace (a crash in between)
    local v
    for v in $(sed -n 's/^link //p' "$STATE"); do
        del_link "$v"
        forget link "$v"
    done
    if recorded bridge $BRIDGE; then
        del_link $BRIDGE
        forget bridge $BRIDGE
    fi
    [ -s "$STATE" ] && die "left in $STATE: $(tr '\n' ' ' <"$STATE")"
    rm -f "$STATE" "$AGENT" "$STATE_DIR/settings"
    rmdir "$STATE_DIR" 2>/dev/null || true
    say "down: removed the hosts, their links and the bridge"
}

status() {
    if [ -z "$(hosts)" ]; then echo "no hosts (scripts/hosts.sh up N)"; return 0; fi
    local h
    echo "hosts: $(hosts | tr '\n' ' ')  bridge $BRIDGE $NET.1/24"
    echo "limits: rate $(setting rate) delay $(setting delay)"
    for h in $(hosts); do
        printf '  %s %s eth0 %s\n' "$h" \
            "$(ip netns exec "$h" ip -4 -o addr show dev eth0 2>/dev/null | awk '{print $4}')" \
            "$(ip netns exec "$h" cat /sys/class/net/eth0/operstate 2>/dev/null || echo missing)"
    done
    echo "mpirun options: $(opts 1)"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case $cmd in
up) up "$@" ;;
down) down ;;
opts) opts "$@" ;;
status) status ;;
exec)
    [ $# -ge 2 ] || usage
    h=$1; shift
    recorded netns "$h" || die "no host '$h' (hosts: $(hosts | tr '\n' ' '))"
    exec nsenter --net="/run/netns/$h" unshare --uts sh -c 'hostname "$0" && exec "$@"' "$h" "$@"
    ;;
link)
    [ $# -eq 2 ] && { [ "$2" = up ] || [ "$2" = down ]; } || usage
    recorded netns "$1" || die "no host '$1'"
    # the machine's end of the cable: the host keeps its address, its
    # carrier drops (as when a switch port or cable dies)
    ip link set "$VETH${1#"$PREFIX"}" "$2"
    ;;
*) usage ;;
esac
