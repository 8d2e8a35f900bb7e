#!/usr/bin/env bash
# bad_data.sh — every kind of bad dataset file gets one clear message naming
# the file and the dataset, and exit code 1; streaming (tiny memory limit)
# trains bitwise like loading whole.
source "$(dirname "$0")/lib.bash"
PY=/usr/bin/python3
cd "$TMP"

config net 'inputs: {a: {shape: 3}, b: {shape: 2}}
layers:
  h: {type: dense, units: 8, activation: relu, from: a}
  c: {type: concat, from: [h, b]}
  cls: {type: dense, units: 4, activation: softmax, from: c}
  reg: {type: dense, units: 2, from: c}
outputs:
  cls: {loss: sparse_categorical_crossentropy, metrics: [accuracy]}
  reg: {loss: mse}
train: {optimizer: adam, batch_size: 16, epochs: 2, seed: 1}'

$PY - <<'PYEOF'
import h5py, numpy as np
rs = np.random.RandomState(0)
def write(name, n=100, **over):
    d = {'a': rs.randn(n, 3).astype('f4'), 'b': rs.randn(n, 2),
         'cls': rs.randint(0, 4, n).astype('i4'), 'reg': rs.randn(n, 2).astype('f4')}
    d.update(over)
    with h5py.File(name, 'w') as f:
        for k, v in d.items():
            if v is not None:
                f[k] = v
write('good.h5', n=1000)
write('missing.h5', reg=None)
write('width.h5', a=rs.randn(100, 4).astype('f4'))
write('rank.h5', a=rs.randn(100, 3, 1).astype('f4'))
write('rows.h5', b=rs.randn(99, 2))
a = rs.randn(100, 3).astype('f4'); a[7, 1] = np.nan; a[9, 0] = np.inf; a[50, 2] = np.nan
write('nan.h5', a=a)
write('label.h5', cls=np.array([0, 1, 2, 3, 4] * 20, 'i4'))
write('empty.h5', n=0)
with h5py.File('text.h5', 'w') as f:
    f['a'] = np.array([b'x'] * 100); f['b'] = rs.randn(100, 2)
