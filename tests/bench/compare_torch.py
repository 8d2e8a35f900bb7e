#!/usr/bin/python3
"""compare_torch.py — training speed of mimo against the same networks in PyTorch.

For each benchmark network (configs/bench/{tiny,small,large,conv}.yaml) and each
configuration — 1 process x 1 thread, 1 process x 2 threads, 2 processes x 1
thread — this runs `mimo bench` and an identical PyTorch training loop
alternately (mimo, torch, mimo, torch, ... for --rounds rounds, so that both
see the same state of the machine) and prints the median samples/s of each,
the ratio mimo/torch, mimo's share of its sgemm-bound rate, and mimo's
2-rank/1-rank speedup on the largest network.

The PyTorch side (one fresh process per measurement, like mimo):
  * nn.Linear layers of the same shapes, glorot-uniform weights, zero biases:
    h1 = relu(x1 W1), h2 = relu(x1 W2), h3 = relu([x2, h1, h2] W3),
    loss = BCEWithLogits(h3 W4, t1) + MAE(softmax(h3 W5), t2)  (means over
    units then batch, weights 1 — what mimo computes);
  * conv (the image + features network of configs/bench/conv.yaml):
    nn.Conv2d / F.max_pool2d / F.avg_pool2d in PyTorch's own channels-first
    layout (its oneDNN convolutions), the image branch flattened as PyTorch
    flattens it (the same network up to a fixed order of the dense kernel's
    rows), softmax + cross-entropy from the logits;
  * plain SGD with the config's lr, float32, the config's global batch;
  * synthetic data in memory: 8 global batches of random rows (BCE targets
    0/1, MAE targets normal, as `mimo bench`), reshuffled every epoch and
    gathered into each batch as mimo does;
  * the same warmup and timed steps; the timed steps are cut into 5 segments
    and the median segment rate is the run's samples/s (as `mimo bench`);
  * 2 processes: DistributedDataParallel on gloo (MASTER_ADDR=127.0.0.1),
    started by this script with torch.multiprocessing; each process trains
    half of every global batch; samples/s is the global rate.

Threads: OMP_NUM_THREADS for mimo (OpenMP loops and OpenMP OpenBLAS), and
OMP_NUM_THREADS + torch.set_num_threads for PyTorch. The 2-process runs use
`mpirun -np 2 -x OMP_NUM_THREADS=1` for mimo (Open MPI's default binding).

Timings are ratios measured in one run on a possibly noisy machine; they are
for reading, never asserted by the tests. Run with Debian's interpreter
(python3-torch): /usr/bin/python3 tests/bench/compare_torch.py --help
"""
import argparse
import json
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# (warmup, timed steps) per network when --steps/--warmup are not given:
# enough timed work per run for a stable median, and the whole default run
# (3 nets x 3 configurations x 3 rounds x 2 frameworks) within ~5 minutes
# on a quiet 2-core machine (large is most of it).
DEFAULT_STEPS = {"tiny": (200, 2000), "small": (50, 500), "large": (10, 100),
                 "conv": (10, 100)}
SEGMENTS = 5

CONFIGS = [  # (label, processes, threads)
    ("1 proc x 1 thr", 1, 1),
    ("1 proc x 2 thr", 1, 2),
    ("2 proc x 1 thr", 2, 1),
]


# ---- the network, read from the mimo config --------------------------------

