#!/usr/bin/python3
"""conv.py — mimo's conv2d and pooling against PyTorch: the same network
from the same weights, one training step, the outputs and every gradient.

The network has an image branch (conv2d with stride 2 and same padding that
pads asymmetrically, max pooling with same padding, a valid conv2d, average
pooling with same padding (padding not counted), a 1x1 conv2d without bias,
global max and average pooling) and a feature branch (dense), concatenated
into two heads (softmax + sparse categorical cross-entropy, and mse with
weight 0.5). Its data file stores the image with its full shape (N, h, w, c)
and the weights are written with h5py as mimo and Keras store them (kernel
(kh, kw, c_in, c_out)); mimo reads them with `mimo train --init`.

mimo (float32) runs:
  * one step with lr 1e-30: its checkpoint has the initial weights, so
    `mimo predict` gives the outputs at them; history.csv the loss;
  * one step of plain SGD with lr 1 on one process (backward updates each
    kernel in place, after the input gradient has read it), and on 2 ranks
    (gradients summed, then the update): gradient = (w0 - w1) / lr.
PyTorch computes the same in float64 (channels first: the image is
transposed to (N, c, h, w), each kernel to (c_out, c_in, kh, kw), and
back). Every tensor must agree to 1e-4 relative (the largest difference
over the largest magnitude of the tensor).

Usage: /usr/bin/python3 tests/torch/conv.py MIMO_BINARY [WORKDIR]
(CTest torch_conv; its files go to a temporary directory under WORKDIR)
Exit 0: agreed; 1: a difference; 77: PyTorch or h5py is not installed
(CTest reports the test as skipped).
"""
import os
import subprocess
import sys
import tempfile

try:
    import h5py
    import numpy as np
    import torch
    import torch.nn.functional as F
except ImportError as e:  # python3-torch is optional (about 1 GB)
    print("SKIP: %s (install python3-torch and python3-h5py to run the PyTorch "
          "cross-check)" % e)
    sys.exit(77)

TOL = 1e-4
N = 12
CONFIG = """
inputs:
  image: {shape: [8, 7, 2]}
  feat:  {shape: 5}
layers:
  c1: {type: conv2d, filters: 4, kernel_size: 3, strides: 2, padding: same, activation: relu, from: image}
  p1: {type: max_pool2d, pool_size: 2, strides: 1, padding: same, from: c1}
  c2: {type: conv2d, filters: 5, kernel_size: [2, 3], padding: valid, activation: tanh, from: p1}
  p2: {type: avg_pool2d, pool_size: 2, padding: same, from: c2}
  c3: {type: conv2d, filters: 3, kernel_size: 1, use_bias: false, activation: elu, from: c2}
  g:  {type: global_max_pool2d, from: c2}
  ga: {type: global_avg_pool2d, from: c3}
  f:  {type: flatten, from: p2}
  h:  {type: dense, units: 6, activation: relu, from: feat}
  cat:   {type: concat, from: [f, g, ga, h]}
  label: {type: dense, units: 4, activation: softmax, from: cat}
  reg:   {type: dense, units: 3, from: cat}
outputs:
  label: {loss: sparse_categorical_crossentropy, metrics: [accuracy]}
  reg:   {loss: mse, weight: 0.5}
train:
  optimizer: {type: sgd, lr: 1.0}
  batch_size: %d
  epochs: 1
  shuffle: false
""" % N

# (kernel shape, has bias) per layer; conv kernels (kh, kw, c_in, c_out)
SHAPES = {"c1": ((3, 3, 2, 4), True), "c2": ((2, 3, 4, 5), True),
          "c3": ((1, 1, 5, 3), False), "h": ((5, 6), True),
          "label": ((2 * 1 * 5 + 5 + 3 + 6, 4), True),
          "reg": ((2 * 1 * 5 + 5 + 3 + 6, 3), True)}


def same_pads(n, k, s):
    """TensorFlow's same padding along one axis: (before, after)."""
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def pad2d(x, k, s, value=0.0):
    """Pads NCHW x for a same window k (kh, kw), strides s, as TensorFlow."""
    t, b = same_pads(x.shape[2], k[0], s[0])
    l, r = same_pads(x.shape[3], k[1], s[1])
    return F.pad(x, (l, r, t, b), value=value)


def conv(x, w, b, stride, same):
    wt = w.permute(3, 2, 0, 1)  # (kh, kw, c_in, c_out) -> (c_out, c_in, kh, kw)
    k = tuple(w.shape[:2])
    if same:
        x = pad2d(x, k, stride)
    return F.conv2d(x, wt, b, stride=stride)


def avg_pool_same(x, k, s):
    """Average over each window's inputs only (Keras): sum / count."""
    total = F.avg_pool2d(pad2d(x, k, s), k, s, divisor_override=1)
    ones = torch.ones_like(x[:1, :1])
    count = F.avg_pool2d(pad2d(ones, k, s), k, s, divisor_override=1)
    return total / count


def nhwc_flat(x):
    return x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)


