#!/usr/bin/python3
"""dot.py — the dot layer (Keras' Dot) cross-checked against the same
network written by hand in PyTorch: dot-product attention built from it
(scores (T, d)·(T, d) over axes 2, a softmax, the mix (T, T)·(T, d) over
axes [2, 1]), a (T, d)·(d) product over [2, 1], a cosine (normalize)
of two vectors and a cosine matrix of two sequences; the same initial
weights (--init), the same batches and plain-SGD steps; every parameter
tensor compared after every step to 1e-4 relative.

Usage: dot.py MIMO_BINARY WORKDIR   (exit 0: all tensors match)
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

N, B, STEPS, LR, T, F, D = 40, 10, 8, 0.1, 4, 5, 3
rs = np.random.RandomState(6)
x = rs.randn(N, T, F).astype('f4')
q = rs.randn(N, F).astype('f4')
click = (rs.rand(N, 1) < 0.5).astype('f4')
score = rs.randn(N, 1).astype('f4')
with h5py.File('data.h5', 'w') as f:
    for k, v in dict(x=x, q=q, click=click, score=score).items():
        f[k] = v

CONFIG = f"""
inputs:
  x: {{shape: [{T}, {F}]}}
  q: {{shape: {F}}}
layers:
  h:  {{type: dense, units: {D}, activation: tanh, from: x}}
  k:  {{type: dense, units: {D}, from: x}}
  s:  {{type: dot, axes: 2, from: [h, k]}}
  p:  {{type: softmax, from: s}}
  c:  {{type: Dot, axes: [2, 1], from: [p, k]}}
  qv: {{type: dense, units: {D}, from: q}}
  qw: {{type: dense, units: {D}, activation: tanh, from: q}}
  a:  {{type: dot, axes: [2, 1], from: [c, qv]}}
  cs: {{type: dot, axes: 1, normalize: true, from: [qv, qw]}}
  cm: {{type: dot, axes: -1, normalize: true, from: [h, k]}}
  fm: {{type: flatten, from: cm}}
  z:  {{type: concat, from: [a, cs, fm]}}
  click: {{type: dense, units: 1, activation: sigmoid, from: a}}
  score: {{type: dense, units: 1, from: z}}
outputs:
  click: {{loss: binary_crossentropy}}
  score: {{loss: mse, weight: 0.5}}
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
for e in ('h', 'k'):
    init[e + '/kernel'], init[e + '/bias'] = rs.randn(F, D) * 0.5, 0.1 * rs.randn(D)
for e in ('qv', 'qw'):
    init[e + '/kernel'], init[e + '/bias'] = rs.randn(F, D) * 0.5, 0.1 * rs.randn(D)
init['click/kernel'], init['click/bias'] = rs.randn(T, 1) * 0.5, np.zeros(1)
init['score/kernel'], init['score/bias'] = rs.randn(T + 1 + T * T, 1) * 0.3, np.zeros(1)
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


def unit(v):
    return v / v.norm(dim=-1, keepdim=True)


def forward(rows):
    xb, qb = torch.tensor(x[rows]).double(), torch.tensor(q[rows]).double()
    h, k = torch.tanh(dense('h', xb)), dense('k', xb)           # (B, T, D)
    p = torch.softmax(h @ k.transpose(1, 2), -1)                # (B, T, T)
    c = p @ k                                                   # (B, T, D)
    qv, qw = dense('qv', qb), torch.tanh(dense('qw', qb))       # (B, D)
    a = (c @ qv[:, :, None])[:, :, 0]                           # (B, T)
    cs = (unit(qv) * unit(qw)).sum(1, keepdim=True)             # (B, 1)
    cm = (unit(h) @ unit(k).transpose(1, 2)).reshape(len(rows), T * T)
    z = torch.cat([a, cs, cm], 1)
    return torch.sigmoid(dense('click', a)), dense('score', z)


def loss(c, d, rows):
    t, y = torch.tensor(click[rows]).double(), torch.tensor(score[rows]).double()
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
moved = [k for k in ('h/kernel', 'k/kernel', 'qv/kernel', 'qw/kernel')
         if np.abs(P[k].detach().numpy() - init[k]).max() > 1e-3]
assert len(moved) == 4, f'the layers under every dot must train: {moved}'
print(f'{step} steps compared: {"all tensors match" if not bad else f"{bad} mismatches"}')
sys.exit(1 if bad else 0)
