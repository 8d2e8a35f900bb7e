#!/usr/bin/python3
"""plugin.py — a plug-in's layer kind cross-checked against PyTorch: the
example plug-in (examples/plugin/swish.c, built here with cc against the
source tree's headers) in a network with a learned per-feature beta and a
fixed one, the same initial weights (h5py, --init), the same batches and
the same plain-SGD steps; every parameter tensor, the learned beta
included, is compared after each step to 1e-4 relative.

Usage: plugin.py MIMO_BINARY WORKDIR   (exit 0: all tensors match)
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

torch.set_default_dtype(torch.float64)  # the reference in double
MIMO, WORK = sys.argv[1], sys.argv[2]
SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
os.makedirs(WORK, exist_ok=True)
os.chdir(WORK)
subprocess.run([os.environ.get('CC', 'cc'), '-std=c11', '-O2', '-fPIC', '-shared',
                '-fvisibility=hidden', '-I', os.path.join(SRC, 'include'),
                os.path.join(SRC, 'examples', 'plugin', 'swish.c'), '-o', 'libswish.so',
                '-lm'], check=True)

N, B, STEPS, LR, SEED = 40, 10, 8, 0.1, 5
rs = np.random.RandomState(3)
x = rs.randn(N, 4).astype('f4')
y = np.sin(x[:, :2] * 1.5).astype('f4')
with h5py.File('data.h5', 'w') as f:
    f['x'], f['y'] = x, y

open('net.yaml', 'w').write(f"""
plugins: [libswish.so]
inputs: {{x: {{shape: 4}}}}
layers:
  h: {{type: dense, units: 6, from: x}}
  s: {{type: swish, beta: 0.8, learn_beta: true, from: h}}
  f: {{type: swish, beta: 1.7, from: s}}
  y: {{type: dense, units: 2, from: f}}
outputs: {{y: {{loss: mse}}}}
train:
  optimizer: {{type: sgd, lr: {LR}}}
  batch_size: {B}
  epochs: 2
  shuffle: false
  seed: {SEED}
  checkpoint: {{every_steps: 1, keep: 100, save_best: false}}
data: {{train: data.h5}}
""")

init = {
    'h/kernel': rs.randn(4, 6) * 0.5, 'h/bias': 0.1 * rs.randn(6),
    's/beta': 0.8 + 0.2 * rs.randn(6),
    'y/kernel': rs.randn(6, 2) * 0.5, 'y/bias': 0.1 * rs.randn(2),
}
with h5py.File('init.h5', 'w') as f:
    for k, v in init.items():
        f['params/' + k] = np.asarray(v, 'f4')
P = {k: torch.tensor(np.asarray(v, 'f4').astype('f8'), requires_grad=True)
     for k, v in init.items()}

subprocess.run([MIMO, 'train', 'net.yaml', '--out', 'run', '--init', 'init.h5',
                '--quiet', '--overwrite'], check=True)


def forward(rows):
    h = torch.tensor(x[rows]).double() @ P['h/kernel'] + P['h/bias']
    s = h * torch.sigmoid(P['s/beta'] * h)
    f = s * torch.sigmoid(1.7 * s)
    return f @ P['y/kernel'] + P['y/bias']


bad, step = 0, 0
for epoch in range(2):
    for b in range(N // B):
        rows = list(range(b * B, (b + 1) * B))
        L = ((forward(rows) - torch.tensor(y[rows]).double()) ** 2).mean()
        for p in P.values():
            p.grad = None
        L.backward()
        with torch.no_grad():
            for p in P.values():
                p -= LR * p.grad
        step += 1
        with h5py.File(f'run/checkpoints/ckpt-{step:012d}.h5') as f:
            for k, p in P.items():
                got, want = f['params/' + k][()].astype('f8'), p.detach().numpy()
                rel = np.max(np.abs(got - want)) / (np.max(np.abs(want)) + 1e-12)
                moved = np.max(np.abs(want - init[k]))
                if rel > 1e-4 or moved < 1e-4:
                    print(f'step {step}: {k}: relative difference {rel:.2e}, moved {moved:.1e}')
                    bad += 1
                elif step == STEPS:
                    print(f'  {k:10s} {str(want.shape):8s} max rel diff {rel:.1e}')
print(f'{step} steps compared: {"all tensors match" if not bad else f"{bad} mismatches"}')
sys.exit(1 if bad else 0)
