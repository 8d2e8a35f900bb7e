#!/usr/bin/env bash
# sparse_hosts.sh — the row-sparse gradient sum of embedding tables between
# hosts (not run by CTest; a measurement to read, nothing asserted): 2
# hosts of scripts/hosts.sh (network namespaces on this machine, TCP
# between them) with links limited to RATE (default 1 Gbit/s) each way,
# 1 rank x 1 thread a host.
#
# 1. Steps (`mimo bench --data`): an embedding_bag of ROWS x DIM (default
#    2M x 32, mean of 20 ids a bag) beside a small dense tower (16 numbers
#    -> 64 -> concat -> 64 -> click), global batch 1024, plain sgd; the
#    ids Zipf-like (a Zipf law of exponent 1.05 over the ranks 1..ROWS-1,
#    ranks scattered over the table by a fixed permutation: a few hot
#    rows, a long tail) and, for the sparse sum, also uniform (the worst
#    case: nearly every id a distinct row). Sparse (the default,
#    comm/rows.c) against --embedding-grads dense. Per form: the step and
#    its gradient sum (rank 0, mimo bench's median), the bytes each host
#    sent a step (the rx counters of the machine's ends of the two hosts'
#    cables, /sys/class/net/mimo-vN/statistics: two runs that differ only
#    in their timed steps, the difference over the extra steps, so the
#    start-up traffic cancels out; averaged over the 2 hosts), the rows a
#    step touched, and 1 process on the machine for reference. Medians of
#    ROUNDS runs (default 3).
# 2. End to end (`mimo train`): the `gen ctr` model (configs/ctr.yaml,
#    100,000 rows, 20% held out, 6 epochs of adam) at its vocabulary (1,000
#    ids a table) and at 100,000 ids a table, and with sgd (lr 0.05) at
#    1,000: 1 rank, 2 ranks on this machine (the default sum: node-shared
#    memory), 2 hosts x 1 rank (the default: bucketed, the tables by rows)
#    and (adam) 2 hosts with the tables in full. Per run: the wall time of
#    the command, the median epoch (history.csv's seconds, epochs 2-6),
#    the last epoch's validation figures and their largest difference from
#    1 rank's, and the final parameters' difference from 1 rank's (each
#    value's, relative to its tensor's largest value: the largest and the
#    median). Timings: medians of CTR_ROUNDS runs (default 2); the figures
#    must be the same in every round.
#
# The hosts: a test bed of its own beside the tests' (hosts.sh with
# MIMO_HOSTS_BED=1, or the bed given: hosts mimo1-h1, mimo1-h2 on
# 10.201.0.0/24); it refuses to start if that bed's hosts exist (someone
# else's), and takes them down at the end, on failure or interruption
# too. Root only (CAP_NET_ADMIN).
#
# Usage: [ROUNDS=N] [CTR_ROUNDS=N] [RATE=1gbit] [PARTS="steps ctr"] \
#        tests/bench/sparse_hosts.sh [MIMO] [ROWS] [DIM]
set -euo pipefail
source "$(dirname "$0")/lib.bash"
MIMO=$(realpath "${1:-build/mimo}")
ROWS=${2:-2000000} DIM=${3:-32}
ROUNDS=${ROUNDS:-3} CTR_ROUNDS=${CTR_ROUNDS:-2} RATE=${RATE:-1gbit} PARTS=${PARTS:-steps ctr}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
HOSTS=$SRC/scripts/hosts.sh
PY=/usr/bin/python3
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl_vader_single_copy_mechanism=none

