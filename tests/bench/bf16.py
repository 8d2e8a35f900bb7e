#!/usr/bin/python3
"""bf16.py — train.precision: bf16 against float32 (issue 29), `mimo train`
end to end, in one run on the machine it runs on. A measurement to read,
never run by ctest; nothing is asserted.

Prints the CPU (model, family/model, whether it has AVX512_BF16 / AMX-BF16),
the load, and at 1 thread (OMP_NUM_THREADS=1):

  * the square 1024^3 product: OpenBLAS sgemm and oneDNN's bf16 matmul with
    float32 accumulation (`mimo bench`'s two lines);
  * the large benchmark network (configs/bench/large.yaml, 2,048 random rows,
    train_e2e.py's file): `mimo train` in float32 and in bf16, alternating in
    each round; end to end = E epochs' rows over the wall time of 1 + E
    epochs minus that of 1 epoch (start-up, the first epoch and the final
    save cancel), and per epoch = history.csv's median samples/s; against
    PyTorch 1.13's loop of train_e2e.py in float32 and under
    torch.autocast("cpu", torch.bfloat16) (--no-torch: mimo only);
  * both also by `mimo bench --data FILE` (train's step on the same file),
    float32 and bf16 alternating in short runs, --bench-rounds times: the
    median of the rounds' ratios moves less on a shared machine;
  * the Fashion CNN (configs/fashion-cnn.yaml, Fashion-MNIST's 60,000
    training images, the 10,000 test images as validation): `mimo train`
    float32 and bf16 with the same seed and --fashion-epochs epochs, the
    seconds per epoch (history.csv, median over the epochs after the first)
    and the test accuracies after the last epoch (and their difference in
    points).

Ratios are from alternating runs in one session; a shared machine moves
them (the load is printed before and after).

  /usr/bin/python3 tests/bench/bf16.py [--mimo build/mimo] [--rounds 1]
                                       [--fashion-epochs 3] [--nets large,fashion]
"""
import argparse
import csv
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
import compare_torch as ct  # noqa: E402
import train_e2e as e2e  # noqa: E402

FASHION = "/usr/share/datasets/fashion-mnist"
PRECISIONS = ("float32", "bf16")


def cpu_line():
    info = open("/proc/cpuinfo").read()

    def field(name):
        m = re.search(r"^%s\s*:\s*(.*)$" % name, info, re.M)
        return m.group(1).strip() if m else "?"
    flags = set(field("flags").split())
    have = [f for f in ("avx512f", "avx512_bf16", "amx_bf16") if f in flags]
    return "cpu: %s (family %s model %s; %s; %d CPUs)" % (
        field("model name"), field("cpu family"), field("model"),
        " ".join(have) or "no AVX-512", os.cpu_count() or 0)


def history(run_dir):
    with open(os.path.join(run_dir, "history.csv")) as f:
        return list(csv.DictReader(f))


def train(args, cfg, out, precision, extra):
    """wall seconds of `mimo train` (1 thread), and its history rows"""
    shutil.rmtree(out, ignore_errors=True)
    cmd = [args.mimo, "train", cfg, "--out", out, "--quiet", "--overwrite",
           "--set", "train.precision=" + precision] + extra
    t = time.perf_counter()
    ct.run(cmd, ct.env_threads(1), timeout=7200)
    return time.perf_counter() - t, history(out)


def products(args, cfg):
    out = ct.run([args.mimo, "bench", cfg, "--steps", "4", "--warmup", "1",
                  "--set", "train.precision=bf16"], ct.env_threads(1))
    sg = re.search(r"^sgemm 1024\^3\s+([0-9.]+)", out, re.M)
    bf = re.search(r"^bf16 matmul 1024\^3\s+([0-9.]+)", out, re.M)
    pr = re.search(r"^precision\s+(.*)$", out, re.M)
    return (float(sg.group(1)) if sg else float("nan"),
            float(bf.group(1)) if bf else float("nan"), pr.group(1) if pr else "?")


