#!/usr/bin/env bash
# seeds.sh — what the seed examples show, beyond the targets in the
# configs' headers (tests/cli/configs.sh checks those):
#   000  --init with the tutorial's own weights (numpy seed 42, written with
#        h5py): mimo's first loss is the tutorial's forward pass, and 1000
#        SGD steps follow the tutorial's numpy training loop;
#   001  independent regression heads on a shared trunk: the total loss is
#        the weighted sum of the per-head losses, each head learns;
#   002  masked softmax: exact zeros where the mask is 0, rows summing to
#        1, it learns; a diverging run stops with a clear message, exit 1,
#        and a loadable last checkpoint;
#   003  clipped SGD vs Adam on the sliding-window sine: the numbers.
# ~5 s on 2 cores.
source "$(dirname "$0")/lib.bash"
PY=/usr/bin/python3
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
cd "$TMP" || exit 1
cp -r "$SRC/configs" configs # a copy: data paths resolve next to it, ../data
mkdir data

# hist RUN COLUMN [EPOCH]: a value of runs/RUN/history.csv (default: last row)
hist() {
    awk -F, -v c="$2" -v e="${3:-}" '
        NR == 1 { for (i = 1; i <= NF; i++) if ($i == c) k = i; next }
        k && (e == "" || $1 == e) { v = $k }
        END { if (v != "") print v }' "runs/$1/history.csv" 2>/dev/null
}

# ---- 000: the tutorial's weights through --init ---------------------------
expect 0 "wrote data/seed-mimo.h5" gen seed-mimo --out data/seed-mimo.h5
# The tutorial's draws: x1, x2 (randint / 100), then w1..w5 (random), b = 0;
# its w_k is (out, in), mimo's kernel (in, out).
$PY - <<'PYEOF'
import h5py, numpy as np
np.random.seed(42)
x1 = np.random.randint(1, 100, size=(5, 1)) / 100
x2 = np.random.randint(1, 100, size=(3, 1)) / 100
W = {'h1': np.random.random((4, 5)), 'h2': np.random.random((3, 5)),
     'h3': np.random.random((4, 10)), 'y1': np.random.random((5, 4)),
     'y2': np.random.random((4, 4))}
with h5py.File('data/seed-mimo.h5') as d:
    assert np.allclose(d['x1'][0], x1[:, 0]) and np.allclose(d['x2'][0], x2[:, 0]), \
        'mimo gen seed-mimo row 0 is not the tutorial sample'
with h5py.File('tutorial-init.h5', 'w') as f:
    for k, w in W.items():
        f[f'params/{k}/kernel'] = w.T.astype('f4')
        f[f'params/{k}/bias'] = np.zeros(w.shape[0], 'f4')
PYEOF
expect 0 "" train configs/seed-mimo.yaml --init tutorial-init.h5 --out runs/seed-init --quiet
# The tutorial's loop, verbatim in effect (float64): forward, loss, update.
py "000: first loss = the tutorial's forward pass; 1000 steps as its loop" "
import csv, numpy as np
np.random.seed(42)
x1 = np.random.randint(1, 100, size=(5, 1)) / 100
x2 = np.random.randint(1, 100, size=(3, 1)) / 100
y1 = np.array([[1], [1], [0], [0], [1]]); y2 = np.array([[0], [1], [0], [0]])
w1 = np.random.random((4, 5)); w2 = np.random.random((3, 5)); w3 = np.random.random((4, 10))
w4 = np.random.random((5, 4)); w5 = np.random.random((4, 4))
b1, b2, b3, b4, b5 = (np.zeros((n, 1)) for n in (4, 3, 4, 5, 4))
relu = lambda x: np.maximum(x, 0); drelu = lambda x: (x > 0) * 1.0
sig = lambda x: 1 / (1 + np.exp(-x))
soft = lambda x: np.exp(x) / np.sum(np.exp(x))
bce = lambda t, p: -np.mean(t * np.log(p) + (1 - t) * np.log(1 - p))
mae = lambda t, p: np.mean(abs(t - p))
losses = []
for epoch in range(1000):
    i1 = w1 @ x1 + b1; o1 = relu(i1); i2 = w2 @ x1 + b2; o2 = relu(i2)
    cat = np.concatenate((x2, o1, o2)); i3 = w3 @ cat + b3; o3 = relu(i3)
    p1 = sig(w4 @ o3 + b4); p2 = soft(w5 @ o3 + b5)
    losses.append((bce(y1, p1), mae(y2, p2)))
    g1 = (p1 - y1) / 5                                  # BCE through the sigmoid
    gm = -np.sign(y2 - p2) / 4                          # MAE
    g2 = (np.diag(p2[:, 0]) - p2 @ p2.T) @ gm           # through the softmax
    gh3 = (w4.T @ g1 + w5.T @ g2) * drelu(i3)
    gcat = w3.T @ gh3
    gh1 = gcat[3:7] * drelu(i1); gh2 = gcat[7:10] * drelu(i2)
    for w, b, g, a in ((w4, b4, g1, o3), (w5, b5, g2, o3), (w3, b3, gh3, cat),
                       (w1, b1, gh1, x1), (w2, b2, gh2, x1)):
        w -= 0.01 * g @ a.T; b -= 0.01 * g
