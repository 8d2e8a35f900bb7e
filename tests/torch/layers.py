#!/usr/bin/python3
"""layers.py — the new layers cross-checked against PyTorch: the same
network (embedding, layer_norm, batch_norm, dropout, a shared tower, a
frozen layer, reshape and a dense on the last axis, two heads), the same
initial weights (written with h5py, given to mimo with --init), the same
batches and the same plain-SGD steps; then every parameter tensor, the
moving statistics, and the first step's head outputs are compared to
1e-4 relative. Dropout's masks are mimo's own generator, rebuilt here
(splitmix64 keyed by seed, epoch, the layer's name and the sample's global
row), so the trajectories are the same step for step.

Usage: layers.py MIMO_BINARY WORKDIR   (exit 0: all tensors match)
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

N, B, STEPS, LR, SEED = 48, 16, 6, 0.05, 9
rs = np.random.RandomState(1)
num = rs.randn(N, 6).astype('f4')
num2 = rs.randn(N, 6).astype('f4')
ids = rs.randint(0, 10, size=(N, 3)).astype('i4')
click = (rs.rand(N, 1) < 0.5).astype('f4')
dwell = rs.randn(N, 2).astype('f4')
with h5py.File('data.h5', 'w') as f:
    for k, v in dict(num=num, num2=num2, ids=ids, click=click, dwell=dwell).items():
        f[k] = v

CONFIG = f"""
inputs:
  num:  {{shape: 6}}
  num2: {{shape: 6}}
  ids:  {{shape: 3, dtype: int32}}
layers:
  emb:  {{type: embedding, input_dim: 10, output_dim: 4, from: ids}}
  flat: {{type: flatten, from: emb}}
  ln:   {{type: layer_norm, epsilon: 0.001, from: flat}}
  h:    {{type: dense, units: 8, use_bias: false, from: num}}
  bn:   {{type: batch_norm, momentum: 0.9, epsilon: 0.001, from: h}}
  act:  {{type: activation, activation: relu, from: bn}}
  dr:   {{type: dropout, rate: 0.25, from: act}}
  ta:   {{type: dense, units: 5, activation: tanh, from: num}}
  tb:   {{type: dense, shares: ta, from: num2}}
  fz:   {{type: dense, units: 4, trainable: false, from: ln}}
  cat:  {{type: concat, from: [dr, ta, tb, fz]}}
  r:    {{type: reshape, target_shape: [2, 11], from: cat}}
  d2:   {{type: dense, units: 3, activation: tanh, from: r}}
  f2:   {{type: flatten, from: d2}}
  click: {{type: dense, units: 1, activation: sigmoid, from: f2}}
  dwell: {{type: dense, units: 2, from: cat}}
outputs:
  click: {{loss: binary_crossentropy}}
  dwell: {{loss: mse, weight: 0.5}}
train:
  optimizer: {{type: sgd, lr: {LR}}}
  batch_size: {B}
  epochs: 2
  shuffle: false
  seed: {SEED}
  checkpoint: {{every_epochs: 0, save_best: false}}
