#!/usr/bin/python3
"""graddiag.py — train.grad_diagnostics cross-checked against PyTorch: each
head's gradient with respect to the shared representation, written out
with per-head torch.autograd.grad in float64 on the same network, weights
and batches. The network: two input branches, a shared layer t under
three heads — reg and bin read t, cat reads concat(t, hb) — so t is where
the heads part (hb, which also feeds the shared layers, is not), with
missing labels, sample and class weights. Plain SGD, two epochs; per
epoch, the history's <head>_grad_norm (the root mean square over steps of
|dL_h/dt| over the batch) and cos_<a>_<b> (sum of dot products over the
root of the sums of squared norms), and every parameter, must match:
norms to 1e-4 relative, cosines to 1e-4 absolute, parameters to 1e-4.
Also with train.accumulate: 2 (the same values: the gradient is the
global batch's) and on 2 ranks when mpirun is there.

Usage: graddiag.py MIMO_BINARY WORKDIR   (exit 0: all match)
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
  grad_diagnostics: true
  checkpoint: {{every_epochs: 1, keep: 10, save_best: false}}
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


def reference():
    """Per-epoch parameters, norms and cosines, as mimo defines them."""
    P = {k: torch.tensor(np.asarray(v, 'f4').astype('f8'), requires_grad=True)
         for k, v in init.items()}
    epochs = []
    for epoch in range(EPOCHS):
        G, steps = np.zeros((3, 3)), 0
        for s in range(N // B):
            rows = list(range(s * B, (s + 1) * B))
            t, out = forward(P, rows)
            sums = head_sums(out, rows)
            terms = [WEIGHT[h] * sums[h][0] / sums[h][1] for h in HEADS
                     if float(sums[h][1]) > 0]
            # each head's own gradient at the shared tensor t (B, 7)
            g = [torch.autograd.grad(WEIGHT[h] * sums[h][0] / sums[h][1], t,
                                     retain_graph=True)[0].numpy().ravel()
                 for h in HEADS]
            G += np.array([[x @ y for y in g] for x in g])
            steps += 1
            for p in P.values():
                p.grad = None
            sum(terms).backward()
            with torch.no_grad():
                for p in P.values():
                    p -= LR * p.grad
        norm = {h: np.sqrt(G[i, i] / steps) for i, h in enumerate(HEADS)}
        cos = {(HEADS[i], HEADS[j]): G[i, j] / np.sqrt(G[i, i] * G[j, j])
               for i in range(3) for j in range(i + 1, 3)}
        epochs.append((norm, cos, {k: v.detach().numpy().copy() for k, v in P.items()}))
    return epochs


want = reference()
runs = [('one', []), ('acc2', ['--set', 'train.accumulate=2'])]
if shutil.which('mpirun'):  # as tests/cli/lib.bash runs it
    runs.append(('np2', ['@mpi']))
    os.environ.update(OMPI_ALLOW_RUN_AS_ROOT='1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM='1',
                      OMPI_MCA_rmaps_base_oversubscribe='1',
                      OMPI_MCA_btl_vader_single_copy_mechanism='none')
    # under ASan: no leak checks under mpirun (MPI's own), as lib.bash
    asan = os.environ.get('ASAN_OPTIONS')
    os.environ['ASAN_OPTIONS'] = (asan + ':' if asan else '') + 'detect_leaks=0'
bad = 0
for run, extra in runs:
    args = [MIMO, 'train', 'net.yaml', '--out', run, '--init', 'init.h5', '--quiet',
            '--overwrite']
    if extra == ['@mpi']:
        args = ['timeout', '-k', '5', '120', 'mpirun', '-np', '2', '-x',
                'OMP_NUM_THREADS=1'] + args
    else:
        args += extra
    subprocess.run(args, check=True)
    hist = list(csv.DictReader(open(f'{run}/history.csv')))
    for e, (norm, cos, params) in enumerate(want):
        for h, v in norm.items():
            got = float(hist[e][h + '_grad_norm'])
            if not abs(got - v) <= 1e-4 * abs(v) or v == 0:
                print(f'{run} epoch {e + 1}: {h}_grad_norm {got} vs {v}')
                bad += 1
        for (x, y), v in cos.items():
            got = float(hist[e][f'cos_{x}_{y}'])
            if not abs(got - v) <= 1e-4:
                print(f'{run} epoch {e + 1}: cos_{x}_{y} {got} vs {v}')
                bad += 1
        with h5py.File(f'{run}/checkpoints/ckpt-{(e + 1) * (N // B):012d}.h5') as f:
            for k, v in params.items():
                got = f['params/' + k][()].astype('f8')
                rel = np.max(np.abs(got - v)) / (np.max(np.abs(v)) + 1e-12)
                if rel > 1e-4:
                    print(f'{run} epoch {e + 1}: {k}: relative difference {rel:.2e}')
                    bad += 1
    print(f'  {run}: norms', {h: round(v, 6) for h, v in want[-1][0].items()},
          'cosines', {f'{x}_{y}': round(v, 4) for (x, y), v in want[-1][1].items()})
    cols = [c for c in hist[0] if c.endswith('_grad_norm') or c.startswith('cos_')]
    if cols != ['reg_grad_norm', 'bin_grad_norm', 'cat_grad_norm', 'cos_reg_bin',
                'cos_reg_cat', 'cos_bin_cat']:
        print(f'{run}: unexpected columns {list(hist[0])}')
        bad += 1
print(f'{"all norms, cosines and parameters match" if not bad else f"{bad} mismatches"}')
sys.exit(1 if bad else 0)