rows = list(csv.DictReader(open('runs/seed-init/history.csv')))
assert len(rows) == 1000, len(rows)
m = [(float(r['y1_loss']), float(r['y2_loss'])) for r in rows]
for e in (0, 1, 99, 299, 999):
    print(f'  000 epoch {e + 1:4d}: tutorial BCE {losses[e][0]:.6f} MAE {losses[e][1]:.6f}'
          f' | mimo BCE {m[e][0]:.6f} MAE {m[e][1]:.6f}')
assert np.allclose(m[0], losses[0], rtol=1e-5, atol=0), ('first loss', m[0], losses[0])
assert abs(float(rows[0]['loss']) - sum(losses[0])) < 1e-5 * sum(losses[0])
assert np.allclose(m[999], losses[999], rtol=0.02, atol=1e-4), ('after 1000 steps', m[999], losses[999])
assert losses[999][0] < losses[0][0] / 10 and losses[999][1] < losses[0][1] / 10
"

# ---- 001: independent regression heads on a shared trunk ------------------
$PY - <<'PYEOF'
import h5py, numpy as np
r = np.random.RandomState(7)
X = r.rand(2000, 10).astype('f4')
with h5py.File('data/two-reg.h5', 'w') as f:
    f['X'] = X
    f['output1'] = np.sin(3 * X[:, :5].sum(1, keepdims=True)).astype('f4')
    f['output2'] = (X[:, 5:] ** 2).mean(1, keepdims=True).astype('f4')
PYEOF
config two-reg 'inputs: {X: {shape: 10}}
layers:
  shared: {type: dense, units: 64, activation: relu, from: X}
  trunk:  {type: dense, units: 128, activation: relu, from: shared}
  output1: {type: dense, units: 1, from: trunk}
  output2: {type: dense, units: 1, from: trunk}
outputs:
  output1: {loss: mse}
  output2: {loss: mse, weight: 0.5}
train: {optimizer: {type: adam, lr: 0.001}, batch_size: 32, epochs: 30, seed: 1,
        validation_split: 0.2}
data: {train: data/two-reg.h5}'
expect 0 "" train "$TMP/two-reg.yaml" --out runs/two-reg --quiet
py "001: total loss = output1_loss + 0.5 output2_loss; both heads learn" "
import csv
rows = list(csv.DictReader(open('runs/two-reg/history.csv')))
for r in rows:
    for p in ('', 'val_'):
        t, a, b = (float(r[p + k]) for k in ('loss', 'output1_loss', 'output2_loss'))
        assert abs(t - (a + 0.5 * b)) <= 1e-5 * t, (r['epoch'], p, t, a, b)
f, l = rows[0], rows[-1]
print('  001 val MSE epoch 1 -> 30: output1 %s -> %s, output2 %s -> %s' % (
      f['val_output1_loss'], l['val_output1_loss'], f['val_output2_loss'], l['val_output2_loss']))
