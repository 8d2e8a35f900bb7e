#!/usr/bin/python3
"""sequence.py — the sequence kinds cross-checked against PyTorch: conv1d
(same, causal and dilated), max and global pooling over time, lstm and
gru (forwards, backwards, every step's output or the last) and a gru on
an embedding with mask_zero (ids 0 are padding: the state is carried over
them, the global average pool leaves them out). The same initial weights
(written with h5py, given to mimo with --init), the same batches and the
same plain-SGD steps; every parameter tensor after every step must agree
with float64 PyTorch to 1e-4 relative.

The recurrences are written out here in Keras' layouts (nn.GRU and
nn.LSTM order their gates differently, and nn.GRU puts the reset gate
elsewhere): gru with reset_after, gates [z, r, h], kernel (d, 3u),
recurrent_kernel (u, 3u), bias (2, 3u); lstm gates [i, f, c, o], bias
(4u).

Usage: sequence.py MIMO_BINARY WORKDIR   (exit 0: all tensors match; 77:
PyTorch is not installed)
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import sgd_oracle as oracle  # noqa: E402  the harness: train, compare, finish

torch = oracle.torch_or_skip()
F = torch.nn.functional

N, B, LR, T, L = 40, 10, 0.1, 8, 7
rs = np.random.RandomState(3)
ser = rs.randn(N, T, 3).astype('f4')
tok = rs.randint(1, 12, size=(N, L)).astype('i4')
for r in range(N):  # padding: right, left, in the middle, all but one
    kind = r % 4
    if kind == 0:
        tok[r, L - 1 - r % 3:] = 0
    elif kind == 1:
        tok[r, :1 + r % 3] = 0
    elif kind == 2:
        tok[r, 2:4] = 0
    else:
        tok[r, :] = 0
        tok[r, r % L] = 5
y = rs.randn(N, 1).astype('f4')
cls = rs.randint(0, 3, N).astype('i4')
oracle.write_h5('data.h5', dict(ser=ser, tok=tok, y=y, cls=cls))

CONFIG = f"""
inputs:
  ser: {{shape: [{T}, 3]}}
  tok: {{shape: {L}, dtype: int32}}
layers:
  c1:  {{type: conv1d, filters: 4, kernel_size: 3, padding: same, activation: tanh, from: ser}}
  c2:  {{type: conv1d, filters: 3, kernel_size: 2, padding: causal, dilation_rate: 2, from: c1}}
  p1:  {{type: max_pool1d, pool_size: 2, from: c1}}
  l1:  {{type: lstm, units: 5, return_sequences: true, from: c2}}
  g1:  {{type: gru, units: 4, go_backwards: true, from: l1}}
  ga:  {{type: global_avg_pool1d, from: l1}}
  gp:  {{type: gru, units: 3, return_sequences: true, from: p1}}
  gm:  {{type: global_max_pool1d, from: gp}}
  emb: {{type: embedding, input_dim: 12, output_dim: 3, mask_zero: true, from: tok}}
  ge:  {{type: gru, units: 4, from: emb}}
  le:  {{type: lstm, units: 3, return_sequences: true, go_backwards: true, from: emb}}
  ae:  {{type: global_avg_pool1d, from: le}}
  cat: {{type: concat, from: [g1, ga, gm, ge, ae]}}
  y:   {{type: dense, units: 1, from: cat}}
  cls: {{type: dense, units: 3, activation: softmax, from: cat}}
outputs:
  y:   {{loss: mse}}
  cls: {{loss: sparse_categorical_crossentropy, weight: 0.5}}
train:
  optimizer: {{type: sgd, lr: {LR}}}
  batch_size: {B}
  epochs: 2
  shuffle: false
  checkpoint: {{every_epochs: 0, save_best: false}}
