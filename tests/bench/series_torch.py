#!/usr/bin/python3
"""series_torch.py — the time-series model (configs/weather.yaml: causal
conv1d, lstm, gru over 14-day windows of Seattle's weather, two heads)
trained end to end by `mimo train` and by a PyTorch 1.13 loop at one
thread, alternating, on the same windows (not run by CTest).

PyTorch runs the same network written as a PyTorch user would (nn.Conv1d
with causal padding, nn.LSTM, nn.GRU, nn.Embedding, nn.Linear; float32),
the training file read into tensors,
every epoch a new permutation, batches of 32 gathered with index_select,
0.05 MSE + cross-entropy (probabilities clipped as Keras does), Adam
3e-3, and the validation file's loss at every epoch's end, as mimo does.
Each side's time per epoch: E epochs' wall time over a 1-epoch run's
(mimo: two runs, so start-up and the final save cancel; PyTorch: inside
the process). Prints the medians of --rounds rounds and the ratio.

Usage: /usr/bin/python3 tests/bench/series_torch.py build/mimo [--epochs E] [--rounds R]
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import h5py
import torch

ap = argparse.ArgumentParser()
ap.add_argument('mimo')
ap.add_argument('--epochs', type=int, default=20)
ap.add_argument('--rounds', type=int, default=3)
a = ap.parse_args()
MIMO = os.path.abspath(a.mimo)
SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CSV = '/usr/lib/python3/dist-packages/vega_datasets/_data/seattle-weather.csv'
os.environ['OMP_NUM_THREADS'] = '1'
torch.set_num_threads(1)
os.chdir(tempfile.mkdtemp())
os.makedirs('data')
subprocess.run(['cp', '-r', os.path.join(SRC, 'configs'), 'configs'], check=True)
subprocess.run([MIMO, 'import', 'csv', CSV, '--out', 'data/weather.h5', '--schema',
                'configs/schemas/weather.yaml'], check=True, stdout=subprocess.DEVNULL)


def mimo_epochs(e, out):
    t = time.perf_counter()
    subprocess.run([MIMO, 'train', 'configs/weather.yaml', '--out', out, '--epochs', str(e),
                    '--quiet', '--overwrite'], check=True)
    return time.perf_counter() - t


class Net(torch.nn.Module):
    """configs/weather.yaml in PyTorch: normalize x (the training
    windows' statistics), embed the weather ids, a causal conv1d (16,
    kernel 2, tanh), an lstm (24, sequences), a gru (24, last), beside
    the flattened days; two heads."""

    def __init__(self, x):
        super().__init__()
        flat = x.reshape(-1, x.shape[-1]).double()
        self.register_buffer('mean', flat.mean(0).float())
        self.register_buffer('std', flat.var(0, unbiased=False).sqrt().float())
        self.emb = torch.nn.Embedding(7, 4)
        self.conv = torch.nn.Conv1d(8, 16, 2)
        self.lstm = torch.nn.LSTM(16, 24, batch_first=True)
        self.gru = torch.nn.GRU(24, 24, batch_first=True)
        self.temp = torch.nn.Linear(24 + 14 * 8, 1)
        self.weather = torch.nn.Linear(24 + 14 * 8, 5)

    def forward(self, inp):
        days = torch.cat([(inp['x'] - self.mean) / self.std, self.emb(inp['weather'].long())], 2)
        c = torch.tanh(self.conv(torch.nn.functional.pad(days.transpose(1, 2), (1, 0))))
        h, _ = self.lstm(c.transpose(1, 2))
        _, g = self.gru(h)
        j = torch.cat([g[0], days.flatten(1)], 1)
        return {'next_temp_max': self.temp(j), 'next_weather': torch.softmax(self.weather(j), 1)}


def load(path):
    with h5py.File(path, 'r') as f:
        return ({'x': torch.as_tensor(f['x'][()]), 'weather': torch.as_tensor(f['weather'][()])},
                torch.as_tensor(f['next_temp_max'][()]).float().reshape(-1),
                torch.as_tensor(f['next_weather'][()]).long().reshape(-1))


train, val = load('data/weather.h5'), load('data/weather.val.h5')


def loss_of(out, t, w):
    p = out['next_weather'].clamp(1e-7, 1)
    return (0.05 * ((out['next_temp_max'].reshape(-1) - t) ** 2).mean()
            - torch.log(p[torch.arange(len(w)), w]).mean())


def torch_epochs(e):
    torch.manual_seed(1)
    model = Net(train[0]['x'])
    opt = torch.optim.Adam(model.parameters(), lr=3e-3, eps=1e-7)
    (x, t, w), n = train, len(train[1])
    stamps = []
    for _ in range(e):
        perm = torch.randperm(n)
        for s in range(0, n, 32):
            i = perm[s:s + 32]
            opt.zero_grad()
            loss = loss_of(model({k: v.index_select(0, i) for k, v in x.items()}),
                           t.index_select(0, i), w.index_select(0, i))
            loss.backward()
            opt.step()
            float(loss)  # what a progress line reads
        with torch.no_grad():
            float(loss_of(model(val[0]), val[1], val[2]))
        stamps.append(time.perf_counter())
    return stamps


mt, tt = [], []
for r in range(a.rounds):
    one = mimo_epochs(1, 'r1')
    many = mimo_epochs(1 + a.epochs, 'rn')
    mt.append((many - one) / a.epochs)
    s = torch_epochs(1 + a.epochs)
    tt.append((s[-1] - s[0]) / a.epochs)
    print(f'round {r + 1}: mimo {mt[-1] * 1e3:.1f} ms/epoch, PyTorch {tt[-1] * 1e3:.1f} ms/epoch',
          flush=True)
cpu = next((l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name')), '?')
m, t = statistics.median(mt), statistics.median(tt)
print(f'CPU: {cpu}; 1 thread; {len(train[1])} training windows, batch 32, {a.epochs} epochs')
print(f'mimo train {m * 1e3:.1f} ms/epoch, PyTorch {torch.__version__} {t * 1e3:.1f} ms/epoch: '
      f'mimo {t / m:.2f}x')
