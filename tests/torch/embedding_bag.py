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
import subprocess
import sys

import h5py
import numpy as np

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # CTest reports a skip (SKIP_RETURN_CODE 77)
    print('SKIP: python3-torch is not installed (apt-get install python3-torch)')
    sys.exit(77)

torch.set_default_dtype(torch.float64)  # the reference in double
MIMO, WORK = sys.argv[1], sys.argv[2]
os.makedirs(WORK, exist_ok=True)
os.chdir(WORK)

N, B, STEPS, LR, V, L = 48, 12, 8, 0.2, 12, 6
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
with h5py.File('data.h5', 'w') as f:
    for k, v in dict(ids=ids, w=w, num=num, click=click, dwell=dwell).items():
        f[k] = v

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
with h5py.File('init.h5', 'w') as f:
    for k, v in init.items():
        f['params/' + k] = np.asarray(v, 'f4')
init = {k: np.asarray(v, 'f4').astype('f8') for k, v in init.items()}

subprocess.run([MIMO, 'train', 'net.yaml', '--out', 'run', '--init', 'init.h5',
                '--quiet', '--overwrite', '--set', 'train.checkpoint.every_steps=1',
                '--set', 'train.checkpoint.keep=100'], check=True)

P = {k: torch.tensor(v, requires_grad=True) for k, v in init.items()}


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


step, moved = 0, 0
for epoch in range(2):
    for s in range(N // B):
        rows = list(range(s * B, (s + 1) * B))
        c, d = forward(rows)
        L_ = loss(c, d, rows)
        for p in P.values():
            p.grad = None
        L_.backward()
        with torch.no_grad():
            for k, p in P.items():
                p -= LR * p.grad
        step += 1
        compare(step, f'run/checkpoints/ckpt-{step:012d}.h5')
for k in ('bs', 'bm', 'bx'):  # the tables did train (and row 0, padding, did not)
    e = P[k + '/embeddings'].detach().numpy()
    moved += np.abs(e - init[k + '/embeddings']).max() > 1e-3
    assert np.array_equal(e[0], init[k + '/embeddings'][0]), f'{k}: padding row moved'
assert moved == 3, 'every table must have trained'
print(f'{step} steps compared: {"all tensors match" if not bad else f"{bad} mismatches"}')
sys.exit(1 if bad else 0)
