#!/usr/bin/env bash
# normalization.sh — the normalization layer with adapt: from_data from the
# command line: its mean and variance are the imported file's training
# statistics (bitwise, as float32) on 1, 2 and 3 ranks, training is rank
# invariant (1e-5), a resumed run keeps its checkpoint's statistics, and
# each misuse is one clear error (a file without statistics, a layer that
# does not read an input, an unknown adapt).
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

# ---- misuse
/usr/bin/python3 -c "
import h5py, numpy as np
with h5py.File('plain.h5', 'w') as f:
    f['num'] = np.ones((10, 3), 'f4'); f['y'] = np.ones(10, 'f4')"
expect 1 "plain.h5 has no /preprocessing/num/mean, which layer 'n' (adapt: from_data) needs" train net.yaml --out bad1 --set data.train=plain.h5 --set data.val=plain.h5
sed 's/  n: {type: normalization, adapt: from_data, from: num}/  d: {type: dense, units: 3, from: num}\n  n: {type: normalization, adapt: from_data, from: d}/' net.yaml >layer.yaml
expect 1 "normalization layer 'n' has adapt: from_data, so it must read a model input (whose dataset's statistics it takes), not layer 'd'" summary layer.yaml
sed 's/adapt: from_data/adapt: yes/' net.yaml >choice.yaml
expect 1 "choice.yaml:3:35: unknown value 'yes' for 'adapt' in layer 'n' (expected one of: none, from_data)" summary choice.yaml
finish
