#!/usr/bin/python3
"""export_torch.py — `mimo export torch` checked in PyTorch: the module it
writes (plain torch.nn, nothing of mimo imported) is loaded with a
checkpoint's weights by its own load_mimo and

  1. gives mimo predict's outputs within 1e-5 relative, for the demo, the
     tabular wide-and-deep (ids, embeddings, batch_norm, dropout), the
     Fashion CNN, a graph of every layer kind and activation
     (tests/data/every_kind.yaml, so a kind without a PyTorch form fails)
     and a graph of masks (tests/data/masked_kinds.yaml: mask_zero passed
     on, reversed and read by gru, lstm and the global 1-D pools);
  2. trains like mimo: one full-batch SGD step from the same weights, in
     float64 through the module's own forward and mimo's losses, agrees
     with mimo's step (--init from the same checkpoint) within 1e-5
     relative on every tensor (a network without dropout, with a masked
     gru going backwards into a masked pool).

Usage: export_torch.py MIMO_BINARY WORKDIR   (exit 0: all match)
"""
import importlib.util
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np

try:
    import torch
except ImportError:  # CTest reports a skip (SKIP_RETURN_CODE 77)
    print('SKIP: python3-torch is not installed (apt-get install python3-torch)')
    sys.exit(77)

MIMO, WORK = os.path.abspath(sys.argv[1]), sys.argv[2]
SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
shutil.rmtree(WORK, ignore_errors=True)
os.makedirs(WORK)
os.chdir(WORK)
bad = 0


def mimo(*args):
    r = subprocess.run([MIMO, *args], capture_output=True, text=True)
    if r.returncode:
        sys.exit('mimo %s failed: %s' % (' '.join(args), r.stderr))
    return r.stdout


def module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


def inputs_of(model, data, rows):
    with h5py.File(data, 'r') as f:
        return {n['name']: torch.as_tensor(f[n['name']][:rows]).reshape([-1] + n['shape'])
                for n in model.graph['nodes'] if n['kind'] == 'input'}


def compare_predict(name, cfg, data, rows, *sets):
    global bad
    mimo('train', cfg, '--out', 'run-' + name, '--quiet', '--set', 'data.train=' + data, *sets)
    mimo('predict', 'run-' + name, '--data', data, '--out', 'pred-%s.h5' % name)
    mimo('export', 'torch', 'run-' + name, '--out', 'twin_%s.py' % name)
    twin = module('twin_%s.py' % name, 'twin_' + name)
    model = twin.load_mimo('run-%s/checkpoints/last.h5' % name)
    with torch.no_grad():
        out = model(inputs_of(model, data, rows))
    with h5py.File('pred-%s.h5' % name, 'r') as p:
        for head, y in out.items():
            want = p[head][:rows].astype('f8').reshape(y.shape[0], -1)
            got = y.double().numpy()
            rel = np.abs(got - want).max() / np.abs(want).max()
            ok = rel <= 1e-5 and np.ptp(want) > 0
            print('  %s/%s: %d rows, max relative difference %.2e%s'
                  % (name, head, len(got), rel, '' if ok else '  FAIL'))
            bad += not ok


rs = np.random.RandomState(5)
n = 300
with h5py.File('seed.h5', 'w') as f:
    f['x1'] = rs.randn(n, 5).astype('f4'); f['x2'] = rs.randn(n, 3).astype('f4')
    f['y1'] = (rs.rand(n, 5) > 0.5).astype('f4')
    f['y2'] = np.eye(4, dtype='f4')[rs.randint(0, 4, n)]
with h5py.File('cnn.h5', 'w') as f:
    f['image'] = rs.rand(64, 28, 28, 1).astype('f4')
    f['pooled'] = rs.rand(64, 49).astype('f4')
    f['label'] = rs.randint(0, 10, 64).astype('i4'); f['group'] = rs.randint(0, 4, 64).astype('i4')
mimo('gen', 'tabular', '--out', 'tabular.h5', '--n', '1000')
subprocess.run(['/usr/bin/python3', os.path.join(SRC, 'tests/data/every_kind.py'), 'all.h5'],
               check=True)
subprocess.run(['/usr/bin/python3', os.path.join(SRC, 'tests/data/masked_kinds.py'),
                'masked_kinds.h5'], check=True)

print('1. predictions:')
compare_predict('demo', os.path.join(SRC, 'configs/seed-mimo.yaml'), os.path.abspath('seed.h5'),
                300, '--set', 'train.epochs=2', '--set', 'train.batch_size=16')
compare_predict('tabular', os.path.join(SRC, 'configs/tabular.yaml'),
                os.path.abspath('tabular.h5'), 500, '--set', 'train.epochs=2')
compare_predict('cnn', os.path.join(SRC, 'configs/fashion-cnn.yaml'), os.path.abspath('cnn.h5'),
                64, '--set', 'train.epochs=1', '--set', 'data.val=' + os.path.abspath('cnn.h5'),
                '--set', 'train.batch_size=32')
shutil.copy(os.path.join(SRC, 'tests/data/every_kind.yaml'), 'all.yaml')
compare_predict('all', 'all.yaml', os.path.abspath('all.h5'), 300)
shutil.copy(os.path.join(SRC, 'tests/data/masked_kinds.yaml'), 'masked_kinds.yaml')
compare_predict('masked_kinds', 'masked_kinds.yaml', os.path.abspath('masked_kinds.h5'), 300)

