#!/usr/bin/python3
"""mgda.py — train.task_balancing: mgda_ub cross-checked against PyTorch:
MGDA-UB (Sener & Koltun, NeurIPS 2018) written out in float64 on the same
network, weights and batches as pcgrad.py (a layer t shared by three
heads; missing labels, sample and class weights): each head's gradient
at the shared representation t by per-head torch.autograd.grad, their
Gram matrix over the batch, the min-norm weights alpha by the published
solver (MinNormSolver.find_min_norm_element_FW, ported here as mimo
ports it), then one backward of sum_h alpha_h weight_h loss_h. Plain SGD,
8 steps: every parameter after every step within 1e-4 — on 1 rank and
on 2 and 3 ranks (those also within 1e-5 of 1 rank); the weights must
differ from 1/3 each, and the result from plain summing.

Usage: mgda.py MIMO_BINARY WORKDIR   (exit 0: all match)
"""
import csv
import os
import shutil
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
HEADS = ('reg', 'bin', 'cat')
WEIGHT = {'reg': 1.0, 'bin': 0.7, 'cat': 0.5}
rs = np.random.RandomState(5)
a = rs.randn(N, 5).astype('f4')
b = rs.randn(N, 3).astype('f4')
reg = rs.randn(N, 2).astype('f4')
reg[rs.rand(N) < 0.4] = np.nan
reg_w = rs.uniform(0, 2, N).astype('f4')
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
  t:   {{type: dense, units: 7, activation: tanh, from: hab}}
  tc:  {{type: concat, from: [t, hb]}}
  reg: {{type: dense, units: 2, from: t}}
  bin: {{type: dense, units: 1, activation: sigmoid, from: t}}
  cat: {{type: dense, units: 4, activation: softmax, from: tc}}
outputs:
  reg: {{loss: mse, weight: {WEIGHT['reg']}, missing: nan, sample_weight: reg_w}}
  bin: {{loss: binary_crossentropy, weight: {WEIGHT['bin']}, sample_weight: bin_w, class_weight: {{0: 1.0, 1: 3.0}}}}
  cat: {{loss: sparse_categorical_crossentropy, weight: {WEIGHT['cat']}, missing: -1, class_weight: {{0: 2.0, 3: 0.5}}}}
train:
  optimizer: {{type: sgd, lr: {LR}}}
  batch_size: {B}
  epochs: {EPOCHS}
  shuffle: false
  task_balancing: mgda_ub
  seed: 7
  checkpoint: {{every_steps: 1, keep: 100, every_epochs: 0, save_best: false}}
data: {{train: data.h5}}
"""
open('net.yaml', 'w').write(CONFIG)

init = {
    'ha/kernel': rs.randn(5, 6) * 0.5, 'ha/bias': 0.1 * rs.randn(6),
    'hb/kernel': rs.randn(3, 4) * 0.5, 'hb/bias': 0.1 * rs.randn(4),
    't/kernel': rs.randn(10, 7) * 0.5, 't/bias': 0.1 * rs.randn(7),
    'reg/kernel': rs.randn(7, 2) * 0.4, 'reg/bias': 0.1 * rs.randn(2),
    'bin/kernel': rs.randn(7, 1) * 0.4, 'bin/bias': 0.1 * rs.randn(1),
    'cat/kernel': rs.randn(11, 4) * 0.4, 'cat/bias': 0.1 * rs.randn(4),
}
with h5py.File('init.h5', 'w') as f:
    for k, v in init.items():
        f['params/' + k] = np.asarray(v, 'f4')


def forward(P, rows):
    xa, xb = torch.tensor(a[rows]).double(), torch.tensor(b[rows]).double()
    ha = torch.tanh(xa @ P['ha/kernel'] + P['ha/bias'])
    hb = torch.relu(xb @ P['hb/kernel'] + P['hb/bias'])
    t = torch.tanh(torch.cat([ha, hb], 1) @ P['t/kernel'] + P['t/bias'])
    tc = torch.cat([t, hb], 1)
    return t, {'reg': t @ P['reg/kernel'] + P['reg/bias'],
               'bin': torch.sigmoid(t @ P['bin/kernel'] + P['bin/bias']),
               'cat': torch.softmax(tc @ P['cat/kernel'] + P['cat/bias'], 1)}


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





def from2(v11, v12, v22):
    """Sener & Koltun's _min_norm_element_from2: (gamma, cost)."""
    if v12 >= v11:
        return 0.999, v11
    if v12 >= v22:
        return 0.001, v22
    gamma = -1.0 * ((v12 - v22) / (v11 + v22 - 2 * v12))
    return gamma, v22 + gamma * (v12 - v22)


