#!/usr/bin/env bash
# attention.sh — multi_head_attention from the command line: a graph with
# causal masked self-attention with dropout on the weights (query = value
# = key: one parent thrice) and cross attention with a separate key
# trains the same on 1, 2 and 3 ranks (uneven slices; parameters within
# 1e-5: dropout's draws follow the sample's global row, not the rank;
# plain SGD, not Adam nor a strong momentum: attention's key path gets
# gradients that are differences of nearly equal sums (each query's
# weights sum to 1), and Adam scales their float rounding, which differs
# with the rank count's order of sums, up to steps of lr; momentum 0.9 at
# lr 0.1 grew it past 1e-5 in the Debug+ASan build);
# summary shows Keras' counts and that the output keeps the query's mask;
# checkpoints hold Keras' layouts; each bad input (key_dim or num_heads
# <= 0, a key whose length is not the value's, a query without a time
# axis, one input) is one clear error with file:line:col.
source "$(dirname "$0")/lib.bash"
PY=/usr/bin/python3
cd "$TMP" || exit 1

$PY - <<'PYEOF'
import h5py, numpy as np
rs = np.random.RandomState(7)
n = 230
tok = rs.randint(1, 30, size=(n, 10)).astype('i4')
lens = rs.randint(1, 11, n)
for r in range(n):  # right-padded, every third row left-padded
    if r % 3:
        tok[r, lens[r]:] = 0
    else:
        tok[r, :10 - lens[r]] = 0
ser = rs.randn(n, 8, 3).astype('f4')
y = (ser[:, :, 1].mean(1) + 0.1 * (tok % 5 == 0).sum(1)).astype('f4')[:, None]
cls = ((tok == 7).any(1).astype('i4') + (ser[:, :, 2].mean(1) > 0)).astype('i4')
with h5py.File('data.h5', 'w') as f:
    f['tok'], f['ser'], f['y'], f['cls'] = tok, ser, y, cls
PYEOF

config net 'inputs:
  tok: {shape: 10, dtype: int32}
  ser: {shape: [8, 3]}
layers:
  emb: {type: embedding, input_dim: 30, output_dim: 8, mask_zero: true, from: tok}
  sa: {type: MultiHeadAttention, num_heads: 2, key_dim: 4, use_causal_mask: true, dropout: 0.2, from: [emb, emb]}
  gru: {type: gru, units: 6, from: sa}
  kx: {type: dense, units: 5, activation: tanh, use_bias: false, from: emb}
  ca: {type: multi_head_attention, num_heads: 3, key_dim: 2, value_dim: 3, output_shape: 6, from: [ser, emb, kx]}
  gm: {type: global_max_pool1d, from: ca}
  cat: {type: concat, from: [gru, gm]}
  y: {type: dense, units: 1, from: cat}
  cls: {type: dense, units: 3, activation: softmax, from: cat}
outputs:
  y: {loss: mse}
  cls: {loss: sparse_categorical_crossentropy, metrics: [accuracy]}
train:
  optimizer: {type: sgd, lr: 0.1}
  batch_size: 32
  epochs: 3
  seed: 4
  checkpoint: {every_epochs: 1, keep: 10, save_best: false}
data: {train: data.h5}'

# ---- rank invariance: 8 steps an epoch, the last of 6 rows; 3 ranks 11/11/10
ranks_agree net.yaml 2 3
expect 0 "" train net.yaml --out nodrop --quiet --set layers.sa.dropout=0
py "dropout on the attention weights changes the training" "
import h5py, numpy as np
a, b = h5py.File('np1/checkpoints/last.h5'), h5py.File('nodrop/checkpoints/last.h5')
assert np.abs(a['params/sa/value_kernel'][()] - b['params/sa/value_kernel'][()]).max() > 1e-5
"
py "checkpoint tensors in Keras' layouts" "
import h5py
p = h5py.File('np1/checkpoints/last.h5')['params']
assert p['sa/query_kernel'].shape == (8, 2, 4) and p['sa/query_bias'].shape == (2, 4)
assert p['sa/output_kernel'].shape == (2, 4, 8) and p['sa/output_bias'].shape == (8,)
assert p['ca/key_kernel'].shape == (5, 3, 2) and p['ca/value_kernel'].shape == (8, 3, 3)
assert p['ca/output_kernel'].shape == (3, 3, 6) and p['ca/output_bias'].shape == (6,)
"
expect 0 "" predict np1 --data data.h5 --out pred.h5
py "predictions are finite" "
import h5py, numpy as np
p = h5py.File('pred.h5')
assert p['y'].shape == (230, 1) and np.all(np.isfinite(p['y'][()]))
"
# ---- summary: Keras' counts (4 (d H Dk + H Dk) less the output's, ...)
expect 0 "sa (multi_head_attention(2x4, causal), mask) (None, 10, 8)" summary net.yaml
expect 0 "ca (multi_head_attention(3x2))" summary net.yaml
py "summary: Keras' parameter counts" "
import subprocess
out = subprocess.run(['$MIMO', 'summary', 'net.yaml'], capture_output=True, text=True).stdout
rows = {l.split()[0]: l for l in out.splitlines() if l[:3] in ('sa ', 'ca ')}
# sa: 3 (8*2*4 + 2*4) + 2*4*8 + 8 = 288; ca: (3*3*2 + 6) + (5*3*2 + 6) + (8*3*3 + 9) + (3*3*6 + 6)
assert ' 288 ' in rows['sa'], rows['sa']
assert ' 201 ' in rows['ca'], rows['ca']
"

# ---- bad input: one error naming file:line:col
bad() { # bad NAME FROM TO: net.yaml with FROM replaced by TO
    sed "s/$2/$3/" net.yaml >"$1.yaml"
}
bad kd0 'key_dim: 4, use_causal' 'key_dim: 0, use_causal'
expect 1 "kd0.yaml:6:57: expected an integer > 0 for 'key_dim' in layer 'sa', got '0'" summary kd0.yaml
bad nh0 'num_heads: 3' 'num_heads: -1'
expect 1 "nh0.yaml:9:47: expected an integer > 0 for 'num_heads' in layer 'ca', got '-1'" summary nh0.yaml
bad len 'from: \[ser, emb, kx\]' 'from: [kx, ser, emb]'
expect 1 "len.yaml:9:3: multi_head_attention layer 'ca': its key 'emb' has 10 timesteps but its value 'ser' has 8: each key goes with a value" summary len.yaml
bad noseq 'ser: {shape: \[8, 3\]}' 'ser: {shape: 24}'
expect 1 "noseq.yaml:9:3: multi_head_attention layer 'ca': its query 'ser' has shape (None, 24), not a sequence (timesteps, features)" summary noseq.yaml
bad one 'from: \[emb, emb\]' 'from: emb'
expect 1 "one.yaml:6:3: multi_head_attention layer 'sa' needs at least 2 inputs, got 1 ([query, value] or [query, value, key])" summary one.yaml
bad vd 'value_dim: 3' 'value_dim: 0'
expect 1 "expected an integer > 0 for 'value_dim' in layer 'ca', got '0'" summary vd.yaml
bad dr 'dropout: 0.2' 'dropout: 1'
expect 1 "for 'dropout' in layer 'sa'" summary dr.yaml
finish
