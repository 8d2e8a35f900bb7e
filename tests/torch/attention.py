#!/usr/bin/python3
"""attention.py — multi_head_attention cross-checked against PyTorch:
causal self-attention (query = value = key) on an embedding with
mask_zero and dropout on the attention weights, cross attention with a
separate key (a dense layer on the embedding: the same mask) and
value_dim, output_shape of their own, and a causal one without biases on
a plain sequence. The same initial weights (written with h5py, given to
mimo with --init), the same batches and the same plain-SGD steps; every
parameter tensor after every step must agree with float64 PyTorch to
1e-4 relative.

The attention is written out here in Keras' layout (query_kernel (d, H,
Dk), ..., output_kernel (H, Dv, d_out)); nn.MultiheadAttention packs its
weights otherwise. Masked keys get no weight (a query with no key left
gets none at all); dropout's masks are drawn here as mimo draws them
(src/core/layers/dropout.c: splitmix64 keyed by seed, epoch, the layer's
name and the sample's global row), so this also checks that the draws
are dropout's own and land on the weights after the softmax.

Usage: attention.py MIMO_BINARY WORKDIR   (exit 0: all tensors match;
77: PyTorch is not installed)
"""
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import sgd_oracle as oracle  # noqa: E402  the harness: train, compare, finish

torch = oracle.torch_or_skip()
F = torch.nn.functional

N, B, LR, T, L, SEED, RATE = 40, 10, 0.1, 6, 7, 4, 0.25
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
  emb: {{type: embedding, input_dim: 12, output_dim: 4, mask_zero: true, from: tok}}
  sa:  {{type: MultiHeadAttention, num_heads: 2, key_dim: 3, use_causal_mask: true, dropout: {RATE}, from: [emb, emb]}}
  ga:  {{type: global_avg_pool1d, from: sa}}
  kx:  {{type: dense, units: 5, activation: tanh, from: emb}}
  ca:  {{type: multi_head_attention, num_heads: 2, key_dim: 2, value_dim: 3, output_shape: 4, from: [ser, emb, kx]}}
  fc:  {{type: flatten, from: ca}}
  nb:  {{type: multi_head_attention, num_heads: 3, key_dim: 2, use_bias: false, use_causal_mask: true, from: [ser, ser]}}
  gm:  {{type: global_max_pool1d, from: nb}}
  cat: {{type: concat, from: [ga, fc, gm]}}
  y:   {{type: dense, units: 1, from: cat}}
  cls: {{type: dense, units: 3, activation: softmax, from: cat}}
outputs:
  y:   {{loss: mse}}
  cls: {{loss: sparse_categorical_crossentropy, weight: 0.5}}
train:
  optimizer: {{type: sgd, lr: {LR}}}
  batch_size: {B}
  epochs: 2
  seed: {SEED}
  shuffle: false
  checkpoint: {{every_epochs: 0, save_best: false}}
