#!/usr/bin/env bash
# mixture.sh — the blocks of a mixture of experts from the command line:
# configs/mmoe.yaml (stack, softmax, weighted_sum), configs/ple.yaml (two
# extraction levels, a shared gate mixed by dot) and a net of dot in each
# geometry (attention's scores, the mix by them, (T, d)·(d), cosines of
# sequences and of two embeddings) train the same on 1, 2 and 3 ranks
# (within 1e-5), and each bad input (a stack of unequal shapes, a gate of
# another size than the experts, a softmax over the batch or past the
# last axis, weighted_sum with three inputs; dot's contracted axes of
# different sizes, three axes, the batch axis, an axis past the input's,
# three inputs) is one clear error with the file, line and column.
source "$(dirname "$0")/lib.bash"
cd "$TMP"
mkdir data
expect 0 "wrote data/tabular.h5" gen tabular --out data/tabular.h5 --n 3000
sed -e 's|../data/tabular.h5|data/tabular.h5|' -e 's/epochs: 10/epochs: 2/' \
    -e 's/every_epochs: 0, save_best: false/every_epochs: 1, keep: 2, save_best: false/' \
    "$SRC/configs/mmoe.yaml" >mmoe.yaml

expect 0 "" train mmoe.yaml --out np1 --quiet
for np in 2 3; do
    mpi_expect "$np" 0 "" train mmoe.yaml --out np$np --quiet --check-every 1
    check "$np ranks: parameters as 1 rank (1e-5)" params_close np1/checkpoints/last.h5 np$np/checkpoints/last.h5 1e-5
done

sed 's/expert3:     {type: dense, units: 16/expert3:     {type: dense, units: 12/' mmoe.yaml >bad_stack.yaml
expect 1 "stack layer 'experts': input 'expert3' has 12 features but 'expert1' has 16 features; all inputs must have the same width" summary bad_stack.yaml
sed 's/logit_dwell: {type: dense, units: 3/logit_dwell: {type: dense, units: 4/' mmoe.yaml >bad_gate.yaml
expect 1 "weighted_sum layer 'mix_dwell': gate 'gate_dwell' has 4 values but experts 'experts' stack 3: one gate value per expert" summary bad_gate.yaml
sed 's/gate_click:  {type: softmax, from/gate_click:  {type: softmax, axis: 0, from/' mmoe.yaml >bad_axis0.yaml
expect 1 "softmax layer 'gate_click': axis 0 is not an axis of a sample of 1 axes (1..1, or -1..-1; 0 is the batch)" summary bad_axis0.yaml
sed 's/gate_click:  {type: softmax, from/gate_click:  {type: softmax, axis: 2, from/' mmoe.yaml >bad_axis2.yaml
expect 1 "softmax layer 'gate_click': axis 2 is not an axis of a sample" summary bad_axis2.yaml
sed 's/mix_click:   {type: weighted_sum, from: \[experts, gate_click\]}/mix_click:   {type: weighted_sum, from: [experts, gate_click, gate_dwell]}/' mmoe.yaml >bad_ws.yaml
expect 1 "weighted_sum layer 'mix_click' takes [experts, gate], got 3 inputs" summary bad_ws.yaml
sed 's/mix_click:   {type: weighted_sum, from: \[experts, gate_click\]}/mix_click:   {type: weighted_sum, from: [expert1, gate_click]}/' mmoe.yaml >bad_ws2.yaml
expect 1 "weighted_sum layer 'mix_click': experts 'expert1' must have shape (k, ...)" summary bad_ws2.yaml

# PLE and a net of dot layers on 1-3 ranks
sed -e 's|../data/tabular.h5|data/tabular.h5|' -e 's/epochs: 10/epochs: 2/' \
    "$SRC/configs/ple.yaml" >ple.yaml
cat >dots.yaml <<'EOF'
inputs:
  num:  {shape: 8}
  user: {shape: 1, dtype: int32}
  item: {shape: 1, dtype: int32}
layers:
  ue:    {type: embedding, input_dim: 200, output_dim: 4, from: user}
  ie:    {type: embedding, input_dim: 100, output_dim: 4, from: item}
  u:     {type: flatten, from: ue}
  i:     {type: flatten, from: ie}
  seq:   {type: reshape, target_shape: [2, 4], from: num}
  k:     {type: dense, units: 4, activation: tanh, from: seq}
  s:     {type: dot, axes: 2, from: [seq, k]}
  p:     {type: softmax, from: s}
  c:     {type: Dot, axes: [2, 1], from: [p, k]}
  a:     {type: dot, axes: [2, 1], from: [c, u]}
  cm:    {type: dot, axes: -1, normalize: true, from: [k, seq]}
  cs:    {type: dot, axes: 1, normalize: true, from: [u, i]}
  fm:    {type: flatten, from: cm}
  z:     {type: concat, from: [a, cs, fm]}
  h:     {type: dense, units: 8, activation: relu, from: z}
  click: {type: dense, units: 1, activation: sigmoid, from: h}
  dwell: {type: dense, units: 1, from: h}
outputs:
  click: {loss: binary_crossentropy}
  dwell: {loss: mse, weight: 0.5}
train: {optimizer: {type: adam, lr: 0.01}, batch_size: 128, epochs: 2, seed: 4}
data: {train: data/tabular.h5}
EOF
for net in ple dots; do
    expect 0 "" train $net.yaml --out $net-np1 --quiet
    for np in 2 3; do
        mpi_expect "$np" 0 "" train $net.yaml --out $net-np$np --quiet --check-every 1
        check "$net, $np ranks: parameters as 1 rank (1e-5)" params_close $net-np1/checkpoints/last.h5 $net-np$np/checkpoints/last.h5 1e-5
    done
