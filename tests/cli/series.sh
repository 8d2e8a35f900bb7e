#!/usr/bin/env bash
# series.sh — `mimo import csv --schema` with window: L and horizon: H: a
# time-ordered CSV into (N, L, F) number windows, (N, L) id windows and
# (N, L, max_length) list windows with the targets H rows after each
# window's last, every value against a numpy reference built from the
# raw CSV; the split by time (train the first rows, then val, then test)
# with no window reaching across a boundary (no leak: the last training
# target is older than the first validation input); statistics and
# vocabularies from the training period only; shuffle: the training
# windows permuted, val and test in time order, the same however many
# write windows (--memory-mb) it takes; `column:` feeding one CSV column
# to an input and a target; bad input: one message each, exit 1,
# nothing written. ~1 s.
source "$(dirname "$0")/lib.bash"
cd "$TMP" || exit 1

# ---- 61 days: t the day, a and b numbers, sky a category, tags a list
/usr/bin/python3 - <<'PYEOF'
import random
r = random.Random(3)
with open('s.csv', 'w', newline='') as f:
    f.write('t,a,sky,b,tags,note\n')
    for i in range(61):
        sky = r.choice(['sun', 'sun', 'rain', 'fog']) if i < 50 else r.choice(['snow', 'sun'])
        a = '%.3f' % r.gauss(i / 10, 1) if i != 44 else '1e6'  # 44: a val outlier
        tags = '|'.join(r.sample('pqrs', r.randint(0, 3)))
        f.write('%d,%s,%s,%.2f,%s,x\n' % (i, a, sky, r.uniform(-1, 1), tags))
PYEOF
cat >s.yaml <<'EOF'
columns:
  t:    {kind: numeric, into: x}
  a:    {kind: numeric, into: x}
  b:    {kind: numeric}
  sky:  {kind: category}
  tags: {kind: multi_hot, max_length: 2}
  t_next:   {column: t, kind: numeric, target: true}
  a_next:   {column: a, kind: numeric, target: true, into: y}
  sky_next: {column: sky, kind: category, target: true}
window: 5
horizon: 3
split: {val: 0.2, test: 0.2}
EOF
expect 0 "wrote o/s.h5 (train, rows 1..37 of the series: 30 windows of 5, targets 3 ahead)" \
    import csv s.csv --out o/s.h5 --schema s.yaml
expect 0 "x            numeric   float32 (N, 5, 2)" import csv s.csv --out o/s.h5 --schema s.yaml
check "no .tmp left" no_tmp o/s.h5

# REF: every split's windows rebuilt from the raw rows: the split by time
# (floor(61 * 0.2) = 12 rows each for val and test, the last), window k
# of a split its rows k..k+4, its targets row k+4+3; ids by the training
# period's vocabulary (StringLookup's order: mask, OOV, then by count).
REF='
import csv, h5py, numpy as np
from collections import Counter
rows = list(csv.DictReader(open("s.csv", newline="")))
n = len(rows); nv = nt = int(n * 0.2)
parts = {"": rows[:n - nv - nt], ".val": rows[n - nv - nt:n - nt], ".test": rows[n - nt:]}
L, H = 5, 3
def vocab(vals, target=False):
    c = Counter(v for v in vals if v != "")
    order = sorted(c, key=lambda v: (-c[v], v.encode()))
    return order if target else ["", "[UNK]"] + order
train = parts[""]
V = vocab([r["sky"] for r in train])
T = vocab([r["tags"] for r in train for r in [dict(tags=t) for t in r["tags"].split("|")]])
C = vocab([r["sky"] for r in train], target=True)
f32 = lambda s: np.float32(float(s))
def windows(rs):
    out = {k: [] for k in ("x", "b", "sky", "tags", "t_next", "y", "sky_next")}
    for k in range(len(rs) - L - H + 1):
        w, tg = rs[k:k + L], rs[k + L - 1 + H]
        out["x"].append([[f32(r["t"]), f32(r["a"])] for r in w])
        out["b"].append([[f32(r["b"])] for r in w])
        out["sky"].append([V.index(r["sky"]) if r["sky"] in V else 1 for r in w])
        out["tags"].append([([T.index(t) if t in T else 1 for t in r["tags"].split("|") if t] + [0, 0])[:2] for r in w])
        out["t_next"].append(f32(tg["t"])); out["y"].append(f32(tg["a"]))
        out["sky_next"].append(C.index(tg["sky"]) if tg["sky"] in C else -1)
    return {k: np.array(v) for k, v in out.items()}
'
py "every window and target = the numpy reference, in every split" "$REF
for s, rs in parts.items():
    f, want = h5py.File('o/s%s.h5' % s), windows(rs)
    for k, v in want.items():
        got = f[k][:]
        assert got.shape == v.shape, (s, k, got.shape, v.shape)
        assert got.dtype == (np.int32 if k in ('sky', 'tags', 'sky_next') else np.float32), (k, got.dtype)
        assert np.array_equal(got, v), (s, k, got, v)
    print('%-5s %2d windows: x %s, sky %s, tags %s' % (s or 'train', len(want['x']), f['x'].shape, f['sky'].shape, f['tags'].shape))
