#!/usr/bin/env bash
# mpi.sh — data-parallel training under mpirun: the same weights on 1, 2, 3
# and 4 ranks (a global batch that does not divide evenly), replicas
# bitwise identical, the exchanges bitwise the same (bucketed = blocking
# allreduce = node_shared, with SGD and Adam; local = allreduce over one
# rank), predict/eval on 2 ranks
# = 1 rank, and faults (one rank's bad rows, a NaN on one rank, kill -9 of
# a rank) ending the job within 30 s with the newest checkpoint intact.
source "$(dirname "$0")/lib.bash"
PY=/usr/bin/python3
cd "$TMP"

two_branch_data
$PY - <<'PYEOF'
import h5py
with h5py.File('data.h5', 'r') as f:
    base = {k: f[k][()] for k in f}
def write(name, **over):
    d = dict(base); d.update(over)
    with h5py.File(name, 'w') as f:
        for k, v in d.items(): f[k] = v
bad = base['a'].copy(); bad[400, 1] = float('nan')   # only rank 1 of 2 reads row 400
write('nan_late.h5', a=bad)
big = base['reg'].copy(); big[123, 0] = 1e30          # finite, but its loss overflows
write('overflow.h5', reg=big)
PYEOF
two_branch_net 30 12 data.h5

losses_close() { # per-epoch losses of two histories within 1e-4 relative
    $PY - "$1" "$2" <<'PYEOF'
import sys, numpy as np
a = np.genfromtxt(sys.argv[1], delimiter=',', names=True)
b = np.genfromtxt(sys.argv[2], delimiter=',', names=True)
cols = ['loss', 'reg_loss', 'cls_loss', 'cls_accuracy']
sys.exit(0 if all(np.allclose(a[c], b[c], rtol=1e-4, atol=1e-6) for c in cols) else 1)
PYEOF
}

# 500 rows, global batch 30: 17 steps an epoch (the last of 20 rows),
# slices of 7/8 rows on 4 ranks, 10/10/10 on 3; 204 steps in all
expect 0 "" train net.yaml --out np1 --quiet
for np in 2 3 4; do
    mpi_expect "$np" 0 "" train net.yaml --out np$np --quiet --check-every 1
    check "$np ranks train the same weights as 1 (1e-5)" params_close np1/checkpoints/last.h5 np$np/checkpoints/last.h5 1e-5
    check "$np ranks log the same epoch losses as 1" losses_close np1/history.csv np$np/history.csv
done
# the file streamed by every rank (MPI-IO, prefetch) trains as held whole
mpi_expect 2 0 "" train net.yaml --out np2s --quiet --set data.memory_limit_mb=0.01
check "2 ranks streaming the file = 2 ranks holding it whole (bitwise)" params_close np2/checkpoints/last.h5 np2s/checkpoints/last.h5 0
check "world_size is recorded" $PY -c "import h5py,sys; sys.exit(int(h5py.File('np3/checkpoints/last.h5').attrs['world_size'] != 3))"

# more ranks x threads than cores: a warning, training goes on
over=$(( $(nproc) + 1 ))
mpi_expect "$over" 0 "rank(s) x 1 thread(s) on this node exceed its $(nproc) cores" train net.yaml --out over --epochs 1

