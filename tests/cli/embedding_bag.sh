#!/usr/bin/env bash
# embedding_bag.sh — bags of ids from the command line: sum (with
# per-id weights), mean and max bags over multi-hot ids padded with 0
# train the same on 1, 2 and 3 ranks (within 1e-5), show in summary, and
# each bad input (an id out of range or negative in a bag, weights with
# max, weights of another shape) is one clear error.
source "$(dirname "$0")/lib.bash"
PY=/usr/bin/python3
cd "$TMP"

$PY - <<'PYEOF'
import h5py, numpy as np
rs = np.random.RandomState(5)
n, L, V = 400, 8, 300
lens = rs.randint(0, L + 1, size=n)
ids = np.zeros((n, L), 'i4')
for i in range(n):   # Zipf-like: small ids far more often
    ids[i, :lens[i]] = np.minimum(rs.zipf(1.3, size=lens[i]), V - 1)
w = rs.uniform(0.5, 1.5, size=(n, L)).astype('f4')
num = rs.randn(n, 5).astype('f4')
click = ((num[:, 0] + (ids[:, 0] % 3 == 1)) > 0.5).astype('f4')[:, None]
dwell = (np.tanh(num[:, 1]) + 0.1 * (ids[:, 1] % 5)).astype('f4')[:, None]
def write(name, **over):
    d = dict(ids=ids, w=w, num=num, click=click, dwell=dwell); d.update(over)
    with h5py.File(name, 'w') as f:
        for k, v in d.items(): f[k] = v
write('data.h5')
bad = ids.copy(); bad[123, 4] = V; write('ids_range.h5', ids=bad)
neg = ids.copy(); neg[77, 0] = -2; write('ids_neg.h5', ids=neg)
PYEOF

config net 'inputs:
  ids: {shape: 8, dtype: int32}
  w:   {shape: 8}
  num: {shape: 5}
layers:
  bs:    {type: embedding_bag, input_dim: 300, output_dim: 4, combiner: sum, from: [ids, w]}
  bm:    {type: embedding_bag, input_dim: 300, output_dim: 4, from: ids}
  bx:    {type: embedding_bag, input_dim: 300, output_dim: 3, combiner: max, from: ids}
  h:     {type: dense, units: 8, activation: relu, from: num}
  cat:   {type: concat, from: [bs, bm, bx, h]}
  click: {type: dense, units: 1, activation: sigmoid, from: cat}
  dwell: {type: dense, units: 1, from: cat}
outputs:
  click: {loss: binary_crossentropy}
  dwell: {loss: mse, weight: 0.5}
train:
  optimizer: {type: sgd, lr: 0.1}
  batch_size: 50
  epochs: 3
  seed: 3
  checkpoint: {every_epochs: 1, keep: 3, save_best: false}
data: {train: data.h5}'

# ---- rank invariance (8 steps an epoch; uneven slices on 3 ranks)
ranks_agree net.yaml 2 3
py "the tables trained, their padding row did not" "
import h5py, numpy as np
a = h5py.File('np1/checkpoints/ckpt-000000000008.h5')['params']
b = h5py.File('np1/checkpoints/last.h5')['params']
for k in ('bs', 'bm', 'bx'):
    e0, e1 = a[k + '/embeddings'][()], b[k + '/embeddings'][()]
    assert e1.shape == (300, 4 if k != 'bx' else 3)
    assert np.abs(e1 - e0).max() > 1e-4, k
    assert np.array_equal(e0[0], e1[0]), k + ': row 0 is padding'
"
expect 0 "bs (embedding_bag(sum))" summary net.yaml
expect 0 "bx (embedding_bag(max))" summary net.yaml

# ---- bad input
expect 1 "ids_range.h5: dataset 'ids' row 123: id 300 is outside [0, 300)" train net.yaml --out bad1 --data ids_range.h5
mpi_expect 2 1 "ids_neg.h5: dataset 'ids' row 77: id -2 is outside [0, 300)" train net.yaml --out bad2 --data ids_neg.h5
sed 's/combiner: max, from: ids/combiner: max, from: [ids, w]/' net.yaml >bad_max.yaml
expect 1 "embedding_bag layer 'bx': weights 'w' need combiner sum or mean (max takes no weights)" summary bad_max.yaml
sed 's/w:   {shape: 8}/w:   {shape: 7}/' net.yaml >bad_w.yaml
expect 1 "embedding_bag layer 'bs': weights 'w' must have the shape of the ids 'ids' (one weight per id)" summary bad_w.yaml
sed 's/ids: {shape: 8, dtype: int32}/ids: {shape: 8}/' net.yaml >bad_float.yaml
expect 1 "embedding_bag layer 'bs' takes integer ids: its input 'ids' must be a model input with dtype: int32" summary bad_float.yaml
sed 's/combiner: sum/combiner: median/' net.yaml >bad_comb.yaml
expect 1 "bad_comb.yaml:6:" summary bad_comb.yaml
finish
