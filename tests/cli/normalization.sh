#!/usr/bin/env bash
# normalization.sh — the normalization layer with adapt: from_data from the
# command line: its mean and variance are the imported file's training
# statistics (bitwise, as float32) on 1, 2 and 3 ranks, training is rank
# invariant (1e-5), a resumed run keeps its checkpoint's statistics; a
# file without statistics gets them computed over its training rows, the
# same on any number of ranks; each misuse is one clear error (a
# non-finite training value, a layer that does not read an input, an
# unknown adapt).
source "$(dirname "$0")/lib.bash"
cd "$TMP" || exit 1
/usr/bin/python3 - <<'PYEOF'
import numpy as np
rs = np.random.RandomState(8)
n = 300
x = rs.randn(n, 3) * [1e-2, 10, 3e3] + [5, -40, 2e4]
y = np.tanh((x[:, 0] - 5) * 80 + (x[:, 2] - 2e4) / 3e3)
with open('d.csv', 'w') as f:
    f.write('a,b,c,y\n')
    for r, t in zip(x, y):
        f.write('%.6g,%.6g,%.6g,%.5f\n' % (*r, t))
PYEOF
printf 'columns:\n  a: {kind: numeric, into: num}\n  b: {kind: numeric, into: num}\n  c: {kind: numeric, into: num}\n  y: {kind: numeric, target: true}\nsplit: {val: 0.2, seed: 2}\n' >s.yaml
expect 0 "num          numeric   float32 (N, 3)" import csv d.csv --out d.h5 --schema s.yaml
config net 'inputs: {num: {shape: 3}}
layers:
  n: {type: normalization, adapt: from_data, from: num}
  h: {type: dense, units: 8, activation: tanh, from: n}
  y: {type: dense, units: 1, from: h}
outputs: {y: {loss: mse}}
train:
  optimizer: {type: adam, lr: 0.01}
  batch_size: 20
  epochs: 3
  seed: 4
  checkpoint: {every_epochs: 1, keep: 10, save_best: false}
data: {train: d.h5, val: d.val.h5}'
expect 0 "1 layer adapted to the statistics of" train net.yaml --out np1
for np in 2 3; do
    mpi_expect "$np" 0 "" train net.yaml --out np$np --quiet --check-every 1
    check "$np ranks: parameters as 1 rank (1e-5)" params_close np1/checkpoints/last.h5 np$np/checkpoints/last.h5 1e-5
done
py "mean and variance: the file's training statistics, bitwise, on 1, 2, 3 ranks" "
import h5py, numpy as np
p = h5py.File('d.h5')['preprocessing/num']
for r in ('np1', 'np2', 'np3'):
    c = h5py.File(r + '/checkpoints/last.h5')['params/n']
    for k in ('mean', 'variance'):
        assert c[k][()].tobytes() == p[k][()].astype('f4').tobytes(), (r, k)
x = h5py.File('d.h5')['num'][()].astype('f8')
assert np.allclose(p['mean'][()], x.mean(0), rtol=1e-12) and np.allclose(p['variance'][()], x.var(0), rtol=1e-9)
"
expect 0 "y_loss" eval np1 --data d.val.h5

# a resumed run keeps the statistics it saved (set by hand here)
expect 0 "" train net.yaml --out res0 --quiet --epochs 1
/usr/bin/python3 - <<'PYEOF'
import h5py, numpy as np
with h5py.File('d.h5', 'a') as f:   # the file's statistics change after the start
    f['preprocessing/num/mean'][...] = [1, 2, 3]
PYEOF
expect 0 "resuming from" train net.yaml --out res0 --resume res0 --epochs 2
py "resume: the checkpoint's statistics, not the file's new ones" "
import h5py
c = h5py.File('res0/checkpoints/last.h5')['params/n/mean'][()]
assert list(c) != [1, 2, 3], c
"

# ---- a file without statistics: computed over its training rows (the
# last quarter validates: an outlier there must not move them), the same
# bitwise on 1, 2 and 3 ranks; a sequence input per feature of its last axis
/usr/bin/python3 -c "
import h5py, numpy as np
rs = np.random.RandomState(3)
x = (rs.randn(400, 3) * [2, 0.01, 500] + [1, -3, 1e4]).astype('f4')
x[350] = [1e6, 1e6, 1e6]   # in the validation rows
s = (rs.randn(400, 5, 2) * [1, 10] + [0, 3]).astype('f4')
with h5py.File('plain.h5', 'w') as f:
    f['num'] = x; f['seq'] = s; f['y'] = np.tanh(x[:, 0] - 1).astype('f4')"
config plainnet 'inputs: {num: {shape: 3}, seq: {shape: [5, 2]}}
layers:
  n: {type: normalization, adapt: from_data, from: num}
  m: {type: normalization, adapt: from_data, from: seq}
  f: {type: flatten, from: m}
  c: {type: concat, from: [n, f]}
  y: {type: dense, units: 1, from: c}
outputs: {y: {loss: mse}}
train: {batch_size: 40, epochs: 1, seed: 2, validation_split: 0.25}
data: {train: plain.h5}'
expect 0 "plain.h5 (computed over its training rows)" train plainnet.yaml --out pl1
for np in 2 3; do
    mpi_expect "$np" 0 "" train plainnet.yaml --out pl$np --quiet
done
py "computed statistics: numpy's over the 300 training rows, bitwise the same on 1, 2, 3 ranks" "
import h5py, numpy as np
f = h5py.File('plain.h5')
x, s = f['num'][:300].astype('f8'), f['seq'][:300].astype('f8').reshape(-1, 2)
want = {'n': (x.mean(0), x.var(0)), 'm': (s.mean(0), s.var(0))}
got = {r: h5py.File(r + '/checkpoints/last.h5')['params'] for r in ('pl1', 'pl2', 'pl3')}
for layer, (mean, var) in want.items():
    a = got['pl1'][layer]
    assert np.allclose(a['mean'][()], mean, rtol=1e-6), (layer, a['mean'][()], mean)
    assert np.allclose(a['variance'][()], var, rtol=1e-5), (layer, a['variance'][()], var)
    for r in ('pl2', 'pl3'):
        for k in ('mean', 'variance'):
            assert got[r][layer][k][()].tobytes() == a[k][()].tobytes(), (r, layer, k)
print('  num mean', np.round(got['pl1']['n']['mean'][()], 3))
"

# ---- misuse
/usr/bin/python3 -c "
import h5py, numpy as np
x = np.ones((10, 3), 'f4'); x[2, 1] = np.inf
with h5py.File('inf.h5', 'w') as f:
    f['num'] = x; f['y'] = np.ones(10, 'f4')"
expect 1 "inf.h5: dataset 'num' has 1 NaN/Inf value(s), the first in row 2" train net.yaml --out bad1 --set data.train=inf.h5 --set data.val=inf.h5
sed 's/  n: {type: normalization, adapt: from_data, from: num}/  d: {type: dense, units: 3, from: num}\n  n: {type: normalization, adapt: from_data, from: d}/' net.yaml >layer.yaml
expect 1 "normalization layer 'n' has adapt: from_data, so it must read a model input (whose dataset's statistics it takes), not layer 'd'" summary layer.yaml
sed 's/adapt: from_data/adapt: yes/' net.yaml >choice.yaml
expect 1 "choice.yaml:3:35: unknown value 'yes' for 'adapt' in layer 'n' (expected one of: none, from_data)" summary choice.yaml
finish
