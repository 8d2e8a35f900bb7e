#!/usr/bin/python3
"""bidirectional.py — Keras' Bidirectional, zero_output_for_mask and
keras_hub's PositionEmbedding cross-checked against PyTorch: bidirectional around gru and lstm with
every merge mode (concat, sum, ave, mul), every step's output (the
backward copy's sequence reversed to time order) and the last, the
wrapped layer going backwards itself, on a masked embedding (ids 0 are
padding: at the end, the start, the middle, all but one step) and on a
raw sequence; gru and lstm with zero_output_for_mask (a masked step's
output is zero, the state carried over; a conv1d reads those zeros into
its unmasked neighbours); position_embedding added to a sequence, and
on the masked embedding (the table's rows, the mask passed on to a
gru). The same initial weights (written with h5py,
given to mimo with --init), the same batches and the same plain-SGD
steps; every parameter tensor after every step must agree with float64
PyTorch to 1e-4 relative, and must have moved.

The recurrences are written out here in Keras' layouts (as in
sequence.py): gru with reset_after, gates [z, r, h], kernel (d, 3u),
recurrent_kernel (u, 3u), bias (2, 3u); lstm gates [i, f, c, o], bias
(4u); a bidirectional layer's tensors are forward_<name> and
backward_<name>.

Usage: bidirectional.py MIMO_BINARY WORKDIR   (exit 0: all tensors match;
77: PyTorch is not installed)
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import sgd_oracle as oracle  # noqa: E402  the harness: train, compare, finish

torch = oracle.torch_or_skip()
F = torch.nn.functional

N, B, LR, T, L = 40, 10, 0.1, 6, 7
rs = np.random.RandomState(4)
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
  emb: {{type: embedding, input_dim: 12, output_dim: 3, mask_zero: true, from: tok}}
  bg:  {{type: bidirectional, layer: {{type: gru, units: 3, return_sequences: true}}, from: emb}}
  bk:  {{type: conv1d, filters: 2, kernel_size: 3, padding: same, from: bg}}
  pk:  {{type: global_avg_pool1d, from: bk}}
  bl:  {{type: bidirectional, layer: {{type: lstm, units: 2}}, merge_mode: mul, from: emb}}
  bs:  {{type: Bidirectional, layer: {{type: GRU, units: 2, return_sequences: true, go_backwards: true}}, merge_mode: sum, from: emb}}
  ps:  {{type: global_avg_pool1d, from: bs}}
  zg:  {{type: gru, units: 3, return_sequences: true, zero_output_for_mask: true, from: emb}}
  zk:  {{type: conv1d, filters: 2, kernel_size: 2, padding: causal, from: zg}}
  pz:  {{type: global_avg_pool1d, from: zk}}
  zl:  {{type: lstm, units: 2, go_backwards: true, zero_output_for_mask: true, from: emb}}
  pos: {{type: position_embedding, sequence_length: 9, from: ser}}
  sp:  {{type: add, from: [ser, pos]}}
  ba:  {{type: bidirectional, layer: {{type: lstm, units: 2, return_sequences: true}}, merge_mode: ave, from: sp}}
  pa:  {{type: global_avg_pool1d, from: ba}}
  pq:  {{type: PositionEmbedding, sequence_length: {L}, from: emb}}
  gq:  {{type: gru, units: 2, from: pq}}
  cat: {{type: concat, from: [pk, bl, ps, pz, zl, pa, gq]}}
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


def gru_init(name, d, u):
    return {name + 'kernel': w(d, 3 * u), name + 'recurrent_kernel': w(u, 3 * u),
            name + 'bias': w(2, 3 * u, s=0.1)}


def lstm_init(name, d, u):
    return {name + 'kernel': w(d, 4 * u), name + 'recurrent_kernel': w(u, 4 * u),
            name + 'bias': w(4 * u, s=0.1)}


init = {'emb/embeddings': w(12, 3, s=0.5)}
init.update(gru_init('bg/forward_', 3, 3))
init.update(gru_init('bg/backward_', 3, 3))
init.update({'bk/kernel': w(3, 6, 2), 'bk/bias': w(2, s=0.1)})
init.update(lstm_init('bl/forward_', 3, 2))
init.update(lstm_init('bl/backward_', 3, 2))
init.update(gru_init('bs/forward_', 3, 2))
init.update(gru_init('bs/backward_', 3, 2))
init.update(gru_init('zg/', 3, 3))
init.update({'zk/kernel': w(2, 3, 2), 'zk/bias': w(2, s=0.1)})
init.update(lstm_init('zl/', 3, 2))
init.update(lstm_init('ba/forward_', 3, 2))
init.update(lstm_init('ba/backward_', 3, 2))
init.update({'pos/embeddings': w(9, 3), 'pq/embeddings': w(L, 3)})
init.update(gru_init('gq/', 3, 2))
width = 2 + 2 + 2 + 2 + 2 + 2 + 2
init.update({'y/kernel': w(width, 1), 'y/bias': w(1, s=0.1),
             'cls/kernel': w(width, 3), 'cls/bias': w(3, s=0.1)})
P = oracle.train(init, env={'OMP_NUM_THREADS': '1'})


def conv1d(x, name, left, right):
    """x (b, T, c) as mimo; kernel (k, c_in, c_out) as Keras."""
    k = P[name + '/kernel'].permute(2, 1, 0)  # (c_out, c_in, k)
    return F.conv1d(F.pad(x.transpose(1, 2), (left, right)), k, P[name + '/bias']).transpose(1, 2)


def rnn(x, name, cell, mask=None, seq=False, back=False, zero=False):
    """Keras' RNN over x (b, T, d): cell(xt, h, c) -> (h, c); a masked step
    carries h and c over and outputs the previous h, or zeros (zero:
    zero_output_for_mask); every step's output in the order run, or the
    last step's."""
    W, U, b = P[name + 'kernel'], P[name + 'recurrent_kernel'], P[name + 'bias']
    u = U.shape[0]
    mask = torch.ones(x.shape[:2]) if mask is None else mask
    h, c, out = torch.zeros(x.shape[0], u), torch.zeros(x.shape[0], u), []
    order = range(x.shape[1] - 1, -1, -1) if back else range(x.shape[1])
    for t in order:
        m = mask[:, t:t + 1]
        hn, cn = cell(x[:, t], h, c, W, U, b, u)
        h, c = m * hn + (1 - m) * h, m * cn + (1 - m) * c
        out.append(m * h if zero else h)
    return torch.stack(out, 1) if seq else out[-1]


