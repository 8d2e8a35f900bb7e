#!/usr/bin/python3
"""module.py — the Python module (python/mimo/, ctypes over libmimo.so)
against the mimo command on the same files: train() writes the run
`mimo train` writes (bitwise the same weights), load() + predict() give
`mimo predict`'s outputs bitwise, evaluate() `mimo eval`'s numbers,
weights() the checkpoint's tensors, fit() on numpy arrays trains the same
trajectory as `mimo train` on the same rows, numpy int64 ids reach an
int64 input exactly (predict() as `mimo predict`), errors raise mimo.Error with
mimo's message, and train() under `mpirun -np 2 python3` matches 1 rank.

Usage: module.py MIMO_BINARY LIBMIMO_SO WORKDIR   (exit 0: all hold)
"""
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np

MIMO, LIB, WORK = (os.path.abspath(a) for a in sys.argv[1:4])
SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ['MIMO_LIB'] = LIB
sys.path.insert(0, os.path.join(SRC, 'python'))
import mimo  # noqa: E402

shutil.rmtree(WORK, ignore_errors=True)
os.makedirs(WORK)
os.chdir(WORK)
bad = 0


def check(what, ok):
    global bad
    print('%s: %s' % ('ok' if ok else 'FAIL', what))
    bad += not ok


def run(*args):
    subprocess.run([MIMO, *args], check=True, capture_output=True)


def params(path):
    with h5py.File(path, 'r') as f:
        return {'%s/%s' % (l, t): f['params'][l][t][()] for l in f['params']
                for t in f['params'][l]}


run('gen', 'multitask', '--out', 'mt.h5', '--n', '2000')
cfg = os.path.join(SRC, 'configs/multitask.yaml')
over = dict(epochs=2, batch_size=100, validation_split=0.0)
sets = ['--set', 'train.epochs=2', '--set', 'train.batch_size=100',
        '--set', 'train.validation_split=0.0', '--set', 'data.train=' + os.path.abspath('mt.h5')]

# train: the same run as the command's
mimo.train(cfg, out='py-run', data='mt.h5', **over)
run('train', cfg, '--out', 'cli-run', '--quiet', *sets)
a, b = params('py-run/checkpoints/last.h5'), params('cli-run/checkpoints/last.h5')
check('train() == mimo train, bitwise (%d tensors)' % len(a),
      a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a))

# load, predict, evaluate, weights
m = mimo.load('py-run')
with h5py.File('mt.h5', 'r') as f:
    data = {k: f[k][()] for k in f}
out = m.predict({k: data[k] for k in m.inputs})
run('predict', 'py-run', '--data', 'mt.h5', '--out', 'pred.h5')
with h5py.File('pred.h5', 'r') as p:
    check('predict() == mimo predict, bitwise (%s)' % ', '.join(m.heads),
          all(np.array_equal(out[h], p[h][()]) for h in m.heads))
ev = m.evaluate(data)
txt = subprocess.run([MIMO, 'eval', 'py-run', '--data', 'mt.h5'], capture_output=True,
                     text=True, check=True).stdout
cli = dict((l.split()[0], float(l.split()[1])) for l in txt.splitlines() if len(l.split()) == 2)
check('evaluate() == mimo eval (loss %.6g, cls_accuracy %.4f)' % (ev['loss'], ev['cls']['accuracy']),
      abs(ev['loss'] - cli['loss']) <= 1e-5 * abs(cli['loss']) and
      abs(ev['cls']['accuracy'] - cli['cls_accuracy']) <= 1e-6)
w = m.weights()
check('weights() == the checkpoint', all(np.array_equal(w[k], a[k]) for k in a))

# fit on arrays: the trajectory of mimo train on the same rows
fm = mimo.fit(cfg, data, **over)
fw = fm.weights()
worst = max(np.abs(fw[k] - b[k]).max() / (np.abs(b[k]).max() + 1e-30) for k in b)
check('fit() on numpy arrays == mimo train on the file, lr schedule too (max relative '
      '%.1e)' % worst, worst == 0)