# The three forms of the gradient sum. Above, auto chose shared memory (one
# node). Two addends sum the same in any order, so on 2 ranks all three
# give bitwise the same weights: bucketed with tiny buckets (many in
# flight), blocking, and shared.
mpi_expect 2 0 "" train net.yaml --out bucketed --quiet --allreduce bucketed --bucket-mb 0.0005 --epochs 4
mpi_expect 2 0 "" train net.yaml --out blocking --quiet --allreduce blocking --epochs 4
mpi_expect 2 0 "" train net.yaml --out shared --quiet --allreduce shared --epochs 4
check "bucketed and blocking allreduce: bitwise the same" params_close bucketed/checkpoints/last.h5 blocking/checkpoints/last.h5 0
check "shared-memory sum and blocking allreduce: bitwise the same" params_close shared/checkpoints/last.h5 blocking/checkpoints/last.h5 0
# The exchange contract (mimo/exchange.h): each implementation applies the
# same update. With Adam (configs/multitask.yaml's optimizer: moments the
# node_shared exchange owns and updates by slices) the three on 2 ranks
# are bitwise the same; on one process, local (no runtime) and allreduce
# over one rank (attached for --trace) too.
adam=(--epochs 4 --set 'train.optimizer={type: adam, lr: 0.01}')
for x in blocking bucketed shared; do
    mpi_expect 2 0 "" train net.yaml --out adam-$x --quiet --allreduce $x "${adam[@]}"
done
check "adam: bucketed allreduce = blocking (bitwise)" same_params adam-blocking/checkpoints/last.h5 adam-bucketed/checkpoints/last.h5
check "adam: node_shared = blocking allreduce (bitwise)" same_params adam-blocking/checkpoints/last.h5 adam-shared/checkpoints/last.h5
expect 0 "" train net.yaml --out adam-local --quiet "${adam[@]}"
expect 0 "" train net.yaml --out adam-one --quiet --trace adam-one.json "${adam[@]}"
check "adam, one process: local = allreduce over one rank (bitwise)" same_params adam-local/checkpoints/last.h5 adam-one/checkpoints/last.h5
# Under the shared form each rank updates its slice of the node's one
# parameter buffer and moments: Adam with L2 and clipnorm (a norm over all
# slices), then early stopping restoring the best epoch's parameters (a
# write outside the step), against the blocking allreduce where every rank
# updates all of them.
opts=(--epochs 4 --set 'train.optimizer={type: adam, lr: 0.01, clipnorm: 0.05, weight_decay: 0.001}'
      --set 'train.early_stopping={monitor: loss, patience: 0, min_delta: 10}')
mpi_expect 2 0 "restoring the parameters of epoch 1" train net.yaml --out adam-sh --allreduce shared "${opts[@]}"
mpi_expect 2 0 "restoring the parameters of epoch 1" train net.yaml --out adam-bl --allreduce blocking "${opts[@]}"
check "adam, L2, clipnorm, early stopping: shared = blocking (1e-6)" params_close adam-bl/checkpoints/last.h5 adam-sh/checkpoints/last.h5 1e-6
check "... and the Adam moments saved from the node's shared buffers" $PY -c "
import h5py, numpy as np, sys
a, b = h5py.File('adam-bl/checkpoints/last.h5'), h5py.File('adam-sh/checkpoints/last.h5')
m = [k for k in a['optimizer']]
ok = m and all(np.allclose(a['optimizer'][s][l][t][()], b['optimizer'][s][l][t][()], rtol=1e-5, atol=1e-9)
               for s in m if isinstance(a['optimizer'][s], h5py.Group)
               for l in a['optimizer'][s] for t in a['optimizer'][s][l])
sys.exit(0 if ok else 1)"
# The shared form's one pass (each block summed, decayed, clipped and
# applied while in cache), and ranks with no rows: 500 rows in global
# batches of 166 leave 2 rows for the last step on 4 ranks.
opts=(--epochs 3 --set train.batch_size=166
      --set 'train.optimizer={type: sgd, lr: 0.05, momentum: 0.9, weight_decay: 0.001, clipvalue: 0.05}')
