#!/usr/bin/env bash
# import_schema.sh — `mimo import csv --schema` and `--infer-schema`: the
# vocabularies (StringLookup's order, OOV, mask, min_count, max_tokens)
# against a Python reference computed from the raw CSV's training rows;
# statistics of the training split only (an outlier in validation must
# not move them); a split by time (ordered); the hash's fixed values;
# shuffle as a permutation,
# the same however many windows write it; CSV robustness (quotes,
# separators and line breaks inside quotes, UTF-8, CRLF, empty cells);
# bad input: one clear message each, exit 1, no file left.
source "$(dirname "$0")/lib.bash"
cd "$TMP" || exit 1

# ---- a CSV of 400 rows: id, a number, categories, a list, a hashed zip
/usr/bin/python3 - <<'PYEOF'
import random
r = random.Random(5)
words = ['Ideal', 'Premium', 'Good', 'Very Good', 'Fair', 'x,y', 'say "hi"',
         'Café', '東京', 'rare1', 'rare2']
weights = [30, 25, 20, 10, 8, 3, 2, 1, 1, 0.2, 0.2]
with open('d.csv', 'w', newline='') as f:
    f.write('id,x,cat,col,tags,zip\n')
    for i in range(400):
        cat = r.choices(words, weights)[0]
        col = r.choice('DEFGHIJ') if i % 17 else ''
        x = '' if i % 23 == 5 else '%.3f' % r.gauss(2, 1)
        tags = '|'.join(r.sample('abcdefg', r.randint(0, 4)))
        q = lambda s: '"' + s.replace('"', '""') + '"' if any(c in s for c in ',"\n') else s
        f.write('%d,%s,%s,%s,%s,%d\n' % (i, x, q(cat), col, tags, 10000 + r.randint(0, 50)))
PYEOF
cat >s.yaml <<'EOF'
columns:
  id:   {kind: numeric}
  x:    {kind: numeric}
  cat:  {kind: category, min_count: 2}
  col:  {kind: category, max_tokens: 6, missing: mask}
  tags: {kind: multi_hot, max_length: 3}
  zip:  {kind: hashed, num_bins: 64, seed: 7}
split: {val: 0.2, test: 0.1, seed: 11}
shuffle: false
EOF
expect 0 "wrote o/d.val.h5 (val," import csv d.csv --out o/d.h5 --schema s.yaml
expect 0 "cat          category  int32 (N,): " import csv d.csv --out o/d.h5 --schema s.yaml
check "no .tmp left" no_tmp o/d.h5

# REF: the Python reference of the vocabulary rule (Keras StringLookup:
# 0 mask, 1 OOV, then by descending training count, ties by the value's
# bytes; min_count and max_tokens (which counts mask and OOV) drop values
# to OOV), applied to the raw CSV rows the training file holds.
REF='
import csv, h5py, numpy as np
rows = list(csv.DictReader(open("d.csv", newline="", encoding="utf-8")))
files = {s: h5py.File("o/d%s.h5" % s) for s in ("", ".val", ".test")}
train_ids = set(int(i) for i in files[""]["id"][:])
train = [r for r in rows if int(r["id"]) in train_ids]
def vocab(values, min_count=1, max_tokens=None):
    from collections import Counter
    cnt = Counter(v for v in values if v != "")
    order = sorted(cnt, key=lambda v: (-cnt[v], v.encode()))
    kept = [v for v in order if cnt[v] >= min_count]
    if max_tokens: kept = kept[:max_tokens - 2]
    return ["", "[UNK]"] + kept
def stored(name):
    return [s.decode() for s in files[""]["preprocessing/%s/vocabulary" % name][:]]
'
py "vocabularies = the reference's, ids = the reference's lookup in every split" "$REF
V = {'cat': vocab([r['cat'] for r in train], min_count=2),
     'col': vocab([r['col'] for r in train], max_tokens=6),
     'tags': vocab([t for r in train for t in r['tags'].split('|')])}
for k, v in V.items():
    assert stored(k) == v, (k, stored(k), v)