done

sed 's/s:     {type: dot, axes: 2, from/s:     {type: dot, axes: [2, 1], from/' dots.yaml >bad_dot1.yaml
expect 1 "bad_dot1.yaml:12:3: dot layer 's': the contracted axes differ: 'seq' (2, 4) has 4 values on axis 2 but 'k' (2, 4) has 2 on axis 1" summary bad_dot1.yaml
sed 's/s:     {type: dot, axes: 2, from/s:     {type: dot, axes: [2, 2, 1], from/' dots.yaml >bad_dot2.yaml
expect 1 "bad_dot2.yaml:12:3: layer 's': axes: one axis or a pair [axis of x, axis of y], got 3 values" summary bad_dot2.yaml
sed 's/s:     {type: dot, axes: 2, from/s:     {type: dot, axes: 0, from/' dots.yaml >bad_dot3.yaml
expect 1 "bad_dot3.yaml:12:3: layer 's': axes: axis 0 is the batch" summary bad_dot3.yaml
sed 's/s:     {type: dot, axes: 2, from/s:     {type: dot, axes: -3, from/' dots.yaml >bad_dot4.yaml
expect 1 "bad_dot4.yaml:12:3: dot layer 's': axis -3 is not an axis of 'seq', a sample of 2 axes (1..2, or -2..-1; 0 is the batch)" summary bad_dot4.yaml
sed 's/s:     {type: dot, axes: 2, from: \[seq, k\]}/s:     {type: dot, axes: 2, from: [seq, k, k]}/' dots.yaml >bad_dot5.yaml
expect 1 "bad_dot5.yaml:12:3: dot layer 's' takes two inputs [x, y], got 3" summary bad_dot5.yaml

# log_mean: a gate's mean weight per expert over each epoch's training
# rows in history.csv. With the gate's logits frozen (trainable: false)
# the mean is that of softmax(num W + b) over the 2400 training rows,
# computed here from the checkpoint; the same on 1-3 ranks and after a
# resume from the middle of an epoch; too wide a softmax is an error.
cat >gates.yaml <<'EOF'
inputs:
  num:  {shape: 8}
layers:
  e1:    {type: dense, units: 8, activation: relu, from: num}
  e2:    {type: dense, units: 8, activation: tanh, from: num}
  ex:    {type: stack, from: [e1, e2]}
  lg:    {type: dense, units: 2, trainable: false, kernel_initializer: {type: uniform, min: -1, max: 1}, bias_initializer: {type: uniform, min: -2, max: 2}, from: num}
  gate:  {type: softmax, log_mean: true, from: lg}
  m:     {type: weighted_sum, from: [ex, gate]}
  click: {type: dense, units: 1, activation: sigmoid, from: m}
  dwell: {type: dense, units: 1, from: m}
outputs:
  click: {loss: binary_crossentropy}
  dwell: {loss: mse}
train: {optimizer: {type: adam, lr: 0.01}, batch_size: 200, epochs: 2, seed: 4, validation_split: 0.2}
data: {train: data/tabular.h5}
EOF
expect 0 "gate (softmax(axis -1, log_mean))" summary gates.yaml
expect 0 "" train gates.yaml --out gates-np1 --quiet
for np in 2 3; do
    mpi_expect "$np" 0 "" train gates.yaml --out gates-np$np --quiet
done
py "log_mean: the frozen gate's mean over the training rows, on 1-3 ranks" "
import csv, h5py, numpy as np
with h5py.File('gates-np1/checkpoints/last.h5') as f:
    W, b = f['params/lg/kernel'][()].astype('f8'), f['params/lg/bias'][()].astype('f8')
with h5py.File('data/tabular.h5') as f:
    x = f['num'][:2400].astype('f8')
z = x @ W + b
g = np.exp(z - z.max(1, keepdims=True)); g /= g.sum(1, keepdims=True)
want = g.mean(0)
assert 0.05 < want[0] < 0.95 and abs(want[0] - 0.5) > 0.05, want  # mixes, unevenly
for np_ in (1, 2, 3):
    rows = list(csv.DictReader(open(f'gates-np{np_}/history.csv')))
    assert len(rows) == 2
    for r in rows:
        got = np.array([float(r['gate_mean_0']), float(r['gate_mean_1'])])
        assert np.abs(got - want).max() < 1e-6, (np_, r['epoch'], got, want)
print('  gate means', want, 'on 1, 2 and 3 ranks')
"
# a mid-epoch checkpoint keeps the epoch's sums of the means
expect 0 "" train gates.yaml --out part --quiet --set train.checkpoint.every_steps=5
rm part/checkpoints/last.h5 part/checkpoints/ckpt-000000000024.h5
expect 0 "resuming from part/checkpoints/ckpt-000000000020.h5 (epoch 2, step 8)" train gates.yaml --out part --resume part
check "log_mean resumed mid-epoch: the same history (not the times)" cmp <(cut -d, -f1-10 gates-np1/history.csv) <(cut -d, -f1-10 part/history.csv)
sed 's/lg:    {type: dense, units: 2,/lg:    {type: dense, units: 65,/' gates.yaml >bad_mean.yaml
expect 1 "bad_mean.yaml:8:3: softmax layer 'gate': log_mean logs one column per value, and its 65 values are more than 64" summary bad_mean.yaml
finish
