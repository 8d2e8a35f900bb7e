#!/usr/bin/env bash
# raw_predict.sh — `mimo predict/eval RUN --data raw.csv`: the checkpoint
# carries the training file's /preprocessing (the same tree, checksummed:
# a changed vocabulary is refused; resume keeps it), and a raw CSV goes
# through it as the import converts rows: predictions bitwise those of
# the imported test file for the same rows (numbers, fill: mean, log,
# categories, a mask, a list, hashed ids, shuffled splits), a value the
# training split lacks -> the OOV id (as a rare value dropped by
# min_count, not as the mask or another id), eval's metrics the same as
# on the imported file, 1 and 2 ranks alike, the import's --delimiter
# kept; bad input: a CSV without a column the schema needs (one message
# naming file and column), a target missing for eval (not for predict),
# a ragged row, text in a number, a header alone, a checkpoint without
# /preprocessing, a flipped bit in each of its datasets. One core, ~12 s.
source "$(dirname "$0")/lib.bash"
cd "$TMP" || exit 1
export OMP_NUM_THREADS=1

# ---- 500 rows: an id, numbers (one empty now and then), categories, a
# list, a hashed zip, a class and a number as targets, a column skipped
/usr/bin/python3 - <<'PYEOF'
import random
r = random.Random(3)
words = ['Ideal', 'Premium', 'Good', 'Very Good', 'Fair', 'x,y', 'Café']
weights = [30, 25, 20, 10, 8, 3, 2]
q = lambda s: '"' + s.replace('"', '""') + '"' if any(c in s for c in ',"\n') else s
with open('d.csv', 'w', newline='') as f:
    f.write('id,x,y,cat,col,tags,zip,label,t,note\n')
    for i in range(500):
        cat = r.choices(words, weights)[0]
        col = r.choice('DEFGH') if i % 13 else ''
        x = '' if i % 29 == 3 else '%.3f' % r.gauss(2, 1)
        y = '' if i % 31 == 7 else '%.2f' % r.uniform(1, 50)
        tags = '|'.join(r.sample('abcdef', r.randint(0, 3)))
        label = 'ABC'[(cat in ('Ideal', 'Premium')) + (float(x or 0) > 2)]
        t = '%.3f' % (float(x or 2) * 0.5 + (col == 'D') + r.gauss(0, 0.1))
        f.write('%d,%s,%s,%s,%s,%s,%d,%s,%s,n%d\n' % (i, x, y, q(cat), col, tags,
                10000 + r.randint(0, 40), label, t, i))
PYEOF
cat >s.yaml <<'EOF'
columns:
  id:    {kind: numeric}
  x:     {kind: numeric, into: num, fill: -1}
  y:     {kind: numeric, into: num, log: true, fill: mean}
  cat:   {kind: category, min_count: 2}
  col:   {kind: category, missing: mask}
  tags:  {kind: multi_hot, max_length: 3}
  zip:   {kind: hashed, num_bins: 16, seed: 3}
  label: {kind: category, target: true}
  t:     {kind: numeric, target: true}
  note:  {kind: skip}
split: {val: 0.2, test: 0.2, seed: 4}
shuffle: true
EOF
config net "inputs:
  num:  {shape: 2}
  cat:  {shape: 1, dtype: int32}
  col:  {shape: 1, dtype: int32}
  tags: {shape: 3, dtype: int32}
  zip:  {shape: 1, dtype: int32}
layers:
  nn:   {type: normalization, adapt: from_data, from: num}
  ce:   {type: embedding, input_dim: 9, output_dim: 3, from: cat}
  le:   {type: embedding, input_dim: 7, output_dim: 2, from: col}
  te:   {type: embedding, input_dim: 8, output_dim: 2, from: tags}
  ze:   {type: embedding, input_dim: 16, output_dim: 2, from: zip}
  cf:   {type: flatten, from: ce}
  lf:   {type: flatten, from: le}
  tf:   {type: flatten, from: te}
  zf:   {type: flatten, from: ze}
  all:  {type: concat, from: [nn, cf, lf, tf, zf]}
  h:    {type: dense, units: 16, activation: tanh, from: all}
  label: {type: dense, units: 3, activation: softmax, from: h}
  t:    {type: dense, units: 1, from: h}
