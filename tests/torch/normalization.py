#!/usr/bin/python3
"""normalization.py — the normalization layer against PyTorch, from a raw
CSV: `mimo import csv --schema` computes the training statistics of four
numbers of very different scales, a network normalizes them with
`adapt: from_data` (mean and variance taken from the file) and trains
four plain-SGD steps; PyTorch runs the same network from the same initial
weights with the statistics computed here by numpy from the CSV's text.
Every parameter tensor is compared after each step to 1e-4 relative, and
the checkpoint's mean and variance to numpy's statistics (float32).

Usage: normalization.py MIMO_BINARY WORKDIR   (exit 0: all tensors match)
"""
import os
import subprocess
import sys

import h5py
import numpy as np

try:
    import torch
except ImportError:  # CTest reports a skip (SKIP_RETURN_CODE 77)
    print('SKIP: python3-torch is not installed (apt-get install python3-torch)')
    sys.exit(77)

torch.set_default_dtype(torch.float64)
MIMO, WORK = sys.argv[1], sys.argv[2]
os.makedirs(WORK, exist_ok=True)
os.chdir(WORK)

N, B, STEPS, LR, EPS = 64, 16, 4, 0.05, 1e-7
rs = np.random.RandomState(3)
scale = np.array([1e-3, 1.0, 250.0, 4e4])
raw = rs.randn(N, 4) * scale + np.array([0.01, -2, 900, 1e5])
y = np.tanh(((raw - raw.mean(0)) / raw.std(0)) @ np.array([0.5, -0.3, 0.8, 0.2]))
with open('d.csv', 'w') as f:
    f.write('a,b,c,d,y\n')
    for r, t in zip(raw, y):
        f.write(','.join('%.6g' % v for v in r) + ',%.6f\n' % t)
with open('s.yaml', 'w') as f:
    f.write('columns:\n' + ''.join('  %s: {kind: numeric, into: num}\n' % c for c in 'abcd')
            + '  y: {kind: numeric, target: true}\nshuffle: false\n')
subprocess.run([MIMO, 'import', 'csv', 'd.csv', '--out', 'd.h5', '--schema', 's.yaml'],
               check=True, stdout=subprocess.DEVNULL)
open('net.yaml', 'w').write(f"""
inputs: {{num: {{shape: 4}}}}
layers:
  n: {{type: normalization, adapt: from_data, from: num}}
  h: {{type: dense, units: 6, activation: tanh, from: n}}
  y: {{type: dense, units: 1, from: h}}
outputs: {{y: {{loss: mse}}}}
train:
  optimizer: {{type: sgd, lr: {LR}}}
  batch_size: {B}
  epochs: 1
  shuffle: false
  seed: 1
  checkpoint: {{every_steps: 1, keep: 100, save_best: false}}
data: {{train: d.h5}}
""")
init = {'h/kernel': rs.randn(4, 6) * 0.5, 'h/bias': 0.1 * rs.randn(6),
        'y/kernel': rs.randn(6, 1) * 0.5, 'y/bias': np.zeros(1)}
with h5py.File('init.h5', 'w') as f:
    for k, v in init.items():
        f['params/' + k] = np.asarray(v, 'f4')
    # --init needs every tensor; adapt: from_data then replaces these
    f['params/n/mean'], f['params/n/variance'] = np.full(4, 7, 'f4'), np.full(4, 9, 'f4')
subprocess.run([MIMO, 'train', 'net.yaml', '--out', 'run', '--init', 'init.h5',
                '--quiet', '--overwrite'], check=True)

# the reference: statistics of the CSV's text as float32 values, in double
x = np.loadtxt('d.csv', delimiter=',', skiprows=1, dtype='f4').astype('f8')
mean, var = x[:, :4].mean(0), x[:, :4].var(0)
P = {k: torch.tensor(np.asarray(v, 'f4').astype('f8'), requires_grad=True)
     for k, v in init.items()}
xs = torch.tensor(x[:, :4]).double()
mean32 = torch.tensor(mean.astype('f4').astype('f8'))
var32 = torch.tensor(var.astype('f4').astype('f8'))
bad = 0
for step in range(1, STEPS + 1):
    rows = slice((step - 1) * B, step * B)
    n = (xs[rows] - mean32) / torch.sqrt(var32 + EPS)
    out = torch.tanh(n @ P['h/kernel'] + P['h/bias']) @ P['y/kernel'] + P['y/bias']
    L = ((out[:, 0] - torch.tensor(x[rows, 4])) ** 2).mean()
    for p in P.values():
        p.grad = None
    L.backward()
    with torch.no_grad():
        for p in P.values():
            p -= LR * p.grad
    with h5py.File(f'run/checkpoints/ckpt-{step:012d}.h5') as f:
        for k, v in P.items():
            got, want = f['params/' + k][()].astype('f8'), v.detach().numpy()
            rel = np.max(np.abs(got - want)) / (np.max(np.abs(want)) + 1e-12)
            if rel > 1e-4:
                print(f'step {step}: {k}: relative difference {rel:.2e}')
                bad += 1
        for k, want in (('mean', mean), ('variance', var)):
            got = f['params/n/' + k][()].astype('f8')
            rel = np.max(np.abs(got - want) / np.abs(want))
            if rel > 1e-6:
                print(f'step {step}: n/{k} {got} vs numpy {want}')
                bad += 1
print(f'{STEPS} steps compared: {"all tensors match" if not bad else f"{bad} mismatches"}')
sys.exit(1 if bad else 0)
