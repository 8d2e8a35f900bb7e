#!/usr/bin/python3
"""embedding_bag.py — embedding_bag cross-checked against PyTorch's
nn.functional.embedding_bag (what nn.EmbeddingBag runs): three bags over
the same multi-hot ids padded with 0 (padding_idx=0 in PyTorch,
mask_zero in mimo) — sum with per_sample_weights, mean, max — with a
dense branch, a click head and a dwell head; the same initial weights
(--init), the same batches and plain-SGD steps; every parameter tensor
is compared after every step to 1e-4 relative. The ids hold repeated
ids in a bag and bags that are all padding.

Usage: embedding_bag.py MIMO_BINARY WORKDIR   (exit 0: all tensors match)
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import sgd_oracle as oracle  # noqa: E402  the harness: train, compare, finish

torch = oracle.torch_or_skip()
F = torch.nn.functional

N, B, LR, V, L = 48, 12, 0.2, 12, 6
rs = np.random.RandomState(3)
lens = rs.randint(0, L + 1, size=N)          # 0: a bag of padding only
ids = np.zeros((N, L), 'i4')
for i in range(N):
    ids[i, :lens[i]] = rs.randint(1, V, size=lens[i])
ids[1, :4] = [5, 5, 5, 2]                     # repeated ids in one bag
ids[2, :] = 0
w = rs.uniform(0.2, 2.0, size=(N, L)).astype('f4')
num = rs.randn(N, 4).astype('f4')
click = (rs.rand(N, 1) < 0.5).astype('f4')
dwell = rs.randn(N, 2).astype('f4')
oracle.write_h5('data.h5', dict(ids=ids, w=w, num=num, click=click, dwell=dwell))

CONFIG = f"""
inputs:
  ids: {{shape: {L}, dtype: int32}}
  w:   {{shape: {L}}}
  num: {{shape: 4}}
layers:
  bs:  {{type: embedding_bag, input_dim: {V}, output_dim: 3, combiner: sum, from: [ids, w]}}
  bm:  {{type: embedding_bag, input_dim: {V}, output_dim: 4, combiner: mean, from: ids}}
  bx:  {{type: embedding_bag, input_dim: {V}, output_dim: 3, combiner: max, from: ids}}
  h:   {{type: dense, units: 5, activation: tanh, from: num}}
  cat: {{type: concat, from: [bs, bm, bx, h]}}
  t:   {{type: dense, units: 6, activation: tanh, from: cat}}
  click: {{type: dense, units: 1, activation: sigmoid, from: t}}
  dwell: {{type: dense, units: 2, from: cat}}
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

init = {
    'bs/embeddings': rs.uniform(-0.5, 0.5, (V, 3)),
    'bm/embeddings': rs.uniform(-0.5, 0.5, (V, 4)),
    'bx/embeddings': rs.uniform(-0.5, 0.5, (V, 3)),
    'h/kernel': rs.randn(4, 5) * 0.4, 'h/bias': 0.1 * rs.randn(5),
    't/kernel': rs.randn(15, 6) * 0.3, 't/bias': 0.1 * rs.randn(6),
    'click/kernel': rs.randn(6, 1) * 0.3, 'click/bias': np.zeros(1),
    'dwell/kernel': rs.randn(15, 2) * 0.3, 'dwell/bias': np.zeros(2),
}
P = oracle.train(init)


def bag(name, x, mode, weights=None):
    return F.embedding_bag(x, P[name + '/embeddings'], mode=mode,
                           per_sample_weights=weights, padding_idx=0)


def forward(rows):
    x = torch.tensor(ids[rows]).long()
    cat = torch.cat([bag('bs', x, 'sum', torch.tensor(w[rows]).double()),
                     bag('bm', x, 'mean'), bag('bx', x, 'max'),
                     torch.tanh(torch.tensor(num[rows]).double() @ P['h/kernel']
                                + P['h/bias'])], 1)
    t = torch.tanh(cat @ P['t/kernel'] + P['t/bias'])
    c = torch.sigmoid(t @ P['click/kernel'] + P['click/bias'])
    return c, cat @ P['dwell/kernel'] + P['dwell/bias']


def loss(c, d, rows):
    t, y = torch.tensor(click[rows]).double(), torch.tensor(dwell[rows]).double()
    return oracle.bce(c, t) + 0.5 * ((d - y) ** 2).mean()


oracle.sgd(P, lambda rows, epoch: loss(*forward(rows), rows), N, B, LR)
tables = ('bs/embeddings', 'bm/embeddings', 'bx/embeddings')
assert len(oracle.moved(P, tables)) == 3, 'every table must have trained'
for k in tables:  # row 0 is padding: it must not move
    assert np.array_equal(P[k].detach().numpy()[0], oracle.initial(k)[0]), f'{k}: padding row moved'
oracle.finish()