def read_conv_net(path, text, num):
    """The image + features network of configs/bench/conv.yaml: its sizes,
    after checking every layer, so both sides train the same network."""
    net = {"kind": "conv"}
    layers = [
        (r"c1:\s*\{type:\s*conv2d,\s*filters:\s*(\d+),\s*kernel_size:\s*3,\s*padding:\s*same,"
         r"\s*activation:\s*relu,\s*from:\s*image\s*\}", "c1"),
        (r"p1:\s*\{type:\s*max_pool2d,\s*pool_size:\s*2,\s*from:\s*c1\s*\}", None),
        (r"c2:\s*\{type:\s*conv2d,\s*filters:\s*(\d+),\s*kernel_size:\s*3,\s*padding:\s*valid,"
         r"\s*activation:\s*relu,\s*from:\s*p1\s*\}", "c2"),
        (r"p2:\s*\{type:\s*avg_pool2d,\s*pool_size:\s*2,\s*from:\s*c2\s*\}", None),
        (r"g:\s*\{type:\s*global_avg_pool2d,\s*from:\s*c2\s*\}", None),
        (r"f:\s*\{type:\s*flatten,\s*from:\s*p2\s*\}", None),
        (r"feat:\s*\{type:\s*dense,\s*units:\s*(\d+),\s*activation:\s*relu,\s*from:\s*pooled\s*\}",
         "feat"),
        (r"cat:\s*\{type:\s*concat,\s*from:\s*\[f,\s*g,\s*feat\]\s*\}", None),
        (r"label:\s*\{type:\s*dense,\s*units:\s*(\d+),\s*activation:\s*softmax,\s*from:\s*cat\s*\}",
         "classes"),
        (r"image:\s*\{\s*shape:\s*\[28,\s*28,\s*1\]\s*\}", None),
        (r"pooled:\s*\{\s*shape:\s*49\s*\}", None),
        (r"label:\s*\{loss:\s*sparse_categorical_crossentropy\s*\}", None),
        (r"optimizer:\s*\{type:\s*sgd,", None),
    ]
    for pattern, key in layers:
        m = re.search(r"^\s*" + pattern, text, re.M)
        if not m:
            sys.exit("compare_torch: %s: not the conv benchmark network (no match for %r)"
                     % (path, pattern))
        if key:
            net[key] = int(m.group(1))
    net["batch"] = num(r"^\s*batch_size:\s*(\d+)")
    net["lr"] = num(r"lr:\s*([0-9.eE+-]+)", float)
    return net


