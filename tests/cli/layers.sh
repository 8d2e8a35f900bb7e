#!/usr/bin/env bash
# layers.sh — the layers of real multi-input models from the command line:
# embedding, dropout, batch_norm, layer_norm, reshape/flatten,
# discretization (one-hot buckets into a head), a shared
# tower and a frozen layer in one graph train the same on 1, 2, 3 and 4
# ranks (parameters and moving statistics within 1e-5), resume mid-epoch
# bitwise, land in checkpoints under Keras' names, show in summary; and
# each bad input is one clear error.
source "$(dirname "$0")/lib.bash"
PY=/usr/bin/python3
cd "$TMP"

$PY - <<'PYEOF'
import h5py, numpy as np
rs = np.random.RandomState(7)
n = 500
num = rs.randn(n, 12).astype('f4'); num2 = rs.randn(n, 12).astype('f4')
ids = rs.randint(0, 50, size=(n, 2)).astype('i4')
click = ((num[:, 0] + num2[:, 1] + (ids[:, 0] % 3 == 0)) > 0.5).astype('f4')[:, None]
dwell = (np.tanh(num[:, 2]) + 0.1 * (ids[:, 1] % 5)).astype('f4')[:, None]
def write(name, **over):
    d = dict(num=num, num2=num2, ids=ids, click=click, dwell=dwell); d.update(over)
    with h5py.File(name, 'w') as f:
        for k, v in d.items(): f[k] = v
write('data.h5')
bad = ids.copy(); bad[321, 1] = 50
write('ids_range.h5', ids=bad)
write('ids_float.h5', ids=ids.astype('f4'))
PYEOF

config net 'inputs:
  num:  {shape: 12}
  num2: {shape: 12}
  ids:  {shape: 2, dtype: int32}
layers:
  emb:     {type: embedding, input_dim: 50, output_dim: 4, from: ids}
  flat:    {type: flatten, from: emb}
  ln:      {type: layer_norm, epsilon: 0.001, from: flat}
  h:       {type: dense, units: 16, use_bias: false, from: num}
  bn:      {type: batch_norm, momentum: 0.9, epsilon: 0.001, from: h}
  act:     {type: activation, activation: relu, from: bn}
  dr:      {type: dropout, rate: 0.3, from: act}
  tower_a: {type: dense, units: 8, activation: tanh, from: num}
  tower_b: {type: dense, shares: tower_a, from: num2}
  frozen:  {type: dense, units: 8, trainable: false, from: ln}
  cat:     {type: concat, from: [dr, tower_a, tower_b, frozen]}
  r:       {type: reshape, target_shape: [5, 8], from: cat}
  d2:      {type: dense, units: 3, activation: tanh, from: r}
  f2:      {type: flatten, from: d2}
  click:   {type: dense, units: 1, activation: sigmoid, from: f2}
  bins:    {type: discretization, bin_boundaries: [-1, 0, 1], output_mode: one_hot, from: num2}
  fbins:   {type: flatten, from: bins}
  wide:    {type: concat, from: [cat, fbins]}
  dwell:   {type: dense, units: 1, from: wide}
outputs:
  click: {loss: binary_crossentropy, metrics: [accuracy]}
  dwell: {loss: mse, weight: 0.5}
train:
  optimizer: {type: adam, lr: 0.003}
  batch_size: 30
  epochs: 6
  seed: 5
  checkpoint: {every_epochs: 1, keep: 10, save_best: false}
data: {train: data.h5}'

# ---- rank invariance: 17 steps an epoch, uneven slices on 3 and 4 ranks
ranks_agree net.yaml 2 3 4
mpi_expect 2 0 "" train net.yaml --out bucketed --quiet --allreduce bucketed --epochs 2
mpi_expect 2 0 "" train net.yaml --out blocking --quiet --allreduce blocking --epochs 2
mpi_expect 2 0 "" train net.yaml --out shared --quiet --allreduce shared --epochs 2
check "bucketed = blocking with batch_norm and a shared tower (bitwise)" same_params bucketed/checkpoints/last.h5 blocking/checkpoints/last.h5
check "shared memory = blocking with batch_norm and a shared tower (bitwise)" same_params shared/checkpoints/last.h5 blocking/checkpoints/last.h5

# ---- the checkpoint: Keras' names, moving statistics, the tower once
py "checkpoint tensors and their shapes" "
import h5py, numpy as np
c = h5py.File('np1/checkpoints/last.h5')
p = c['params']
assert p['emb/embeddings'].shape == (50, 4)
assert p['ln/gamma'].shape == (8,) and p['ln/beta'].shape == (8,)
assert set(p['bn']) == {'gamma', 'beta', 'moving_mean', 'moving_variance'}, set(p['bn'])
assert 'tower_b' not in p and p['tower_a/kernel'].shape == (12, 8)
assert p['d2/kernel'].shape == (8, 3)
mv = p['bn/moving_variance'][()]
assert np.all(mv > 0) and not np.allclose(mv, 1), mv       # updated by training
assert 'bn' in c['optimizer/m'] and 'moving_mean' not in c['optimizer/m/bn']
assert 'frozen' not in c['optimizer/m']                      # not trained
i = h5py.File('np1/checkpoints/ckpt-000000000017.h5')['params']
assert np.array_equal(i['frozen/kernel'][()], p['frozen/kernel'][()])  # frozen
assert not np.array_equal(i['tower_a/kernel'][()], p['tower_a/kernel'][()])
"

