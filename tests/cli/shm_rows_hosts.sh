#!/usr/bin/env bash
# shm_rows_hosts.sh — node_shared with the embedding tables summed by rows
# (comm/shm.c) on 2 real hosts x 2 ranks (scripts/hosts.sh: network
# namespaces; node-shared memory within a host, TCP between them): the
# slices' owners send each other only their rows, and the training is
# bitwise node_shared's dense sum of the whole tables
# (--embedding-grads dense), bitwise the same 2 x 2 emulated on one host
# (--ranks-per-node 2), within 1e-5 of the row_sparse exchange (whose
# allreduce adds in pairs on 4 ranks). sgd (only the rows updated), adam
# (the whole table from the same sums) and lazy adamw. Needs root
# (CAP_NET_ADMIN): skips otherwise. ~30 s.
# resource-lock: hosts (it brings the hosts of scripts/hosts.sh up and takes them down)
source "$(dirname "$0")/lib.bash"
MIMO=$(realpath "$MIMO")
SRC=$(realpath "$SRC")
HOSTS=$SRC/scripts/hosts.sh
cd "$TMP" || exit 1

need_hosts

# 2 hosts; what was up before (with its limits) put back at the end
state=${MIMO_HOSTS_DIR:-/run/mimo-hosts}
before=$(sed -n 's/^netns //p' "$state/state" 2>/dev/null | wc -l)
before_rate=$(sed -n 's/^rate=//p' "$state/settings" 2>/dev/null)
cleanup() {
    if [ "$before" -gt 0 ]; then
        bash "$HOSTS" up "$before" ${before_rate:+--rate "$before_rate"} >/dev/null 2>&1
    else
        bash "$HOSTS" down >/dev/null 2>&1
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
[ "$before" -ge 2 ] || bash "$HOSTS" up 2 >up.log 2>&1
rc=$?
check "hosts.sh up 2 (exit $rc)" test "$rc" -eq 0
[ "$rc" -eq 0 ] || { cat up.log; finish; exit 1; }

# mh_expect CODE PHRASE ARGS...: mimo ARGS on 2 hosts x 2 ranks
mh_expect() {
    local saved=$MIMO
    # shellcheck disable=SC2046 # the options are words
    MIMO="env ASAN_OPTIONS=$MPI_ASAN timeout -k 5 120 mpirun $(bash "$HOSTS" opts 2) -np 4 -x OMP_NUM_THREADS=1 $saved"
    expect "$@"
    MIMO=$saved
}

/usr/bin/python3 - <<'PYEOF'
import h5py, numpy as np
rs = np.random.RandomState(5)
n, L = 480, 8
lens = rs.randint(0, L + 1, size=n)
hist = np.zeros((n, L), 'i4')
for i in range(n):
    hist[i, :lens[i]] = np.minimum(rs.zipf(1.2, size=lens[i]), 2999)
d = dict(user=np.minimum(rs.zipf(1.3, size=(n, 1)), 999).astype('i4'), hist=hist,
         num=rs.randn(n, 4).astype('f4'))
d['click'] = ((d['num'][:, 0] + (d['user'][:, 0] % 3 == 0)) > 0.5).astype('f4')[:, None]
with h5py.File('data.h5', 'w') as f:
    for k, v in d.items(): f[k] = v
PYEOF
net() { # net NAME OPTIMIZER
    config "$1" "inputs:
  user: {shape: 1, dtype: int32}
  hist: {shape: 8, dtype: int32}
  num:  {shape: 4}
layers:
  ue:    {type: embedding, input_dim: 1000, output_dim: 6, from: user}
  uf:    {type: flatten, from: ue}
  hb:    {type: embedding_bag, input_dim: 3000, output_dim: 7, combiner: mean, from: hist}
  cat:   {type: concat, from: [uf, hb, num]}
  t:     {type: dense, units: 8, activation: tanh, from: cat}
  click: {type: dense, units: 1, activation: sigmoid, from: t}
outputs:
  click: {loss: binary_crossentropy}
train:
  optimizer: $2
  batch_size: 48
  epochs: 2
  seed: 3
data: {train: data.h5}"
}
net sgd '{type: sgd, lr: 0.2}'
net adam '{type: adam, lr: 0.01}'
net lazy '{type: adamw, lr: 0.01, weight_decay: 0.01, lazy: true}'

mh_expect 0 "gradient sum       shared (node_shared_rows)" bench sgd.yaml --steps 2 --warmup 1
for opt in sgd adam lazy; do
    for eg in sparse dense; do
        mh_expect 0 "" train $opt.yaml --out $opt-$eg --quiet --check-every 1 \
            --allreduce shared --embedding-grads $eg
    done
    check "$opt, 2 hosts x 2 ranks: node_shared by rows = whole tables (bitwise)" \
        same_params $opt-dense/checkpoints/last.h5 $opt-sparse/checkpoints/last.h5
    mpi_expect 4 0 "" train $opt.yaml --out $opt-one --quiet --allreduce shared \
        --ranks-per-node 2
    check "$opt: = 2 x 2 on one host (--ranks-per-node 2; bitwise)" \
        same_params $opt-one/checkpoints/last.h5 $opt-sparse/checkpoints/last.h5
    mh_expect 0 "" train $opt.yaml --out $opt-rows --quiet --allreduce bucketed
    check "$opt: within 1e-5 of row_sparse on the hosts" \
        params_close $opt-rows/checkpoints/last.h5 $opt-sparse/checkpoints/last.h5 1e-5
done
finish