assert len(V['col']) == 6 and 'rare1' not in V['cat'] and 'x,y' in V['cat']
assert 'Café' in V['cat'] and '東京' in V['cat'] or 'Café' not in [r['cat'] for r in train]
byid = {int(r['id']): r for r in rows}
seen_oov = seen_mask = 0
for s, f in files.items():
    for i, c, k, t in zip(f['id'][:], f['cat'][:], f['col'][:], f['tags'][:]):
        r = byid[int(i)]
        want = V['cat'].index(r['cat']) if r['cat'] in V['cat'] else 1
        assert c == want, (s, i, r['cat'], c, want)
        want = 0 if r['col'] == '' else V['col'].index(r['col']) if r['col'] in V['col'] else 1
        assert k == want, (s, i, r['col'], k, want)
        seen_oov += want == 1; seen_mask += want == 0
        toks = [x for x in r['tags'].split('|') if x][:3]
        ids = [V['tags'].index(x) if x in V['tags'] else 1 for x in toks]
        assert list(t) == ids + [0] * (3 - len(ids)), (s, i, r['tags'], t)
assert seen_oov and seen_mask
"
py "hashed ids: SipHash-2-4 (k0 = k1 = seed 7) of the cell mod 64" "$REF
exec(open('$SRC/tests/data/siphash.py').read())
p = files['']['preprocessing/zip']
assert p.attrs['hash'] == b'siphash-2-4' and p.attrs['seed'] == 7 and p.attrs['num_bins'] == 64
byid = {int(r['id']): r for r in rows}
for f in files.values():
    for i, z in zip(f['id'][:], f['zip'][:]):
        assert z == siphash24(7, 7, byid[int(i)]['zip'].encode()) % 64
assert siphash24(7, 7, b'10001') % 64 == 26
"
py "splits: every row once, about 70/20/10, in file order (shuffle: false)" "$REF
ids = [list(f['id'][:]) for f in files.values()]
assert sorted(sum(ids, [])) == list(range(400))
assert all(x == sorted(x) for x in ids)
n = [len(x) for x in ids]
assert 230 < n[0] < 330 and 50 < n[1] < 110 and 20 < n[2] < 65, n
assert files['.val']['preprocessing'].attrs['split'] == b'val'
"
py "statistics: the training split's, float32 values, empty -> NaN not counted" "$REF
x = files['']['x'][:].astype('f8')
p = files['']['preprocessing/x']
ok = x[~np.isnan(x)]
assert np.isnan(x).sum() == p['missing'][0] > 0
for k, v in (('mean', ok.mean()), ('variance', ok.var()), ('min', ok.min()), ('max', ok.max()), ('count', ok.size)):
    assert abs(p[k][0] - v) <= 1e-9 * max(1, abs(v)), (k, p[k][0], v)
"