data: {{train: data.h5}}
"""
open('net.yaml', 'w').write(CONFIG)


def w(*shape, s=0.4):
    return rs.randn(*shape) * s


init = {
    'c1/kernel': w(3, 3, 4), 'c1/bias': w(4, s=0.1),
    'c2/kernel': w(2, 4, 3), 'c2/bias': w(3, s=0.1),
    'l1/kernel': w(3, 20), 'l1/recurrent_kernel': w(5, 20), 'l1/bias': w(20, s=0.1),
    'g1/kernel': w(5, 12), 'g1/recurrent_kernel': w(4, 12), 'g1/bias': w(2, 12, s=0.1),
    'gp/kernel': w(4, 9), 'gp/recurrent_kernel': w(3, 9), 'gp/bias': w(2, 9, s=0.1),
    'emb/embeddings': w(12, 3, s=0.5),
    'ge/kernel': w(3, 12), 'ge/recurrent_kernel': w(4, 12), 'ge/bias': w(2, 12, s=0.1),
    'le/kernel': w(3, 12), 'le/recurrent_kernel': w(3, 12), 'le/bias': w(12, s=0.1),
    'y/kernel': w(4 + 5 + 3 + 4 + 3, 1), 'y/bias': w(1, s=0.1),
    'cls/kernel': w(19, 3), 'cls/bias': w(3, s=0.1),
}
P = oracle.train(init, env={'OMP_NUM_THREADS': '1'})


def conv1d(x, name, left, right, dil=1):
    """x (b, T, c) as mimo; kernel (k, c_in, c_out) as Keras."""
    k = P[name + '/kernel'].permute(2, 1, 0)  # (c_out, c_in, k)
    xc = F.pad(x.transpose(1, 2), (left, right))
    return F.conv1d(xc, k, P[name + '/bias'], dilation=dil).transpose(1, 2)


def steps(x, mask, back):
    """The step order: (time index, input, mask) per step."""
    T = x.shape[1]
    order = range(T - 1, -1, -1) if back else range(T)
    return [(x[:, t], mask[:, t:t + 1]) for t in order]


def gru(x, name, mask=None, seq=False, back=False):
    W, U, b = P[name + '/kernel'], P[name + '/recurrent_kernel'], P[name + '/bias']
    u = U.shape[0]
    mask = torch.ones(x.shape[:2]) if mask is None else mask
    h, out = torch.zeros(x.shape[0], u), []
    for xt, m in steps(x, mask, back):
        xp, hp = xt @ W + b[0], h @ U + b[1]
        z = torch.sigmoid(xp[:, :u] + hp[:, :u])
        r = torch.sigmoid(xp[:, u:2 * u] + hp[:, u:2 * u])
        hh = torch.tanh(xp[:, 2 * u:] + r * hp[:, 2 * u:])
        h = m * (z * h + (1 - z) * hh) + (1 - m) * h
        out.append(h)
    return torch.stack(out, 1) if seq else h


def lstm(x, name, mask=None, seq=False, back=False):
    W, U, b = P[name + '/kernel'], P[name + '/recurrent_kernel'], P[name + '/bias']
    u = U.shape[0]
    mask = torch.ones(x.shape[:2]) if mask is None else mask
    h, c, out = torch.zeros(x.shape[0], u), torch.zeros(x.shape[0], u), []
    for xt, m in steps(x, mask, back):
        g = xt @ W + h @ U + b
        i, f = torch.sigmoid(g[:, :u]), torch.sigmoid(g[:, u:2 * u])
        cc, o = torch.tanh(g[:, 2 * u:3 * u]), torch.sigmoid(g[:, 3 * u:])
        cn = f * c + i * cc
        hn = o * torch.tanh(cn)
        c = m * cn + (1 - m) * c
        h = m * hn + (1 - m) * h
        out.append(h)
    return torch.stack(out, 1) if seq else h


def forward(rows):
    x = torch.tensor(ser[rows]).double()
    ids = torch.tensor(tok[rows]).long()
    c1 = torch.tanh(conv1d(x, 'c1', 1, 1))
    c2 = conv1d(c1, 'c2', 2, 0, dil=2)
    p1 = F.max_pool1d(c1.transpose(1, 2), 2).transpose(1, 2)
    l1 = lstm(c2, 'l1', seq=True)
    g1 = gru(l1, 'g1', back=True)
    ga = l1.mean(1)
    gp = gru(p1, 'gp', seq=True)
    gm = gp.amax(1)
    mask = (ids != 0).double()
    emb = P['emb/embeddings'][ids]
    ge = gru(emb, 'ge', mask)
    le = lstm(emb, 'le', mask, seq=True, back=True)
    mrev = mask.flip(1)  # le's outputs run backwards, and so does its mask
    ae = (le * mrev[:, :, None]).sum(1) / mrev.sum(1, keepdim=True)
    cat = torch.cat([g1, ga, gm, ge, ae], 1)
    return cat @ P['y/kernel'] + P['y/bias'], cat @ P['cls/kernel'] + P['cls/bias']


def loss(out, logits, rows):
    t, c = torch.tensor(y[rows]).double(), torch.tensor(cls[rows]).long()
    return ((out - t) ** 2).mean() + 0.5 * F.cross_entropy(logits, c)


oracle.sgd(P, lambda rows, epoch: loss(*forward(rows), rows), N, B, LR,
           must_move=lambda k: True)  # every tensor must train
oracle.finish()
