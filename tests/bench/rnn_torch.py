#!/usr/bin/python3
"""rnn_torch.py — mimo's gru and lstm layers against PyTorch's nn.GRU and
nn.LSTM, forward + backward, batch 64, 50 steps, 128 features, 128 units,
1 thread, alternating runs in one session (a measurement for reading:
no timing is asserted anywhere; see README.md here).

mimo: `mimo bench NET --layers` on a network x (50, 128) -> gru|lstm(128)
-> dense(1), the layer's own forward and backward per step (the graph's
clock reads around it) and its GFLOP/s of matrix products next to the
same run's sgemm 1024^3 rate. The input is a raw input: no input gradient.
PyTorch: the same shapes, batch_first, the input without requires_grad,
loss = the last state's sum, forward + backward, the median of 5 x 10.

Usage: /usr/bin/python3 tests/bench/rnn_torch.py [--mimo build/mimo] [--rounds 3]
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile

B, T, D, U = 64, 50, 128, 128
ENV = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")

TORCH = r"""
import time, torch, sys
torch.set_num_threads(1)
kind = sys.argv[1]
m = (torch.nn.GRU if kind == "gru" else torch.nn.LSTM)(%d, %d, batch_first=True)
x = torch.randn(%d, %d, %d)
def step():
    out, h = m(x)
    loss = (h if kind == "gru" else h[0]).sum()
    m.zero_grad()
    loss.backward()
for _ in range(3):
    step()
ts = []
for _ in range(5):
    t0 = time.perf_counter()
    for _ in range(10):
        step()
    ts.append((time.perf_counter() - t0) / 10)
print(sorted(ts)[2] * 1e3)
""" % (D, U, B, T, D)


def mimo_run(mimo, kind, tmp):
    cfg = os.path.join(tmp, kind + ".yaml")
    with open(cfg, "w") as f:
        f.write("inputs: {x: {shape: [%d, %d]}}\nlayers:\n"
                "  r: {type: %s, units: %d, from: x}\n"
                "  y: {type: dense, units: 1, from: r}\n"
                "outputs: {y: {loss: mse}}\n"
                "train: {batch_size: %d, optimizer: {type: sgd, lr: 0.001}}\n"
                % (T, D, kind, U, B))
    out = subprocess.run([mimo, "bench", cfg, "--steps", "30", "--warmup", "3",
                          "--segments", "1", "--layers"], env=ENV, check=True,
                         stdout=subprocess.PIPE, universal_newlines=True).stdout
    row = re.search(r"^\s+%s \(1\)\s+([\d.]+) ms\s+([\d.]+) ms\s+[\d.]+%%\s+([\d.]+)"
                    % kind, out, re.M)
    sgemm = re.search(r"sgemm 1024\^3\s+([\d.]+) GFLOP/s", out)
    return float(row.group(1)) + float(row.group(2)), float(row.group(3)), float(sgemm.group(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mimo", default="build/mimo")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                if l.startswith("model name")), "?")
    print("CPU %s; 1 thread; batch %d, %d steps, %d features, %d units; PyTorch "
          "%s" % (cpu, B, T, D, U, subprocess.run(
              [sys.executable, "-c", "import torch; print(torch.__version__)"],
              stdout=subprocess.PIPE, universal_newlines=True).stdout.strip()))
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("gru", "lstm"):
            m, t, gf, sg = [], [], [], []
            for _ in range(a.rounds):
                ms, g, s = mimo_run(os.path.abspath(a.mimo), kind, tmp)
                m.append(ms), gf.append(g), sg.append(s)
                t.append(float(subprocess.run(
                    [sys.executable, "-c", TORCH, kind], env=ENV, check=True,
                    stdout=subprocess.PIPE, universal_newlines=True).stdout))
            mm, tm = statistics.median(m), statistics.median(t)
            print("%-4s mimo %6.2f ms  torch %6.2f ms  (fwd+bwd per step, medians of "
                  "%d)  mimo/torch speed %.2fx;  mimo %.1f GFLOP/s in its products, "
                  "sgemm 1024^3 %.1f GFLOP/s (%.0f%%)" %
                  (kind, mm, tm, a.rounds, tm / mm, statistics.median(gf),
                   statistics.median(sg), 100 * statistics.median(gf) /
                   statistics.median(sg)))


if __name__ == "__main__":
    main()