f = h5py.File('o/s.test.h5')
assert [v.decode() for v in f['preprocessing/sky/vocabulary'][:]] == V and 'snow' not in V
assert (f['sky'][:] == 1).any() and (f['sky_next'][:] == -1).any()  # snow: unseen in training
"
py "no leak: train, val and test windows each inside their period, in time order" "
import h5py, numpy as np
f = [h5py.File('o/s%s.h5' % s) for s in ('', '.val', '.test')]
first = [g['x'][:, :, 0].min() for g in f]; last = [max(g['x'][:, :, 0].max(), g['t_next'][:].max()) for g in f]
print('periods (first input day, last day seen):', list(zip(first, last)))
assert last[0] < first[1] and last[1] < first[2], (first, last)
assert f[0]['t_next'][:].max() == 36 and f[1]['x'][0, 0, 0] == 37 and f[2]['x'][0, 0, 0] == 49
for g in f:  # the horizon: the target is 3 days after the window's last
    assert np.array_equal(g['t_next'][:], g['x'][:, -1, 0] + 3)
"
py "statistics and vocabularies of the training period only (the val outlier moves nothing)" "$REF
f = h5py.File('o/s.val.h5')
a = np.array([f32(r['a']) for r in train], dtype=np.float64)
assert np.isclose(f['preprocessing/x/mean'][1], a.mean(), rtol=1e-12), (f['preprocessing/x/mean'][:], a.mean())
assert np.isclose(f['preprocessing/x/max'][1], a.max()) and a.max() < 100
assert f['preprocessing/x/mean'][0] == 18 and f['preprocessing'].attrs['windows'] == 5
assert f['preprocessing'].attrs['window'] == 5 and f['preprocessing'].attrs['horizon'] == 3
"

# ---- shuffle: the training windows permuted, val and test kept in order
sed 's/^window: 5/shuffle: true\nwindow: 5/' s.yaml >sh.yaml
expect 0 "30 windows" import csv s.csv --out o/sh.h5 --schema sh.yaml
expect 0 "30 windows" import csv s.csv --out o/shm.h5 --schema sh.yaml --memory-mb 0.0005
py "shuffle permutes whole training windows; val and test unshuffled; one window = many" "
import h5py, numpy as np
a, b, m = (h5py.File('o/%s.h5' % n) for n in ('s', 'sh', 'shm'))
ta, tb = a['x'][:, 0, 0], b['x'][:, 0, 0]
assert not np.array_equal(ta, tb) and sorted(ta) == sorted(tb)
p = np.argsort(tb)
for k in ('x', 'b', 'sky', 'tags', 't_next', 'y', 'sky_next'):
    assert np.array_equal(b[k][:][p], a[k][:]), k
    assert np.array_equal(m[k][:], b[k][:]), k
for s in ('val', 'test'):
    assert np.array_equal(h5py.File('o/sh.%s.h5' % s)['x'][:], h5py.File('o/s.%s.h5' % s)['x'][:])
"

# ---- a model trained on windows: the (N, 5, 2) input as any input; a raw
# CSV at predict is refused with the reason (windows need the import)
cat >w.yaml <<'EOF'
inputs: {x: {shape: [5, 2]}, sky: {shape: 5, dtype: int32}}
layers:
  xn:  {type: normalization, adapt: from_data, from: x}
  g:   {type: gru, units: 4, from: xn}
  e:   {type: embedding, input_dim: 5, output_dim: 2, from: sky}
  p:   {type: global_avg_pool1d, from: e}
  c:   {type: concat, from: [g, p]}
  t_next: {type: dense, units: 1, from: c}
outputs: {t_next: {loss: mse}}
train: {epochs: 1, batch_size: 8, checkpoint: {every_epochs: 1}}
data: {train: o/s.h5, val: o/s.val.h5}
EOF
expect 0 "epoch 1" train w.yaml
expect 0 "t_next_loss" eval runs/w --data o/s.test.h5
expect 1 "its training data were windows of a time series (window: 5 in the schema it keeps): import s.csv with that schema and predict from the imported file" \
    predict runs/w --data s.csv --out p.h5
check "no predictions written" test ! -e p.h5

# ---- bad input: one message, exit 1, nothing written
bad() { # bad NAME PHRASE SCHEMA
    expect 1 "$2" import csv s.csv --out "o/$1.h5" --schema "$3"
    check "$1: no output" test ! -e "o/$1.h5"
    check "$1: no val output" test ! -e "o/$1.val.h5"
    check "$1: no temporary" no_tmp "o/$1.h5"
}
sed 's/^window: 5/window: 10/' s.yaml >long.yaml
bad long "long.yaml:10:9: window 10 + horizon 3 needs 13 rows in each split, and the val split of s.csv has 12 (rows 38..49 of 61, split by time): a shorter window or horizon, a larger val fraction (or 0: no such split)" long.yaml
sed 's/^window: 5/window: 70/' s.yaml >longer.yaml
bad longer "longer.yaml:10:9: window 70 + horizon 3 needs 73 rows in each split, and the train split of s.csv has 37" longer.yaml
sed 's/^horizon: 3/horizon: 0/' s.yaml >h0.yaml
bad h0 "h0.yaml:11:10: expected an integer >= 1 (the target's row after the window's last; 1: the next) for horizon, got '0'" h0.yaml
sed 's/^window: 5/window: 0/' s.yaml >w0.yaml
bad w0 "w0.yaml:10:9: expected an integer >= 1 (time steps per window) for window, got '0'" w0.yaml
sed 's/column: sky,/column: skies,/' s.yaml >col.yaml
bad col "col.yaml:9:3: column 'skies' is not in s.csv (its columns: t, a, sky, b, tags, note)" col.yaml
grep -v '^window' s.yaml >hw.yaml
bad hw "hw.yaml:10:10: horizon applies to windows: give window: L" hw.yaml
printf 'split: {val: 0.2, by: sky}\n' | cat s.yaml - | grep -v '^split: {val: 0.2, test' >by.yaml
bad by "by.yaml:10:9: window: the split goes by time" by.yaml
finish
