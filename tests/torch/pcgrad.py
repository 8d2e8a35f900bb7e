#!/usr/bin/python3
"""pcgrad.py — train.task_balancing: pcgrad cross-checked against PyTorch:
PCGrad (Yu et al. 2020) written out in float64 with per-head
torch.autograd.grad on the same network, weights and batches (two input
branches, a layer t shared by three heads, cat also reading hb; missing
labels, sample and class weights). The shared parameters (ha, hb, t: two
heads or more reach them) step with the sum of each head's gradient
projected onto the normal plane of every other head's original gradient
it conflicts with, the others taken in the order mimo draws from (seed,
epoch, step) (its xoshiro256** replayed here); each head's own layer steps
with its gradient. Plain SGD, 8 steps: every parameter after every step
within 1e-4 — on 1 rank, with train.accumulate: 2, and on 2 and 3 ranks
(those also within 1e-5 of 1 rank); the projection must have fired, and
the result must differ from plain summing.

Usage: pcgrad.py MIMO_BINARY WORKDIR   (exit 0: all match)
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
write_files('  task_balancing: pcgrad\n  seed: 7\n  checkpoint: {every_steps: 1, keep: 100, every_epochs: 0, save_best: false}\n')



M64 = (1 << 64) - 1


class Rng:
    """mimo's xoshiro256** seeded through splitmix64 (src/base/rng.c)."""
    def __init__(self, seed):
        self.s, x = [], seed & M64
        for _ in range(4):
            x = (x + 0x9e3779b97f4a7c15) & M64
            z = x
            z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & M64
            z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & M64
            self.s.append(z ^ (z >> 31))

    def next(self):
        s = self.s
        rotl = lambda x, k: ((x << k) | (x >> (64 - k))) & M64
        r = (rotl((s[1] * 5) & M64, 7) * 9) & M64
        t = (s[1] << 17) & M64
        s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]; s[2] ^= t
        s[3] = rotl(s[3], 45)
        return r

    def below(self, n):
        limit = M64 - M64 % n
        while True:
            x = self.next()
            if x < limit:
                return x % n


def order(T, seed, epoch, step, i):
    """The order in which head i meets the others (mimo_balance_order)."""
    key = (((epoch << 32) ^ step) + 1) & M64
    r = Rng(seed ^ ((key * 0xd1342543de82ef95) & M64) ^ (((i + 1) * 0x9e3779b97f4a7c15) & M64))
    perm = list(range(T - 1))
    for k in range(T - 1, 1, -1):
        j = r.below(k)
        perm[k - 1], perm[j] = perm[j], perm[k - 1]
    return [p + (p >= i) for p in perm]


SHARED = [k for k in init if k.split('/')[0] in ('ha', 'hb', 't')]
OWN = {h: [h + '/kernel', h + '/bias'] for h in HEADS}


def reference(balance):
    """Per-step parameters; balance: PCGrad on the shared ones, else the sum."""
    P = {k: torch.tensor(np.asarray(v, 'f4').astype('f8'), requires_grad=True)
         for k, v in init.items()}
    steps, conflicts = [], 0
    for epoch in range(EPOCHS):
        for s in range(N // B):
            rows = list(range(s * B, (s + 1) * B))
            _, out = forward(P, rows)
            sums = head_sums(out, rows)
            grads = {}
            for h in HEADS:
                loss = WEIGHT[h] * sums[h][0] / sums[h][1]
                gs = torch.autograd.grad(loss, list(P.values()), retain_graph=True,
                                         allow_unused=True)
                grads[h] = {k: (g if g is not None else torch.zeros_like(P[k]))
                            for k, g in zip(P, gs)}
            flat = {h: torch.cat([grads[h][k].reshape(-1) for k in SHARED]) for h in HEADS}
            total = torch.zeros_like(flat[HEADS[0]])
            for i, h in enumerate(HEADS):
                p = flat[h].clone()
                for j in (order(3, 7, epoch, s, i) if balance else []):
                    gj = flat[HEADS[j]]
                    c = p @ gj
                    if c < 0:
                        conflicts += 1
                        p = p - c / (gj @ gj) * gj
                total = total + p
            with torch.no_grad():
                o = 0
                for k in SHARED:
                    n = P[k].numel()
                    P[k] -= LR * total[o:o + n].reshape(P[k].shape)
                    o += n
                for h in HEADS:
                    for k in OWN[h]:
                        P[k] -= LR * grads[h][k]
            steps.append({k: v.detach().numpy().copy() for k, v in P.items()})
    return steps, conflicts


want, conflicts = reference(True)
plain, _ = reference(False)
print(f'  {conflicts} conflicting pairs projected over {len(want)} steps')
bad = 0 if conflicts > 0 else 1
diff = max(np.max(np.abs(want[-1][k] - plain[-1][k])) / np.max(np.abs(plain[-1][k])) for k in SHARED)
if diff < 1e-3:
    print(f'PCGrad moved the shared parameters no differently from the sum ({diff:.1e})')
    bad += 1
bad += check_runs(MIMO, want, [('acc2', ['--set', 'train.accumulate=2'])])
print(f'{"every parameter matches" if not bad else f"{bad} mismatches"}')
sys.exit(1 if bad else 0)
