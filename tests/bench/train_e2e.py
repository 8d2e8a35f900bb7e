#!/usr/bin/python3
"""train_e2e.py — `mimo train` end to end: against `mimo bench`, against
itself without checkpoints, and against a PyTorch training loop that does
what a user's script does.

For each benchmark network (configs/bench/{tiny,small,large}.yaml) this
writes an HDF5 dataset of random rows of the right shapes (tiny 32,768
rows, small 8,192, large 2,048: --rows), then for each configuration (1
process x 1 thread, 2 processes x 1 thread) runs, alternately for
--rounds rounds so that all see the same state of the machine:

  * bench: `mimo bench NET.yaml --data FILE`, as many timed steps as the
    epochs below: its median segment rate (samples/s);
  * train: `mimo train NET.yaml --data FILE` with a checkpoint every epoch
    (the default) for 1 and for 1 + E epochs; end to end = E epochs' rows
    over the difference of the two wall times (start-up, the first epoch
    and the final save excluded alike); per epoch = the median of
    history.csv's samples_per_s over epochs 2.. (the steps alone);
  * train, no checkpoints: the same with checkpoint.every_epochs = 0 and
    save_best = false (the final save only): checkpoint cost = 1 - its
    time / the time with them;
  * torch: the same network (compare_torch.py's), the file read into
    tensors with h5py, every epoch a new permutation, each batch gathered
    with index_select, plain SGD, the running loss read each step as a
    progress line would, and at the end of every epoch torch.save of the
    model's and optimizer's state into a file (written to a temporary,
    fsynced, renamed: what mimo does); 2 processes: DDP on gloo, rank 0
    saving. End to end: E epochs' rows over the time from the end of the
    first epoch to the end of the last, measured inside the process.

Prints the medians and the ratios train per epoch / bench, mimo end to end
/ torch end to end, the checkpoint cost, and 2 ranks / 1 rank. Timings are
ratios measured in one run on a possibly noisy machine; they are for
reading, never asserted by the tests. Run with Debian's interpreter
(python3-torch, python3-h5py): /usr/bin/python3 tests/bench/train_e2e.py
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import compare_torch as ct  # noqa: E402  (the network and the run helpers)

ROWS = {"tiny": 32768, "small": 8192, "large": 2048}
EPOCHS = {"tiny": 10, "small": 6, "large": 5}   # E: timed epochs
CONFIGS = [("1 proc x 1 thr", 1), ("2 proc x 1 thr", 2)]


def write_data(net, rows, path):
    import h5py
    import numpy as np
    r = np.random.default_rng(12345)
    with h5py.File(path, "w") as f:
        f["x1"] = r.standard_normal((rows, net["x1"]), dtype=np.float32)
        f["x2"] = r.standard_normal((rows, net["x2"]), dtype=np.float32)
        f["y1"] = (r.random((rows, net["y1"])) < 0.5).astype(np.float32)
        f["y2"] = r.standard_normal((rows, net["y2"]), dtype=np.float32)


# ---- PyTorch, end to end (a fresh process per measurement) --------------------

def torch_e2e(spec, rank=0, world=1, q=None):
    import h5py
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    net, epochs, path, ckpt = spec["net"], spec["epochs"], spec["data"], spec["ckpt"]
    torch.set_num_threads(1)
    torch.manual_seed(1)
    if world > 1:
        import torch.distributed as dist
        dist.init_process_group("gloo", rank=rank, world_size=world)
    model = ct.dense_model(net, nn, F, torch)
    if world > 1:
        model = nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.SGD(model.parameters(), lr=net["lr"])
    bce, mae = nn.BCEWithLogitsLoss(), nn.L1Loss()
    with h5py.File(path, "r") as f:
        tensors = [torch.from_numpy(f[k][:]) for k in ("x1", "x2", "y1", "y2")]
    rows, gb = tensors[0].shape[0], net["batch"]
    lb = gb // world
    g = torch.Generator().manual_seed(12345)
    marks = []
    for e in range(1 + epochs):
        perm = torch.randperm(rows, generator=g)
        running = 0.0
        for b in range(rows // gb):
            idx = perm[b * gb + rank * lb: b * gb + (rank + 1) * lb]
            x1, x2, t1, t2 = (t.index_select(0, idx) for t in tensors)
            opt.zero_grad(set_to_none=True)
            # spec["autocast"] (tests/bench/bf16.py): Keras' mixed_bfloat16 in
            # PyTorch, the forward and loss under torch.autocast
            with torch.autocast("cpu", dtype=torch.bfloat16,
                                enabled=spec.get("autocast", False)):
                o1, o2 = model(x1, x2)
                loss = bce(o1, t1) + mae(o2, t2)
            loss.backward()
            opt.step()
            running += loss.item()
        if rank == 0:
            tmp = ckpt + ".tmp"
            with open(tmp, "wb") as fh:
                torch.save({"epoch": e, "model": model.state_dict(),
                            "optimizer": opt.state_dict(), "loss": running}, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, ckpt)
        marks.append(time.perf_counter())
    res = {"sps": epochs * rows / (marks[-1] - marks[0])}
    if world > 1:
        dist.destroy_process_group()
    if q is not None and rank == 0:
        q.put(res)
    return res


def _ddp_entry(rank, spec, world, q):
    torch_e2e(spec, rank, world, q)


def worker(spec):
    if spec["procs"] == 1:
        res = torch_e2e(spec)
    else:
        import socket
        import torch.multiprocessing as mp
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            os.environ["MASTER_PORT"] = str(s.getsockname()[1])
        os.environ["MASTER_ADDR"] = "127.0.0.1"
        q = mp.get_context("spawn").SimpleQueue()
        mp.spawn(_ddp_entry, args=(spec, spec["procs"], q), nprocs=spec["procs"],
                 join=True)
        res = q.get()
    print("RESULT " + json.dumps(res), flush=True)


# ---- mimo ------------------------------------------------------------------------

def mimo_cmd(args, procs, rest):
    cmd = [args.mimo] + rest
    if procs > 1:
        cmd = [args.mpirun, "-np", str(procs), "-x", "OMP_NUM_THREADS"] + cmd
    return cmd


def timed(cmd):
    t = time.perf_counter()
    ct.run(cmd, ct.env_threads(1))
    return time.perf_counter() - t


def mimo_train(args, cfg, data, out, procs, epochs, every):
    """Wall seconds of `mimo train` for `epochs` epochs; per-epoch rates
    from history.csv (epochs 2..). every = 0: no checkpoint but the final
    one (best.h5 off too: it would be saved whenever the loss improves)."""
    shutil.rmtree(out, ignore_errors=True)
    ck = ["--set", "train.checkpoint.every_epochs=%d" % every]
    if every == 0:
        ck += ["--set", "train.checkpoint.save_best=false"]
    t = timed(mimo_cmd(args, procs, [
        "train", cfg, "--data", data, "--out", out, "--quiet", "--overwrite",
        "--epochs", str(epochs)] + ck))
    with open(os.path.join(out, "history.csv")) as f:
        lines = f.read().split("\n")
    col = lines[0].split(",").index("samples_per_s")
    rates = [float(l.split(",")[col]) for l in lines[2:] if l]
    return t, rates


def mimo_bench(args, cfg, data, procs, steps):
    out = ct.run(mimo_cmd(args, procs, [
        "bench", cfg, "--data", data, "--steps", str(steps), "--warmup",
        str(max(steps // 10, 2)), "--segments", "5"]), ct.env_threads(1))
    return float(re.search(r"^samples/s\s+([0-9.]+)", out, re.M).group(1))


def main():
    ap = argparse.ArgumentParser(description="mimo train end to end against mimo "
                                 "bench and a PyTorch training loop.")
    ap.add_argument("--mimo", default=os.path.join(ROOT, "build", "mimo"))
    ap.add_argument("--configs", default=os.path.join(ROOT, "configs", "bench"))
    ap.add_argument("--nets", default="tiny,small,large")
    ap.add_argument("--procs", default="1,2", help="process counts (default 1,2)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--mpirun", default="mpirun")
    ap.add_argument("--no-torch", action="store_true", help="mimo only")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(json.loads(args.worker))
        return
    if not os.access(args.mimo, os.X_OK):
        ap.error("no mimo executable at %s (give --mimo PATH)" % args.mimo)
    procs_list = [int(p) for p in args.procs.split(",")]
    tmp = tempfile.mkdtemp(prefix="mimo-e2e-")
    t_start = time.time()
    for line in ct.machine():
        print(line)
    print("rounds %d; medians over rounds\n" % args.rounds)
    summary = []
    try:
        for n in [x for x in args.nets.split(",") if x]:
            cfg = os.path.join(args.configs, n + ".yaml")
            net = ct.read_net(cfg)
            rows, E = ROWS[n], EPOCHS[n]
            data = os.path.join(tmp, n + ".h5")
            write_data(net, rows, data)
            steps = E * (rows // net["batch"])
            for label, procs in CONFIGS:
                if procs not in procs_list:
                    continue
                got = {k: [] for k in ("bench", "epoch", "e2e", "e2e0", "torch")}
                for _ in range(args.rounds):
                    got["bench"].append(mimo_bench(args, cfg, data, procs, steps))
                    t1, _ = mimo_train(args, cfg, data, os.path.join(tmp, "r"), procs, 1, 1)
                    t2, rates = mimo_train(args, cfg, data, os.path.join(tmp, "r"), procs,
                                           1 + E, 1)
                    got["epoch"].append(statistics.median(rates))
                    got["e2e"].append(E * rows / (t2 - t1))
                    t1, _ = mimo_train(args, cfg, data, os.path.join(tmp, "r"), procs, 1, 0)
                    t2, _ = mimo_train(args, cfg, data, os.path.join(tmp, "r"), procs, 1 + E, 0)
                    got["e2e0"].append(E * rows / (t2 - t1))
                    if not args.no_torch:
                        spec = {"net": net, "epochs": E, "data": data, "procs": procs,
                                "ckpt": os.path.join(tmp, "torch.pt")}
                        out = ct.run([args.python, os.path.abspath(__file__), "--worker",
                                      json.dumps(spec)], ct.env_threads(1))
                        got["torch"].append(json.loads(
                            re.search(r"^RESULT (.*)$", out, re.M).group(1))["sps"])
                med = {k: statistics.median(v) if v else float("nan")
                       for k, v in got.items()}
                summary.append((n, label, procs, med, got))
                print("%-6s %s  bench %s  train/epoch %s (%.2f of bench)  end to end %s"
                      "  no checkpoints %s (checkpoint cost %.1f%%)  torch %s  mimo/torch "
                      "%.2f  (load %.1f)" % (
                          n, label, ct.fmt(med["bench"]), ct.fmt(med["epoch"]),
                          med["epoch"] / med["bench"], ct.fmt(med["e2e"]),
                          ct.fmt(med["e2e0"]), 100 * (1 - med["e2e"] / med["e2e0"]),
                          ct.fmt(med["torch"]), med["e2e"] / med["torch"],
                          os.getloadavg()[0]), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print()
    print("%-6s %-15s %11s %11s %7s %11s %11s %6s %11s %7s" % (
        "net", "configuration", "bench", "train/ep", "t/b", "e2e", "e2e no ck",
        "ck %", "torch e2e", "m/t"))
    for n, label, procs, med, got in summary:
        print("%-6s %-15s %11s %11s %7.2f %11s %11s %6.1f %11s %7.2f" % (
            n, label, ct.fmt(med["bench"]), ct.fmt(med["epoch"]),
            med["epoch"] / med["bench"], ct.fmt(med["e2e"]), ct.fmt(med["e2e0"]),
            100 * (1 - med["e2e"] / med["e2e0"]), ct.fmt(med["torch"]),
            med["e2e"] / med["torch"]))
    by = {(n, p): med for n, _, p, med, _ in summary}
    for n in args.nets.split(","):
        if (n, 1) in by and (n, 2) in by:
            print("%s: 2 ranks / 1 rank end to end: mimo %.2fx, PyTorch DDP %.2fx" % (
                n, by[(n, 2)]["e2e"] / by[(n, 1)]["e2e"],
                by[(n, 2)]["torch"] / by[(n, 1)]["torch"]))
    print("bench, train/ep, e2e: samples/s; t/b: train per epoch / bench; ck %: the")
    print("end-to-end time checkpoints every epoch add; m/t: mimo / torch end to end")
    print("total time %.0f s; load average after: %.2f %.2f %.2f"
          % ((time.time() - t_start,) + os.getloadavg()))


if __name__ == "__main__":
    main()
