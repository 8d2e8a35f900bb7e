#!/usr/bin/env bash
# discretization.sh — the discretization layer with num_bins and adapt:
# from_data from the command line: its bin_boundaries are numpy.quantile
# (method 'linear', in double, then float32) of all the input's training
# values, bitwise, with validation_split's rows (an outlier there) left
# out; the same bitwise on 1, 2 and 3 ranks; predict buckets by the
# checkpoint's boundaries; a resumed run keeps them; many equal values give
# equal boundaries, kept as Keras keeps them; each misuse is one clear
# error at the layer's file:line:col.
source "$(dirname "$0")/lib.bash"
cd "$TMP" || exit 1
/usr/bin/python3 -c "
import h5py, numpy as np
rs = np.random.RandomState(5)
x = (rs.randn(400, 2) * [1, 3] + [0, 10]).astype('f4')
x[350] = [1e6, -1e6]   # a validation row: must not move the quantiles
with h5py.File('d.h5', 'w') as f:
    f['x'] = x; f['d'] = np.zeros((400, 2), 'f4'); f['y'] = np.tanh(x[:, :1] / 10).astype('f4')
t = np.zeros((200, 3), 'f4'); t[150:] = rs.rand(50, 3)   # 3/4 of the values 0
with h5py.File('ties.h5', 'w') as f:
    f['x'] = t; f['d'] = np.zeros((200, 3), 'f4'); f['y'] = t[:, :1]"
config net 'inputs: {x: {shape: 2}}
layers:
  d: {type: discretization, num_bins: 5, adapt: from_data, from: x}
  h: {type: dense, units: 4, activation: tanh, from: d}
  y: {type: dense, units: 1, from: h}
outputs: {d: {loss: mse}, y: {loss: mse}}
train: {batch_size: 20, epochs: 2, seed: 3, validation_split: 0.25,
        checkpoint: {every_epochs: 1, keep: 10, save_best: false}}
data: {train: d.h5}'
expect 0 "1 layer adapted to the statistics of" train net.yaml --out np1
for np in 2 3; do
    mpi_expect "$np" 0 "" train net.yaml --out np$np --quiet
    check "$np ranks: parameters as 1 rank (1e-5)" params_close np1/checkpoints/last.h5 np$np/checkpoints/last.h5 1e-5
done
expect 0 "discretization(5 bins, from_data)" summary net.yaml
expect 0 "" predict np1 --data d.h5 --out p.h5
py "bin_boundaries: numpy.quantile over the 300 training rows, bitwise, on 1, 2, 3 ranks; predict buckets by them" "
import h5py, numpy as np
x = h5py.File('d.h5')['x'][()]
want = np.quantile(x[:300].astype('f8'), np.arange(1, 5) / 5).astype('f4')
for r in ('np1', 'np2', 'np3'):
    b = h5py.File(r + '/checkpoints/last.h5')['params/d/bin_boundaries'][()]
    assert b.dtype == np.float32 and b.tobytes() == want.tobytes(), (r, b, want)
assert want[-1] < 100 and want[0] > -100, want   # the outlier left out
p = h5py.File('p.h5')['d'][()]
assert np.array_equal(p, np.searchsorted(want, x, side='right').astype('f4')), p[:5]
assert set(np.unique(p)) == {0, 1, 2, 3, 4}
print('  boundaries', want)
"

# a resumed run keeps its checkpoint's boundaries (the data changed since)
expect 0 "" train net.yaml --out res --quiet --epochs 1
/usr/bin/python3 -c "
import h5py
with h5py.File('d.h5', 'a') as f:
    f['x'][...] = f['x'][()] * 10"
expect 0 "resuming from" train net.yaml --out res --resume res --epochs 2
py "resume: the checkpoint's boundaries, not the changed data's" "
import h5py, numpy as np
e1, e2 = (h5py.File('res/checkpoints/ckpt-%012d.h5' % s)['params/d/bin_boundaries'][()] for s in (15, 30))
assert e1.tobytes() == e2.tobytes() and abs(e1).max() < 20, (e1, e2)
"

# many equal values: equal boundaries kept (numpy's, bitwise), the ids
# between them never given; the same on 2 ranks
config ties 'inputs: {x: {shape: 3}}
layers:
  d: {type: discretization, num_bins: 8, adapt: from_data, output_mode: one_hot, from: x}
  f: {type: flatten, from: d}
  y: {type: dense, units: 1, from: f}
outputs: {y: {loss: mse}}
train: {batch_size: 20, epochs: 1, seed: 3}
data: {train: ties.h5}'
expect 0 "discretization(8 bins, from_data, one_hot)" summary ties.yaml
expect 0 "" train ties.yaml --out t1 --quiet
mpi_expect 2 0 "" train ties.yaml --out t2 --quiet
py "ties: numpy's quantiles with their duplicates, bitwise, 1 and 2 ranks" "
import h5py, numpy as np
x = h5py.File('ties.h5')['x'][()]
want = np.quantile(x.astype('f8'), np.arange(1, 8) / 8).astype('f4')
assert list(want[:5]) == [0] * 5 and want[6] > want[5] > 0, want
for r in ('t1', 't2'):
    b = h5py.File(r + '/checkpoints/last.h5')['params/d/bin_boundaries'][()]
    assert b.tobytes() == want.tobytes(), (r, b, want)
"

# ---- misuse: one error each, at the layer
sed 's/num_bins: 5, adapt: from_data/num_bins: 5, bin_boundaries: [1, 2], adapt: from_data/' net.yaml >both.yaml
expect 1 "both.yaml:3:3: discretization layer 'd': give bin_boundaries or num_bins, not both" summary both.yaml
sed 's/num_bins: 5, adapt: from_data, //' net.yaml >neither.yaml
expect 1 "neither.yaml:3:3: discretization layer 'd': needs bin_boundaries (increasing numbers) or num_bins with adapt: from_data" summary neither.yaml
sed 's/num_bins: 5/num_bins: 1/' net.yaml >one.yaml
expect 1 "one.yaml:3:39: expected an integer from 2 to 65536 for 'num_bins' in layer 'd', got '1'" summary one.yaml
sed 's/, adapt: from_data//' net.yaml >noadapt.yaml
expect 1 "noadapt.yaml:3:3: discretization layer 'd': num_bins needs adapt: from_data" summary noadapt.yaml
sed 's/num_bins: 5/bin_boundaries: [1, 2]/' net.yaml >given.yaml
expect 1 "given.yaml:3:3: discretization layer 'd': adapt: from_data takes num_bins" summary given.yaml
sed 's/  d: {type: discretization, num_bins: 5, adapt: from_data, from: x}/  e: {type: dense, units: 2, from: x}\n  d: {type: discretization, num_bins: 5, adapt: from_data, from: e}/' net.yaml >layer.yaml
expect 1 "discretization layer 'd' has adapt: from_data, so it must read a model input (whose values' quantiles it takes), not layer 'e'" summary layer.yaml
finish