open('notes.h5', 'w').write('these are not the droids\n')
data = open('good.h5', 'rb').read()
open('trunc.h5', 'wb').write(data[:len(data) // 2])
PYEOF

expect 1 "missing.h5: no dataset 'reg' for head 'reg'" train net.yaml --out r --data missing.h5
expect 1 "width.h5: dataset 'a' has 4 feature(s) per row, input 'a' needs 3" train net.yaml --out r --data width.h5
expect 1 "rank.h5: dataset 'a' has shape (100, 3, 1), input 'a' needs (N, 3)" train net.yaml --out r --data rank.h5
expect 1 "rows.h5: dataset 'b' has 99 rows but 'a' has 100; all datasets must share N" train net.yaml --out r --data rows.h5
expect 1 "nan.h5: dataset 'a' has 3 NaN/Inf value(s), the first in row 7" train net.yaml --out r --data nan.h5
expect 1 "label.h5: dataset 'cls' row 4: class label 4 is not an integer in [0, 4)" train net.yaml --out r --data label.h5
expect 1 "empty.h5: dataset 'a' is empty" train net.yaml --out r --data empty.h5
expect 1 "text.h5: dataset 'a' is not numeric" train net.yaml --out r --data text.h5
expect 1 "notes.h5: not an HDF5 file" train net.yaml --out r --data notes.h5
expect 1 "trunc.h5:" train net.yaml --out r --data trunc.h5
expect 1 "absent.h5: cannot open: No such file or directory" train net.yaml --out r --data absent.h5
expect 1 "no training data (set data.train or pass --data)" train net.yaml --out r
expect 1 "val.h5: cannot open" train net.yaml --out r --data good.h5 --val val.h5
# the same cases through predict and eval need a checkpoint
expect 0 "" train net.yaml --out ok --data good.h5 --quiet
expect 1 "nan.h5: dataset 'a' has 3 NaN/Inf" eval ok --data nan.h5
expect 1 "width.h5: dataset 'a' has 4 feature(s)" predict ok --data width.h5 --out p.h5
expect 1 "notes.h5: not an HDF5 file" eval notes.h5 --data good.h5
expect 1 "trunc.h5:" predict ok --data trunc.h5 --out p.h5
if [ -e p.h5 ]; then echo "FAIL: a failed predict left p.h5"; failed=$((failed + 1)); fi

# streaming by hyperslab with prefetch gives bitwise the same training
expect 0 "" train net.yaml --out stream --data good.h5 --quiet --set data.memory_limit_mb=0.01
expect 0 "" train net.yaml --out stream0 --data good.h5 --quiet --set data.memory_limit_mb=0.01 --set data.prefetch=0
expect 0 "" train net.yaml --out split --data good.h5 --quiet --set train.validation_split=0.2
expect 0 "" train net.yaml --out splits --data good.h5 --quiet --set train.validation_split=0.2 --set data.memory_limit_mb=0.01
for d in stream stream0; do
    if $PY -c "
import h5py, numpy as np, sys
a, b = h5py.File('ok/checkpoints/last.h5'), h5py.File('$d/checkpoints/last.h5')
sys.exit(0 if all(np.array_equal(a['params'][k][n][()], b['params'][k][n][()]) for k in a['params'] for n in a['params'][k]) else 1)"
    then passed=$((passed + 1)); else echo "FAIL: $d differs from in-memory"; failed=$((failed + 1)); fi
done
if cmp -s <(cut -d, -f1-9 split/history.csv) <(cut -d, -f1-9 splits/history.csv) &&
   head -n1 split/history.csv | grep -q val_cls_accuracy; then passed=$((passed + 1));
else echo "FAIL: validation_split differs when streaming"; failed=$((failed + 1)); fi
# data read silently wrong before: an external raw file cut short, a chunked
# dataset with rows never written, masks that are not 0/1 or leave nothing
$PY - <<'PYEOF'
import h5py, numpy as np
rs = np.random.RandomState(3)
a = rs.randn(100, 3).astype('f4')
a.tofile('ext.raw')
with open('ext.raw', 'r+b') as f:
    f.truncate(1000)
with h5py.File('ext.h5', 'w') as f:
    f.create_dataset('a', (100, 3), 'f4', external=[('ext.raw', 0, 1200)])
    f['b'] = rs.randn(100, 2); f['cls'] = rs.randint(0, 4, 100).astype('i4')
    f['reg'] = rs.randn(100, 2).astype('f4')
with h5py.File('unwritten.h5', 'w') as f:
    f.create_dataset('a', (50000000, 3), 'f4', chunks=(65536, 3))
    for k, w in (('b', 2), ('reg', 2)):
        f.create_dataset(k, (50000000, w), 'f4', chunks=(65536, w))
    f.create_dataset('cls', (50000000,), 'i4', chunks=(65536,))
with h5py.File('partly.h5', 'w') as f:
    d = f.create_dataset('a', (1000, 3), 'f4', chunks=(100, 3)); d[:500] = 1
    f['b'] = rs.randn(1000, 2); f['cls'] = rs.randint(0, 4, 1000).astype('i4')
    f['reg'] = rs.randn(1000, 2).astype('f4')
with h5py.File('filled.h5', 'w') as f:
    d = f.create_dataset('a', (1000, 3), 'f4', chunks=(100, 3), fillvalue=0.5); d[:500] = 1
    f['b'] = rs.randn(1000, 2); f['cls'] = rs.randint(0, 4, 1000).astype('i4')
    f['reg'] = rs.randn(1000, 2).astype('f4')
def masked(name, mask):
    with h5py.File(name, 'w') as f:
        f['x'] = rs.randn(len(mask), 8).astype('f4'); f['mask'] = mask
        f['y'] = np.argmax(mask, 1).astype('i4')
m = (rs.rand(200, 10) < 0.5).astype('f4'); m[:, 0] = 1
masked('mask_ok.h5', m)
m2 = m.copy(); m2[17, 3] = 0.5
masked('mask_half.h5', m2)
m3 = m.copy(); m3[42] = 0
masked('mask_zero.h5', m3)
PYEOF
expect 1 "ext.h5: dataset 'a' keeps its data in the external file ext.raw, which holds 1000 of the 1200 bytes it needs from offset 0: the missing part would read as zeros" \
    train net.yaml --out r --data ext.h5
expect 1 "unwritten.h5: dataset 'a' was never written (all of its data would read as zeros)" \
    train net.yaml --out r --data unwritten.h5
expect 1 "partly.h5: dataset 'a' was only partly written: 5 of its 10 chunks (some of its data would read as zeros)" \
    train net.yaml --out r --data partly.h5
expect 0 "" train net.yaml --out filled --data filled.h5 --quiet --epochs 1
sed -n '/^inputs:/,$p' "$SRC/configs/masked-softmax.yaml" >masked.yaml
expect 0 "" train masked.yaml --out m --data mask_ok.h5 --epochs 1 --quiet
expect 1 "mask_half.h5: dataset 'mask' row 17: mask value 0.5 is not 0 or 1 (input 'mask' is the mask of a masked_softmax)" \
    train masked.yaml --out m2 --data mask_half.h5 --epochs 1
expect 1 "mask_zero.h5: dataset 'mask' row 42: the mask is all zeros: the masked_softmax would have no position to attend to" \
    train masked.yaml --out m3 --data mask_zero.h5 --epochs 1
expect 1 "mask_zero.h5: dataset 'mask' row 42: the mask is all zeros" predict m --data mask_zero.h5 --out mp.h5
finish