data: {{train: data.h5}}
"""
open('net.yaml', 'w').write(CONFIG)

# ---- the same initial weights for both -------------------------------------
init = {
    'emb/embeddings': rs.uniform(-0.5, 0.5, (10, 4)),
    'ln/gamma': 1 + 0.1 * rs.randn(12), 'ln/beta': 0.1 * rs.randn(12),
    'h/kernel': rs.randn(6, 8) * 0.4,
    'bn/gamma': 1 + 0.1 * rs.randn(8), 'bn/beta': 0.1 * rs.randn(8),
    'bn/moving_mean': np.zeros(8), 'bn/moving_variance': np.ones(8),
    'ta/kernel': rs.randn(6, 5) * 0.4, 'ta/bias': 0.1 * rs.randn(5),
    'fz/kernel': rs.randn(12, 4) * 0.3, 'fz/bias': 0.1 * rs.randn(4),
    'd2/kernel': rs.randn(11, 3) * 0.3, 'd2/bias': 0.1 * rs.randn(3),
    'click/kernel': rs.randn(6, 1) * 0.3, 'click/bias': np.zeros(1),
    'dwell/kernel': rs.randn(22, 2) * 0.3, 'dwell/bias': np.zeros(2),
}
with h5py.File('init.h5', 'w') as f:
    for k, v in init.items():
        f['params/' + k] = np.asarray(v, 'f4')
init = {k: np.asarray(v, 'f4').astype('f8') for k, v in init.items()}

subprocess.run([MIMO, 'train', 'net.yaml', '--out', 'run', '--init', 'init.h5',
                '--quiet', '--overwrite', '--set', 'train.checkpoint.every_steps=1',
                '--set', 'train.checkpoint.keep=100'], check=True)

# ---- mimo's dropout masks ----------------------------------------------------
M64 = (1 << 64) - 1


def splitmix64(x):
    x = (x + 0x9e3779b97f4a7c15) & M64
    x = ((x ^ (x >> 30)) * 0xbf58476d1ce4e5b9) & M64
    x = ((x ^ (x >> 27)) * 0x94d049bb133111eb) & M64
    return x ^ (x >> 31)


def fnv1a(s):
    h = 0xcbf29ce484222325
    for c in s.encode():
        h = ((h ^ c) * 0x100000001b3) & M64
    return h


def mask(layer, epoch, row, rate, w):
    k = splitmix64(SEED ^ splitmix64(epoch + 1))
    k = splitmix64(k ^ fnv1a(layer))
    k = splitmix64(k ^ row)
    cut = int(rate * 4294967296.0)
    m = np.zeros(w)
    for j in range(0, w, 2):
        z = splitmix64((k + (j // 2) * 0xd1342543de82ef95) & M64)
        m[j] = (z >> 32) >= cut
        if j + 1 < w:
            m[j + 1] = (z & 0xffffffff) >= cut
    return m / (1 - rate)


# ---- the reference network -------------------------------------------------
P = {k: torch.tensor(v, requires_grad=not k.startswith('fz/') and 'moving' not in k)
     for k, v in init.items()}


def forward(rows, epoch):
    x_num, x_num2 = torch.tensor(num[rows]).double(), torch.tensor(num2[rows]).double()
    x_ids = torch.tensor(ids[rows]).long()
    e = P['emb/embeddings'][x_ids].reshape(len(rows), 12)
    mu, var = e.mean(1, keepdim=True), e.var(1, unbiased=False, keepdim=True)
    ln = (e - mu) / torch.sqrt(var + 1e-3) * P['ln/gamma'] + P['ln/beta']
    h = x_num @ P['h/kernel']
    bm, bv = h.mean(0), h.var(0, unbiased=False)
    with torch.no_grad():
        P['bn/moving_mean'].mul_(0.9).add_(0.1 * bm)
        P['bn/moving_variance'].mul_(0.9).add_(0.1 * bv)
    bn = (h - bm) / torch.sqrt(bv + 1e-3) * P['bn/gamma'] + P['bn/beta']
    m = torch.tensor(np.stack([mask('dr', epoch, r, 0.25, 8) for r in rows]))
    dr = torch.relu(bn) * m
    ta = torch.tanh(x_num @ P['ta/kernel'] + P['ta/bias'])
    tb = torch.tanh(x_num2 @ P['ta/kernel'] + P['ta/bias'])
    fz = ln @ P['fz/kernel'] + P['fz/bias']
    cat = torch.cat([dr, ta, tb, fz], 1)
    d2 = torch.tanh(cat.reshape(-1, 2, 11) @ P['d2/kernel'] + P['d2/bias'])
    c = torch.sigmoid(d2.reshape(-1, 6) @ P['click/kernel'] + P['click/bias'])
    d = cat @ P['dwell/kernel'] + P['dwell/bias']
    return c, d


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
        assert 'tb' not in f['params'], 'the shared tower is stored once'


step = 0
for epoch in range(2):
    for s in range(N // B):
        rows = list(range(s * B, (s + 1) * B))
        c, d = forward(rows, epoch)
        L = loss(c, d, rows)
        for p in P.values():
            if p.grad is not None:
                p.grad = None
        L.backward()
        with torch.no_grad():
            for k, p in P.items():
                if p.requires_grad:
                    p -= LR * p.grad
        step += 1
        compare(step, f'run/checkpoints/ckpt-{step:012d}.h5')
print(f'{step} steps compared: {"all tensors match" if not bad else f"{bad} mismatches"}')
sys.exit(1 if bad else 0)