def min_norm(M):
    """find_min_norm_element_FW on the Gram matrix M."""
    T = len(M)
    dmin, best = 1e8, (0, 1, 1.0)
    for i in range(T):
        for j in range(i + 1, T):
            c, d = from2(M[i][i], M[i][j], M[j][j])
            if d < dmin:
                dmin, best = d, (i, j, c)
    a = np.zeros(T)
    a[best[0]], a[best[1]] = best[2], 1 - best[2]
    if T < 3:
        return a
    for _ in range(250):
        Ma = M @ a
        t = int(np.argmin(Ma))
        nc, _ = from2(a @ Ma, a @ M[:, t], M[t, t])
        na = nc * a
        na[t] += 1 - nc
        if np.sum(np.abs(na - a)) < 1e-5:
            return a
        a = na
    return a


def reference(balance):
    P = {k: torch.tensor(np.asarray(v, 'f4').astype('f8'), requires_grad=True)
         for k, v in init.items()}
    steps, alphas = [], []
    for epoch in range(EPOCHS):
        for s in range(N // B):
            rows = list(range(s * B, (s + 1) * B))
            t, out = forward(P, rows)
            sums = head_sums(out, rows)
            terms = [WEIGHT[h] * sums[h][0] / sums[h][1] for h in HEADS]
            if balance:
                g = [torch.autograd.grad(x, t, retain_graph=True)[0].reshape(-1).numpy()
                     for x in terms]
                alpha = min_norm(np.array([[x @ y for y in g] for x in g]))
            else:
                alpha = np.ones(3)
            alphas.append(alpha)
            for p in P.values():
                p.grad = None
            sum(float(alpha[i]) * x for i, x in enumerate(terms)).backward()
            with torch.no_grad():
                for p in P.values():
                    p -= LR * p.grad
            steps.append({k: v.detach().numpy().copy() for k, v in P.items()})
    return steps, alphas


want, alphas = reference(True)
plain, _ = reference(False)
print('  alpha at the first and last steps:', np.round(alphas[0], 4), np.round(alphas[-1], 4))
bad = 0 if max(np.max(np.abs(a - 1 / 3)) for a in alphas) > 0.05 else 1
diff = max(np.max(np.abs(want[-1][k] - plain[-1][k])) / np.max(np.abs(plain[-1][k])) for k in init)
if diff < 1e-3:
    print(f'MGDA-UB moved the parameters no differently from the sum ({diff:.1e})')
    bad += 1
runs = [('one', [])]
if shutil.which('mpirun'):  # as tests/cli/lib.bash runs it
    runs += [('np2', ['@2']), ('np3', ['@3'])]
    os.environ.update(OMPI_ALLOW_RUN_AS_ROOT='1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM='1',
                      OMPI_MCA_rmaps_base_oversubscribe='1',
                      OMPI_MCA_btl_vader_single_copy_mechanism='none')
    # under ASan: no leak checks under mpirun (MPI's own), as lib.bash
    asan = os.environ.get('ASAN_OPTIONS')
    os.environ['ASAN_OPTIONS'] = (asan + ':' if asan else '') + 'detect_leaks=0'
for run, extra in runs:
    args = [MIMO, 'train', 'net.yaml', '--out', run, '--init', 'init.h5', '--quiet',
            '--overwrite']
    if extra and extra[0].startswith('@'):
        args = ['timeout', '-k', '5', '120', 'mpirun', '-np', extra[0][1:], '-x',
                'OMP_NUM_THREADS=1'] + args + ['--check-every', '1']
    else:
        args += extra
    subprocess.run(args, check=True)
    worst = worst1 = 0
    for i, ref in enumerate(want):
        with h5py.File(f'{run}/checkpoints/ckpt-{i + 1:012d}.h5') as f:
            got = {k: f['params/' + k][()].astype('f8') for k in ref}
        if run != 'one':
            with h5py.File(f'one/checkpoints/ckpt-{i + 1:012d}.h5') as f:
                for k in ref:
                    x = f['params/' + k][()].astype('f8')
                    worst1 = max(worst1, np.max(np.abs(got[k] - x)) / (np.max(np.abs(x)) + 1e-12))
        for k, v in ref.items():
            rel = np.max(np.abs(got[k] - v)) / (np.max(np.abs(v)) + 1e-12)
            worst = max(worst, rel)
            if rel > 1e-4:
                print(f'{run} step {i + 1}: {k}: relative difference {rel:.2e}')
                bad += 1
    if worst1 > 1e-5:
        print(f'{run}: {worst1:.2e} from 1 rank')
        bad += 1
    print(f'  {run:5s} max rel diff {worst:.1e} from PyTorch, {worst1:.1e} from 1 rank')
print(f'{"every parameter matches" if not bad else f"{bad} mismatches"}')
sys.exit(1 if bad else 0)
