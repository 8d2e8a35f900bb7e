"""masked_kinds.py OUT.h5 — data for masked_kinds.yaml: 300 rows of ids
(0 is padding) with, in turn, no padding, padding at the end, at the
start, in the middle, every step but one padded, random gaps; row 5 is
all padding. Targets random, seed 7."""
import sys

import h5py
import numpy as np

rs = np.random.RandomState(7)
n, T = 300, 10
tok = rs.randint(1, 20, size=(n, T)).astype('i4')
for i in range(n):
    k, cut = i % 6, rs.randint(1, T)
    if k == 1:
        tok[i, cut:] = 0                          # at the end
    elif k == 2:
        tok[i, :cut] = 0                          # at the start
    elif k == 3:
        a = rs.randint(1, T - 2)
        tok[i, a:a + rs.randint(1, T - a - 1) + 1] = 0  # in the middle
        tok[i, 0] = tok[i, 0] or 1
        tok[i, -1] = tok[i, -1] or 1
    elif k == 4:
        keep = tok[i, cut]
        tok[i] = 0
        tok[i, cut] = keep                        # all but one
    elif k == 5:
        tok[i, rs.rand(T) < 0.4] = 0              # random gaps
tok[5] = 0                                        # every step masked
with h5py.File(sys.argv[1], 'w') as f:
    f['tok'] = tok
    f['seq'] = rs.randn(n, 6, 3).astype('f4')
    for name, w in [('pa1', 3), ('pm1', 3), ('pm2', 4), ('fa', 6), ('l3', 3), ('g3', 3),
                    ('u1', 3), ('pat', 5), ('fak', 18), ('pz', 2), ('zl', 2),
                    ('pbm', 2), ('bl', 2), ('pbs', 2), ('gpe', 2)]:
        f[name] = rs.randn(n, w).astype('f4')