outputs:
  label: {loss: sparse_categorical_crossentropy, metrics: [accuracy]}
  t:    {loss: mse}
train: {optimizer: {type: adam, lr: 0.01}, batch_size: 16, epochs: 2, seed: 2}
data: {train: o/d.h5, val: o/d.val.h5}"
# 'rare1' in one training row and one test row (a row's split depends on
# its number alone): below min_count, OOV
$MIMO import csv d.csv --out o/d.h5 --schema s.yaml >/dev/null
/usr/bin/python3 - <<'PYEOF'
import csv, h5py
rows = list(csv.reader(open('d.csv', newline='', encoding='utf-8')))
k = rows[0].index('cat')
for split in ('', '.test'):
    rows[1 + int(h5py.File('o/d%s.h5' % split)['id'][0])][k] = 'rare1'
csv.writer(open('d.csv', 'w', newline='', encoding='utf-8')).writerows(rows)
PYEOF
expect 0 "cat          category  int32 (N,): 9 ids" import csv d.csv --out o/d.h5 --schema s.yaml
expect 0 "" train net.yaml --out run --epochs 1 --quiet
expect 0 "resuming from" train net.yaml --out run --resume auto
CK=run/checkpoints/last.h5

# ---- the checkpoint's /preprocessing is the training file's, attribute
# for attribute, value for value
py "the checkpoint carries the training file's /preprocessing" "
import h5py, numpy as np
a, b = h5py.File('o/d.h5')['preprocessing'], h5py.File('$CK')['preprocessing']
def same(x, y, at):
    assert sorted(x.attrs) == sorted(y.attrs), at
    assert all(np.array_equal(x.attrs[k], y.attrs[k]) for k in x.attrs), at
    if isinstance(x, h5py.Dataset):
        assert x.dtype == y.dtype and x.shape == y.shape, at
        assert np.asarray(x[()]).tobytes() == np.asarray(y[()]).tobytes(), at
        return 1
    assert sorted(x) == sorted(y), (at, sorted(x), sorted(y))
    return sum(same(x[k], y[k], at + '/' + k) for k in x)
n = same(a, b, '/preprocessing')
assert n >= 20, n
print('%d datasets alike' % n)
"

# ---- the test split's rows, raw, in the order of the imported test file
/usr/bin/python3 - <<'PYEOF'
import csv, h5py
rows = list(csv.reader(open('d.csv', newline='', encoding='utf-8')))
ids = [int(i) for i in h5py.File('o/d.test.h5')['id'][:]]
w = csv.writer(open('test.csv', 'w', newline='', encoding='utf-8'))
w.writerow(rows[0])
w.writerows(rows[1 + i] for i in ids)
# without the targets (predict needs none), the columns in another order
h = rows[0]
keep = [k for k in range(len(h)) if h[k] not in ('label', 't', 'note')][::-1]
w = csv.writer(open('notarget.csv', 'w', newline='', encoding='utf-8'))
w.writerows([[r[k] for k in keep] for r in [h] + [rows[1 + i] for i in ids]])
PYEOF
expect 0 "wrote p_h5.h5" predict run --data o/d.test.h5 --out p_h5.h5
expect 0 "wrote p_raw.h5" predict run --data test.csv --out p_raw.h5
expect 0 "wrote p_nt.h5" predict run --data notarget.csv --out p_nt.h5
py "raw-CSV predict = imported-HDF5 predict, bitwise" "
import h5py, numpy as np
a, b, c = h5py.File('p_h5.h5'), h5py.File('p_raw.h5'), h5py.File('p_nt.h5')
assert sorted(a) == sorted(b) == sorted(c) == ['label', 't']
for k in a:
    x, y, z = a[k][:], b[k][:], c[k][:]
    assert x.shape == y.shape == z.shape and len(x) > 50, (x.shape, y.shape)
    assert x.tobytes() == y.tobytes() == z.tobytes(), (k, np.abs(x - y).max())
