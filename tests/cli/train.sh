#!/usr/bin/env bash
# train.sh — mimo train / predict / eval end to end on HDF5 files made with
# h5py: exact resume (epoch boundary and mid-epoch), --init, NaN stop with
# the last checkpoint intact, h5py reading checkpoints and predictions.
source "$(dirname "$0")/lib.bash"
PY=/usr/bin/python3
cd "$TMP"

$PY - <<'PYEOF'
import h5py, numpy as np
x = np.linspace(0, 1, 300, dtype='f4')[:, None]
with h5py.File('train.h5', 'w') as f:
    f['x1'] = x; f['x2'] = (x * x).astype('f8')   # float64: converted on read
    f['sin'] = np.sin(2 * np.pi * x); f['exp'] = np.exp(x)
r = np.sort(np.random.RandomState(1).rand(50)).astype('f4')[:, None]
with h5py.File('val.h5', 'w') as f:
    f['x1'] = r; f['x2'] = r * r; f['sin'] = np.sin(2 * np.pi * r); f['exp'] = np.exp(r)
PYEOF

config net 'inputs: {x1: {shape: 1}, x2: {shape: 1}}
layers:
  l1: {type: dense, units: 16, activation: tanh, from: x1}
  r1: {type: dense, units: 16, activation: relu, from: x2}
  cat: {type: concat, from: [l1, r1]}
  l2: {type: dense, units: 16, activation: tanh, from: cat}
  sin: {type: dense, units: 1, from: l2}
  exp: {type: dense, units: 1, from: cat}
outputs:
  sin: {loss: mse, metrics: [mae]}
  exp: {loss: huber, weight: 0.5}
train:
  optimizer: {type: adam, lr: 0.01}
  batch_size: 32
  epochs: 4
  seed: 3
  lr_schedule: {type: exponential, gamma: 0.8, warmup_epochs: 1}
  reduce_lr_on_plateau: {patience: 1, factor: 0.5}
  checkpoint: {every_steps: 7, keep: 50}
data: {train: train.h5, val: val.h5}'


expect 0 "epoch 8 - loss" train net.yaml --out straight --epochs 8
expect 0 "" train net.yaml --out split --epochs 4 --quiet
expect 0 "resuming from split/checkpoints/last.h5 (epoch 5, step 0)" train net.yaml --out split --epochs 8 --resume split
check "resume at an epoch boundary is bitwise exact" same_params straight/checkpoints/last.h5 split/checkpoints/last.h5
# a resume says which settings differ from the checkpoint's config
expect 0 "" train net.yaml --out chg --epochs 1 --quiet
expect 0 "resuming with 3 settings changed from the checkpoint's config: train.optimizer.lr 0.01 -> 0.02, train.epochs 1 -> 2, outputs.exp.weight 0.5 -> 0.7" \
    train net.yaml --out chg --epochs 2 --lr 0.02 --set outputs.exp.weight=0.7 --resume chg
check "history of the resumed run equals the straight run's" \
    cmp <(cut -d, -f1-9 straight/history.csv) <(cut -d, -f1-9 split/history.csv)

# 300 rows, batch 32: 10 steps an epoch; global step 63 is epoch 7, step 3
mkdir -p mid/checkpoints && cp straight/checkpoints/ckpt-000000000063.h5 mid/checkpoints/
expect 0 "(epoch 7, step 3)" train net.yaml --out mid --epochs 8 --resume mid
check "mid-epoch resume is bitwise exact" same_params straight/checkpoints/last.h5 mid/checkpoints/last.h5
check "mid-epoch resume logs the same epochs" \
    cmp <(cut -d, -f1-9 straight/history.csv | tail -n 2) <(cut -d, -f1-9 mid/history.csv | tail -n 2)
# a mid-epoch position means nothing under another batch size, seed or row
# count: refused, naming what changed; at an epoch boundary only noted
mkdir -p mid2/checkpoints && cp straight/checkpoints/ckpt-000000000063.h5 mid2/checkpoints/
expect 1 "mid2/checkpoints/ckpt-000000000063.h5: stopped in the middle of epoch 7 (step 3) with batch_size 32; this run has 16" \
    train net.yaml --out mid2 --epochs 8 --resume mid2 --batch-size 16
expect 1 "stopped in the middle of epoch 7 (step 3) with seed" train net.yaml --out mid2 --epochs 8 --resume mid2 --seed 99
expect 1 "with shuffle 1; this run has 0" train net.yaml --out mid2 --epochs 8 --resume mid2 --set train.shuffle=false
check "a refused resume leaves the checkpoint alone" cmp straight/checkpoints/ckpt-000000000063.h5 mid2/checkpoints/ckpt-000000000063.h5
mkdir -p edge/checkpoints && cp straight/checkpoints/ckpt-000000000040.h5 edge/checkpoints/
expect 0 "batch_size was 32, now 16 (fine at an epoch boundary)" train net.yaml --out edge --epochs 5 --resume edge --batch-size 16
expect 0 "" train --resume straight --epochs 9 --quiet   # config from the checkpoint
check "resuming without CONFIG appends epoch 9" grep -q '^9,' straight/history.csv

