#!/usr/bin/env bash
# bidirectional.sh — bidirectional (gru and lstm wrapped, merge modes,
# masks), zero_output_for_mask and position_embedding from the command
# line: the graph trains
# the same on 1, 2 and 3 ranks (uneven slices; parameters within 1e-5)
# and resumes mid-epoch bitwise; checkpoints hold forward_* and
# backward_* in the wrapped kind's layouts; summary describes the layer;
# each bad `layer:` or position_embedding is one clear error with
# file:line:col.
source "$(dirname "$0")/lib.bash"
PY=/usr/bin/python3
cd "$TMP" || exit 1

$PY - <<'PYEOF'
import h5py, numpy as np
rs = np.random.RandomState(6)
n = 230
tok = rs.randint(1, 30, size=(n, 9)).astype('i4')
lens = rs.randint(1, 10, n)
for r in range(n):  # right-padded, every third row left-padded
    if r % 3:
        tok[r, lens[r]:] = 0
    else:
        tok[r, :9 - lens[r]] = 0
ser = rs.randn(n, 7, 2).astype('f4')
y = (ser[:, :, 0].mean(1) + 0.1 * (tok % 4 == 0).sum(1)).astype('f4')[:, None]
cls = ((tok == 3).any(1).astype('i4') + (ser[:, 0, 1] > 0)).astype('i4')
with h5py.File('data.h5', 'w') as f:
    f['tok'], f['ser'], f['y'], f['cls'] = tok, ser, y, cls
PYEOF

config net 'inputs:
  tok: {shape: 9, dtype: int32}
  ser: {shape: [7, 2]}
layers:
  emb: {type: embedding, input_dim: 30, output_dim: 5, mask_zero: true, from: tok}
  bi: {type: Bidirectional, layer: {type: GRU, units: 4, return_sequences: true}, from: emb}
  k: {type: conv1d, filters: 3, kernel_size: 3, padding: same, activation: tanh, from: bi}
  pk: {type: global_avg_pool1d, from: k}
  bl: {type: bidirectional, layer: {type: lstm, units: 3}, merge_mode: mul, from: emb}
  zl: {type: lstm, units: 3, go_backwards: true, zero_output_for_mask: true, from: emb}
  pos: {type: position_embedding, sequence_length: 8, from: ser}
  sp: {type: add, from: [ser, pos]}
  bs: {type: bidirectional, layer: {type: lstm, units: 3, return_sequences: true}, merge_mode: ave, from: sp}
  ps: {type: global_max_pool1d, from: bs}
  cat: {type: concat, from: [pk, bl, zl, ps]}
  y: {type: dense, units: 1, from: cat}
  cls: {type: dense, units: 3, activation: softmax, from: cat}
outputs:
  y: {loss: mse}
  cls: {loss: sparse_categorical_crossentropy, metrics: [accuracy]}
train:
  optimizer: {type: adam, lr: 0.005}
  batch_size: 32
  epochs: 3
  seed: 4
  checkpoint: {every_epochs: 1, keep: 10, save_best: false}
data: {train: data.h5}'

# ---- rank invariance: 8 steps an epoch, the last of 6 rows; 3 ranks 11/11/10
ranks_agree net.yaml 2 3
# ---- resume from the middle of an epoch: bitwise
resumes_exactly net.yaml "resuming from part/checkpoints/ckpt-000000000020.h5 (epoch 3, step 4)" \
    last.h5 ckpt-000000000024.h5
py "checkpoint tensors: forward_* and backward_*, the wrapped kind's layouts" "
import h5py
p = h5py.File('np1/checkpoints/last.h5')['params']
assert sorted(p['bi']) == ['backward_bias', 'backward_kernel', 'backward_recurrent_kernel',
                           'forward_bias', 'forward_kernel', 'forward_recurrent_kernel'], list(p['bi'])