expect 0 "" train net.yaml --out pb-1 --quiet "${opts[@]}"
mpi_expect 4 0 "" train net.yaml --out pb-4 --quiet --allreduce shared "${opts[@]}"
check "L2 and clipvalue per block, ranks without rows: 4 ranks = 1 rank (1e-5)" params_close pb-1/checkpoints/last.h5 pb-4/checkpoints/last.h5 1e-5
# several nodes (here 2 "nodes" of 2 ranks): each rank sums its slice on
# its node, then allreduces it with its peer on the other node
mpi_expect 4 0 "" train net.yaml --out nodes --quiet --allreduce shared --ranks-per-node 2 --check-every 1
check "2 nodes x 2 ranks train the same weights as 1 rank (1e-5)" params_close np1/checkpoints/last.h5 nodes/checkpoints/last.h5 1e-5
mpi_expect 3 0 "" train net.yaml --out nodes1 --quiet --allreduce shared --ranks-per-node 1
check "3 nodes of 1 rank train the same weights as 1 rank (1e-5)" params_close np1/checkpoints/last.h5 nodes1/checkpoints/last.h5 1e-5
# auto: shared when ranks share a node, else the bucketed allreduce
mpi_expect 2 0 "gradient sum       shared" bench "$SRC/configs/bench/tiny.yaml" --steps 20 --warmup 2
mpi_expect 2 0 "gradient sum       bucketed" bench "$SRC/configs/bench/tiny.yaml" --steps 20 --warmup 2 --ranks-per-node 1
# bench on a dataset file, read as mimo train reads it (held whole or
# streamed), on 1 and 2 ranks; random rows by count; bad input one error
expect 0 "data               500 rows, data.h5, held in memory" bench net.yaml --data data.h5 --steps 20 --warmup 2
mpi_expect 2 0 "data               500 rows, data.h5, streamed from the file" bench net.yaml --data data.h5 --steps 20 --warmup 2 --set data.memory_limit_mb=0.01
expect 0 "data               300 rows, random, in memory" bench net.yaml --rows 300 --steps 20 --warmup 2
expect 1 "nothere.h5: cannot open: No such file or directory" bench net.yaml --data nothere.h5
mpi_expect 2 1 "nothere.h5: cannot open: No such file or directory" bench net.yaml --data nothere.h5
expect 1 "data.h5: no dataset 'x1' for input 'x1'" bench "$SRC/configs/bench/tiny.yaml" --data data.h5
expect 2 "--rows sets the random rows: not with --data" bench net.yaml --data data.h5 --rows 10
expect 2 "--rows expects an integer >= 1, got '0'" bench net.yaml --rows 0
mpi_expect 4 1 "--allreduce shared needs the same number of ranks on every node, got 1 to 3" train net.yaml --out uneven --allreduce shared --ranks-per-node 3
mpi_expect 2 2 "--allreduce expects auto, shared, bucketed or blocking" train net.yaml --allreduce ring

# predict and eval on 2 ranks give what 1 rank gives
expect 0 "" predict np1 --data data.h5 --out p1.h5
mpi_expect 2 0 "" predict np1 --data data.h5 --out p2.h5
check "predictions on 2 ranks = 1 rank" $PY -c "
import h5py, numpy as np, sys
a, b = h5py.File('p1.h5'), h5py.File('p2.h5')
sys.exit(0 if all(np.allclose(a[k][()], b[k][()], rtol=1e-6, atol=1e-7) for k in ('reg', 'cls')) else 1)"
# (stdout and stderr apart: mpirun interleaves the two in any order)
"$MIMO" eval np1 --data data.h5 >e1.txt 2>e1.err
ASAN_OPTIONS=$MPI_ASAN timeout -k 5 60 mpirun -np 2 -x OMP_NUM_THREADS=1 "$MIMO" eval np1 --data data.h5 >e2.txt 2>e2.err
check "eval on 2 ranks prints what 1 rank prints" cmp e1.txt e2.txt
check "... and says the same on stderr" cmp e1.err e2.err
mpi_expect 3 0 "samples 500" eval np1 --data data.h5