def bench_alternating(args, cfg, data, steps):
    """`mimo bench CFG --data DATA` (train's step on the file), float32 and
    bf16 alternating --bench-rounds times: median samples/s of each and the
    median of the rounds' ratios (short runs side by side: on a shared
    machine the ratio of neighbours moves less than either rate)"""
    sps = {p: [] for p in PRECISIONS}
    for _ in range(args.bench_rounds):
        for p in PRECISIONS:
            out = ct.run([args.mimo, "bench", cfg, "--data", data, "--steps", str(steps),
                          "--warmup", str(max(steps // 10, 2)), "--set",
                          "train.precision=" + p], ct.env_threads(1))
            sps[p].append(float(re.search(r"^samples/s\s+([0-9.]+)", out, re.M).group(1)))
    ratios = [b / f for f, b in zip(sps["float32"], sps["bf16"])]
    print("  mimo bench --data, %d alternating rounds of %d steps: float32 %s, bf16 %s "
          "samples/s (medians); bf16/float32 %.2fx (median of the rounds' ratios; "
          "range %.2f .. %.2f)" % (args.bench_rounds, steps,
                                   ct.fmt(statistics.median(sps["float32"])),
                                   ct.fmt(statistics.median(sps["bf16"])),
                                   statistics.median(ratios), min(ratios), max(ratios)),
          flush=True)


def large(args, tmp):
    cfg = os.path.join(ROOT, "configs", "bench", "large.yaml")
    net = ct.read_net(cfg)
    rows, E = e2e.ROWS["large"], args.epochs
    data = os.path.join(tmp, "large.h5")
    e2e.write_data(net, rows, data)
    got = {k: [] for k in ("float32", "bf16", "float32/ep", "bf16/ep", "torch",
                           "torch bf16")}
    for _ in range(args.rounds):
        for p in PRECISIONS:  # alternating
            extra = ["--data", data, "--set", "train.checkpoint.every_epochs=1"]
            t1, _ = train(args, cfg, os.path.join(tmp, "r"), p, extra + ["--epochs", "1"])
            t2, h = train(args, cfg, os.path.join(tmp, "r"), p,
                          extra + ["--epochs", str(1 + E)])
            got[p].append(E * rows / (t2 - t1))
            got[p + "/ep"].append(statistics.median(
                float(r["samples_per_s"]) for r in h[1:]))
        if args.no_torch:
            continue
        for key, auto in (("torch", False), ("torch bf16", True)):
            spec = {"net": net, "epochs": E, "data": data, "procs": 1,
                    "ckpt": os.path.join(tmp, "torch.pt"), "autocast": auto}
            out = ct.run([args.python, e2e.__file__, "--worker", json.dumps(spec)],
                         ct.env_threads(1))
            got[key].append(json.loads(
                re.search(r"^RESULT (.*)$", out, re.M).group(1))["sps"])
    med = {k: statistics.median(v) if v else float("nan") for k, v in got.items()}
    print("large (%d rows, batch %d, %d epochs; samples/s end to end):" % (
        rows, net["batch"], E))
    print("  mimo float32 %s (per epoch %s)   mimo bf16 %s (per epoch %s)   "
          "bf16/float32 %.2fx end to end, %.2fx per epoch" % (
              ct.fmt(med["float32"]), ct.fmt(med["float32/ep"]), ct.fmt(med["bf16"]),
              ct.fmt(med["bf16/ep"]), med["bf16"] / med["float32"],
              med["bf16/ep"] / med["float32/ep"]))
    if not args.no_torch:
        print("  PyTorch float32 %s   PyTorch autocast bf16 %s (%.2fx its float32)" % (
            ct.fmt(med["torch"]), ct.fmt(med["torch bf16"]),
            med["torch bf16"] / med["torch"]))
        print("  mimo bf16 / PyTorch autocast bf16 %.2fx; mimo float32 / PyTorch "
              "float32 %.2fx" % (med["bf16"] / med["torch bf16"],
                                 med["float32"] / med["torch"]))
    print("  rounds: " + json.dumps({k: [round(x) for x in v] for k, v in got.items()}),
          flush=True)
    bench_alternating(args, cfg, data, 40)


def fashion(args, tmp):
    if not os.path.exists(os.path.join(FASHION, "train-images-idx3-ubyte.gz")):
        print("fashion: no %s (apt-get install dataset-fashion-mnist): skipped" % FASHION)
        return
    files = {}
    for split, stem in (("train", "train"), ("test", "t10k")):
        files[split] = os.path.join(tmp, "fashion-%s.h5" % split)
        ct.run([args.mimo, "import", "idx", "--images",
                os.path.join(FASHION, stem + "-images-idx3-ubyte.gz"), "--labels",
                os.path.join(FASHION, stem + "-labels-idx1-ubyte.gz"), "--out",
                files[split], "--image-shape", "full", "--pool", "4", "--label-map",
                "group=0,1,0,1,0,2,0,2,3,2"], ct.env_threads(1))
    cfg = os.path.join(ROOT, "configs", "fashion-cnn.yaml")
    print("fashion CNN (60,000 images, batch 128, 1 thread):")
    bench_alternating(args, cfg, files["train"], 60)
    if args.fashion_epochs <= 0:
        return
    extra = ["--data", files["train"], "--val", files["test"], "--epochs",
             str(args.fashion_epochs), "--set", "train.checkpoint.every_epochs=0"]
    got = {p: [] for p in PRECISIONS}
    acc = {}
    for _ in range(args.rounds):
        for p in PRECISIONS:
            t, h = train(args, cfg, os.path.join(tmp, "f-" + p), p, extra)
            per = [float(r["seconds"]) for r in h[1:]] or [float(h[0]["seconds"])]
            got[p].append((statistics.median(per), t))
            acc[p] = float(h[-1]["val_label_accuracy"])
    print("  mimo train, %d epochs, seed 1 (s/epoch: median of epochs 2..; wall s "
          "of the run):" % args.fashion_epochs)
    s = {p: min(x[0] for x in got[p]) for p in PRECISIONS}
    w = {p: min(x[1] for x in got[p]) for p in PRECISIONS}
    print("  mimo float32 %.1f s/epoch (%.0f s)   mimo bf16 %.1f s/epoch (%.0f s)   "
          "bf16/float32 %.2fx per epoch, %.2fx wall" % (
              s["float32"], w["float32"], s["bf16"], w["bf16"],
              s["float32"] / s["bf16"], w["float32"] / w["bf16"]))
    print("  test label accuracy: float32 %.4f, bf16 %.4f (%+.2f points)" % (
        acc["float32"], acc["bf16"], 100 * (acc["bf16"] - acc["float32"])), flush=True)


def main():
    ap = argparse.ArgumentParser(description="train.precision bf16 against float32, "
                                 "mimo train end to end (1 thread).")
    ap.add_argument("--mimo", default=os.path.join(ROOT, "build", "mimo"))
    ap.add_argument("--nets", default="large,fashion")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=5, help="large: timed epochs E")
    ap.add_argument("--fashion-epochs", type=int, default=3,
                    help="0: the alternating bench alone")
    ap.add_argument("--bench-rounds", type=int, default=5)
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--no-torch", action="store_true")
    args = ap.parse_args()
    args.mimo = os.path.abspath(args.mimo)
    if not os.access(args.mimo, os.X_OK):
        ap.error("no mimo executable at %s (give --mimo PATH)" % args.mimo)
    t0 = time.time()
    print(cpu_line())
    print("load average before: %.2f %.2f %.2f; 1 thread (OMP_NUM_THREADS=1)"
          % os.getloadavg())
    sg, bf, pr = products(args, os.path.join(ROOT, "configs", "bench", "large.yaml"))
    print("1024^3 product: sgemm %.1f GFLOP/s, bf16 matmul %.1f GFLOP/s (%.2fx); "
          "train.precision bf16 here: %s" % (sg, bf, bf / sg, pr), flush=True)
    if not pr.startswith("bf16"):
        print("no native bf16 on this machine: bf16 would train float32; nothing to "
              "compare")
        return
    tmp = tempfile.mkdtemp(prefix="mimo-bf16-")
    try:
        nets = args.nets.split(",")
        if "large" in nets:
            large(args, tmp)
        if "fashion" in nets:
            fashion(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("total %.0f s; load average after: %.2f %.2f %.2f"
          % ((time.time() - t0,) + os.getloadavg()))


if __name__ == "__main__":
    main()
