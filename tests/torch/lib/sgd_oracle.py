"""sgd_oracle.py — what the layer oracles share (sequence.py,
attention.py, bidirectional.py, dot.py, mmoe.py, embedding_bag.py): each
writes data.h5 and net.yaml, draws initial weights, writes the network by
hand in float64 torch, and then

    P = oracle.train(init)             # mimo trains net.yaml from init.h5,
                                       # a checkpoint after every step
    oracle.sgd(P, step_loss, N, B, LR) # the same plain-SGD steps in torch,
                                       # every tensor compared every step
    oracle.finish()                    # exit 0 when all tensors matched

torch_or_skip() imports torch (exit 77, CTest's skip, without it), sets
float64 as the reference's dtype and enters WORKDIR (argv[2])."""
import os
import subprocess
import sys

import h5py
import numpy as np

TOL = 1e-4          # relative to the tensor's largest value
torch = None
MIMO = WORK = None
_init, _bad, _steps = {}, 0, 0


def torch_or_skip():
    """The torch module; argv: MIMO_BINARY WORKDIR."""
    global torch, MIMO, WORK
    try:
        import torch as t
    except ImportError:
        print('SKIP: python3-torch is not installed (apt-get install python3-torch)')
        sys.exit(77)
    torch = t
    torch.set_default_dtype(torch.float64)  # the reference in double
    MIMO, WORK = os.path.abspath(sys.argv[1]), sys.argv[2]
    os.makedirs(WORK, exist_ok=True)
    os.chdir(WORK)
    return torch


def write_h5(path, arrays, prefix=''):
    with h5py.File(path, 'w') as f:
        for k, v in arrays.items():
            f[prefix + k] = v


def train(init, env=None):
    """init.h5 from init (float32, as mimo reads it), mimo trains net.yaml
    with a checkpoint per step; the torch parameters, from the same
    float32 values, in float64."""
    global _init
    write_h5('init.h5', {k: np.asarray(v, 'f4') for k, v in init.items()}, 'params/')
    _init = {k: np.asarray(v, 'f4').astype('f8') for k, v in init.items()}
    subprocess.run([MIMO, 'train', 'net.yaml', '--out', 'run', '--init', 'init.h5',
                    '--quiet', '--overwrite', '--set', 'train.checkpoint.every_steps=1',
                    '--set', 'train.checkpoint.keep=100'], check=True,
                   env=dict(os.environ, **(env or {})))
    return {k: torch.tensor(v, requires_grad=True) for k, v in _init.items()}


def initial(name):
    """A tensor's initial value (float64)."""
    return _init[name]


def compare(P, step, last, must_move):
    """Every tensor of checkpoint `step` against P; a tensor in
    must_move that still holds its initial value counts as a mismatch."""
    global _bad
    with h5py.File(f'run/checkpoints/ckpt-{step:012d}.h5') as f:
        for k, v in P.items():
            got = f['params/' + k][()].astype('f8')
            want = v.detach().numpy()
            moved = np.max(np.abs(want - _init[k]))
            rel = np.max(np.abs(got - want)) / (np.max(np.abs(want)) + 1e-12)
            if rel > TOL or (moved == 0 and must_move(k)):
                print(f'step {step}: {k}: relative difference {rel:.2e}, moved {moved:.1e}')
                _bad += 1
            elif step == last:
                print(f'  {k:22s} {str(want.shape):10s} max rel diff {rel:.1e}')


def sgd(P, step_loss, n, b, lr, epochs=2, must_move=lambda k: False):
    """Plain SGD over rows in order (shuffle: false), as mimo's run:
    step_loss(rows, epoch) is the batch's loss."""
    global _steps
    last = epochs * (n // b)
    for epoch in range(epochs):
        for s in range(n // b):
            loss = step_loss(list(range(s * b, (s + 1) * b)), epoch)
            for p in P.values():
                p.grad = None
            loss.backward()
            with torch.no_grad():
                for p in P.values():
                    p -= lr * p.grad
            _steps += 1
            compare(P, _steps, last, must_move)


def moved(P, names, by=1e-3):
    """The names among `names` whose tensor moved more than `by`."""
    return [k for k in names if np.abs(P[k].detach().numpy() - _init[k]).max() > by]


def bce(c, t):
    return -(t * torch.log(c) + (1 - t) * torch.log(1 - c)).mean()


def finish():
    print(f'{_steps} steps compared: '
          f'{"all tensors match" if not _bad else f"{_bad} mismatches"}')
    sys.exit(1 if _bad else 0)
