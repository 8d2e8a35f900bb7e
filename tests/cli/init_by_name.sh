#!/usr/bin/env bash
# init_by_name.sh — fine-tuning from a trained run: --init loads every
# tensor whose layer and tensor name and shape match (a config that adds
# a head, widens another and renames a layer with --init-map), leaves the
# rest as a fresh start would have them (bitwise), prints a table of
# loaded / new / shape mismatch / unused, and does the same on 2 ranks;
# --init-strict keeps the all-or-error rule; bad --init-map names, and a
# file that matches nothing, are one clear error each.
source "$(dirname "$0")/lib.bash"
PY=/usr/bin/python3
cd "$TMP"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl_vader_single_copy_mechanism=none

$PY - <<'PYEOF'
import h5py, numpy as np
rs = np.random.RandomState(3)
n = 256
with h5py.File('data.h5', 'w') as f:
    f['x'] = rs.randn(n, 6).astype('f4')
    f['a'] = rs.randn(n, 2).astype('f4')
    f['b'] = (rs.rand(n, 3) > 0.5).astype('f4')
    f['c'] = rs.randn(n, 1).astype('f4')
PYEOF

config old 'inputs: {x: {shape: 6}}
layers:
  trunk: {type: dense, units: 8, activation: tanh, from: x}
  side:  {type: dense, units: 4, activation: relu, from: x}
  cat:   {type: concat, from: [trunk, side]}
  a:     {type: dense, units: 2, from: cat}
  b:     {type: dense, units: 2, activation: sigmoid, from: trunk}
outputs: {a: {loss: mse}, b: {loss: mse, target: a}}
train: {optimizer: {type: adam, lr: 0.01}, batch_size: 32, epochs: 3, seed: 1}'
# side is renamed branch, b widened to 3 units, c is a new head; lr 1e-30
# (below any float spacing of the weights) the checkpoint holds the
# starting point
config new 'inputs: {x: {shape: 6}}
layers:
  trunk:  {type: dense, units: 8, activation: tanh, from: x}
  branch: {type: dense, units: 4, activation: relu, from: x}
  cat:    {type: concat, from: [trunk, branch]}
  a:      {type: dense, units: 2, from: cat}
  b:      {type: dense, units: 3, activation: sigmoid, from: trunk}
  c:      {type: dense, units: 1, from: cat}
outputs: {a: {loss: mse}, b: {loss: binary_crossentropy}, c: {loss: mse}}
train: {optimizer: {type: sgd, lr: 1.0e-30}, batch_size: 32, epochs: 1, seed: 5}'

expect 0 "" train old.yaml --data data.h5 --out old --quiet
OLD=old/checkpoints/last.h5
$MIMO train new.yaml --data data.h5 --out tuned --init "$OLD" --init-map side=branch \
    >table.txt 2>&1
check "--init by name trains" test $? -eq 0
cat table.txt
for line in "branch/kernel .*(6, 4) .*loaded" "trunk/bias .*loaded" \
            "b/kernel .*(8, 3) .*shape mismatch (initialized): the file's is (8, 2)" \
            "c/kernel .*new (initialized)" \
            "--init: 6 tensors loaded, 2 new, 2 shape mismatches, 0 unused"; do
    check "the table says: $line" grep -q -- "$line" table.txt
done
expect 0 "" train new.yaml --data data.h5 --out fresh --quiet
# (lr 1e-30 leaves every weight bitwise; a zero bias moves by ~1e-30)
py "loaded tensors are the file's, the others a fresh start's" "
import h5py, numpy as np
o = h5py.File('$OLD')['params']; t = h5py.File('tuned/checkpoints/last.h5')['params']
f = h5py.File('fresh/checkpoints/last.h5')['params']
eq = lambda x, y: x.shape == y.shape and np.allclose(x[()], y[()], rtol=0, atol=1e-25)
for l, n in [('trunk', 'kernel'), ('trunk', 'bias'), ('a', 'kernel'), ('a', 'bias')]:
    assert eq(t[l][n], o[l][n]), (l, n)
assert eq(t['branch']['kernel'], o['side']['kernel'])
for l in ['b', 'c']:
    for n in ['kernel', 'bias']:
        assert eq(t[l][n], f[l][n]), (l, n)
assert not eq(t['trunk']['kernel'], f['trunk']['kernel'])  # loading changed something
"
# without the rename, side is unused and branch new
expect 0 "4 new, 2 shape mismatches, 1 unused in the file" train new.yaml --data data.h5 \
    --out tuned2 --init "$OLD"
check "the unused layer is named" grep -q "side .*in the file, unused" <($MIMO train new.yaml \
    --data data.h5 --out tuned3 --init "$OLD" 2>&1)
# 2 ranks load the same
mpirun -np 2 -x OMP_NUM_THREADS=1 "$MIMO" train new.yaml --data data.h5 --out tuned-2r \
    --init "$OLD" --init-map side=branch --quiet >/dev/null 2>&1
check "2 ranks: --init by name gives the same start" params_close tuned/checkpoints/last.h5 \
    tuned-2r/checkpoints/last.h5 1e-7

# strict, and bad input
expect 1 "the tensor for 'b/kernel' has shape (8, 2), the layer needs (8, 3)" \
    train new.yaml --data data.h5 --out s1 --init "$OLD" --init-strict --init-map side=branch
expect 1 "'params/branch/kernel' for layer 'branch'" \
    train new.yaml --data data.h5 --out s1b --init "$OLD" --init-strict
expect 1 "--init-map 'nope=branch': $OLD has no layer 'nope' under /params" \
    train new.yaml --data data.h5 --out s2 --init "$OLD" --init-map nope=branch
expect 1 "--init-map 'side=nope': this network has no layer 'nope' with parameters" \
    train new.yaml --data data.h5 --out s3 --init "$OLD" --init-map side=nope
expect 2 "--init-map expects OLD=NEW" train new.yaml --data data.h5 --out s4 --init "$OLD" \
    --init-map side
$PY -c "
import h5py, numpy as np
with h5py.File('other.h5', 'w') as f: f['params/zzz/kernel'] = np.ones((2, 2), 'f4')"
expect 1 "other.h5: no tensor under /params matches a layer and tensor of this network" \
    train new.yaml --data data.h5 --out s5 --init other.h5
finish
