"""every_kind.py OUT.h5 — data for every_kind.yaml: 300 random rows of each
input (a 0/1 mask with a 1 in every row) and head target, seed 5."""
import sys

import h5py
import numpy as np

rs = np.random.RandomState(5)
n = 300
with h5py.File(sys.argv[1], 'w') as f:
    f['img'] = rs.rand(n, 9, 7, 2).astype('f4')
    f['vec'] = rs.randn(n, 6).astype('f4')
    f['seq'] = rs.randn(n, 12, 3).astype('f4')
    f['ids'] = rs.randint(0, 30, size=(n, 3)).astype('i4')
    mask = (rs.rand(n, 6) > 0.4).astype('f4'); mask[np.arange(n), rs.randint(0, 6, n)] = 1
    f['mask'] = mask
    bag = rs.randint(0, 30, size=(n, 5)).astype('i4')
    bag[0] = 0                                    # a bag of padding only
    bag[1] = [4, 4, 7, 0, 0]                      # a repeated id, padding
    f['bag'] = bag
    f['bw'] = rs.rand(n, 5).astype('f4') + 0.1
    # raw 64-bit ids: any size and sign, 0 (hsm's mask_value), both ends
    big = rs.randint(-2**63, 2**63 - 1, size=(n, 4), dtype=np.int64)
    big[:, 3] = rs.randint(-3, 4, size=n)            # small ones, 0 among them
    big[0] = [2**63 - 1, -2**63, 2**40 + 1, 0]
    f['big'] = big
    f['id64'] = rs.randint(0, 30, size=(n, 2)).astype(np.int64)
    f['cls'] = rs.randint(0, 6, n).astype('i4')
    f['reg'] = rs.randn(n, 4).astype('f4')
    f['prob'] = (rs.rand(n, 1) > 0.5).astype('f4')
