#!/usr/bin/env bash
# graddiag.sh — train.grad_diagnostics from the command line: the history
# gains <head>_grad_norm and cos_<a>_<b> and nothing else changes (the
# weights bitwise, the other columns too); 2 ranks log what 1 rank logs
# (1e-5); the shared tensor is found through views (a reshape and a
# flatten of it give the values of the tensor itself); a mid-epoch resume
# keeps the epoch's sums (bitwise history); a network whose heads share
# no trained layer is one clear error. The values themselves are checked
# against PyTorch in tests/torch/graddiag.py.
source "$(dirname "$0")/lib.bash"
PY=/usr/bin/python3
cd "$TMP"

$PY - <<'PYEOF'
import h5py, numpy as np
rs = np.random.RandomState(3)
n = 300
num = rs.randn(n, 8).astype('f4')
click = (num[:, 0] > 0.3).astype('f4')[:, None]
purchase = np.full((n, 1), np.nan, 'f4')
purchase[:60, 0] = (num[:60, 1] - num[:60, 2] > 0).astype('f4')
dwell = np.stack([np.tanh(num[:, 4]), num[:, 5] * 0.5], 1).astype('f4')
with h5py.File('data.h5', 'w') as f:
    f['num'], f['click'], f['purchase'], f['dwell'] = num, click, purchase, dwell
with h5py.File('apart.h5', 'w') as f:
    f['a'], f['b'] = num[:, :4], num[:, 4:7]
    f['y1'], f['y2'] = num[:, :1], num[:, 1:2]
PYEOF

net() { # net NAME FROM [EXTRA LAYER LINES]: the heads read FROM
    config "$1" "inputs:
  num: {shape: 8}
layers:
  h0:       {type: dense, units: 16, activation: relu, from: num}
  h:        {type: dense, units: 16, activation: tanh, from: h0}${3:+
$3}
  click:    {type: dense, units: 1, activation: sigmoid, from: $2}
  purchase: {type: dense, units: 1, activation: sigmoid, from: $2}
  dwell:    {type: dense, units: 2, from: h}
outputs:
  click:    {loss: binary_crossentropy, metrics: [accuracy]}
  purchase: {loss: binary_crossentropy, missing: nan}
  dwell:    {loss: mse}
train:
  optimizer: {type: adam, lr: 0.01}
  batch_size: 25
  epochs: 3
  seed: 5
  checkpoint: {every_epochs: 1, keep: 10, save_best: false}
data: {train: data.h5}"
}
net off h
net on h
sed -i 's/  seed: 5/  seed: 5\n  grad_diagnostics: true/' on.yaml

expect 0 "" train off.yaml --out off --quiet
expect 0 "" train on.yaml --out on --quiet
check "diagnostics on: the weights bitwise those without" same_params off/checkpoints/last.h5 on/checkpoints/last.h5
py "history: the diagnostics' columns, finite; the others unchanged" "
import csv, math
off, on = (list(csv.DictReader(open(p + '/history.csv'))) for p in ('off', 'on'))
new = ['click_grad_norm', 'purchase_grad_norm', 'dwell_grad_norm', 'cos_click_purchase', 'cos_click_dwell', 'cos_purchase_dwell']
assert [c for c in on[0] if c not in off[0]] == new, list(on[0])
assert not any('grad' in c or c.startswith('cos_') for c in off[0])
for a, b in zip(off, on):
    for k in a:
        if k not in ('seconds', 'samples_per_s'):
            assert a[k] == b[k], (k, a[k], b[k])
    for k in new:
        v = float(b[k])
        assert math.isfinite(v) and (v > 0 if 'norm' in k else -1 <= v <= 1), (k, v)
print('  last epoch:', {k: round(float(on[-1][k]), 4) for k in new})
"
expect 0 "wrote on.png" plot on/history.csv -o on.png
mpi_expect 2 0 "" train on.yaml --out on2 --quiet
py "2 ranks: the same norms and cosines (1e-5)" "
import csv
a, b = (list(csv.DictReader(open(p + '/history.csv'))) for p in ('on', 'on2'))
for x, y in zip(a, b):
    for k in x:
        if 'grad_norm' in k or k.startswith('cos_'):
            assert abs(float(x[k]) - float(y[k])) <= 1e-5 * max(1, abs(float(x[k]))), (k, x[k], y[k])