def gru_cell(xt, h, c, W, U, b, u):
    xp, hp = xt @ W + b[0], h @ U + b[1]
    z = torch.sigmoid(xp[:, :u] + hp[:, :u])
    r = torch.sigmoid(xp[:, u:2 * u] + hp[:, u:2 * u])
    hh = torch.tanh(xp[:, 2 * u:] + r * hp[:, 2 * u:])
    return z * h + (1 - z) * hh, c


def lstm_cell(xt, h, c, W, U, b, u):
    g = xt @ W + h @ U + b
    i, f = torch.sigmoid(g[:, :u]), torch.sigmoid(g[:, u:2 * u])
    cc, o = torch.tanh(g[:, 2 * u:3 * u]), torch.sigmoid(g[:, 3 * u:])
    cn = f * c + i * cc
    return o * torch.tanh(cn), cn


def bidirectional(x, name, cell, mode, mask=None, seq=False, back=False):
    """Keras' Bidirectional: the forward copy as configured, the backward
    one with go_backwards flipped, both zero_output_for_mask = seq; the
    backward sequence reversed to time order; merged."""
    f = rnn(x, name + '/forward_', cell, mask, seq, back, zero=seq)
    b = rnn(x, name + '/backward_', cell, mask, seq, not back, zero=seq)
    if seq:
        b = b.flip(1)
    return {'concat': lambda: torch.cat([f, b], -1), 'sum': lambda: f + b,
            'ave': lambda: (f + b) / 2, 'mul': lambda: f * b}[mode]()


def masked_mean(v, m):
    return (v * m[:, :, None]).sum(1) / m.sum(1, keepdim=True)


def forward(rows):
    x = torch.tensor(ser[rows]).double()
    ids = torch.tensor(tok[rows]).long()
    mask = (ids != 0).double()
    emb = P['emb/embeddings'][ids]
    bg = bidirectional(emb, 'bg', gru_cell, 'concat', mask, seq=True)
    pk = masked_mean(conv1d(bg, 'bk', 1, 1), mask)
    bl = bidirectional(emb, 'bl', lstm_cell, 'mul', mask)
    bs = bidirectional(emb, 'bs', gru_cell, 'sum', mask, seq=True, back=True)
    ps = masked_mean(bs, mask)  # the input's mask, unreversed, as Keras
    zg = rnn(emb, 'zg/', gru_cell, mask, seq=True, zero=True)
    pz = masked_mean(conv1d(zg, 'zk', 1, 0), mask)
    zl = rnn(emb, 'zl/', lstm_cell, mask, back=True, zero=True)
    sp = x + P['pos/embeddings'][:T]  # the table's first T rows, every sample
    pa = bidirectional(sp, 'ba', lstm_cell, 'ave', seq=True).mean(1)
    gq = rnn(P['pq/embeddings'].expand(len(rows), L, 3), 'gq/', gru_cell, mask)
    cat = torch.cat([pk, bl, ps, pz, zl, pa, gq], 1)
    return cat @ P['y/kernel'] + P['y/bias'], cat @ P['cls/kernel'] + P['cls/bias']


def loss(out, logits, rows):
    t, c = torch.tensor(y[rows]).double(), torch.tensor(cls[rows]).long()
    return ((out - t) ** 2).mean() + 0.5 * F.cross_entropy(logits, c)


oracle.sgd(P, lambda rows, epoch: loss(*forward(rows), rows), N, B, LR,
           must_move=lambda k: True)  # every tensor must train
oracle.finish()