# ---- the hosts: a test bed of our own (hosts.sh's MIMO_HOSTS_BED: names
# and addresses apart from the tests' hosts), always taken down
[ "$(id -u)" -eq 0 ] || { echo "sparse_hosts.sh: needs root (network namespaces)" >&2; exit 1; }
export MIMO_HOSTS_BED=${MIMO_HOSTS_BED:-1}
unset MIMO_HOSTS_DIR
B=mimo$MIMO_HOSTS_BED
if [ -n "$(sed -n 's/^netns //p' "/run/$B-hosts/state" 2>/dev/null)" ] ||
    ip link show dev "$B-br0" >/dev/null 2>&1 || compgen -G "/run/netns/$B-h*" >/dev/null; then
    echo "sparse_hosts.sh: the hosts of MIMO_HOSTS_BED=$MIMO_HOSTS_BED exist (MIMO_HOSTS_BED=$MIMO_HOSTS_BED bash scripts/hosts.sh status): in use, not touching them; another bed: MIMO_HOSTS_BED=2..9" >&2
    exit 1
fi
W=$(mktemp -d)
cleanup() {
    bash "$HOSTS" down >/dev/null 2>&1 || bash "$HOSTS" down
    rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cd "$W"
bash "$HOSTS" up 2 --rate "$RATE" >up.log 2>&1 || { cat up.log; exit 1; }
read -r -a OPTS <<<"$(bash "$HOSTS" opts 1)"

# on_hosts ARGS...: mimo ARGS on the 2 hosts, 1 rank x 1 thread each, its
# output; a run past 20 minutes is killed
on_hosts() {
    timeout -k 5 1200 mpirun "${OPTS[@]}" -np 2 -x OMP_NUM_THREADS=1 "$MIMO" "$@" 2>&1
}
# sent: the bytes the 2 hosts have sent, together
sent() { echo $(($(cat "/sys/class/net/$B-v1/statistics/rx_bytes") + $(cat "/sys/class/net/$B-v2/statistics/rx_bytes"))); }
field() { awk -v k="$1" 'index($0, k " ") == 1 { for (i = 2; i <= NF; i++) if ($i ~ /^[0-9.]+$/) { print $i; exit } }'; }

echo "# tests/bench/sparse_hosts.sh: 2 hosts x 1 rank x 1 thread (scripts/hosts.sh, links at $RATE), $(date -u '+%Y-%m-%d %H:%M') UTC"
echo "# CPU: $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo) (family $(awk -F': ' '/^cpu family/ { print $2; exit }' /proc/cpuinfo) model $(awk -F': ' '/^model\t/ { print $2; exit }' /proc/cpuinfo)), $(nproc) vCPUs; load at start: $(cut -d' ' -f1-3 /proc/loadavg)"

# ---- 1. steps
steps_part() {
    $PY - "$ROWS" <<'PYEOF'
import sys, h5py, numpy as np
V, n, L, s = int(sys.argv[1]), 16 * 1024, 20, 1.05
rs = np.random.RandomState(7)
def zipf(size):  # ranks 1..V-1, P(r) ~ r^-s (inverse CDF of the continuous law)
    u = rs.uniform(size=size)
    a = (V - 1) ** (1 - s)
    r = np.floor((1 + u * (a - 1)) ** (1 / (1 - s))).astype('i8')
    return np.clip(r, 1, V - 1)
perm = np.concatenate([[0], 1 + rs.permutation(V - 1)])  # rank -> row
num = rs.randn(n, 16).astype('f4')
for name, ids in (('zipf', perm[zipf((n, L))]), ('uniform', rs.randint(1, V, size=(n, L)))):
    with h5py.File(name + '.h5', 'w') as f:
        f['hist'] = ids.astype('i4')
        f['num'] = num
        f['click'] = (num[:, :1] + (ids[:, :1] % 7 == 0) > 0.5).astype('f4')
    per_batch = [len(np.unique(ids[i:i + 1024])) for i in range(0, n, 1024)]
    per_half = [len(np.unique(ids[i:i + 512])) for i in range(0, n, 512)]
    with open(name + '.rows', 'w') as f:
        print(f'{np.mean(per_batch):.0f} {np.mean(per_half):.0f}', file=f)
PYEOF
    bag_net "$ROWS" "$DIM"
    echo
    echo "## Steps: embedding_bag ${ROWS} x ${DIM} (mean of 20 ids), dense tower 16 -> 64 -> 64 -> 1, global batch 1024, sgd; medians of $ROUNDS runs"
    echo
    echo "| grads | ids | rows a step (all / a rank's 512) | step | gradient sum | optimizer | bytes sent a step, per host | 1 process, step | form |"
    echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    local v eg ids short long r a b c
    for v in sparse:zipf dense:zipf sparse:uniform; do
        eg=${v%:*} ids=${v#*:}
        # the dense sum moves the whole table (~2 s a step at 1 Gbit/s);
        # --segments 1: exactly these steps (bench runs at least one a segment)
        short=$([ "$eg" = sparse ] && echo 5 || echo 2)
        long=$([ "$eg" = sparse ] && echo 45 || echo 6)
        : >step.txt; : >sum.txt; : >opt.txt; : >bytes.txt; : >one.txt
        for r in $(seq "$ROUNDS"); do
            a=$(sent)
            on_hosts bench net.yaml --data "$ids.h5" --steps "$short" --warmup 1 --segments 1 \
                --embedding-grads "$eg" >short.log
            b=$(sent)
            on_hosts bench net.yaml --data "$ids.h5" --steps "$long" --warmup 1 --segments 1 \
                --embedding-grads "$eg" >long.log
            c=$(sent)
            grep -q '^step ' long.log || { echo "no step figures:"; cat long.log; exit 1; }
            field step <long.log >>step.txt
            field '  gradient sum' <long.log >>sum.txt
            field '  optimizer' <long.log >>opt.txt
            echo $((((c - b) - (b - a)) / (long - short) / 2)) >>bytes.txt
            [ "$r" = 1 ] && form=$(sed -n 's/^gradient sum *//p' long.log)
            OMP_NUM_THREADS=1 "$MIMO" bench net.yaml --data "$ids.h5" --steps 20 --warmup 1 \
                --embedding-grads "$eg" | field step >>one.txt
        done
        read -r rows_all rows_half <"$ids.rows"
        printf '| %s | %s | %s / %s | %s ms | %s ms | %s ms | %s | %s ms | %s |\n' "$eg" "$ids" \
            "$rows_all" "$rows_half" "$(median <step.txt)" "$(median <sum.txt)" "$(median <opt.txt)" \
            "$(median <bytes.txt)" "$(median <one.txt)" "$form"
        echo "<!-- $eg $ids: steps $(paste -sd' ' step.txt) ms; sums $(paste -sd' ' sum.txt) ms; bytes $(paste -sd' ' bytes.txt) -->"
    done
}

# ---- 2. end to end
# launch RUN ARGS...: mimo ARGS as RUN: 1-rank, 2-ranks (this machine),
# 2-hosts, 2-hosts-dense (--embedding-grads dense)
launch() {
    local run=$1
    shift
    case $run in
    1-rank) OMP_NUM_THREADS=1 "$MIMO" "$@" ;;
    2-ranks) timeout -k 5 1200 mpirun -np 2 -x OMP_NUM_THREADS=1 "$MIMO" "$@" ;;
    2-hosts) on_hosts "$@" ;;
    2-hosts-dense) on_hosts "$@" --embedding-grads dense ;;
    esac
}
ctr_part() {
    "$MIMO" gen ctr --out ctr.h5 --n 100000 --vocab 100000 >/dev/null
    "$MIMO" gen ctr --out ctr1k.h5 --n 100000 --vocab 1000 >/dev/null
    echo
    echo "## End to end: configs/ctr.yaml (gen ctr, 100,000 rows, 80,000 trained, 20,000 validated; 6 epochs, batch 256; adam lr 0.003 as configured, or sgd lr 0.05); medians of $CTR_ROUNDS runs"
    echo
    echo "| ids a table, optimizer | run | wall | epoch (median of 2-6) | val_loss | val_click_auc | val_conversion_auc | val_dwell_loss | figures: largest difference from 1 rank (parameters: largest, median) | gradient sum |"
    echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    local v vocab opt runs run r t t0 data sets
    for v in 1000:adam 1000:sgd 100000:adam; do
        vocab=${v%:*} opt=${v#*:}
        data=$([ "$vocab" = 1000 ] && echo ctr1k.h5 || echo ctr.h5)
        sets=(--set "data.train=$W/$data")
        for t in user_emb item_emb hist_emb; do sets+=(--set "layers.$t.input_dim=$vocab"); done
        runs="1-rank 2-ranks 2-hosts 2-hosts-dense"
        if [ "$opt" = sgd ]; then
            sets+=(--set train.optimizer.type=sgd --set train.optimizer.lr=0.05)
            runs="1-rank 2-ranks 2-hosts"
        fi
        for run in $runs; do
            : >wall.txt; : >epoch.txt
            for r in $(seq "$CTR_ROUNDS"); do
                rm -rf "run-$r"
                t0=$(date +%s%N)
                launch "$run" train "$SRC/configs/ctr.yaml" --out "run-$r" "${sets[@]}" >"run-$r.log" 2>&1 || true
                echo "$(date +%s%N) $t0" | awk '{ print ($1 - $2) / 1e9 }' >>wall.txt
                [ -s "run-$r/history.csv" ] || { echo "$run failed:"; cat "run-$r.log"; exit 1; }
                $PY -c "
import numpy as np, sys
h = np.genfromtxt(sys.argv[1], delimiter=',', names=True)
print(np.median(h['seconds'][1:]))" "run-$r/history.csv" >>epoch.txt
            done
            $PY - "$vocab" "$run" "$CTR_ROUNDS" "$(median <wall.txt)" "$(median <epoch.txt)" "$opt" <<'PYEOF'
import sys, csv, json, shutil
import h5py, numpy as np
vocab, run, rounds, wall, epoch, opt = sys.argv[1:7]
keys = ('val_loss', 'val_click_auc', 'val_conversion_auc', 'val_dwell_loss')
last = [list(csv.DictReader(open(f'run-{r}/history.csv')))[-1] for r in range(1, int(rounds) + 1)]
figs = [{k: float(l[k]) for k in keys} for l in last]
same = all(f == figs[0] for f in figs)
ref = f'ref-{vocab}-{opt}.json'
if run == '1-rank':
    json.dump(figs[0], open(ref, 'w'))
    shutil.copy('run-1/checkpoints/last.h5', f'ref-{vocab}-{opt}.h5')
base = json.load(open(ref))
diff = max(abs(figs[0][k] - base[k]) for k in keys)
# the parameters: each value's difference relative to its tensor's
# largest value; the largest and the median over all values
a, b, d = h5py.File(f'ref-{vocab}-{opt}.h5')['params'], h5py.File('run-1/checkpoints/last.h5')['params'], []
for l in a:
    for t in a[l]:
        x, y = a[l][t][()].astype('f8'), b[l][t][()]
        d.append((np.abs(x - y) / (np.abs(x).max() + 1e-30)).ravel())
d = np.concatenate(d)
print(f'| {int(vocab):,}, {opt} | {run} | {float(wall):.1f} s | {float(epoch):.2f} s | '
      + ' | '.join(f'{figs[0][k]:.5f}' for k in keys)
      + f' | {diff:.1e} ({d.max():.1e}, {np.median(d):.1e}){"" if same else " (rounds differ!)"} |', end=' ')
PYEOF
            # the form: mimo train does not print it, mimo bench does
            launch "$run" bench "$SRC/configs/ctr.yaml" --steps 2 --warmup 1 "${sets[@]}" 2>&1 |
                sed -n 's/^gradient sum *//p' | tr -d '\n'
            echo " |"
        done
    done
}

for p in $PARTS; do "${p}_part"; done
echo
echo "# load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