"

# ---- views of the shared tensor are the tensor: the same values
net views f "  r:        {type: reshape, target_shape: [4, 4], from: h}
  f:        {type: flatten, from: r}"
sed -i 's/  seed: 5/  seed: 5\n  grad_diagnostics: true/' views.yaml
expect 0 "" train views.yaml --out views --quiet --epochs 1
py "through a reshape and a flatten: the values of the tensor itself" "
import csv
a, b = (list(csv.DictReader(open(p + '/history.csv'))) for p in ('on', 'views'))
for k in a[0]:
    if 'grad_norm' in k or k.startswith('cos_'):
        assert abs(float(a[0][k]) - float(b[0][k])) <= 1e-6 * max(1, abs(float(a[0][k]))), (k, a[0][k], b[0][k])
"

# ---- a mid-epoch checkpoint keeps the epoch's sums
expect 0 "" train on.yaml --out part --quiet --epochs 2 --set train.checkpoint.every_steps=5
rm part/checkpoints/last.h5 part/checkpoints/ckpt-000000000024.h5
expect 0 "resuming from part/checkpoints/ckpt-000000000020.h5 (epoch 2, step 8)" train on.yaml --out part --resume part
check "resumed mid-epoch: bitwise the uninterrupted run" same_params on/checkpoints/last.h5 part/checkpoints/last.h5
check "resumed mid-epoch: the same history, diagnostics included (not the times)" cmp <(cut -d, -f1-14 on/history.csv) <(cut -d, -f1-14 part/history.csv)

# ---- with task_balancing: pcgrad (the heads kept apart in one stacked backward)
# and mgda_ub (the Gram from a first pass, the second adding nothing):
# one step over all rows from the same weights logs what summing logs
expect 0 "" train on.yaml --out one_sum --quiet --epochs 1 --batch-size 300
expect 0 "" train on.yaml --out one_pc --quiet --epochs 1 --batch-size 300 --set train.task_balancing=pcgrad
expect 0 "" train on.yaml --out one_mg --quiet --epochs 1 --batch-size 300 --set train.task_balancing=mgda_ub
py "pcgrad's per-head backwards, mgda_ub's two passes: the same diagnostics (1e-6)" "
import csv
a, b, c = (list(csv.DictReader(open(p + '/history.csv'))) for p in ('one_sum', 'one_pc', 'one_mg'))
assert all(abs(float(a[0][k]) - float(c[0][k])) <= 1e-6 * max(1, abs(float(a[0][k]))) for k in a[0] if 'grad_norm' in k or k.startswith('cos_')), c
ks = [k for k in a[0] if 'grad_norm' in k or k.startswith('cos_')]
assert len(ks) == 6, ks
for k in ks:
    assert abs(float(a[0][k]) - float(b[0][k])) <= 1e-6 * max(1, abs(float(a[0][k]))), (k, a[0][k], b[0][k])
"

# ---- bad input
config apart "inputs: {a: {shape: 4}, b: {shape: 3}}
layers:
  both: {type: concat, from: [a, b]}
  y1: {type: dense, units: 1, from: both}
  y2: {type: dense, units: 1, from: both}
outputs: {y1: {loss: mse}, y2: {loss: mse}}
train: {grad_diagnostics: true}
data: {train: apart.h5}"
expect 1 "apart.yaml: grad_diagnostics: no tensor where two heads' paths part below trained layers" train apart.yaml --out apart
mpi_expect 2 1 "apart.yaml: grad_diagnostics: no tensor where two heads' paths part below trained layers" train apart.yaml --out apart2
expect 1 "expected true or false for 'grad_diagnostics' in train, got 'sometimes'" summary on.yaml --set train.grad_diagnostics=sometimes
finish
