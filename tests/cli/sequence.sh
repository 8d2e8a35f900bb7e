#!/usr/bin/env bash
# sequence.sh — the sequence kinds from the command line: a graph with a
# masked gru, a masked global pool, conv1d (same, causal, dilated), 1-D
# pooling, lstm forwards and backwards trains the same on 1, 2 and 3 ranks
# (uneven slices; parameters within 1e-5) and resumes mid-epoch bitwise;
# summary shows Keras' shapes, counts and which tensors carry masks; each
# bad input (a mask into a layer that cannot take it, a recurrent layer
# without return_sequences into a layer that needs time, a sequence
# shorter than the kernel, ...) is one clear error with file:line:col.
source "$(dirname "$0")/lib.bash"
PY=/usr/bin/python3
cd "$TMP" || exit 1

$PY - <<'PYEOF'
import h5py, numpy as np
rs = np.random.RandomState(5)
n = 230
tok = rs.randint(1, 40, size=(n, 12)).astype('i4')
lens = rs.randint(1, 13, n)
for r in range(n):  # right-padded, every third row left-padded
    if r % 3:
        tok[r, lens[r]:] = 0
    else:
        tok[r, :12 - lens[r]] = 0
ser = rs.randn(n, 16, 3).astype('f4')
ser[:, :, 0] += np.sin(np.arange(16) / 3.0)
y = (ser[:, -4:, 1].mean(1) + 0.1 * (tok % 5 == 0).sum(1)).astype('f4')[:, None]
cls = ((tok == 7).any(1).astype('i4') + (ser[:, :, 2].mean(1) > 0)).astype('i4')
with h5py.File('data.h5', 'w') as f:
    f['tok'], f['ser'], f['y'], f['cls'] = tok, ser, y, cls
PYEOF

config net 'inputs:
  tok: {shape: 12, dtype: int32}
  ser: {shape: [16, 3]}
layers:
  emb: {type: embedding, input_dim: 40, output_dim: 6, mask_zero: true, from: tok}
  drop: {type: dropout, rate: 0.2, from: emb}
  gru: {type: gru, units: 8, from: drop}
  avg: {type: GlobalAveragePooling1D, from: emb}
  c1: {type: Conv1D, filters: 6, kernel_size: 3, padding: same, activation: relu, from: ser}
  c2: {type: conv1d, filters: 6, kernel_size: 2, padding: causal, dilation_rate: 2, activation: tanh, from: c1}
  p1: {type: MaxPooling1D, pool_size: 2, from: c2}
  lstm: {type: LSTM, units: 7, return_sequences: true, go_backwards: true, from: p1}
  gmax: {type: global_max_pool1d, from: lstm}
  cat: {type: concat, from: [gru, avg, gmax]}
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
py "checkpoint tensors in Keras' layouts" "
import h5py
p = h5py.File('np1/checkpoints/last.h5')['params']
assert p['gru/kernel'].shape == (6, 24) and p['gru/recurrent_kernel'].shape == (8, 24)
assert p['gru/bias'].shape == (2, 24)
assert p['lstm/kernel'].shape == (6, 28) and p['lstm/bias'].shape == (28,)
assert p['c1/kernel'].shape == (3, 3, 6) and p['c2/kernel'].shape == (2, 6, 6)
"
expect 0 "" predict np1 --data data.h5 --out pred.h5
py "predictions are finite" "
import h5py, numpy as np
p = h5py.File('pred.h5')
assert p['y'].shape == (230, 1) and np.all(np.isfinite(p['y'][()]))
"
# ---- summary: Keras' counts (gru 3 (d u + u u + 2 u), lstm 4 (d u + u u + u))
expect 0 "emb (embedding, mask)          (None, 12, 6)           240  tok" summary net.yaml
expect 0 "drop (dropout(0.2), mask)" summary net.yaml
expect 0 "gru (gru(8))                   (None, 8)               384  drop" summary net.yaml
expect 0 "lstm (lstm(7, seq, backwards)) (None, 8, 7)" summary net.yaml
expect 0 "c2 (conv1d(tanh))" summary net.yaml
expect 0 '"emb" [shape=box, label="emb\nembedding, mask\n(None, 12, 6)"];' dot net.yaml
expect 0 "gru (1)" bench net.yaml --steps 2 --warmup 1 --segments 1 --layers

