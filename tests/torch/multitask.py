#!/usr/bin/python3
"""multitask.py — missing labels, sample and class weights and learned task
weights cross-checked against PyTorch: a 2-input, 3-head graph whose
regression head has NaN-missing targets and sample weights, whose binary
head has class and sample weights, and whose categorical head has
-1-missing labels and class weights; rows 16-31 carry no regression label
at all (a whole batch without one). The same initial weights (h5py, given
to mimo with --init), the same batches, plain SGD; each head's loss is
sum(v * loss) / sum(v) over its labelled rows. Every parameter after every
step and each epoch's head losses must match to 1e-4 relative, with fixed
head weights and with loss_weighting: uncertainty (the s_h compared too).

Usage: multitask.py MIMO_BINARY WORKDIR   (exit 0: all match)
"""
import csv
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

N, B, EPOCHS, LR = 64, 16, 2, 0.1
WEIGHT = {'reg': 1.0, 'bin': 0.7, 'cat': 0.5}
rs = np.random.RandomState(4)
a = rs.randn(N, 5).astype('f4')
b = rs.randn(N, 3).astype('f4')
reg = rs.randn(N, 2).astype('f4')
reg[rs.rand(N) < 0.4] = np.nan
reg[16:32] = np.nan                                  # a batch without labels
reg_w = rs.uniform(0, 2, N).astype('f4')
reg_w[5] = 0
binl = (rs.rand(N, 1) < 0.3).astype('f4')
bin_w = rs.uniform(0.5, 1.5, N).astype('f4')
cat = rs.randint(0, 4, N).astype('i4')
cat[rs.rand(N) < 0.3] = -1
CW_BIN = {0: 1.0, 1: 3.0}
CW_CAT = {0: 2.0, 3: 0.5}
with h5py.File('data.h5', 'w') as f:
    for k, v in dict(a=a, b=b, reg=reg, reg_w=reg_w, bin=binl, bin_w=bin_w,
                     cat=cat).items():
        f[k] = v

CONFIG = f"""
inputs:
  a: {{shape: 5}}
  b: {{shape: 3}}
layers:
  ha:  {{type: dense, units: 6, activation: tanh, from: a}}
  hb:  {{type: dense, units: 4, activation: relu, from: b}}
  hab: {{type: concat, from: [ha, hb]}}
  reg: {{type: dense, units: 2, from: hab}}
  bin: {{type: dense, units: 1, activation: sigmoid, from: hab}}
  cat: {{type: dense, units: 4, activation: softmax, from: hb}}
outputs:
  reg: {{loss: mse, weight: {WEIGHT['reg']}, missing: nan, sample_weight: reg_w}}
  bin: {{loss: binary_crossentropy, weight: {WEIGHT['bin']}, sample_weight: bin_w, class_weight: {{0: 1.0, 1: 3.0}}}}
  cat: {{loss: sparse_categorical_crossentropy, weight: {WEIGHT['cat']}, missing: -1, class_weight: {{0: 2.0, 3: 0.5}}}}
train:
  optimizer: {{type: sgd, lr: {LR}}}
  batch_size: {B}
  epochs: {EPOCHS}
  shuffle: false
  checkpoint: {{every_steps: 1, keep: 100, every_epochs: 0, save_best: false}}
data: {{train: data.h5}}
"""
open('net.yaml', 'w').write(CONFIG)

init = {
    'ha/kernel': rs.randn(5, 6) * 0.5, 'ha/bias': 0.1 * rs.randn(6),
    'hb/kernel': rs.randn(3, 4) * 0.5, 'hb/bias': 0.1 * rs.randn(4),
    'reg/kernel': rs.randn(10, 2) * 0.4, 'reg/bias': 0.1 * rs.randn(2),
    'bin/kernel': rs.randn(10, 1) * 0.4, 'bin/bias': 0.1 * rs.randn(1),
    'cat/kernel': rs.randn(4, 4) * 0.4, 'cat/bias': 0.1 * rs.randn(4),
}
with h5py.File('init.h5', 'w') as f:
    for k, v in init.items():
        f['params/' + k] = np.asarray(v, 'f4')


def forward(P, rows):
    xa, xb = torch.tensor(a[rows]).double(), torch.tensor(b[rows]).double()
    ha = torch.tanh(xa @ P['ha/kernel'] + P['ha/bias'])
    hb = torch.relu(xb @ P['hb/kernel'] + P['hb/bias'])
    hab = torch.cat([ha, hb], 1)
    return {'reg': hab @ P['reg/kernel'] + P['reg/bias'],
            'bin': torch.sigmoid(hab @ P['bin/kernel'] + P['bin/bias']),
            'cat': torch.softmax(hb @ P['cat/kernel'] + P['cat/bias'], 1)}