data: {{train: data.h5}}
"""
open('net.yaml', 'w').write(CONFIG)


def w(*shape, s=0.4):
    return rs.randn(*shape) * s


def mha_init(name, dq, dv, dk, H, Dk, Dv, do, bias=True):
    t = {name + '/query_kernel': w(dq, H, Dk), name + '/key_kernel': w(dk, H, Dk),
         name + '/value_kernel': w(dv, H, Dv), name + '/output_kernel': w(H, Dv, do)}
    if bias:
        t.update({name + '/query_bias': w(H, Dk, s=0.1), name + '/key_bias': w(H, Dk, s=0.1),
                  name + '/value_bias': w(H, Dv, s=0.1), name + '/output_bias': w(do, s=0.1)})
    return t


init = {'emb/embeddings': w(12, 4, s=0.5), 'kx/kernel': w(4, 5), 'kx/bias': w(5, s=0.1)}
init.update(mha_init('sa', 4, 4, 4, 2, 3, 3, 4))
init.update(mha_init('ca', 3, 4, 5, 2, 2, 3, 4))
init.update(mha_init('nb', 3, 3, 3, 3, 2, 2, 3, bias=False))
init.update({'y/kernel': w(4 + T * 4 + 3, 1), 'y/bias': w(1, s=0.1),
             'cls/kernel': w(4 + T * 4 + 3, 3), 'cls/bias': w(3, s=0.1)})
P = oracle.train(init, env={'OMP_NUM_THREADS': '1'})

# ---- dropout's draws, as src/core/layers/dropout.c makes them -------------
M64 = (1 << 64) - 1


def splitmix64(x):
    x = (x + 0x9e3779b97f4a7c15) & M64
    x = ((x ^ (x >> 30)) * 0xbf58476d1ce4e5b9) & M64
    x = ((x ^ (x >> 27)) * 0x94d049bb133111eb) & M64
    return x ^ (x >> 31)


def layer_key(name):
    h = 0xcbf29ce484222325  # FNV-1a
    for c in name.encode():
        h = ((h ^ c) * 0x100000001b3) & M64
    return h


def drop_mask(name, epoch, row, width):
    k = splitmix64(SEED ^ splitmix64(epoch + 1))
    k = splitmix64(k ^ layer_key(name))
    k = splitmix64(k ^ row)
    cut, keep = int(RATE * 4294967296.0), 1 / (1 - RATE)
    m = np.zeros(width)
    for j in range(0, width, 2):
        z = splitmix64((k + (j // 2) * 0xd1342543de82ef95) & M64)
        m[j] = keep if (z >> 32) >= cut else 0
        if j + 1 < width:
            m[j + 1] = keep if (z & 0xffffffff) >= cut else 0
    return m


def mha(name, xq, xv, xk, kmask=None, causal=False, bias=True, drop=None):
    """Keras' MultiHeadAttention; kmask (b, Tv) 1: a key seen; drop: the
    (b, H, Tq, Tv) scaled dropout mask on the weights."""
    Wq, Wk, Wv = P[name + '/query_kernel'], P[name + '/key_kernel'], P[name + '/value_kernel']
    q = torch.einsum('btd,dhk->bthk', xq, Wq)
    k = torch.einsum('btd,dhk->bthk', xk, Wk)
    v = torch.einsum('btd,dhk->bthk', xv, Wv)
    if bias:
        q, k, v = q + P[name + '/query_bias'], k + P[name + '/key_bias'], v + P[name + '/value_bias']
    Dk = q.shape[-1]
    s = torch.einsum('bihk,bjhk->bhij', q, k) / math.sqrt(Dk)
    Tq, Tv = s.shape[-2], s.shape[-1]
    allowed = torch.ones(xq.shape[0], 1, Tq, Tv, dtype=torch.bool)
    if kmask is not None:
        allowed = allowed & (kmask[:, None, None, :] > 0)
    if causal:
        allowed = allowed & torch.tril(torch.ones(Tq, Tv, dtype=torch.bool))
    s = torch.where(allowed, s, torch.full_like(s, -1e300))
    e = torch.exp(s - s.amax(-1, keepdim=True)) * allowed
    den = e.sum(-1, keepdim=True)
    p = e / torch.where(den > 0, den, torch.ones_like(den))  # no key: no weight
    a = p * drop if drop is not None else p
    c = torch.einsum('bhij,bjhv->bihv', a, v)
    out = torch.einsum('bihv,hvo->bio', c, P[name + '/output_kernel'])
    return out + P[name + '/output_bias'] if bias else out


def forward(rows, epoch):
    x = torch.tensor(ser[rows]).double()
    ids = torch.tensor(tok[rows]).long()
    mask = (ids != 0).double()
    emb = P['emb/embeddings'][ids]
    dm = torch.tensor(np.stack([drop_mask('sa', epoch, r, 2 * L * L) for r in rows])).reshape(
        len(rows), 2, L, L)
    sa = mha('sa', emb, emb, emb, mask, causal=True, drop=dm)
    ga = (sa * mask[:, :, None]).sum(1) / mask.sum(1, keepdim=True)  # sa keeps emb's mask
    kx = torch.tanh(emb @ P['kx/kernel'] + P['kx/bias'])
    ca = mha('ca', x, emb, kx, mask)
    nb = mha('nb', x, x, x, causal=True, bias=False)
    cat = torch.cat([ga, ca.reshape(len(rows), -1), nb.amax(1)], 1)
    return cat @ P['y/kernel'] + P['y/bias'], cat @ P['cls/kernel'] + P['cls/bias']


def loss(out, logits, rows):
    t, c = torch.tensor(y[rows]).double(), torch.tensor(cls[rows]).long()
    return ((out - t) ** 2).mean() + 0.5 * F.cross_entropy(logits, c)


# key_bias: the softmax cancels it, its gradient is 0 (Keras' too)
oracle.sgd(P, lambda rows, epoch: loss(*forward(rows, epoch), rows), N, B, LR,
           must_move=lambda k: not k.endswith('key_bias'))
oracle.finish()