# 2. one SGD step: mimo's and the twin's, from the same weights
print('2. one full-batch SGD step:')
torch.set_default_dtype(torch.float64)
N = 64
with h5py.File('step.h5', 'w') as f:
    f['img'] = rs.rand(N, 8, 8, 2).astype('f4'); f['seq'] = rs.randn(N, 10, 3).astype('f4')
    f['num'] = rs.randn(N, 5).astype('f4'); f['ids'] = rs.randint(0, 20, (N, 2)).astype('i4')
    f['reg'] = rs.randn(N, 3).astype('f4'); f['bin'] = (rs.rand(N, 1) > 0.5).astype('f4')
    f['cls'] = rs.randint(0, 4, N).astype('i4')
    tok = rs.randint(1, 9, (N, 6)).astype('i4')
    tok[0::4, 4:] = 0; tok[1::4, :2] = 0; tok[2::4, 2:4] = 0  # end, start, middle
    f['tok'] = tok
net = """inputs:
  img: {shape: [8, 8, 2]}
  seq: {shape: [10, 3]}
  num: {shape: 5}
  ids: {shape: 2, dtype: int32}
  tok: {shape: 6, dtype: int32}
layers:
  c:   {type: conv2d, filters: 3, kernel_size: 3, padding: same, activation: relu, from: img}
  p:   {type: max_pool2d, pool_size: 2, from: c}
  fc:  {type: flatten, from: p}
  k:   {type: conv1d, filters: 4, kernel_size: 3, padding: causal, activation: tanh, from: seq}
  g:   {type: gru, units: 5, from: k}
  l:   {type: lstm, units: 3, go_backwards: true, from: seq}
  e:   {type: embedding, input_dim: 20, output_dim: 3, from: ids}
  fe:  {type: flatten, from: e}
  ln:  {type: layer_norm, from: fe}
  h:   {type: dense, units: 8, activation: elu, from: num}
  bn:  {type: batch_norm, from: h}
  me:  {type: embedding, input_dim: 9, output_dim: 3, mask_zero: true, from: tok}
  mg:  {type: gru, units: 3, return_sequences: true, go_backwards: true, from: me}
  mp:  {type: global_avg_pool1d, from: mg}
  cat: {type: concat, from: [fc, g, l, ln, bn, mp]}
  t:   {type: dense, units: 12, activation: swish, from: cat}
  reg: {type: dense, units: 3, from: t}
  bin: {type: dense, units: 1, activation: sigmoid, from: t}
  cls: {type: dense, units: 4, activation: softmax, from: t}
outputs:
  reg: {loss: mse, weight: 0.5}
  bin: {loss: binary_crossentropy}
  cls: {loss: sparse_categorical_crossentropy}
train: {optimizer: {type: sgd, lr: 0.1}, batch_size: %d, epochs: 1, seed: 4}
""" % N
open('step.yaml', 'w').write(net)
mimo('train', 'step.yaml', '--data', 'step.h5', '--out', 'start', '--quiet')
mimo('train', 'step.yaml', '--data', 'step.h5', '--out', 'stepped', '--quiet',
     '--init', 'start/checkpoints/last.h5', '--init-strict')
mimo('export', 'torch', 'start', '--out', 'twin_step.py')
twin = module('twin_step.py', 'twin_step')
model = twin.load_mimo('start/checkpoints/last.h5').train()
x = inputs_of(model, 'step.h5', N)
with h5py.File('step.h5', 'r') as f:
    reg, binary = torch.as_tensor(f['reg'][()]), torch.as_tensor(f['bin'][()])
    cls = torch.as_tensor(f['cls'][()]).long()
out = model(x)
eps = 1e-7  # Keras' clip of probabilities in the cross-entropies
pb = out['bin'].clamp(eps, 1 - eps)
loss = (0.5 * ((out['reg'] - reg) ** 2).mean()
        - (binary * torch.log(pb) + (1 - binary) * torch.log(1 - pb)).mean()
        - torch.log(out['cls'].clamp(eps, 1)[torch.arange(N), cls]).mean())
loss.backward()
with torch.no_grad():
    for p in model.params.values():
        if p.grad is not None:
            p -= 0.1 * p.grad
worst = moved = 0
with h5py.File('stepped/checkpoints/last.h5', 'r') as f, \
        h5py.File('start/checkpoints/last.h5', 'r') as s:
    for node in model.graph['nodes']:
        for t in node.get('tensors', []):
            want = f['params'][node['name']][t['name']][()].astype('f8')
            got = model.tensor(node, t['name']).detach().numpy()
            rel = np.abs(got - want).max() / max(np.abs(want).max(), 1e-30)
            worst = max(worst, rel)
            before = s['params'][node['name']][t['name']][()]
            moved = max(moved, np.abs(want - before).max() / max(np.abs(want).max(), 1e-30))
            if rel > 1e-5:
                print('  %s/%s: max relative difference %.2e  FAIL' % (node['name'], t['name'], rel))
                bad += 1
print('  every tensor after the step: max relative difference %.2e (the step moved '
      'them by up to %.2e)' % (worst, moved))
if moved < 1e-3:
    print('  FAIL: the step hardly moved the parameters: the check would prove nothing')
    bad += 1
print('OK' if not bad else '%d FAILED' % bad)
sys.exit(1 if bad else 0)