print('%d rows, both heads bitwise' % len(a['t']))
"
# the test rows hold what the comparison must cover: empty numbers (fill:
# -1 and fill: mean), an empty col (the mask), OOV values
py "the test rows cover fill, mask and OOV" "
import csv, h5py
f = h5py.File('o/d.test.h5')
assert (f['col'][:] == 0).any() and (f['cat'][:] == 1).any(), 'no mask or OOV row'
rows = list(csv.DictReader(open('test.csv', newline='', encoding='utf-8')))
assert any(r['x'] == '' for r in rows) and any(r['y'] == '' for r in rows), 'no empty cell'
"

# ---- unseen values -> OOV: the first test row ('rare1', below min_count:
# id 1 in the imported file) with a category the training data never had
# instead predicts bitwise as the imported row, and unlike a known value;
# two unseen tokens of a list predict alike, unlike a known token or none
/usr/bin/python3 - <<'PYEOF'
import csv
rows = list(csv.reader(open('test.csv', newline='', encoding='utf-8')))
h, r = rows[0], rows[1]
assert r[h.index('cat')] == 'rare1'
def v(**kw):
    x = list(r)
    for k, val in kw.items():
        x[h.index(k)] = val
    return x
w = csv.writer(open('unseen.csv', 'w', newline='', encoding='utf-8'))
w.writerows([h, v(cat='never seen'), v(cat='Ideal'), v(cat='Good', tags='zz|a'),
             v(cat='Good', tags='yy|a'), v(cat='Good', tags='b|a'),
             v(cat='Good', tags='a')])
PYEOF
expect 0 "" predict run --data unseen.csv --out p_un.h5
py "an unseen category and token are the OOV id" "
import csv, h5py
train = set(int(i) for i in h5py.File('o/d.h5')['id'][:])
rows = list(csv.DictReader(open('d.csv', newline='', encoding='utf-8')))
assert sum(r['cat'] == 'rare1' for r in rows if int(r['id']) in train) == 1
assert h5py.File('o/d.test.h5')['cat'][0] == 1
p = [r.tobytes() for r in h5py.File('p_un.h5')['label'][:]]
assert p[0] == h5py.File('p_h5.h5')['label'][0].tobytes(), 'unseen is not OOV'
assert p[0] != p[1], 'a known category predicts as OOV'
assert p[2] == p[3], 'two unseen tokens differ'
assert p[2] != p[4] and p[2] != p[5], 'an unseen token is a known one, or dropped'
"

# ---- eval: the same numbers from the raw rows as from the imported file
$MIMO eval run --data o/d.test.h5 >e_h5.txt 2>&1
$MIMO eval run --data test.csv >e_raw.txt 2>&1
check "eval on the raw CSV prints the imported file's metrics" \
    diff <(grep -v '^mimo:' e_h5.txt) <(grep -v '^mimo:' e_raw.txt)
check "eval printed metrics" grep -q "^label_accuracy " e_raw.txt

# ---- under mpirun: each rank converts the CSV, predicts its share
mpi_expect 2 0 "" predict run --data test.csv --out p_mpi.h5
mpi_expect 2 0 "label_accuracy" eval run --data test.csv
py "2 ranks predict the raw CSV as 1 does" "
import h5py, numpy as np
a, b = h5py.File('p_raw.h5'), h5py.File('p_mpi.h5')
for k in a:
    assert np.abs(a[k][:] - b[k][:]).max() <= 1e-6, k
"

# ---- bad input
/usr/bin/python3 -c "
import csv
rows = list(csv.reader(open('test.csv', newline='', encoding='utf-8')))
k = rows[0].index('cat')
csv.writer(open('nocat.csv', 'w', newline='')).writerows([r[:k] + r[k + 1:] for r in rows])
"
expect 1 "nocat.csv: no column 'cat', which the training schema (kept in $CK) needs" \
    predict run --data nocat.csv --out p_bad.h5
check "no predictions file after the error" test ! -e p_bad.h5
expect 1 "notarget.csv: no column 'label', which the training schema (kept in $CK) needs to evaluate" \
    eval run --data notarget.csv
mpi_expect 2 1 "nocat.csv: no column 'cat'" eval run --data nocat.csv
printf 'id,x\n1,2,3\n' >ragged.csv
expect 1 "ragged.csv:" predict run --data ragged.csv --out p_bad.h5
sed 's/^\([0-9]*\),[^,]*,/\1,abc,/' test.csv >text.csv
expect 1 "text.csv:2: column 'x' (2): 'abc' is not a number" predict run --data text.csv --out p_bad.h5

