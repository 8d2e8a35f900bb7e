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
import sys

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
write_files('  task_balancing: mgda_ub\n  seed: 7\n  checkpoint: {every_steps: 1, keep: 100, every_epochs: 0, save_best: false}\n')





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
bad += check_runs(MIMO, want)
# history.csv: <head>_weight is the epoch's mean of alpha_h weight_h
with open('one/history.csv') as f:
    rows = list(csv.DictReader(f))
per = N // B
for e, row in enumerate(rows):
    for i, h in enumerate(HEADS):
        mean = np.mean([a[i] for a in alphas[e * per:(e + 1) * per]]) * WEIGHT[h]
        if abs(float(row[f'{h}_weight']) - mean) > 1e-6:
            print(f'epoch {e + 1}: {h}_weight {row[h + "_weight"]}, oracle {mean:.7f}')
            bad += 1
print('  logged weights (last epoch):', {h: rows[-1][h + '_weight'] for h in HEADS})
print(f'{"every parameter matches" if not bad else f"{bad} mismatches"}')
sys.exit(1 if bad else 0)
