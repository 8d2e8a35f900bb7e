#!/usr/bin/env bash
# nonfinite.sh — outputs that overflow on the validation or eval data
# (inputs of +-3e38 through two linear layers: inf - inf, NaN) are one
# clear error naming the data and the head, exit 1, DIR/status "failed",
# on 1 and 2 ranks, in bounded time: the AUC's tie loop once spun forever
# on a NaN score (NaN != NaN), so eval and train hung at 100% CPU, deaf to
# SIGTERM, status "running" (a hang here is a timeout: exit 124).
source "$(dirname "$0")/lib.bash"
cd "$TMP"
export OMP_NUM_THREADS=1
config net 'inputs: {x: {shape: 4}}
layers:
  h1: {type: dense, units: 8, from: x}
  h2: {type: dense, units: 8, from: h1}
  y: {type: dense, units: 1, activation: sigmoid, from: h2}
outputs:
  y: {loss: binary_crossentropy, metrics: [auc, accuracy]}
train: {optimizer: adam, batch_size: 32, epochs: 2, seed: 3}'
/usr/bin/python3 -c "
import h5py, numpy as np
rs = np.random.RandomState(0)
x = rs.randn(200, 4).astype('f4')
with h5py.File('tr.h5', 'w') as f:
    f['x'], f['y'] = x, (x[:, 0] > 0).astype('f4')[:, None]
v = np.where(rs.rand(300, 4) > 0.5, 3e38, -3e38).astype('f4')
with h5py.File('huge.h5', 'w') as f:
    f['x'], f['y'] = v, (rs.rand(300) > 0.5).astype('f4')[:, None]
"
msg="the loss of head 'y' is not finite (NaN over 300 labelled rows)"
state() { sed -n 's/^state: //p' "$1/status" 2>/dev/null; }

saved=$MIMO
MIMO="timeout -k 5 60 $saved"
expect 0 "" train net.yaml --data tr.h5 --out ok --quiet
expect 1 "evaluation on huge.h5: $msg" eval ok --data huge.h5
expect 1 "validation on huge.h5: $msg" train net.yaml --data tr.h5 --val huge.h5 --out v1 --quiet
check "1 rank, non-finite validation: status failed (got '$(state v1)')" test "$(state v1)" = failed
check "1 rank: status names the error" grep -qF "$msg" v1/status
MIMO=$saved
mpi_expect 2 1 "evaluation on huge.h5: $msg" eval ok --data huge.h5
mpi_expect 2 1 "validation on huge.h5: $msg" train net.yaml --data tr.h5 --val huge.h5 --out v2 --quiet
check "2 ranks, non-finite validation: status failed (got '$(state v2)')" test "$(state v2)" = failed
check "2 ranks: status names the error" grep -qF "$msg" v2/status
finish