# ---- bad input: one error naming file:line:col
bad() { # bad NAME FROM TO: net.yaml with FROM replaced by TO
    sed "s/$2/$3/" net.yaml >"$1.yaml"
}
bad flat 'avg: {type: GlobalAveragePooling1D, from: emb}' 'avg: {type: flatten, from: emb}'
expect 1 "flat.yaml:8:3: flatten layer 'avg' cannot honour the mask that its input 'emb' carries (made by 'emb' with mask_zero: true)" summary flat.yaml
bad stride 'gru: {type: gru, units: 8, from: drop}' 'gru: {type: conv1d, filters: 2, kernel_size: 3, strides: 2, from: drop}'
expect 1 "stride.yaml:7:3: conv1d layer 'gru' cannot honour the mask that its input 'drop' carries" summary stride.yaml
bad mhead 'cls: {type: dense, units: 3, activation: softmax, from: cat}' 'cls: {type: dense, units: 3, activation: softmax, from: emb}'
expect 1 "mhead.yaml:19:3: head 'cls': layer 'cls' carries the mask made by 'emb' (mask_zero: true)" summary mhead.yaml
bad noseq 'avg: {type: GlobalAveragePooling1D, from: emb}' 'avg: {type: LSTM, units: 7, from: gru}'
expect 1 "noseq.yaml:8:3: lstm layer 'avg' needs a sequence input (timesteps, features), but 'gru' has shape (None, 8); give the input a shape like [24, 3], or return_sequences: true on a recurrent layer" summary noseq.yaml
bad noseq2 'avg: {type: GlobalAveragePooling1D, from: emb}' 'avg: {type: conv1d, filters: 2, kernel_size: 2, from: gru}'
expect 1 "noseq2.yaml:8:3: conv1d layer 'avg' needs a sequence input (timesteps, features), but 'gru' has shape (None, 8)" summary noseq2.yaml
bad short 'kernel_size: 2, padding: causal' 'kernel_size: 9, padding: valid'
expect 1 "short.yaml:10:3: conv1d layer 'c2': its input 'c1' has 16 timesteps (shape (None, 16, 6)), shorter than the kernel_size of 17 (dilated) with padding: valid" summary short.yaml
bad pshort 'pool_size: 2, from: c2' 'pool_size: 20, from: c2'
expect 1 "pshort.yaml:11:3: max_pool1d layer 'p1': its input 'c2' has 16 timesteps (shape (None, 16, 6)), shorter than the pool_size of 20 with padding: valid" summary pshort.yaml
bad k2 'kernel_size: 3, padding: same' 'kernel_size: [3, 3], padding: same'
expect 1 "k2.yaml:9:3: layer 'c1': kernel_size takes one integer (the window along time), got 2 values" summary k2.yaml
bad sd 'padding: causal, dilation_rate: 2' 'padding: causal, dilation_rate: 2, strides: 2'
expect 1 "sd.yaml:10:3: layer 'c2': strides 2 and dilation_rate 2: one of them must be 1 (as Keras)" summary sd.yaml
bad pad 'padding: same, activation: relu' 'padding: full, activation: relu'
expect 1 "unknown value 'full' for 'padding' in layer 'c1' (expected one of: valid, same, causal)" summary pad.yaml
bad ra 'gru: {type: gru, units: 8, from: drop}' 'gru: {type: gru, units: 8, reset_after: false, from: drop}'
expect 1 "ra.yaml:7:3: layer 'gru': reset_after: false (the GRU of Keras 1 and CuDNN-less TF1) is not supported" summary ra.yaml
bad sm 'gru: {type: gru, units: 8, from: drop}' 'gru: {type: gru, units: 8, activation: softmax, from: drop}'
expect 1 "softmax is no activation of a recurrent cell" summary sm.yaml
bad u0 'gru: {type: gru, units: 8, from: drop}' 'gru: {type: gru, units: 0, from: drop}'
expect 1 "expected an integer > 0 for 'units' in layer 'gru', got '0'" summary u0.yaml
bad mz2 'tok: {shape: 12, dtype: int32}' 'tok: {shape: [3, 4], dtype: int32}'
expect 1 "embedding layer 'emb': mask_zero: true needs ids of shape (timesteps), but 'tok' has shape (None, 3, 4)" summary mz2.yaml
bad img 'avg: {type: GlobalAveragePooling1D, from: emb}' 'avg: {type: conv2d, filters: 6, kernel_size: 3, from: drop}'
expect 1 "img.yaml:8:3: conv2d layer 'avg' needs an image input" summary img.yaml
finish
