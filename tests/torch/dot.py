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
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import sgd_oracle as oracle  # noqa: E402  the harness: train, compare, finish

torch = oracle.torch_or_skip()

N, B, LR, T, F, D = 40, 10, 0.1, 4, 5, 3
rs = np.random.RandomState(6)
x = rs.randn(N, T, F).astype('f4')
q = rs.randn(N, F).astype('f4')
click = (rs.rand(N, 1) < 0.5).astype('f4')
score = rs.randn(N, 1).astype('f4')
oracle.write_h5('data.h5', dict(x=x, q=q, click=click, score=score))

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
P = oracle.train(init)


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
    return oracle.bce(c, t) + 0.5 * ((d - y) ** 2).mean()


oracle.sgd(P, lambda rows, epoch: loss(*forward(rows), rows), N, B, LR)
moved = oracle.moved(P, ('h/kernel', 'k/kernel', 'qv/kernel', 'qw/kernel'))
assert len(moved) == 4, f'the layers under every dot must train: {moved}'
oracle.finish()