def read_net(path):
    """Shapes, batch and lr of a configs/bench/*.yaml network; checks that it
    has the benchmark topology, so both sides train the same network."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        sys.exit("compare_torch: %s: %s" % (path, e.strerror))

    def num(pattern, cast=int):
        m = re.search(pattern, text, re.M)
        if not m:
            sys.exit("compare_torch: %s: cannot find %r" % (path, pattern))
        return cast(m.group(1))

    if re.search(r"type:\s*conv2d", text):
        return read_conv_net(path, text, num)
    net = {}
    for name in ("x1", "x2"):
        net[name] = num(r"^\s*%s:\s*\{\s*shape:\s*(\d+)\s*\}" % name)
    expect = {"h1": ("relu", "x1"), "h2": ("relu", "x1"), "h3": ("relu", "cat"),
              "y1": ("sigmoid", "h3"), "y2": ("softmax", "h3")}
    for name, (act, src) in expect.items():
        m = re.search(r"^\s*%s:\s*\{type:\s*dense,\s*units:\s*(\d+),\s*activation:"
                      r"\s*%s,\s*from:\s*%s\s*\}" % (name, act, src), text, re.M)
        if not m:
            sys.exit("compare_torch: %s: layer %s is not 'dense, %s, from %s'"
                     % (path, name, act, src))
        net[name] = int(m.group(1))
    if not re.search(r"^\s*cat:\s*\{type:\s*concat,\s*from:\s*\[x2,\s*h1,\s*h2\]\s*\}",
                     text, re.M):
        sys.exit("compare_torch: %s: no 'cat: concat [x2, h1, h2]'" % path)
    if not (re.search(r"^\s*y1:\s*\{loss:\s*binary_crossentropy\s*\}", text, re.M)
            and re.search(r"^\s*y2:\s*\{loss:\s*mae\s*\}", text, re.M)
            and re.search(r"type:\s*sgd,", text)):
        sys.exit("compare_torch: %s: heads must be y1 BCE, y2 MAE, optimizer sgd" % path)
    net["batch"] = num(r"^\s*batch_size:\s*(\d+)")
    net["lr"] = num(r"lr:\s*([0-9.eE+-]+)", float)
    return net


# ---- the PyTorch side (runs in a fresh process) ------------------------------

def conv_model(net, nn, F, torch):
    """The conv benchmark network, its loss, and its synthetic data maker."""
    class ConvNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(1, net["c1"], 3, padding=1)
            self.c2 = nn.Conv2d(net["c1"], net["c2"], 3)
            self.feat = nn.Linear(49, net["feat"])
            self.label = nn.Linear(6 * 6 * net["c2"] + net["c2"] + net["feat"],
                                   net["classes"])
            for m in self.modules():
                if isinstance(m, (nn.Linear, nn.Conv2d)):
                    nn.init.xavier_uniform_(m.weight)
                    nn.init.zeros_(m.bias)

        def forward(self, image, pooled):
            c1 = F.relu(self.c1(image))
            c2 = F.relu(self.c2(F.max_pool2d(c1, 2)))
            f = torch.flatten(F.avg_pool2d(c2, 2), 1)
            g = c2.mean((2, 3))
            return self.label(torch.cat([f, g, F.relu(self.feat(pooled))], 1))

    def data(rows, g):
        return [torch.rand(rows, 1, 28, 28, generator=g),
                torch.rand(rows, 49, generator=g),
                torch.randint(0, net["classes"], (rows,), generator=g)]

    def loss(model, b):
        return F.cross_entropy(model(b[0], b[1]), b[2])  # softmax + CCE, mean

    return ConvNet(), data, loss


def dense_model(net, nn, F, torch):
    """The benchmark topology as nn.Linear layers, glorot-uniform weights,
    zero biases; forward returns (y1 logits, y2 probabilities)."""
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.h1 = nn.Linear(net["x1"], net["h1"])
            self.h2 = nn.Linear(net["x1"], net["h2"])
            self.h3 = nn.Linear(net["x2"] + net["h1"] + net["h2"], net["h3"])
            self.y1 = nn.Linear(net["h3"], net["y1"])
            self.y2 = nn.Linear(net["h3"], net["y2"])
            for m in self.modules():
                if isinstance(m, nn.Linear):
                    nn.init.xavier_uniform_(m.weight)
                    nn.init.zeros_(m.bias)

        def forward(self, x1, x2):
            h1 = F.relu(self.h1(x1))
            h2 = F.relu(self.h2(x1))
            h3 = F.relu(self.h3(torch.cat([x2, h1, h2], 1)))
            return self.y1(h3), torch.softmax(self.y2(h3), 1)

    return Net()


def torch_train(net, warmup, steps, threads, rank=0, world=1, result_q=None):
    """Trains the network for warmup + steps steps; returns the median
    samples/s over SEGMENTS segments of the timed steps (global rate)."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    torch.manual_seed(1)
    if world > 1:
        import torch.distributed as dist
        dist.init_process_group("gloo", rank=rank, world_size=world)

    if net.get("kind") == "conv":
        model, make_data, conv_loss = conv_model(net, nn, F, torch)
    else:
        model = dense_model(net, nn, F, torch)
    if world > 1:
        model = nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.SGD(model.parameters(), lr=net["lr"])
    bce = nn.BCEWithLogitsLoss()   # mean over units and batch
    mae = nn.L1Loss()

    gb = net["batch"]
    lb = gb // world
    rows = 8 * gb
    g = torch.Generator().manual_seed(12345)
    if net.get("kind") == "conv":
        tensors = make_data(rows, g)
    else:
        tensors = [torch.randn(rows, net["x1"], generator=g),
                   torch.randn(rows, net["x2"], generator=g),
                   (torch.rand(rows, net["y1"], generator=g) < 0.5).float(),
                   torch.randn(rows, net["y2"], generator=g)]

    marks = []
    perm = None
    nb = rows // gb
    for s in range(warmup + steps):
        b = s % nb
        if b == 0:
            perm = torch.randperm(rows, generator=g)
        idx = perm[b * gb + rank * lb: b * gb + (rank + 1) * lb]
        batch = [t.index_select(0, idx) for t in tensors]
        opt.zero_grad(set_to_none=True)
        if net.get("kind") == "conv":
            loss = conv_loss(model, batch)
        else:
            o1, o2 = model(batch[0], batch[1])
            loss = bce(o1, batch[2]) + mae(o2, batch[3])
        loss.backward()
        opt.step()
        if s == warmup - 1:
            if world > 1:
                dist.barrier()
            marks.append(time.perf_counter())
        elif s >= warmup:
            marks.append(time.perf_counter())
    per = steps // SEGMENTS
    rates = sorted(per * gb / (marks[(k + 1) * per] - marks[k * per])
                   for k in range(SEGMENTS))
    res = {"sps": statistics.median(rates), "min": rates[0], "max": rates[-1],
           "loss": float(loss)}
    if world > 1:
        dist.destroy_process_group()
    if result_q is not None and rank == 0:
        result_q.put(res)
    return res


def _ddp_entry(rank, net, warmup, steps, threads, world, q):
    torch_train(net, warmup, steps, threads, rank, world, q)