def torch_net(p, image, feat, label, reg):
    """Outputs and loss of the network; image is (N, h, w, c) like mimo's."""
    x = image.permute(0, 3, 1, 2)  # NHWC -> NCHW
    c1 = F.relu(conv(x, p["c1/kernel"], p["c1/bias"], (2, 2), True))
    p1 = F.max_pool2d(pad2d(c1, (2, 2), (1, 1), -float("inf")), 2, 1)
    c2 = torch.tanh(conv(p1, p["c2/kernel"], p["c2/bias"], (1, 1), False))
    p2 = avg_pool_same(c2, (2, 2), (2, 2))
    c3 = F.elu(conv(c2, p["c3/kernel"], None, (1, 1), False))
    g = c2.amax(dim=(2, 3))
    ga = c3.mean(dim=(2, 3))
    h = F.relu(feat @ p["h/kernel"] + p["h/bias"])
    cat = torch.cat([nhwc_flat(p2), g, ga, h], 1)
    logits = cat @ p["label/kernel"] + p["label/bias"]
    prob = torch.softmax(logits, 1)
    out = cat @ p["reg/kernel"] + p["reg/bias"]
    loss = F.cross_entropy(logits, label) + 0.5 * F.mse_loss(out, reg)
    return prob, out, loss


def run(cmd, **kw):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
    env.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    if cmd[0] == "mpirun":  # under ASan: Open MPI's plugins leak (tests/cli/lib.bash)
        asan = env.get("ASAN_OPTIONS")
        env["ASAN_OPTIONS"] = (asan + ":" if asan else "") + "detect_leaks=0"
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True, **kw)
    if p.returncode != 0:
        print("FAIL: %s exited %d:\n%s" % (" ".join(cmd), p.returncode, p.stdout))
        sys.exit(1)
    return p.stdout


def read_params(path):
    with h5py.File(path, "r") as f:
        return {"%s/%s" % (l, t): f["params"][l][t][()].astype("f8")
                for l in f["params"] for t in f["params"][l]}


failed = 0


def compare(what, got, want):
    global failed
    got, want = np.asarray(got, "f8"), np.asarray(want, "f8")
    if got.shape != want.shape:
        print("FAIL: %s: shape %s, PyTorch %s" % (what, got.shape, want.shape))
        failed += 1
        return
    scale = max(np.abs(want).max(), 1e-30)
    err = np.abs(got - want).max() / scale
    ok = err <= TOL and np.abs(want).max() > 0
    print("%-5s %-22s max |mimo - torch| / max |torch| = %.2e" % ("ok" if ok else "FAIL", what, err))
    if not ok:
        i = np.unravel_index(np.abs(got - want).argmax(), want.shape)
        print("      at %s: mimo %.8g, torch %.8g" % (i, got[i], want[i]))
        failed += 1


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: conv.py MIMO_BINARY [WORKDIR]")
    mimo = os.path.abspath(sys.argv[1])
    work = os.path.abspath(sys.argv[2]) if len(sys.argv) == 3 else None
    if work:
        os.makedirs(work, exist_ok=True)
    torch.set_default_dtype(torch.float64)
    rs = np.random.RandomState(7)
    image = rs.rand(N, 8, 7, 2).astype("f4")
    feat = rs.randn(N, 5).astype("f4")
    label = rs.randint(0, 4, N).astype("i4")
    reg = rs.randn(N, 3).astype("f4")
    w0 = {}
    for layer, (shape, bias) in SHAPES.items():
        fan = np.prod(shape[:-1])
        w0[layer + "/kernel"] = (rs.randn(*shape) / np.sqrt(fan)).astype("f4")
        if bias:
            w0[layer + "/bias"] = (0.1 * rs.randn(shape[-1])).astype("f4")
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        os.chdir(tmp)
        open("net.yaml", "w").write(CONFIG)
        with h5py.File("data.h5", "w") as f:
            f["image"], f["feat"], f["label"], f["reg"] = image, feat, label, reg
        with h5py.File("init.h5", "w") as f:
            for k, v in w0.items():
                f["params/" + k] = v
        train = [mimo, "train", "net.yaml", "--data", "data.h5", "--init", "init.h5",
                 "--quiet"]
        run(train + ["--out", "at0", "--set", "train.optimizer.lr=1e-30"])
        run(train + ["--out", "sgd1"])
        run(["mpirun", "-np", "2", "-x", "OMP_NUM_THREADS", mimo] + train[1:] +
            ["--out", "sgd2"])
        run([mimo, "predict", "at0", "--data", "data.h5", "--out", "pred.h5"])
        with h5py.File("pred.h5", "r") as f:
            prob, out = f["label"][()], f["reg"][()]
        hist = np.genfromtxt("at0/history.csv", delimiter=",", names=True)
        loss = float(np.atleast_1d(hist["loss"])[0])
        w1 = {r: read_params(r + "/checkpoints/last.h5") for r in ("sgd1", "sgd2")}

    p = {k: torch.tensor(v.astype("f8"), requires_grad=True) for k, v in w0.items()}
    t_prob, t_out, t_loss = torch_net(p, torch.tensor(image.astype("f8")),
                                      torch.tensor(feat.astype("f8")),
                                      torch.tensor(label.astype("i8")),
                                      torch.tensor(reg.astype("f8")))
    t_loss.backward()
    print("mimo %s against PyTorch %s (float64), %d samples, one step" %
          (mimo, torch.__version__, N))
    compare("label (softmax)", prob, t_prob.detach().numpy())
    compare("reg", out, t_out.detach().numpy())
    compare("loss", [loss], [float(t_loss)])
    for run_name, w in w1.items():
        for k in sorted(w0):
            grad = w0[k].astype("f8") - w[k]  # lr 1: w1 = w0 - grad
            compare("%s d %s" % (run_name, k), grad, p[k].grad.numpy())
    print("%d failed" % failed)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
