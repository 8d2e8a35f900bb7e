#!/usr/bin/env bash
# sparse_grads.sh — the embedding tables' gradients cleared, summed and
# updated by the rows the step touched (one process: `local_rows`,
# core/sparse.c; ranks: `row_sparse`, comm/rows.c) train exactly as the
# whole tables (--embedding-grads dense): a model with an embedding, a bag
# with weights, a bag sharing its table, a frozen bag and dense layers,
# under plain sgd (the update touches only the rows), adam (dense
# update), sgd with momentum, decay and clipping (the update uses the
# buffer as scratch), lazy adamw (only the rows, as sgd; untouched
# rows' moments frozen, checked) and adagrad (only the rows: a zero
# gradient changes nothing), on 1 process, 2 and 3 ranks: bitwise
# equal with the bucketed allreduce, within 1e-6 of the blocking one (its
# ring sums in another order on 3 ranks) and on 4 ranks (the allreduce
# adds pairs); a resume gives the uninterrupted run bitwise.
# node_shared (comm/shm.c) sums the tables by the rows too: the node's
# rows from every rank's shared buffer, across nodes (--ranks-per-node)
# only those rows: bitwise its own dense sum of the whole tables on 2, 3
# and 4 ranks and 2 nodes of 2 or of 1 rank, bitwise row_sparse on 2 and
# 3 ranks (the same order of sums), and a mid-epoch resume bitwise.
source "$(dirname "$0")/lib.bash"
PY=/usr/bin/python3
cd "$TMP"

bags_data data.h5
net() { bags_net "$1" "$2" data.h5; } # net NAME OPTIMIZER
net sgd '{type: sgd, lr: 0.2}'
net adam '{type: adam, lr: 0.01}'
net mom '{type: sgd, lr: 0.1, momentum: 0.9, weight_decay: 0.0001, clipnorm: 1.0}'
net lazy '{type: adamw, lr: 0.01, weight_decay: 0.01, lazy: true}'
net adagrad '{type: adagrad, lr: 0.05, initial_accumulator_value: 0.2}'

# ---- which exchange runs
bench() { mpi_expect 2 0 "$1" bench sgd.yaml --steps 2 --warmup 1 "${@:2}"; }
bench "gradient sum       bucketed (row_sparse)" --allreduce bucketed
bench "gradient sum       blocking (row_sparse)" --allreduce blocking
bench "gradient sum       bucketed (allreduce)" --allreduce bucketed --embedding-grads dense
bench "gradient sum       shared (node_shared_rows)" --allreduce shared
bench "gradient sum       shared (node_shared)" --allreduce shared --embedding-grads dense
expect 0 "" bench sgd.yaml --steps 2 --warmup 1
expect 2 "--embedding-grads expects sparse or dense" train sgd.yaml --embedding-grads rows

# ---- sparse = dense
for opt in sgd adam mom lazy adagrad; do
    expect 0 "" train $opt.yaml --out $opt-np1 --quiet
    expect 0 "" train $opt.yaml --out $opt-1-dense --quiet --embedding-grads dense
    check "$opt, 1 process: rows (local_rows) = whole tables (bitwise)" \
        same_params $opt-1-dense/checkpoints/last.h5 $opt-np1/checkpoints/last.h5
    for np in 2 3; do
        for eg in sparse dense; do
            mpi_expect "$np" 0 "" train $opt.yaml --out $opt-$np-$eg --quiet --check-every 1 \
                --allreduce bucketed --embedding-grads $eg
        done
        check "$opt, $np ranks: sparse rows = dense allreduce (bitwise)" \
            same_params $opt-$np-dense/checkpoints/last.h5 $opt-$np-sparse/checkpoints/last.h5
        check "$opt, $np ranks: as 1 rank (1e-5)" \
            params_close $opt-np1/checkpoints/last.h5 $opt-$np-sparse/checkpoints/last.h5 1e-5
    done