for d in ('forward', 'backward'):
    assert p['bi'][d + '_kernel'].shape == (5, 12) and p['bi'][d + '_recurrent_kernel'].shape == (4, 12)
    assert p['bi'][d + '_bias'].shape == (2, 12) and p['bl'][d + '_bias'].shape == (12,)
    assert (p['bl'][d + '_bias'][()] != 0).all()  # moved from unit_forget_bias
"
# ---- summary: Keras' counts (2 x gru 3 (d u + u u + 2 u), 2 x lstm 4 (d u + u u + u))
expect 0 "bi (bidirectional(gru(4, seq), concat), mask) (None, 9, 8)            264  emb" summary net.yaml
expect 0 "bl (bidirectional(lstm(3), mul))" summary net.yaml
expect 0 "bs (bidirectional(lstm(3, seq), ave))         (None, 7, 3)            144  sp" summary net.yaml
expect 0 "pos (position_embedding(8))" summary net.yaml

# ---- bad input: one error naming file:line:col
bad() { # bad NAME FROM TO: net.yaml with FROM replaced by TO
    sed "s/$2/$3/" net.yaml >"$1.yaml"
}
bad dense '{type: lstm, units: 3}, merge_mode: mul' '{type: dense, units: 3}, merge_mode: mul'
expect 1 "dense.yaml:9:43: 'layer' in layer 'bl': type 'dense' cannot be wrapped here (expected one of: gru, lstm)" summary dense.yaml
bad notype '{type: lstm, units: 3}, merge_mode: mul' '{units: 3}, merge_mode: mul'
expect 1 "notype.yaml:9:36: 'layer' in layer 'bl' has no 'type' (expected one of: gru, lstm)" summary notype.yaml
bad nounits '{type: lstm, units: 3}, merge_mode: mul' '{type: lstm}, merge_mode: mul'
expect 1 "nounits.yaml:9:36: 'layer' in layer 'bl' has no 'units' (expected an integer > 0)" summary nounits.yaml
bad from '{type: lstm, units: 3}, merge_mode: mul' '{type: lstm, units: 3, from: emb}, merge_mode: mul'
expect 1 "from.yaml:9:59: unknown key 'from' in 'layer' in layer 'bl' (expected one of: type, units," summary from.yaml
bad nolayer 'bl: {type: bidirectional, layer: {type: lstm, units: 3}, merge_mode: mul' 'bl: {type: bidirectional, merge_mode: mul'
expect 1 "nolayer.yaml:9:3: layer 'bl' has no 'layer' (expected a layer {type: gru or lstm, units: ...})" summary nolayer.yaml
bad merge 'merge_mode: mul' 'merge_mode: max'
expect 1 "unknown value 'max' for 'merge_mode' in layer 'bl' (expected one of: concat, sum, ave, mul; did you mean 'mul'?)" summary merge.yaml
bad flat 'mul, from: emb}' 'mul, from: zl}'
expect 1 "flat.yaml:9:3: bidirectional layer 'bl' needs a sequence input (timesteps, features), but 'zl' has shape (None, 3)" summary flat.yaml
bad u0 'units: 4, return' 'units: 0, return'
expect 1 "expected an integer > 0 for 'units' in 'layer' in layer 'bi', got '0'" summary u0.yaml
bad short 'sequence_length: 8' 'sequence_length: 5'
expect 1 "short.yaml:11:3: position_embedding layer 'pos': its input 'ser' has 7 timesteps (shape (None, 7, 2)), more than its sequence_length of 5" summary short.yaml
bad prank 'sequence_length: 8, from: ser' 'sequence_length: 8, from: zl'
expect 1 "prank.yaml:11:3: position_embedding layer 'pos' needs a sequence input (timesteps, features), but 'zl' has shape (None, 3)" summary prank.yaml
bad pl0 'sequence_length: 8' 'sequence_length: 0'
expect 1 "expected an integer > 0 for 'sequence_length' in layer 'pos', got '0'" summary pl0.yaml
finish
