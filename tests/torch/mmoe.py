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
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import sgd_oracle as oracle  # noqa: E402  the harness: train, compare, finish

torch = oracle.torch_or_skip()

N, B, LR, K, D = 48, 12, 0.2, 3, 5
rs = np.random.RandomState(4)
x = rs.randn(N, 6).astype('f4')
click = (rs.rand(N, 1) < 0.5).astype('f4')
dwell = rs.randn(N, 1).astype('f4')
oracle.write_h5('data.h5', dict(x=x, click=click, dwell=dwell))

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
P = oracle.train(init)


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
    return oracle.bce(c, t) + 0.5 * ((d - y) ** 2).mean()


oracle.sgd(P, lambda rows, epoch: loss(*forward(rows), rows), N, B, LR)
moved = oracle.moved(P, ('lc/kernel', 'ld/kernel', 'e0/kernel', 'e2/kernel'))
assert len(moved) == 4, f'the gates and experts must train: {moved}'
oracle.finish()