def head_sums(out, rows):
    """Per head: (sum of v * per-row loss, sum of v) over labelled rows."""
    t = torch.tensor(reg[rows]).double()
    lab = ~torch.isnan(t).all(1)
    v = torch.tensor(reg_w[rows]).double() * lab
    per = ((out['reg'] - torch.nan_to_num(t)) ** 2).mean(1)
    sums = {'reg': ((v * per).sum(), v.sum())}
    t = torch.tensor(binl[rows]).double()[:, 0]
    v = torch.tensor(bin_w[rows]).double() * torch.where(t > 0.5, CW_BIN[1], CW_BIN[0])
    p = out['bin'][:, 0]
    per = -(t * torch.log(p) + (1 - t) * torch.log(1 - p))
    sums['bin'] = ((v * per).sum(), v.sum())
    lab_c = torch.tensor(cat[rows]).long()
    ok = lab_c >= 0
    cw = torch.tensor([CW_CAT.get(c, 1.0) for c in range(4)])
    v = torch.where(ok, cw[lab_c.clamp(min=0)], torch.zeros(()))
    per = -torch.log(out['cat'].gather(1, lab_c.clamp(min=0)[:, None])[:, 0])
    sums['cat'] = ((v * per).sum(), v.sum())
    return sums


def reference(uncertainty):
    """Per-step parameters and per-epoch head losses, as mimo defines them."""
    P = {k: torch.tensor(np.asarray(v, 'f4').astype('f8'), requires_grad=True)
         for k, v in init.items()}
    if uncertainty:
        P['loss_weighting/log_var'] = torch.zeros(3, requires_grad=True)
    steps, epochs = [], []
    for epoch in range(EPOCHS):
        acc = {h: [0.0, 0.0] for h in WEIGHT}
        for s in range(N // B):
            rows = list(range(s * B, (s + 1) * B))
            sums = head_sums(forward(P, rows), rows)
            total = 0
            for i, h in enumerate(WEIGHT):
                num, den = sums[h]
                acc[h][0] += float(num)
                acc[h][1] += float(den)
                if float(den) == 0:
                    continue  # no label in the batch: nothing at all
                if uncertainty:
                    sh = P['loss_weighting/log_var'][i]
                    total = total + torch.exp(-sh) * num / den + sh
                else:
                    total = total + WEIGHT[h] * num / den
            for p in P.values():
                p.grad = None
            total.backward()
            with torch.no_grad():
                for p in P.values():
                    if p.grad is not None:
                        p -= LR * p.grad
            steps.append({k: v.detach().numpy().copy() for k, v in P.items()})
        epochs.append({h: acc[h][0] / acc[h][1] for h in WEIGHT})
    return steps, epochs


bad = 0
for uncertainty in (False, True):
    run = 'uncertain' if uncertainty else 'fixed'
    args = [MIMO, 'train', 'net.yaml', '--out', run, '--init', 'init.h5', '--quiet',
            '--overwrite']
    if uncertainty:
        args += ['--set', 'train.loss_weighting=uncertainty']
    subprocess.run(args, check=True)
    steps, epochs = reference(uncertainty)
    for i, want in enumerate(steps):
        with h5py.File(f'{run}/checkpoints/ckpt-{i + 1:012d}.h5') as f:
            for k, v in want.items():
                got = f['params/' + k][()].astype('f8')
                rel = np.max(np.abs(got - v)) / (np.max(np.abs(v)) + 1e-12)
                if rel > 1e-4:
                    print(f'{run} step {i + 1}: {k}: relative difference {rel:.2e}')
                    bad += 1
                elif i + 1 == len(steps):
                    print(f'  {run:9s} {k:24s} max rel diff {rel:.1e}')
    hist = list(csv.DictReader(open(f'{run}/history.csv')))
    for e, want in enumerate(epochs):
        for h, v in want.items():
            got = float(hist[e][h + '_loss'])
            if abs(got - v) > 1e-4 * abs(v):
                print(f'{run} epoch {e + 1}: {h}_loss {got} vs {v}')
                bad += 1
    print(f'  {run}: epoch losses', {h: round(v, 6) for h, v in epochs[-1].items()})
    moved = steps[-1].get('loss_weighting/log_var')
    if uncertainty and (moved is None or np.any(moved == 0)):
        print('the learned s_h did not move:', moved)
        bad += 1
print(f'{"all parameters and losses match" if not bad else f"{bad} mismatches"}')
sys.exit(1 if bad else 0)