# int64 ids: numpy int64 arrays reach a hashing layer and an embedding
# exactly (ids beyond 2^53, the int64 extremes), as mimo predict reads them
rs = np.random.RandomState(3)
big = rs.randint(-2**63, 2**63 - 1, size=(120, 3), dtype=np.int64)
big[0] = [2**63 - 1, -2**63, 2**53 + 1]
ids = rs.randint(0, 40, size=(120, 2)).astype(np.int64)
with h5py.File('i64.h5', 'w') as f:
    f['big'] = big; f['ids'] = ids; f['y'] = rs.randn(120, 1).astype('f4')
with open('i64.yaml', 'w') as f:
    f.write('''inputs:
  big: {shape: 3, dtype: int64}
  ids: {shape: 2, dtype: int64}
layers:
  h:  {type: hashing, num_bins: 50, salt: 1, from: big}
  e:  {type: embedding, input_dim: 50, output_dim: 2, from: h}
  e2: {type: embedding, input_dim: 40, output_dim: 2, from: ids}
  f:  {type: flatten, from: e}
  f2: {type: flatten, from: e2}
  c:  {type: concat, from: [f, f2]}
  y:  {type: dense, units: 1, from: c}
outputs:
  y: {loss: mse}
train: {optimizer: {type: sgd, lr: 0.1}, batch_size: 40, epochs: 1}
data: {train: i64.h5}
''')
run('train', 'i64.yaml', '--out', 'i64-run', '--quiet')
run('predict', 'i64-run', '--data', 'i64.h5', '--out', 'i64-pred.h5')
got = mimo.load('i64-run').predict({'big': big, 'ids': ids})['y']
near = big.copy(); near[0, 2] = 2**53  # what a float64 would have made of it
other = mimo.load('i64-run').predict({'big': near, 'ids': ids})['y']
with h5py.File('i64-pred.h5', 'r') as p:
    check('predict() on int64 arrays == mimo predict, bitwise; 2^53 + 1 is not 2^53',
          np.array_equal(got, p['y'][()]) and got[0, 0] != other[0, 0])

# errors
try:
    mimo.load('no-such-run')
    check('a missing run raises mimo.Error', False)
except mimo.Error as e:
    check("a missing run raises mimo.Error ('%s')" % e, 'no-such-run' in str(e))
try:
    mimo.train(cfg, out='bad', data='mt.h5', batch_size=0)
    check('a bad override raises mimo.Error', False)
except mimo.Error as e:
    check("a bad override raises mimo.Error ('%s')" % e, 'batch_size' in str(e))

# 2 ranks: each its slice of every global batch, as mimo train
script = ("import sys; sys.path.insert(0, %r); import mimo; "
          "mimo.train(%r, out='py-2r', data='mt.h5', epochs=2, batch_size=100, "
          "validation_split=0.0)" % (os.path.join(SRC, 'python'), cfg))
env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT='1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM='1',
           OMPI_MCA_rmaps_base_oversubscribe='1',
           OMPI_MCA_btl_vader_single_copy_mechanism='none')
r = subprocess.run(['mpirun', '-np', '2', '-x', 'OMP_NUM_THREADS=1', '-x', 'MIMO_LIB',
                    '/usr/bin/python3', '-c', script], env=env, capture_output=True, text=True)
if r.returncode:
    print(r.stdout, r.stderr)
c = params('py-2r/checkpoints/last.h5') if r.returncode == 0 else {}
worst = max((np.abs(c[k] - a[k]).max() / (np.abs(a[k]).max() + 1e-30) for k in a),
            default=np.inf) if c else np.inf
check('mpirun -np 2 python3: train() == 1 rank (max relative %.1e)' % worst, worst <= 1e-5)
print('OK' if not bad else '%d FAILED' % bad)
sys.exit(1 if bad else 0)