# ---- resume from the middle of an epoch: bitwise (dropout's masks and the
# batch statistics depend on rows and epoch, not on the process)
expect 0 "" train net.yaml --out part --quiet --epochs 3 --set train.checkpoint.every_steps=7
rm part/checkpoints/last.h5 part/checkpoints/ckpt-000000000051.h5
expect 0 "resuming from part/checkpoints/ckpt-000000000049.h5 (epoch 3, step 15)" train net.yaml --out part --resume part
check "resumed mid-epoch: bitwise the uninterrupted run" same_params np1/checkpoints/last.h5 part/checkpoints/last.h5

# ---- inference: dropout off, moving statistics; summary
expect 0 "click_accuracy" eval np1 --data data.h5
expect 0 "" predict np1 --data data.h5 --out pred.h5
py "predictions are deterministic and finite" "
import h5py, numpy as np
p = h5py.File('pred.h5')
assert p['click'].shape == (500, 1) and np.all(np.isfinite(p['dwell'][()]))
"
expect 0 "tower_b (dense(tanh) shares tower_a)" summary net.yaml
expect 0 "frozen (dense(linear) frozen)" summary net.yaml
expect 0 "emb (embedding)" summary net.yaml
expect 0 "(None, 2, 4)" summary net.yaml
expect 0 "bins (discretization(4 bins, one_hot)) (None, 12, 4)" summary net.yaml
expect 0 "Non-trainable params: 104" summary net.yaml

# ---- bad input
sed 's/tower_b: {type: dense, shares: tower_a/tower_b: {type: layer_norm, shares: tower_a/' net.yaml >bad_kind.yaml
expect 1 "bad_kind.yaml:14:39: layer 'tower_b' is a layer_norm layer but shares 'tower_a', a dense layer" summary bad_kind.yaml
sed 's/num2: {shape: 12}/num2: {shape: 10}/' net.yaml >bad_shape.yaml
expect 1 "bad_shape.yaml:14:34: layer 'tower_b' shares the parameters of 'tower_a', but its input gives kernel (10, 8) where 'tower_a' has (12, 8)" summary bad_shape.yaml
sed 's/tower_b: {type: dense, shares: tower_a, from: num2}/tower_b: {type: dense, shares: tower_a, units: 8, from: num2}/' net.yaml >bad_shares_key.yaml
expect 1 "key 'units' is not valid in layer 'tower_b', which shares 'tower_a'" summary bad_shares_key.yaml
sed 's/shares: tower_a/shares: tower_z/' net.yaml >bad_owner.yaml
expect 1 "layer 'tower_b' shares 'tower_z', which is not a layer" summary bad_owner.yaml
sed 's/rate: 0.3/rate: 1.0/' net.yaml >bad_rate.yaml
expect 1 "bad_rate.yaml:12:34: expected a number in [0, 1) for 'rate' in layer 'dr', got '1.0'" summary bad_rate.yaml
sed 's/rate: 0.3/rate: -0.1/' net.yaml >bad_rate2.yaml
expect 1 "expected a number in [0, 1) for 'rate'" summary bad_rate2.yaml
sed 's/act:     {type: activation, activation: relu, from: bn}/act:     {type: activation, activation: relu, trainable: false, from: bn}/' net.yaml >bad_trainable.yaml
expect 1 "bad_trainable.yaml:11:60: 'trainable' on layer 'act', which has no parameters (activation layers have none)" summary bad_trainable.yaml
sed 's/ids:  {shape: 2, dtype: int32}/ids:  {shape: 2}/' net.yaml >bad_float_ids.yaml
expect 1 "embedding layer 'emb' takes integer ids: its input 'ids' must be a model input with dtype: int32" summary bad_float_ids.yaml
sed 's/dtype: int32/dtype: int8/' net.yaml >bad_dtype.yaml
expect 1 "unknown value 'int8' for 'dtype' of input 'ids' (expected one of: float32, int32, int64" summary bad_dtype.yaml
expect 1 "ids_range.h5: dataset 'ids' row 321: id 50 is outside [0, 50), the input_dim of the embedding that reads input 'ids'" train net.yaml --out bad1 --data ids_range.h5
mpi_expect 2 1 "dataset 'ids' row 321: id 50 is outside [0, 50)" train net.yaml --out bad2 --data ids_range.h5
expect 1 "ids_float.h5: dataset 'ids' holds floating-point values, but input 'ids' is declared dtype: int32" train net.yaml --out bad3 --data ids_float.h5
sed 's/type: embedding, input_dim: 50/type: embedding, input_dim: 0/' net.yaml >bad_dim.yaml
expect 1 "expected an integer in [1, 16777216] for 'input_dim' in layer 'emb'" summary bad_dim.yaml
sed 's/bin_boundaries: \[-1, 0, 1\]/bin_boundaries: [-1, 1, 1]/' net.yaml >bad_bins.yaml
expect 1 "bad_bins.yaml:21:3: discretization layer 'bins': bin_boundaries must increase (1 after 1, as float32)" summary bad_bins.yaml
sed 's/bin_boundaries: \[-1, 0, 1\]/bin_boundaries: 0.5/' net.yaml >bad_bins2.yaml
expect 1 "bad_bins2.yaml:21:51: expected a list of 1 to 64 numbers for 'bin_boundaries' in layer 'bins', got '0.5'" summary bad_bins2.yaml
sed 's/bin_boundaries: \[-1, 0, 1\], //' net.yaml >bad_bins3.yaml
expect 1 "bad_bins3.yaml:21:3: discretization layer 'bins': needs bin_boundaries (increasing numbers) or num_bins with adapt: from_data" summary bad_bins3.yaml
sed 's/output_mode: one_hot/output_mode: multi_hot/' net.yaml >bad_bins4.yaml
expect 1 "unknown value 'multi_hot' for 'output_mode' in layer 'bins' (expected one of: int, one_hot" summary bad_bins4.yaml
finish
