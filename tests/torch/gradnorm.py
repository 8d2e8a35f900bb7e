#!/usr/bin/python3
"""gradnorm.py — train.task_balancing: gradnorm cross-checked against
PyTorch: GradNorm (Chen et al., ICML 2018) written out in float64 on the
same network, weights and batches as pcgrad.py and mgda.py (a layer t
shared by three heads; missing labels, sample and class weights). Each
step: G_h, the norm of the gradient of w_h weight_h loss_h at the shared
representation t (per-head torch.autograd.grad), the loss ratios against
the first step's losses, L_grad = sum_h |G_h - mean(G) r_h^alpha| with the
targets held constant, its gradient w.r.t. the weights w; the network
steps with the gradient of sum_h w_h weight_h loss_h, the weights with
L_grad's, both by plain SGD, then the weights are rescaled to sum to 3.
alpha 1.2, 8 steps: every parameter and the weights after every step
within 1e-4 — on 1 rank and on 2 and 3 ranks (those also within 1e-5 of
1 rank); the weights must move away from 1, and the result from plain
summing.

Usage: gradnorm.py MIMO_BINARY WORKDIR   (exit 0: all match)
"""
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
ALPHA = 1.2
write_files(f'  task_balancing: {{type: gradnorm, alpha: {ALPHA}}}\n  seed: 7\n'
            '  checkpoint: {every_steps: 1, keep: 100, every_epochs: 0, save_best: false}\n')


def reference(balance):
    P = {k: torch.tensor(np.asarray(v, 'f4').astype('f8'), requires_grad=True)
         for k, v in init.items()}
    w = torch.ones(3, requires_grad=True)
    l0 = None
    steps = []
    for epoch in range(EPOCHS):
        for s in range(N // B):
            rows = list(range(s * B, (s + 1) * B))
            t, out = forward(P, rows)
            sums = head_sums(out, rows)
            loss = torch.stack([sums[h][0] / sums[h][1] for h in HEADS])
            terms = torch.stack([WEIGHT[h] * loss[i] for i, h in enumerate(HEADS)])
            if balance:
                if l0 is None:  # mimo keeps them in float32
                    l0 = torch.tensor(loss.detach().numpy().astype('f4').astype('f8'))
                G = torch.stack([torch.autograd.grad(w[i] * terms[i], t, retain_graph=True,
                                                     create_graph=True)[0].norm()
                                 for i in range(3)])
                ratio = loss.detach() / l0
                r = ratio / ratio.mean()
                target = (G.mean() * r ** ALPHA).detach()
                gw = torch.autograd.grad((G - target).abs().sum(), w, retain_graph=True)[0]
            for p in P.values():
                p.grad = None
            (w.detach() * terms).sum().backward()
            with torch.no_grad():
                for p in P.values():
                    p -= LR * p.grad
                if balance:
                    w -= LR * gw
                    w *= 3 / w.sum()
            st = {k: v.detach().numpy().copy() for k, v in P.items()}
            st['task_balancing/weight'] = w.detach().numpy().copy()
            steps.append(st)
    return steps


want = reference(True)
plain = reference(False)
print('  weights after the first and last steps:', np.round(want[0]['task_balancing/weight'], 4),
      np.round(want[-1]['task_balancing/weight'], 4))
bad = 0 if np.max(np.abs(want[-1]['task_balancing/weight'] - 1)) > 0.02 else 1
diff = max(np.max(np.abs(want[-1][k] - plain[-1][k])) / np.max(np.abs(plain[-1][k])) for k in init)
if diff < 1e-3:
    print(f'GradNorm moved the parameters no differently from the sum ({diff:.1e})')
    bad += 1
bad += check_runs(MIMO, want)
print(f'{"every parameter matches" if not bad else f"{bad} mismatches"}')
sys.exit(1 if bad else 0)
