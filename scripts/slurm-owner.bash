# slurm-owner.bash — who owns the one-machine SLURM daemons; sourced by
# scripts/start-slurm.sh and scripts/stop-slurm.sh (needs $STATE, say()).
# The one-node cluster and the --hosts one each keep all of it in their
# own state directory ($STATE): leases, owner records, lock.
#
# Several users (a terminal, two test suites, a README block) may use the
# daemons at once. Each start-slurm.sh runs for an OWNER and leaves a
# lease, $STATE/leases/OWNER; each daemon it starts gets the record
# $STATE/owner/DAEMON = OWNER (a start that finds the daemons running
# records that it started nothing). stop-slurm.sh run for OWNER releases
# that lease and stops, by the PIDs in their pid files, only the daemons
# recorded as OWNER's — and not even those while another lease is held:
# it then hands them to that holder (whose stop stops them) and says so.
# A daemon without an owner record (an older start-slurm.sh, or by hand)
# is never stopped here.
#
# OWNER is $MIMO_SLURM_OWNER, or session-SID: the session of the calling
# shell, so a start and a stop typed in one terminal or run by one script
# match. A lease names a holder process, $MIMO_SLURM_OWNER_PID (or the
# session leader): once that process has ended the lease is stale and is
# dropped, so a crashed user does not keep the daemons forever.
# start and stop hold the lock $STATE/lock while they run.

# A daemon is named by a KEY: munged, slurmctld, slurmd, or (--hosts, one
# slurmd per node) slurmd-NODE. The key names its pid file and its owner
# record; its process is called comm_of KEY.
pidfile_of() { # pidfile_of KEY
    case $1 in
    munged) echo "$STATE/munge/munged.pid" ;;
    *) echo "$STATE/$1.pid" ;;
    esac
}
comm_of() { echo "${1%%-*}"; }
label_of() { # label_of KEY: how messages name it ("slurmd of mimo-h1")
    case $1 in
    slurmd-*) echo "slurmd of ${1#slurmd-}" ;;
    *) echo "$1" ;;
    esac
}

# alive NAME PIDFILE: the pid file names a live process called NAME
alive() {
    local pid
    [ -s "$2" ] || return 1
    pid=$(cat "$2")
    [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ]
}

# proc_field PID N: field N (after the command name, 1 = state) of
# /proc/PID/stat; 4 is the session, 20 the start time.
proc_field() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    # shellcheck disable=SC2086
    set -- $2 ${stat##*) }
    eval "echo \${$(($1 + 1))}"
}

# owner_init: OWNER and HOLDER ("PID START", or empty: never stale)
# shellcheck disable=SC2034 # (HOLDER: used by start-slurm.sh)
owner_init() {
    local pid sid
    OWNER=${MIMO_SLURM_OWNER:-}
    pid=${MIMO_SLURM_OWNER_PID:-}
    if [ -z "$OWNER" ]; then
        sid=$(proc_field $$ 4)
        if [ "${sid:-0}" -gt 0 ] && [ -e "/proc/$sid/stat" ]; then
            OWNER=session-$sid pid=${pid:-$sid}
        else
            OWNER=default
        fi
    fi
    [[ $OWNER =~ ^[A-Za-z0-9._@+-]+$ ]] ||
        { echo "$0: error: MIMO_SLURM_OWNER '$OWNER': letters, digits and ._@+- only" >&2; exit 1; }
    HOLDER=
    if [ -n "$pid" ]; then
        HOLDER="$pid $(proc_field "$pid" 20)" ||
            { echo "$0: error: MIMO_SLURM_OWNER_PID $pid is not a running process" >&2; exit 1; }
    fi
}

# lock: wait (2 minutes at most) for the other starts and stops
lock() {
    exec 9>>"$STATE/lock"
    flock -w 120 9 || { echo "$0: error: $STATE/lock held for 2 minutes" >&2; exit 1; }
}

# lease_live OWNER: OWNER holds a lease whose holder (if any) still runs
lease_live() {
    local f=$STATE/leases/$1 pid start
    [ -f "$f" ] || return 1
    read -r pid start < <(sed -n 's/^holder=//p' "$f")
    [ -z "$pid" ] || [ "$(proc_field "$pid" 20)" = "$start" ]
}

# prune: drop the leases whose holder has ended
prune() {
    local f o
    for f in "$STATE"/leases/*; do
        [ -f "$f" ] || continue
        o=${f##*/}
        lease_live "$o" && continue
        say "dropped the lease of owner $o: its holder (pid $(sed -n 's/^holder=\([0-9]*\).*/\1/p' "$f")) has ended"
        rm -f "$f"
    done
}

# leases [EXCEPT]: the owners holding a lease, oldest first
leases() {
    local f
    # shellcheck disable=SC2045 # (owner names have no blanks: owner_init)
    for f in $(ls -tr "$STATE/leases" 2>/dev/null); do
        [ "$f" = "${1:-}" ] || echo "$f"
    done
}

owner_of() { cat "$STATE/owner/$1" 2>/dev/null; } # owner_of KEY