# checkpoints and predictions read back with h5py
expect 0 "" predict straight --data val.h5 --out pred.h5
check "checkpoint and predictions layout (h5py)" $PY - <<'PYEOF'
import h5py, numpy as np
with h5py.File('straight/checkpoints/last.h5') as c:
    assert c.attrs['format'] == b'mimo-checkpoint' and c.attrs['format_version'] == 2
    assert c.attrs['epoch'] == 9 and c.attrs['step'] == 0 and c.attrs['world_size'] == 1
    assert c['params/l1/kernel'].shape == (1, 16) and c['params/l1/bias'].shape == (16,)
    assert c['params/l2/kernel'].shape == (32, 16) and c['params/exp/kernel'].shape == (32, 1)
    assert c['params/l2/kernel'].dtype == np.float32
    assert c['optimizer/m/l2/kernel'].shape == (32, 16) and c['optimizer/v/sin/bias'].shape == (1,)
    assert c['optimizer'].attrs['steps'] == 9 * 10
    assert b'huber' in c['config'][()] and b'epochs: 9' in c['config'][()]
    W = {k: c['params'][k]['kernel'][()] for k in c['params']}
    B = {k: c['params'][k]['bias'][()] for k in c['params']}
with h5py.File('val.h5') as v, h5py.File('pred.h5') as p:
    x1, x2 = v['x1'][()], v['x2'][()]
    assert set(p.keys()) == {'sin', 'exp'} and p['sin'].shape == (50, 1)
    l1 = np.tanh(x1 @ W['l1'] + B['l1']); r1 = np.maximum(x2 @ W['r1'] + B['r1'], 0)
    cat = np.concatenate([l1, r1], 1); l2 = np.tanh(cat @ W['l2'] + B['l2'])
    assert np.allclose(p['sin'][()], l2 @ W['sin'] + B['sin'], atol=1e-5)
    assert np.allclose(p['exp'][()], cat @ W['exp'] + B['exp'], atol=1e-5)
PYEOF
expect 0 "sin_mae" eval straight --data val.h5
expect 0 "samples 50" eval straight/checkpoints/last.h5 --data val.h5

# --init from a file written with h5py
$PY - <<'PYEOF'
import h5py, numpy as np
with h5py.File('straight/checkpoints/last.h5') as c, h5py.File('init.h5', 'w') as o:
    for k in c['params']:
        o[f'params/{k}/kernel'] = c['params'][k]['kernel'][()]
        o[f'params/{k}/bias'] = c['params'][k]['bias'][()]
    del o['params/l2/kernel']; o['params/l2/kernel'] = np.zeros((16, 32), 'f4')
PYEOF
expect 1 "init.h5: 'params/l2/kernel' has shape (16, 32), layer 'l2' needs (32, 16)" train net.yaml --out bad --init init.h5 --init-strict
expect 0 "l2/kernel                        (32, 16)       shape mismatch (initialized): the file's is (16, 32)" train net.yaml --out by-name --init init.h5 --epochs 1
$PY -c "import h5py, numpy as np; f = h5py.File('init.h5', 'a'); del f['params/sin']; del f['params/l2/kernel']; f['params/l2/kernel'] = np.zeros((32, 16), 'f4')"
expect 1 "init.h5: no 'params/sin/kernel' for layer 'sin'" train net.yaml --out bad --init init.h5 --init-strict

# divergence stops with the head and step named; the last checkpoint loads
expect 0 "" train net.yaml --out nan --epochs 1 --quiet
expect 1 "is not finite at epoch" train net.yaml --out nan --resume nan --epochs 3 --set train.optimizer.lr=1e30 --set train.lr_schedule=constant
check "after a NaN the newest checkpoint is still the good one" \
    same_params nan/checkpoints/last.h5 "$(ls nan/checkpoints/ckpt-*.h5 | tail -n 1)"
expect 0 "samples 50" eval nan --data val.h5

expect 2 "missing CONFIG" train
expect 2 "--epochs expects an integer" train net.yaml --epochs x
expect 2 "unknown option '--epoch'" train net.yaml --epoch 3
expect 1 "no valid checkpoint" train net.yaml --out empty --resume "$TMP"
expect 2 "missing --out" predict straight --data val.h5
# validation_split with no validation file: the error names the config and
# the empty part (one function for mimo train and mimo_fit; a split that
# leaves no training rows needs validation_split 1, which the config
# refuses: test_train checks that message)
config nosplit "$(sed '/^data:/d' net.yaml)
data: {train: train.h5}"
expect 1 "nosplit.yaml: validation_split 0.001 of 300 rows leaves no validation rows" \
    train nosplit.yaml --out nosplit --set train.validation_split=0.001
finish