# --trace: one Chrome trace with a track per rank
mpi_expect 2 0 "" train net.yaml --out traced --quiet --epochs 1 --trace trace.json
mpi_expect 2 0 "" train net.yaml --out traced-b --quiet --epochs 1 --trace trace-b.json --allreduce bucketed
mpi_expect 2 0 "" bench net.yaml --data data.h5 --steps 10 --warmup 2 --trace trace-bench.json
expect 2 "--trace needs a file" bench net.yaml --trace
check "the traces have each rank's forward, per-layer backward, the sum and update or buckets, waits and optimizer" $PY -c "
import json, sys
def has(path, need):
    ev = json.load(open(path))['traceEvents']
    names = {(e['tid'], e['name']) for e in ev}
    return all((r, n) in names for r in (0, 1) for n in need)
common = {'data', 'forward', 'reg', 'ha'}
sys.exit(0 if has('trace.json', common | {'sum and update (shared memory)'}) and
         has('trace-bench.json', common | {'sum and update (shared memory)'}) and
         has('trace-b.json', common | {'bucket start', 'allreduce wait', 'optimizer'}) else 1)"

# faults: each ends the whole job, names the rank, within 30 s
start=$SECONDS
# streamed, each rank checks its share of the rows: rank 1 finds it alone;
# loaded whole (the default for small files), every rank checks every row
mpi_expect 2 1 "rank 1 of 2: nan_late.h5: dataset 'a' has 1 NaN/Inf value(s), the first in row 400" train net.yaml --out f1 --data nan_late.h5 --set data.memory_limit_mb=0.01
mpi_expect 2 1 "rank 0 of 2: nan_late.h5: dataset 'a' has 1 NaN/Inf value(s), the first in row 400" train net.yaml --out f1 --data nan_late.h5
mpi_expect 2 1 "is not finite at epoch" train net.yaml --out f2 --data overflow.h5
mpi_expect 2 1 "rank 0 of 2: $(realpath "$TMP")/data.h5: no dataset 'zz' for input 'zz'" train net.yaml --out f3 --set inputs.zz.shape=1 --set layers.c.from=[s,b,zz]
mpi_expect 2 1 "rank 0 of 2: net.yaml:4:21: key 'units' is not valid for a concat layer" train net.yaml --out f5 --set layers.hb.type=concat
mpi_expect 2 1 "absent.h5: cannot open" train net.yaml --out f4 --data absent.h5
touch afile   # rank 0 alone makes the run directory: it fails, the others wait
mpi_expect 2 1 "afile/run: cannot create directory" train net.yaml --out afile/run
mkdir -p f6/checkpoints/best.h5/in-the-way   # rank 0's checkpoint cannot be renamed
mpi_expect 2 1 "rank 0 of 2: f6/checkpoints/best.h5: cannot write (renaming" train net.yaml --out f6 --epochs 2 --set train.checkpoint.save_best=true
check "each fault ended its job quickly ($((SECONDS - start)) s for 7)" test $((SECONDS - start)) -lt 300

# kill -9 of one rank mid-training: the job ends, the newest checkpoint loads
OMP_NUM_THREADS=1 ASAN_OPTIONS=$MPI_ASAN mpirun -np 2 "$MIMO" train net.yaml --out killed --quiet --epochs 100000 \
    --set train.checkpoint.every_steps=5 >kill.log 2>&1 &
launcher=$!
wait_ckpt killed 1 "$launcher"
victim=$(ps -o pid= --ppid "$launcher" | head -n 1 | tr -d ' ')
t0=$SECONDS
[ -n "$victim" ] && kill -9 "$victim"
for _ in $(seq 300); do kill -0 "$launcher" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$launcher" 2>/dev/null; then
    echo "FAIL: the job still runs 30 s after kill -9 of rank pid $victim"; failed=$((failed + 1))
    kill "$launcher"
else
    wait "$launcher"; rc=$?
    check "kill -9 of a rank ends the job (exit $rc, $((SECONDS - t0)) s)" test "$rc" -ne 0
fi
expect 0 "samples 500" eval killed --data data.h5
finish