def worker(spec):
    """--worker: one PyTorch measurement; prints 'RESULT {json}'."""
    net, warmup, steps = spec["net"], spec["warmup"], spec["steps"]
    procs, threads = spec["procs"], spec["threads"]
    if procs == 1:
        res = torch_train(net, warmup, steps, threads)
    else:
        import torch.multiprocessing as mp
        with socket.socket() as s:  # a free port for the rendezvous
            s.bind(("127.0.0.1", 0))
            os.environ["MASTER_PORT"] = str(s.getsockname()[1])
        os.environ["MASTER_ADDR"] = "127.0.0.1"
        ctx = mp.get_context("spawn")
        q = ctx.SimpleQueue()
        mp.spawn(_ddp_entry, args=(net, warmup, steps, threads, procs, q),
                 nprocs=procs, join=True)
        res = q.get()
    print("RESULT " + json.dumps(res), flush=True)


# ---- the driver ----------------------------------------------------------------

def env_threads(threads):
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = str(threads)
    env.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
    env.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    return env


def run(cmd, env, timeout=1800):
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=timeout)
    if p.returncode != 0:
        sys.exit("compare_torch: command failed (exit %d): %s\n%s%s"
                 % (p.returncode, " ".join(cmd), p.stdout, p.stderr))
    return p.stdout


def run_mimo(args, cfg, procs, threads, warmup, steps):
    cmd = [args.mimo, "bench", cfg, "--steps", str(steps), "--warmup", str(warmup),
           "--segments", str(SEGMENTS)]
    if procs > 1:
        cmd = [args.mpirun, "-np", str(procs), "-x", "OMP_NUM_THREADS"] + cmd
    out = run(cmd, env_threads(threads))
    m = re.search(r"^samples/s\s+([0-9.]+)", out, re.M)
    s = re.search(r"^share of sgemm\s+([0-9.]+)%\s*\(sgemm-bound rate ([0-9.]+)", out, re.M)
    hdr = re.search(r"^ranks (\d+) x threads (\d+)", out, re.M)
    if not (m and s and hdr):
        sys.exit("compare_torch: cannot read mimo bench output:\n" + out)
    if (int(hdr.group(1)), int(hdr.group(2))) != (procs, threads):
        sys.exit("compare_torch: mimo ran %s ranks x %s threads, wanted %d x %d"
                 % (hdr.group(1), hdr.group(2), procs, threads))
    return {"sps": float(m.group(1)), "share": float(s.group(1)),
            "bound": float(s.group(2))}


def run_torch(args, net, procs, threads, warmup, steps):
    spec = {"net": net, "warmup": warmup, "steps": steps, "procs": procs,
            "threads": threads}
    out = run([args.python, os.path.abspath(__file__), "--worker", json.dumps(spec)],
              env_threads(threads))
    m = re.search(r"^RESULT (.*)$", out, re.M)
    if not m:
        sys.exit("compare_torch: no result from the PyTorch worker:\n" + out)
    return json.loads(m.group(1))


def fmt(x):
    return "%.0f" % x if x >= 100 else "%.1f" % x


def machine():
    lines = ["machine: %s, nproc %d" % (platform.machine(), os.cpu_count() or 0)]
    try:
        model = subprocess.run(["lscpu"], stdout=subprocess.PIPE,
                               universal_newlines=True).stdout
        m = re.search(r"^Model name:\s*(.*)$", model, re.M)
        if m:
            lines.append("cpu: " + m.group(1).strip())
    except OSError:
        pass
    lines.append("OPENBLAS_CORETYPE=%s" % os.environ.get("OPENBLAS_CORETYPE", "(unset)"))
    try:
        lines.append("load average before: %.2f %.2f %.2f" % os.getloadavg())
    except OSError:
        pass
    return lines