assert float(l['val_output1_loss']) < float(f['val_output1_loss']) / 5
assert float(l['val_output2_loss']) < float(f['val_output2_loss']) / 5
"

# ---- 002: masked softmax ----------------------------------------------------
expect 0 "wrote data/masked.h5 (masked, N=5000)" gen masked --out data/masked.h5
expect 0 "" train configs/masked-softmax.yaml --quiet
expect 0 "" predict runs/masked-softmax --data data/masked.h5 --out masked-pred.h5
py "002: masked softmax: exact zeros, rows sum to 1, it learns" "
import csv, h5py, numpy as np
d = h5py.File('data/masked.h5'); p = h5py.File('masked-pred.h5')['y'][()]
m, y = d['mask'][()], d['y'][()]
assert p.shape == (5000, 10), p.shape
assert m.sum(1).min() >= 1 and set(np.unique(m)) <= {0.0, 1.0}
assert m[np.arange(len(y)), y].min() == 1, 'a label on a masked position'
assert (p[m == 0] == 0).all(), 'nonzero probability where the mask is 0'
assert (p[m == 1] > 0).all()
assert np.abs(p.sum(1) - 1).max() < 1e-5, np.abs(p.sum(1) - 1).max()
acc = float(list(csv.DictReader(open('runs/masked-softmax/history.csv')))[-1]['val_y_accuracy'])
print(f'  002 masked softmax: val accuracy {acc:.4f} (chance ~0.2)')
assert acc > 0.9, acc
"
# the gen fixture: masks of 0/1 with a 1 in every row also for tiny N
expect 0 "N=3)" gen masked --out data/m3.h5 --n 3 --seed 5

# ---- 002: divergence stops with a clear message -----------------------------
expect 0 "" gen xor --out data/xor.h5
expect 1 "loss of head 'y' is not finite at epoch" train configs/xor-diverge.yaml --quiet
last=$(ls runs/xor-diverge/checkpoints/ckpt-*.h5 2>/dev/null | tail -n 1)
check "xor-diverge left a checkpoint" test -n "$last"
# it loads and runs; at the last finite weights the outputs already
# overflow, which eval says (never a NaN loss read as a number)
expect 1 "evaluation on data/xor.h5: the loss of head 'y' is not finite" eval runs/xor-diverge --data data/xor.h5
expect 1 "evaluation on data/xor.h5: the loss of head 'y' is not finite" eval "$last" --data data/xor.h5
py "002: the last checkpoint holds the last finite epoch's finite weights" "
import csv, h5py, math, numpy as np
rows = list(csv.DictReader(open('runs/xor-diverge/history.csv')))
assert rows and all(math.isfinite(float(r['loss'])) for r in rows)
with h5py.File('$last') as c:
    assert int(c.attrs['epoch']) == int(rows[-1]['epoch']), (c.attrs['epoch'], rows[-1]['epoch'])
    for k in c['params']:
        for t in ('kernel', 'bias'):
            assert np.isfinite(c['params'][k][t][()]).all(), k
print(f'  002 diverged after epoch {rows[-1][\"epoch\"]} (loss {rows[-1][\"loss\"]}); checkpoint epoch {rows[-1][\"epoch\"]} loads')
"

# ---- 003: clipped SGD vs Adam, the numbers ----------------------------------
expect 0 "" gen sine-window --out data/sine-window.h5
for c in sine-window sine-window-adam; do
    expect 0 "" train "configs/$c.yaml" --quiet
done
echo "  003 val MSE at epoch      10      20      50     200"
for c in sine-window sine-window-adam; do
    printf '  %-21s' "$c"
    for e in 10 20 50 200; do printf ' %7.4f' "$(hist $c val_y_loss $e)"; done
    echo
done
check "003: Adam is ahead of clipped SGD at epoch 50" awk \
    -v s="$(hist sine-window val_y_loss 50)" -v a="$(hist sine-window-adam val_y_loss 50)" \
    'BEGIN { exit !(s != "" && a != "" && a + 0 < s + 0) }'
finish
