"""mtl_net.py — what the multi-task PyTorch oracles share (graddiag.py,
pcgrad.py, mgda.py): a network whose layer t three heads share (missing
labels, sample and class weights), its data and initial weights drawn
from one seed, the network written out in float64 torch, and each head's
weighted loss sums. write_files(TRAIN) writes data.h5, init.h5 and
net.yaml, whose train: section ends with the lines TRAIN (the option the
oracle checks, its checkpoint cadence). check_runs trains net.yaml with
mimo on 1 process (and the extra runs asked for) and on 2 and 3 ranks,
and compares every checkpointed step with the oracle's parameters."""
import os
import shutil
import subprocess

import h5py
import numpy as np
import torch

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


CONFIG_HEAD = f"""
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
"""


init = {
    'ha/kernel': rs.randn(5, 6) * 0.5, 'ha/bias': 0.1 * rs.randn(6),
    'hb/kernel': rs.randn(3, 4) * 0.5, 'hb/bias': 0.1 * rs.randn(4),
    't/kernel': rs.randn(10, 7) * 0.5, 't/bias': 0.1 * rs.randn(7),
    'reg/kernel': rs.randn(7, 2) * 0.4, 'reg/bias': 0.1 * rs.randn(2),
    'bin/kernel': rs.randn(7, 1) * 0.4, 'bin/bias': 0.1 * rs.randn(1),
    'cat/kernel': rs.randn(11, 4) * 0.4, 'cat/bias': 0.1 * rs.randn(4),
}


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


def write_files(train):
    """data.h5, init.h5 and net.yaml (its train: section ending in the
    lines train) in the current directory."""
    with h5py.File('data.h5', 'w') as f:
        for k, v in dict(a=a, b=b, reg=reg, reg_w=reg_w, bin=binl, bin_w=bin_w,
                         cat=cat).items():
            f[k] = v
    with h5py.File('init.h5', 'w') as f:
        for k, v in init.items():
            f['params/' + k] = np.asarray(v, 'f4')
    open('net.yaml', 'w').write(CONFIG_HEAD + train + 'data: {train: data.h5}\n')


def check_runs(mimo, want, extra=()):
    """mimo trains net.yaml from init.h5 as run 'one', then each (name,
    args) of extra, then (with mpirun) on 2 and 3 ranks; after every
    step, every tensor of want[step] must be within 1e-4 (relative to its
    largest magnitude) of the oracle's, and the ranks' within 1e-5 of
    'one'. Prints a line per run; returns the count of mismatches."""
    runs, bad = [('one', [])] + list(extra), 0
    if shutil.which('mpirun'):  # as tests/cli/lib.bash runs it
        runs += [('np2', ['@2']), ('np3', ['@3'])]
        os.environ.update(OMPI_ALLOW_RUN_AS_ROOT='1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM='1',
                          OMPI_MCA_rmaps_base_oversubscribe='1',
                          OMPI_MCA_btl_vader_single_copy_mechanism='none')
        # under ASan: no leak checks under mpirun (MPI's own), as lib.bash
        asan = os.environ.get('ASAN_OPTIONS')
        os.environ['ASAN_OPTIONS'] = (asan + ':' if asan else '') + 'detect_leaks=0'
    for run, args in runs:
        cmd = [mimo, 'train', 'net.yaml', '--out', run, '--init', 'init.h5', '--quiet',
               '--overwrite']
        if args and args[0].startswith('@'):
            cmd = ['timeout', '-k', '5', '300', 'mpirun', '-np', args[0][1:], '-x',
                   'OMP_NUM_THREADS=1'] + cmd + ['--check-every', '1']
        else:
            cmd += args
        subprocess.run(cmd, check=True)
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
    return bad