# ---- an outlier in the validation split does not move the statistics:
# the split depends on the row number, not its content, so the row that
# went to val above gets x = 1e6
out=$(/usr/bin/python3 -c "
import h5py; print(int(h5py.File('o/d.val.h5')['id'][3]))")
awk -F, -v id="$out" 'BEGIN{OFS=","} NR>1 && $1==id {$2="1000000"} {print}' d.csv >outlier.csv
expect 0 "" import csv outlier.csv --out o/out.h5 --schema s.yaml
py "a validation outlier leaves the training mean and max alone" "
import h5py, numpy as np
a, b = h5py.File('o/d.h5'), h5py.File('o/out.h5')
assert 1e6 in h5py.File('o/out.val.h5')['x'][:]
for k in ('mean', 'variance', 'max'):
    assert a['preprocessing/x'][k][0] == b['preprocessing/x'][k][0], k
assert b['preprocessing/x']['max'][0] < 10
"

# ---- shuffle: a seeded permutation of each split, the same whatever the
# memory (a 20 kB window makes pass 2 read the CSV once per window)
sed 's/^shuffle: false/shuffle: true/' s.yaml >sh.yaml
expect 0 "" import csv d.csv --out o/sh.h5 --schema sh.yaml
expect 0 "" import csv d.csv --out o/sh2.h5 --schema sh.yaml --memory-mb 0.002
py "shuffled: the same rows, another order, windows change nothing" "
import h5py, numpy as np
a, b, c = (h5py.File('o/%s.h5' % n) for n in ('d', 'sh', 'sh2'))
assert sorted(a['id'][:]) == sorted(b['id'][:]) and list(a['id'][:]) != list(b['id'][:])
for k in ('id', 'x', 'cat', 'tags', 'zip'):
    assert np.array_equal(b[k][:], c[k][:], equal_nan=True), k
o = np.argsort(b['id'][:])
for k in ('cat', 'tags', 'zip'):
    assert np.array_equal(b[k][:][o], a[k][:]), k
"

# ---- CSV robustness: CRLF gives the same files; UTF-8, quotes, embedded
# separators and line breaks read as text
sed 's/$/\r/' d.csv >crlf.csv
expect 0 "" import csv crlf.csv --out o/crlf.h5 --schema s.yaml
py "CRLF: the same datasets as LF" "
import h5py, numpy as np
a, b = h5py.File('o/d.h5'), h5py.File('o/crlf.h5')
for k in ('id', 'x', 'cat', 'col', 'tags', 'zip'):
    assert np.array_equal(a[k][:], b[k][:], equal_nan=True), k
assert list(a['preprocessing/cat/vocabulary']) == list(b['preprocessing/cat/vocabulary'])
"
printf '\xef\xbb\xbfname,v\r\n"a, ""b""\nc",1\r\nCafé,2\r\n,3\r\n"a, ""b""\nc",4\r\n' >q.csv
# numbers: the fast decimal path and strtod's (exponents, 20 digits, hex)
# give float32(the text's value) exactly
printf 'n\n0.1\n-2.675\n+3.14159265358979\n1e-7\n 12345678901234567890.5 \n0x1p3\n.5\n7.\n-0\n1.00000017881393421514957253748434595763683319091796875\n' >n.csv
printf 'columns:\n  n: {kind: numeric}\n' >n.yaml
expect 0 "" import csv n.csv --out o/n.h5 --schema n.yaml
py "numbers read as float32(float(text)), bit for bit" "
import h5py, numpy as np
got = h5py.File('o/n.h5')['n'][:]
want = np.array([float.fromhex(t) if 'x' in t else float(t) for t in open('n.csv').read().split()[1:]], dtype='f4')
assert got.tobytes() == want.tobytes(), (got, want)
"
printf 'columns:\n  name: {kind: category}\n  v: {kind: numeric}\n' >q.yaml
expect 0 "wrote o/q.h5 (train, 4 rows)" import csv q.csv --out o/q.h5 --schema q.yaml
py "quoted field with separator, quotes and a line break; UTF-8; BOM; empty -> OOV" "
import h5py
f = h5py.File('o/q.h5')
v = [s.decode() for s in f['preprocessing/name/vocabulary'][:]]
assert v == ['', '[UNK]', 'a, \"b\"\nc', 'Café'], v
assert list(f['name'][:]) == [2, 3, 1, 2] and list(f['v'][:]) == [1, 2, 3, 4]
"

# ---- split by a column: a group's rows stay together; a target category
# (ids 0..K-1, unseen -> -1); fill: mean (the training mean)
cat >g.yaml <<'EOF'
columns:
  id:  {kind: numeric}
  x:   {kind: numeric, fill: mean}
  cat: {kind: category, target: true}
split: {val: 0.3, seed: 4, by: col}
EOF
expect 0 "cat          category  int32 (N,) target: " import csv d.csv --out o/g.h5 --schema g.yaml
py "by: col keeps each group in one split; target ids; fill: mean" "
import csv, h5py, numpy as np
rows = {int(r['id']): r for r in csv.DictReader(open('d.csv', newline='', encoding='utf-8'))}
a, b = h5py.File('o/g.h5'), h5py.File('o/g.val.h5')
ga = {rows[int(i)]['col'] for i in a['id'][:]}; gb = {rows[int(i)]['col'] for i in b['id'][:]}
assert ga and gb and not ga & gb, (ga, gb)
v = [s.decode() for s in a['preprocessing/cat/vocabulary'][:]]
assert '' not in v and '[UNK]' not in v and a['preprocessing/cat'].attrs['oov_id'] == -1
for f in (a, b):
    for i, c in zip(f['id'][:], f['cat'][:]):
        want = v.index(rows[int(i)]['cat']) if rows[int(i)]['cat'] in v else -1
        assert c == want, (i, c, want)
m = a['preprocessing/x']['mean'][0]
for f in (a, b):
    for i, x in zip(f['id'][:], f['x'][:]):
        assert x == (np.float32(m) if rows[int(i)]['x'] == '' else np.float32(float(rows[int(i)]['x'])))
assert a['preprocessing/x']['fill'][0] == m and a['preprocessing'].attrs['split_by'] == b'col'
"
# ---- split by time (ordered: the file's order): the last 10% test, the
# 20% before val, the rest train; the statistics the training period's;
# shuffle: true shuffles the training rows only
cat >t.yaml <<'EOF'
columns:
  id: {kind: numeric}
  x:  {kind: numeric}
split: {val: 0.2, test: 0.1, ordered: true}
shuffle: true
EOF
expect 0 "wrote o/t.test.h5 (test, 40 rows)" import csv d.csv --out o/t.h5 --schema t.yaml
py "ordered: ids 0-279 train (shuffled), 280-359 val, 360-399 test (in order); training statistics" "
import h5py, numpy as np
a, b, c = (h5py.File('o/t%s.h5' % s) for s in ('', '.val', '.test'))
ta = a['id'][:].astype(int)
assert sorted(ta) == list(range(280)) and list(ta) != list(range(280)), ta[:10]
assert list(b['id'][:].astype(int)) == list(range(280, 360))
assert list(c['id'][:].astype(int)) == list(range(360, 400))
assert abs(a['preprocessing/id']['mean'][0] - 139.5) < 1e-9, a['preprocessing/id']['mean'][()]
"
printf 'columns:\n  x: {kind: numeric}\nsplit: {val: 0.2, by: col, ordered: true}\n' >ob.yaml
expect 1 "ob.yaml:3:37: split: ordered (by time, the file's row order) and by (groups drawn at random) cannot both apply" import csv d.csv --out o/ob.h5 --schema ob.yaml
printf 'columns:\n  x: {kind: numeric}\nsplit: {val: 0.2, by: grp}\n' >by.yaml
expect 1 "by.yaml:3:23: column 'grp' is not in d.csv" import csv d.csv --out o/by.h5 --schema by.yaml

# ---- infer-schema: a first schema that imports as is
expect 0 "cat: {kind: category}" import csv d.csv --infer-schema
expect 0 "x: {kind: numeric}" import csv d.csv --infer-schema
$MIMO import csv d.csv --infer-schema >inferred.yaml 2>&1
expect 0 "wrote o/inf.h5" import csv d.csv --out o/inf.h5 --schema inferred.yaml

# ---- bad input: one message, exit 1, nothing written
bad() { # bad NAME PHRASE CSV SCHEMA
    expect 1 "$2" import csv "$3" --out "o/$1.h5" --schema "$4"
    check "$1: no output" test ! -e "o/$1.h5"
    check "$1: no val output" test ! -e "o/$1.val.h5"
    check "$1: no temporary" no_tmp "o/$1.h5"
}
printf 'columns:\n  x: {kind: numeric}\n  colour: {kind: category}\n' >miss.yaml
bad miss "miss.yaml:3:3: column 'colour' is not in d.csv (its columns: id, x, cat, col, tags, zip)" d.csv miss.yaml
printf 'columns:\n  cat: {kind: numeric}\n' >txt.yaml
bad txt "d.csv:2: column 'cat' (3): 'Good' is not a number" d.csv txt.yaml
printf 'columns:\n  zip: {kind: hashed}\n' >nobins.yaml
bad nobins "nobins.yaml:2:3: column 'zip' has no 'num_bins'" d.csv nobins.yaml
printf 'columns:\n  zip: {kind: hashed, num_bins: 8, max_tokens: 5}\n' >key.yaml
bad key "key.yaml:2:36: 'max_tokens' does not apply to column 'zip', a hashed column" d.csv key.yaml
printf 'columns:\n  x: {kind: numerc}\n' >kind.yaml
bad kind "unknown kind 'numerc' for column 'x' (expected numeric, category, hashed, multi_hot or skip; did you mean 'numeric'?)" d.csv kind.yaml
printf 'id,x\n1,2\n3\n' >ragged.csv
printf 'columns:\n  x: {kind: numeric}\n' >x.yaml
bad ragged "ragged.csv:3: expected 2 fields, found 1: column 'x' (2) and after are missing" ragged.csv x.yaml
printf 'id,x\n1,2\n3,4,5\n' >long.csv
bad long "long.csv:3: expected 2 fields, found 3: field 3 is past the last column 'x'" long.csv x.yaml
printf 'id,x\r\n' >header.csv
bad header "header.csv: no data rows after the header" header.csv x.yaml
printf 'id,x\n1,"2\n' >quote.csv
bad quote "quote.csv:2: unterminated quoted field" quote.csv x.yaml
printf 'columns:\n  x: {kind: numeric}\nsplit: {val: 0.5, test: 0.5}\n' >split.yaml
bad split "split.yaml:3:8: split: val + test is 1, which leaves no training rows" d.csv split.yaml
printf 'id,x\n1,2\n' >one.csv
printf 'columns:\n  x: {kind: numeric}\nsplit: {val: 0.1}\n' >val.yaml
bad empty "one.csv: the train split is empty (of the 1 data rows): more rows, or smaller val and test fractions" one.csv val.yaml
expect 2 "--schema replaces --columns" import csv d.csv --out o/z.h5 --schema s.yaml --columns a=x
expect 2 "--labels cut needs --columns cut=COLUMN too" import csv d.csv --out o/z.h5 --labels cut
finish
