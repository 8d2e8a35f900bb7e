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

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
from mtl_net import *  # noqa: E402,F401,F403  the network, data and losses shared
write_files('  grad_diagnostics: true\n  checkpoint: {every_epochs: 1, keep: 10, save_best: false}\n')


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