done
for np in 2 3; do
    mpi_expect "$np" 0 "" train sgd.yaml --out blocking-$np --quiet --allreduce blocking
    check "sgd, $np ranks: sparse rows within 1e-6 of the blocking dense allreduce" \
        params_close blocking-$np/checkpoints/last.h5 sgd-$np-sparse/checkpoints/last.h5 1e-6
done
# 4 ranks: the allreduce adds pairs ((g0 + g1) + (g2 + g3)), the rows in
# rank order: equal up to rounding (adam's 1 / sqrt(v) magnifies it as it
# does between 1 and 2 ranks)
for opt_tol in sgd:1e-6 adam:1e-5; do
    opt=${opt_tol%:*} tol=${opt_tol#*:}
    for eg in sparse dense; do
        mpi_expect 4 0 "" train $opt.yaml --out $opt-4-$eg --quiet --allreduce bucketed \
            --embedding-grads $eg
    done
    check "$opt, 4 ranks: sparse rows within $tol of the dense allreduce" \
        params_close $opt-4-dense/checkpoints/last.h5 $opt-4-sparse/checkpoints/last.h5 $tol
done
py "sgd moved exactly the rows the ids name (not padding, not the frozen table)" "
import h5py, numpy as np
a = h5py.File('sgd-2-sparse/checkpoints/ckpt-000000000010.h5')['params']
b = h5py.File('sgd-2-sparse/checkpoints/last.h5')['params']
d = h5py.File('data.h5')
moved = lambda k: set(np.nonzero(np.abs(b[k][()] - a[k][()]).max(axis=1) > 0)[0])
ids = lambda *ks: set(np.concatenate([d[k][()].ravel() for k in ks]))
assert moved('hb/embeddings') == ids('hist', 'hist2') - {0}
assert moved('ue/embeddings') == ids('user')
assert not moved('tb/embeddings') and 'hb2' not in b
"

# ---- node_shared by rows = node_shared with the whole tables (bitwise:
# the same values summed in the same order, the untouched rows' zeros
# left out), on one node and on 2 (4 ranks, 2 a node: the slices'
# owners exchange their rows over MPI; 2 ranks, 1 a node); = row_sparse
# where the order of sums is the same (2 and 3 ranks; clipnorm's norm
# is summed slice by slice: up to rounding)
for opt in sgd adam mom lazy adagrad; do
    runs="2 3 4:2"
    [ $opt = sgd ] || [ $opt = lazy ] && runs="2 3 4 4:2 2:1"
    for run in $runs; do # ranks[:ranks per node]
        np=${run%:*} rpn=()
        [ "$run" = "$np" ] || rpn=(--ranks-per-node "${run#*:}")
        for eg in sparse dense; do
            mpi_expect "$np" 0 "" train $opt.yaml --out $opt-sh$run-$eg --quiet \
                --check-every 1 --allreduce shared --embedding-grads $eg "${rpn[@]}"
        done
        check "$opt, node_shared $np ranks ${rpn[*]}: rows = whole tables (bitwise)" \
            same_params $opt-sh$run-dense/checkpoints/last.h5 $opt-sh$run-sparse/checkpoints/last.h5
    done
    tol=0
    [ $opt = mom ] && tol=1e-6
    for np in 2 3; do
        check "$opt, $np ranks: node_shared's rows = row_sparse's (tolerance $tol)" \
            params_close $opt-$np-sparse/checkpoints/last.h5 $opt-sh$np-sparse/checkpoints/last.h5 $tol
    done
    check "$opt, 2 nodes of 2 ranks: as 1 process (1e-5)" \
        params_close $opt-np1/checkpoints/last.h5 $opt-sh4:2-sparse/checkpoints/last.h5 1e-5
done
# decay without clipnorm on one node: the tables' sums decayed in place
# (then cleared in full)
net dec '{type: sgd, lr: 0.1, momentum: 0.9, weight_decay: 0.001}'
for eg in sparse dense; do
    mpi_expect 2 0 "" train dec.yaml --out dec-sh-$eg --quiet --allreduce shared \
        --embedding-grads $eg
done
check "sgd with momentum and decay, node_shared 2 ranks: rows = whole tables (bitwise)" \
    same_params dec-sh-dense/checkpoints/last.h5 dec-sh-sparse/checkpoints/last.h5
# a mid-epoch resume (moments and all) under node_shared by rows
mpi_expect 2 0 "" train lazy.yaml --out lazy-part --quiet --allreduce shared \
    --set train.checkpoint.every_steps=5
(cd lazy-part/checkpoints && rm last.h5 ckpt-000000000020.h5)
mpi_expect 2 0 "resuming from lazy-part/checkpoints/ckpt-000000000015.h5 (epoch 2, step 5)" \
    train lazy.yaml --out lazy-part --allreduce shared --resume lazy-part
check "lazy, node_shared by rows, resumed mid-epoch = uninterrupted (bitwise)" \
    same_params lazy-sh2-sparse/checkpoints/last.h5 lazy-part/checkpoints/last.h5

# ---- lazy adam freezes the untouched rows
for opt in lazy adam; do # steps 16..20 read rows 300..599
    mpi_expect 2 0 "" train $opt.yaml --out $opt-order --quiet --allreduce bucketed \
        --set train.shuffle=false --set train.checkpoint.every_steps=5
done
py "lazy adamw freezes the untouched rows' values and moments; adam moves them" "
import h5py, numpy as np
d = h5py.File('data.h5')
touched = sorted(set(np.concatenate([d[k][()][300:].ravel() for k in ('hist', 'hist2')])))
for run, lazy in (('lazy-order', True), ('adam-order', False)):
    a = h5py.File(run + '/checkpoints/ckpt-000000000015.h5')
    b = h5py.File(run + '/checkpoints/last.h5')
    m = a['optimizer/m/hb/embeddings'][()]
    rows = np.abs(m).max(axis=1) > 0          # touched before step 16 ...
    rows[touched] = False                      # ... but not after
    assert rows.sum() > 50, rows.sum()
    for k in ('params/hb/embeddings', 'optimizer/m/hb/embeddings', 'optimizer/v/hb/embeddings'):
        same = np.all(a[k][()][rows] == b[k][()][rows], axis=1)
        assert same.all() if lazy else not same.any(), (run, k, same.mean())
"
sed 's/lazy: true/lazy: true, momentum: 0.9/; s/adamw/sgd/' lazy.yaml >bad_lazy.yaml
expect 1 "key 'lazy' is not valid for the sgd optimizer" train bad_lazy.yaml --out bad

# ---- resume: the exchange starts afresh, the run goes on bitwise
mpi_expect 2 0 "" train mom.yaml --out part --quiet --allreduce bucketed --epochs 1
mpi_expect 2 0 "resuming" train mom.yaml --out part --allreduce bucketed --resume part
check "mom, 2 ranks: resumed = uninterrupted (bitwise)" \
    same_params mom-2-sparse/checkpoints/last.h5 part/checkpoints/last.h5
# ---- micro-batches and per-head gradients: a step's rows are not its
# backward's, so the tables are summed in full (and stay exact)
expect 0 "" train sgd.yaml --out acc-np1 --quiet --set train.accumulate=3
for np in 2 3; do
    mpi_expect "$np" 0 "" train sgd.yaml --out acc-$np --quiet --allreduce bucketed \
        --set train.accumulate=3
    check "sgd, accumulate 3, $np ranks: as 1 rank (1e-5)" \
        params_close acc-np1/checkpoints/last.h5 acc-$np/checkpoints/last.h5 1e-5
done
mpi_expect 2 0 "gradient sum       bucketed (allreduce)" bench sgd.yaml --steps 2 --warmup 1 \
    --allreduce bucketed --set train.accumulate=3
expect 0 "" train sgd.yaml --out pc-np1 --quiet --set train.task_balancing=pcgrad
mpi_expect 2 0 "" train sgd.yaml --out pc-2 --quiet --allreduce bucketed \
    --set train.task_balancing=pcgrad
check "sgd, pcgrad, 2 ranks: as 1 rank (1e-5)" \
    params_close pc-np1/checkpoints/last.h5 pc-2/checkpoints/last.h5 1e-5
finish