def main():
    ap = argparse.ArgumentParser(
        description="Samples/s of `mimo bench` against the same networks in PyTorch "
                    "(alternating runs; medians over rounds).")
    ap.add_argument("--mimo", default=os.path.join(ROOT, "build", "mimo"),
                    help="the mimo executable (default: build/mimo)")
    ap.add_argument("--configs", default=os.path.join(ROOT, "configs", "bench"),
                    help="directory of NET.yaml (default: configs/bench)")
    ap.add_argument("--nets", default="tiny,small,large",
                    help="comma-separated network names (default: tiny,small,large)")
    ap.add_argument("--rounds", type=int, default=3,
                    help="alternating mimo/torch rounds per configuration (default 3)")
    ap.add_argument("--steps", type=int, default=None,
                    help="timed steps per run for every network (default: tiny 2000, "
                         "small 500, large 100)")
    ap.add_argument("--warmup", type=int, default=None,
                    help="untimed steps first (default: tiny 200, small 50, large 10)")
    ap.add_argument("--python", default=sys.executable,
                    help="interpreter with torch for the PyTorch runs (default: this one)")
    ap.add_argument("--mpirun", default="mpirun", help="mpirun command (default: mpirun)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(json.loads(args.worker))
        return
    if args.steps is not None and args.steps < SEGMENTS:
        ap.error("--steps must be at least %d" % SEGMENTS)
    if args.warmup is not None and args.warmup < 1:
        ap.error("--warmup must be at least 1")
    if not os.access(args.mimo, os.X_OK):
        ap.error("no mimo executable at %s (give --mimo PATH)" % args.mimo)

    nets = [n for n in args.nets.split(",") if n]
    specs = {n: read_net(os.path.join(args.configs, n + ".yaml")) for n in nets}
    t_start = time.time()
    for line in machine():
        print(line)
    if os.getloadavg()[0] >= 1.0:
        print("warning: the machine is busy (load average %.2f); the rates, and the "
              "2-thread and 2-process ones most, will be noisy" % os.getloadavg()[0])
    print("mimo: %s; torch: %s (%s)" % (args.mimo, args.python, run(
        [args.python, "-c", "import torch; print(torch.__version__)"],
        dict(os.environ)).strip()))
    print("rounds %d, %d segments per run; samples/s = median over rounds of each run's "
          "median segment rate" % (args.rounds, SEGMENTS))
    print()

    rows = []
    results = {}
    for n in nets:
        warmup, steps = DEFAULT_STEPS.get(n, (20, 200))
        if args.steps is not None:
            steps = args.steps
        if args.warmup is not None:
            warmup = args.warmup
        cfg = os.path.join(args.configs, n + ".yaml")
        for label, procs, threads in CONFIGS:
            mi, to = [], []
            t0 = time.time()
            for r in range(args.rounds):
                mi.append(run_mimo(args, cfg, procs, threads, warmup, steps))
                to.append(run_torch(args, specs[n], procs, threads, warmup, steps))
            ms = statistics.median(x["sps"] for x in mi)
            ts = statistics.median(x["sps"] for x in to)
            share = statistics.median(x["share"] for x in mi)
            results[(n, procs, threads)] = (ms, ts)
            row = (n, label, ms, ts, ms / ts, share,
                   min(x["sps"] for x in mi), max(x["sps"] for x in mi),
                   min(x["sps"] for x in to), max(x["sps"] for x in to),
                   time.time() - t0)
            rows.append(row)
            print("%-6s %s  mimo %s  torch %s  ratio %.2f  (%.0f s; warmup %d, steps %d; "
                  "load %.1f)" % (n, label, fmt(ms), fmt(ts), ms / ts, row[-1], warmup,
                                  steps, os.getloadavg()[0]), flush=True)

    print()
    print("%-6s %-15s %12s %12s %11s %9s   %-19s %-19s" % (
        "net", "configuration", "mimo smp/s", "torch smp/s", "mimo/torch",
        "% sgemm", "mimo range", "torch range"))
    for (n, label, ms, ts, ratio, share, mlo, mhi, tlo, thi, _) in rows:
        print("%-6s %-15s %12s %12s %10.2fx %8.1f%%   %-19s %-19s" % (
            n, label, fmt(ms), fmt(ts), ratio, share,
            fmt(mlo) + " .. " + fmt(mhi), fmt(tlo) + " .. " + fmt(thi)))
    print()
    print("% sgemm: mimo's samples/s over the rate its matrix products would reach at")
    print("the square 1024^3 sgemm rate measured in the same run (from `mimo bench`).")
    for n in nets:
        one, two = results.get((n, 1, 1)), results.get((n, 2, 1))
        if one and two:
            print("%s: 2 ranks x 1 thread / 1 x 1: mimo %.2fx, PyTorch DDP/1 proc %.2fx"
                  % (n, two[0] / one[0], two[1] / one[1]))
    print("total time %.0f s; load average after: %.2f %.2f %.2f"
          % ((time.time() - t_start,) + os.getloadavg()))


if __name__ == "__main__":
    main()
