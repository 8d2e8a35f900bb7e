#!/usr/bin/python3
"""mmoe.py — a multi-gate mixture of experts (Ma et al., KDD 2018)
cross-checked against the same network written by hand in PyTorch:
three experts stacked (stack), a softmax gate per task (softmax) mixing
them (weighted_sum) into a click tower and a dwell tower, plus a softmax
over the experts' axis of the stack (softmax, axis 1) feeding the dwell
head; the same initial weights (--init), the same batches and plain-SGD
steps; every parameter tensor compared after every step to 1e-4
relative.

Usage: mmoe.py MIMO_BINARY WORKDIR   (exit 0: all tensors match)
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
os.makedirs(WORK, exist_ok=True)
os.chdir(WORK)

N, B, STEPS, LR, K, D = 48, 12, 8, 0.2, 3, 5
rs = np.random.RandomState(4)
x = rs.randn(N, 6).astype('f4')
click = (rs.rand(N, 1) < 0.5).astype('f4')
dwell = rs.randn(N, 1).astype('f4')
with h5py.File('data.h5', 'w') as f:
    for k, v in dict(x=x, click=click, dwell=dwell).items():
        f[k] = v

CONFIG = f"""
inputs:
  x: {{shape: 6}}
layers:
  e0: {{type: dense, units: {D}, activation: relu, from: x}}
  e1: {{type: dense, units: {D}, activation: tanh, from: x}}
  e2: {{type: dense, units: {D}, activation: tanh, from: x}}
  ex: {{type: stack, from: [e0, e1, e2]}}
  lc: {{type: dense, units: {K}, from: x}}
  ld: {{type: dense, units: {K}, from: x}}
  gc: {{type: softmax, from: lc}}
  gd: {{type: softmax, axis: -1, from: ld}}
  mc: {{type: weighted_sum, from: [ex, gc]}}
  md: {{type: weighted_sum, from: [ex, gd]}}
  sa: {{type: softmax, axis: 1, from: ex}}
  fa: {{type: flatten, from: sa}}
  tc: {{type: dense, units: 4, activation: tanh, from: mc}}
  td: {{type: concat, from: [md, fa]}}
  click: {{type: dense, units: 1, activation: sigmoid, from: tc}}
  dwell: {{type: dense, units: 1, from: td}}
outputs:
  click: {{loss: binary_crossentropy}}
  dwell: {{loss: mse, weight: 0.5}}
train:
  optimizer: {{type: sgd, lr: {LR}}}
  batch_size: {B}
  epochs: 2
  shuffle: false
  seed: 5
  checkpoint: {{every_epochs: 0, save_best: false}}
data: {{train: data.h5}}
"""
open('net.yaml', 'w').write(CONFIG)

init = {}
for e in ('e0', 'e1', 'e2'):
    init[e + '/kernel'], init[e + '/bias'] = rs.randn(6, D) * 0.5, 0.1 * rs.randn(D)
for g in ('lc', 'ld'):
    init[g + '/kernel'], init[g + '/bias'] = rs.randn(6, K) * 0.8, 0.1 * rs.randn(K)
init['tc/kernel'], init['tc/bias'] = rs.randn(D, 4) * 0.5, 0.1 * rs.randn(4)
init['click/kernel'], init['click/bias'] = rs.randn(4, 1) * 0.5, np.zeros(1)
init['dwell/kernel'], init['dwell/bias'] = rs.randn(D + K * D, 1) * 0.3, np.zeros(1)
with h5py.File('init.h5', 'w') as f:
    for k, v in init.items():
        f['params/' + k] = np.asarray(v, 'f4')
init = {k: np.asarray(v, 'f4').astype('f8') for k, v in init.items()}

subprocess.run([MIMO, 'train', 'net.yaml', '--out', 'run', '--init', 'init.h5',
                '--quiet', '--overwrite', '--set', 'train.checkpoint.every_steps=1',
                '--set', 'train.checkpoint.keep=100'], check=True)

P = {k: torch.tensor(v, requires_grad=True) for k, v in init.items()}


def dense(name, v):
    return v @ P[name + '/kernel'] + P[name + '/bias']


def forward(rows):
    xb = torch.tensor(x[rows]).double()
    ex = torch.stack([torch.relu(dense('e0', xb)), torch.tanh(dense('e1', xb)),
                      torch.tanh(dense('e2', xb))], 1)          # (B, K, D)
    gc = torch.softmax(dense('lc', xb), 1)
    gd = torch.softmax(dense('ld', xb), 1)
    mc = (gc[:, :, None] * ex).sum(1)
    md = (gd[:, :, None] * ex).sum(1)
    sa = torch.softmax(ex, 1).reshape(len(rows), K * D)        # over the experts
    c = torch.sigmoid(dense('click', torch.tanh(dense('tc', mc))))
    return c, dense('dwell', torch.cat([md, sa], 1))


def loss(c, d, rows):
    t, y = torch.tensor(click[rows]).double(), torch.tensor(dwell[rows]).double()
    bce = -(t * torch.log(c) + (1 - t) * torch.log(1 - c)).mean()
    return bce + 0.5 * ((d - y) ** 2).mean()


bad = 0


def compare(step, path):
    global bad
    with h5py.File(path) as f:
        for k, v in P.items():
            got = f['params/' + k][()].astype('f8')
            want = v.detach().numpy()
            rel = np.max(np.abs(got - want)) / (np.max(np.abs(want)) + 1e-12)
            if rel > 1e-4:
                print(f'step {step}: {k}: relative difference {rel:.2e}')
                bad += 1
            elif step == STEPS:
                print(f'  {k:20s} {str(want.shape):10s} max rel diff {rel:.1e}')


step = 0
for epoch in range(2):
    for s in range(N // B):
        rows = list(range(s * B, (s + 1) * B))
        c, d = forward(rows)
        L = loss(c, d, rows)
        for p in P.values():
            p.grad = None
        L.backward()
        with torch.no_grad():
            for k, p in P.items():
                p -= LR * p.grad
        step += 1
        compare(step, f'run/checkpoints/ckpt-{step:012d}.h5')
moved = [k for k in ('lc/kernel', 'ld/kernel', 'e0/kernel', 'e2/kernel')
         if np.abs(P[k].detach().numpy() - init[k]).max() > 1e-3]
assert len(moved) == 4, f'the gates and experts must train: {moved}'
print(f'{step} steps compared: {"all tensors match" if not bad else f"{bad} mismatches"}')
sys.exit(1 if bad else 0)