printf 'id,x,y,cat,col,tags,zip,label,t,note\n' >header.csv
expect 1 "header.csv: no data rows after the header" predict run --data header.csv --out p_bad.h5

# the import's --delimiter is kept: a ';' CSV predicted with it
/usr/bin/python3 -c "
import csv
for a, b in (('d.csv', 'semi.csv'), ('test.csv', 'semi_test.csv')):
    csv.writer(open(b, 'w', newline=''), delimiter=';').writerows(csv.reader(open(a, newline='')))
"
expect 0 "" import csv semi.csv --out o2/d.h5 --schema s.yaml --delimiter ';'
expect 0 "" train net.yaml --out semirun --epochs 1 --quiet --data o2/d.h5 --val o2/d.val.h5
expect 0 "" predict semirun --data o2/d.test.h5 --out p_semi_h5.h5
expect 0 "" predict semirun --data semi_test.csv --out p_semi.h5
py "a ';' CSV through the stored delimiter, bitwise" "
import h5py
a, b = h5py.File('p_semi_h5.h5'), h5py.File('p_semi.h5')
assert all(a[k][:].tobytes() == b[k][:].tobytes() for k in a)
"

# a checkpoint whose training file had no /preprocessing
/usr/bin/python3 -c "
import h5py
src = h5py.File('o/d.h5')
with h5py.File('plain.h5', 'w') as f:
    for k in src:
        if k != 'preprocessing':
            f[k] = src[k][:]
"
sed -e 's/type: normalization, adapt: from_data,/type: dense, units: 2,/' \
    -e 's|train: o/d.h5, val: o/d.val.h5|train: plain.h5|' net.yaml >plain.yaml
expect 0 "" train plain.yaml --out plainrun --epochs 1 --quiet
check "no /preprocessing in its checkpoint" /usr/bin/python3 -c "
import h5py, sys; f = h5py.File('plainrun/checkpoints/last.h5')
sys.exit('preprocessing' in f or 'preprocessing_crc32' in f.attrs)"
expect 1 "test.csv: a raw CSV needs the vocabularies and statistics of the training data, and plainrun/checkpoints/last.h5 has none" \
    predict plainrun --data test.csv --out p_bad.h5
expect 0 "" predict plainrun --data o/d.test.h5 --out p_plain.h5

# a changed vocabulary in the checkpoint: its checksum refuses it
cp "$CK" damaged.h5
/usr/bin/python3 -c "
import h5py
with h5py.File('damaged.h5', 'r+') as f:
    v = f['preprocessing/cat/vocabulary']
    x = v[:]; x[2], x[3] = x[3], x[2]; v[:] = x
"
expect 1 "damaged.h5: /preprocessing (the vocabularies and statistics of the training data) fails its checksum" \
    predict damaged.h5 --data test.csv --out p_bad.h5
expect 1 "fails its checksum" eval damaged.h5 --data o/d.test.h5

# one flipped bit in each stored dataset of /preprocessing, the import's
# layout (its strings contiguous, its numbers chunked with HDF5's
# Fletcher32): every one refused, by the checksum or by HDF5's
/usr/bin/python3 - "$CK" >flips.txt <<'PYEOF'
import sys, h5py
f = h5py.File(sys.argv[1])
def visit(name, o):
    if isinstance(o, h5py.Dataset) and o.id.get_storage_size():
        at = o.id.get_offset() if o.chunks is None else o.id.get_chunk_info(0).byte_offset
        print(at + o.id.get_storage_size() // 3, name)
f['preprocessing'].visititems(visit)
PYEOF
flip() { cp "$CK" "$2"; /usr/bin/python3 -c "
f = open('$2', 'r+b'); f.seek($1); b = f.read(1)[0] ^ 4; f.seek($1); f.write(bytes([b]))"; }
n=0
while read -r off name; do
    n=$((n + 1))
    flip "$off" flip$n.h5
    expect 1 "flip$n.h5: /preprocessing" predict flip$n.h5 --data test.csv --out p_bad.h5
done <flips.txt
check "a flip in each of the 20 or more datasets of /preprocessing" test "$n" -ge 20
finish
