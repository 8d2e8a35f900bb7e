#!/usr/bin/env bash
# hostile_data.sh — unusual and hostile HDF5 data files, through train
# (whole and streamed), eval, predict and --init, on 1 and 2 ranks:
# compressed and checksummed datasets (gzip, shuffle, scaleoffset,
# fletcher32) train bitwise like plain ones; virtual datasets, external
# devices and unwritten chunks are refused with one message naming the
# file and the dataset; binary cross-entropy targets outside [0, 1] are
# refused; a file declaring billions of rows of fill value is refused, and
# a long scan of a huge file stops within seconds of a SIGTERM; a training
# file rewritten between a checkpoint and its resume is noticed.
source "$(dirname "$0")/lib.bash"
PY=/usr/bin/python3
cd "$TMP"

config net 'inputs: {a: {shape: 3}, b: {shape: 2}}
layers:
  h: {type: dense, units: 8, activation: relu, from: a}
  c: {type: concat, from: [h, b]}
  cls: {type: dense, units: 4, activation: softmax, from: c}
  bin: {type: dense, units: 1, activation: sigmoid, from: c}
outputs:
  cls: {loss: sparse_categorical_crossentropy, metrics: [accuracy]}
  bin: {loss: binary_crossentropy, missing: nan}
train: {optimizer: adam, batch_size: 16, epochs: 2, seed: 1}'

$PY - <<'PYEOF'
import h5py, numpy as np
rs = np.random.RandomState(0)
n = 1000
cols = {'a': rs.randn(n, 3).astype('f4'), 'b': rs.randn(n, 2).astype('f4'),
        'cls': rs.randint(0, 4, n).astype('i4'),
        'bin': (rs.rand(n, 1) < 0.5).astype('f4')}
cols['bin'][5] = np.nan  # an unlabelled row (missing: nan) stays fine
# every filter on some dataset of two files (each with chunks of 64 rows):
# gzip, shuffle, scaleoffset (lossless for integers: 0 = as many bits as
# needed; floats rounded to 2 decimals: the plain twin holds what it
# decodes to), fletcher32
filters = {'f1': {'a': dict(compression='gzip', compression_opts=6),
                  'b': dict(shuffle=True, compression='gzip'),
                  'cls': dict(scaleoffset=0), 'bin': dict(fletcher32=True)},
           'f2': {'a': dict(scaleoffset=2), 'b': dict(fletcher32=True),
                  'cls': dict(shuffle=True, compression='gzip'),
                  'bin': dict(compression='gzip', fletcher32=True)}}
for name, kws in filters.items():
    with h5py.File(name + '.h5', 'w') as f:
        for k, v in cols.items():
            f.create_dataset(k, data=v, chunks=(64,) + v.shape[1:], **kws[k])
    with h5py.File(name + '.h5', 'r') as src, h5py.File('plain_' + name + '.h5', 'w') as f:
        for k in cols:
            f[k] = src[k][()]
            assert src[k].chunks and (src[k].compression or src[k].fletcher32 or src[k].scaleoffset is not None)
        assert (src['cls'][()] == cols['cls']).all()
# a compressed dataset really written only in part is still refused
with h5py.File('gzip_partly.h5', 'w') as f:
    for k, v in cols.items():
        f.create_dataset(k, data=v, chunks=(64,) + v.shape[1:], compression='gzip')
    del f['a']
    d = f.create_dataset('a', (n, 3), 'f4', chunks=(64, 3), compression='gzip')
    d[:500] = cols['a'][:500]
# 2^32 - 1 rows of nothing but a fill value, in a few kB
with h5py.File('huge_fill.h5', 'w') as f:
    for k in ('a', 'b'):
        f.create_dataset(k, (2**32 - 1, cols[k].shape[1]), 'f4',
                         chunks=(65536, cols[k].shape[1]), fillvalue=0.5)
    f.create_dataset('cls', (2**32 - 1,), 'i4', chunks=(65536,), fillvalue=1)
    f.create_dataset('bin', (2**32 - 1, 1), 'f4', chunks=(65536, 1), fillvalue=1)
# ... and with one chunk of each written: accepted (the writer chose the
# fill value), so the scan of its billions of rows is what a stop must cut
with h5py.File('huge_scan.h5', 'w') as f:
    for k in ('a', 'b', 'cls', 'bin'):
        shape = (2**32 - 1,) + cols[k].shape[1:]
        d = f.create_dataset(k, shape, cols[k].dtype, chunks=(65536,) + shape[1:],
                             fillvalue=1 if k != 'a' and k != 'b' else 0.5)
        d[:1000] = cols[k]
# virtual datasets: 'a' maps itself; 'a' maps a file that is not there; 'a'
# maps a real file for half its rows
def with_virtual(name, source, rows):
    with h5py.File(name, 'w') as f:
        for k, v in cols.items():
            if k != 'a':
                f[k] = v
        lay = h5py.VirtualLayout(shape=(n, 3), dtype='f4')
        lay[:rows] = h5py.VirtualSource(source, 'a', shape=(n, 3))[:rows]
        f.create_virtual_dataset('a', lay, fillvalue=0)
with_virtual('vds_self.h5', '.', n)
with_virtual('vds_missing.h5', 'nowhere.h5', n)
with h5py.File('src.h5', 'w') as f:
    f['a'] = cols['a']
with_virtual('vds_half.h5', 'src.h5', n // 2)
with h5py.File('ext_zero.h5', 'w') as f:
    for k, v in cols.items():
        if k != 'a':
            f[k] = v
    f.create_dataset('a', (n, 3), 'f4', external=[('/dev/zero', 0, n * 12)])
# binary cross-entropy targets outside [0, 1]
for name, row, v in (('bce_neg.h5', 7, -1), ('bce_two.h5', 42, 2), ('bce_m1.h5', 7, -1)):
    with h5py.File(name, 'w') as f:
        for k, x in cols.items():
            if k == 'bin':
                x = x.copy(); x[row] = v
                if name == 'bce_m1.h5':  # -1 marks missing labels there
                    x[5] = 0
            f[k] = x
PYEOF

# 1. compressed, shuffled, scale-offset and checksummed data trains
#    bitwise like the same values stored plainly: whole and streamed, on
#    1 and 2 ranks
stream=(--set data.memory_limit_mb=0.01)
for v in f1 f2; do
    expect 0 "" train net.yaml --out p_$v --data plain_$v.h5 --quiet
    expect 0 "" train net.yaml --out c_$v --data $v.h5 --quiet
    expect 0 "" train net.yaml --out s_$v --data $v.h5 --quiet "${stream[@]}"
    mpi_expect 2 0 "" train net.yaml --out mp_$v --data plain_$v.h5 --quiet
    mpi_expect 2 0 "" train net.yaml --out mc_$v --data $v.h5 --quiet
    mpi_expect 2 0 "" train net.yaml --out ms_$v --data $v.h5 --quiet "${stream[@]}"
    for r in c s; do
        check "$v ($r) trains bitwise like plain" \
            same_params p_$v/checkpoints/last.h5 ${r}_$v/checkpoints/last.h5
        check "$v ($r, 2 ranks) trains bitwise like plain" \
            same_params mp_$v/checkpoints/last.h5 m${r}_$v/checkpoints/last.h5
    done
done
expect 0 "cls_accuracy" eval c_f1 --data f2.h5
expect 0 "" predict c_f1 --data f1.h5 --out pred.h5
expect 1 "gzip_partly.h5: dataset 'a' was only partly written: 8 of its 16 chunks (some of its data would read as zeros)" \
    train net.yaml --out r1 --data gzip_partly.h5
mpi_expect 2 1 "gzip_partly.h5: dataset 'a' was only partly written" \
    train net.yaml --out r2 --data gzip_partly.h5

# 2. virtual datasets and external devices: refused, naming file and dataset
for f in vds_self vds_missing vds_half; do
    expect 1 "$f.h5: dataset 'a' is a virtual dataset" train net.yaml --out x1 --data $f.h5
done
mpi_expect 2 1 "vds_self.h5: dataset 'a' is a virtual dataset" train net.yaml --out x2 --data vds_self.h5
expect 1 "vds_missing.h5: dataset 'a' is a virtual dataset" eval c_f1 --data vds_missing.h5
expect 1 "vds_self.h5: dataset 'a' is a virtual dataset" predict c_f1 --data vds_self.h5 --out p2.h5
expect 1 "ext_zero.h5: dataset 'a' keeps its data in the external file /dev/zero, which is not a regular file" \
    train net.yaml --out x3 --data ext_zero.h5 --set data.memory_limit_mb=0.01

# 2. --init reads any file's /params: the same storage checks, and a
#    warning naming the entries no layer reads
$PY - <<'PYEOF'
import h5py
def params(name, how):
    with h5py.File('c_f1/checkpoints/last.h5', 'r') as src, h5py.File(name, 'w') as f:
        src.copy('params', f)
        k = f['params/h/kernel']; shape, dtype = k.shape, k.dtype
        if how == 'extra':
            f['params/old_layer/kernel'] = k[()]; f['params/h/gamma'] = k[()]
            return
        del f['params/h/kernel']
        if how == 'unwritten':
            f.create_dataset('params/h/kernel', shape, dtype, chunks=(1,) + shape[1:])
        elif how == 'vds':
            lay = h5py.VirtualLayout(shape=shape, dtype=dtype)
            lay[:] = h5py.VirtualSource('nowhere.h5', 'k', shape=shape)
            f.create_virtual_dataset('params/h/kernel', lay, fillvalue=0)
        elif how == 'zero':
            f.create_dataset('params/h/kernel', shape, dtype,
                             external=[('/dev/zero', 0, k.size * 4)])
for how in ('extra', 'unwritten', 'vds', 'zero'):
    params('init_%s.h5' % how, how)
PYEOF
expect 0 "warning: init_extra.h5: 2 entries of /params match no layer of this network and are not used: h/gamma, old_layer" \
    train net.yaml --out i1 --data plain_f1.h5 --init init_extra.h5 --epochs 1 --init-strict
expect 0 "--init: 6 tensors loaded, 0 new, 0 shape mismatches, 2 unused in the file" \
    train net.yaml --out i1b --data plain_f1.h5 --init init_extra.h5 --epochs 1
expect 1 "init_unwritten.h5: dataset 'params/h/kernel' was never written" \
    train net.yaml --out i2 --data plain_f1.h5 --init init_unwritten.h5
expect 1 "init_vds.h5: dataset 'params/h/kernel' is a virtual dataset" \
    train net.yaml --out i3 --data plain_f1.h5 --init init_vds.h5
mpi_expect 2 1 "init_zero.h5: dataset 'params/h/kernel' keeps its data in the external file /dev/zero, which is not a regular file" \
    train net.yaml --out i4 --data plain_f1.h5 --init init_zero.h5

# 4. binary cross-entropy targets must be probabilities
expect 1 "bce_neg.h5: dataset 'bin' row 7: target -1 of head 'bin' is outside [0, 1]" \
    train net.yaml --out x4 --data bce_neg.h5
expect 1 "bce_two.h5: dataset 'bin' row 42: target 2 of head 'bin' is outside [0, 1]" \
    train net.yaml --out x5 --data bce_two.h5 --set data.memory_limit_mb=0.01
mpi_expect 2 1 "bce_two.h5: dataset 'bin' row 42: target 2" \
    train net.yaml --out x6 --data bce_two.h5 --set data.memory_limit_mb=0.01
expect 1 "bce_neg.h5: dataset 'bin' row 7: target -1" eval c_f1 --data bce_neg.h5
sed 's/missing: nan/missing: -1/' net.yaml >net_m1.yaml
expect 0 "" train net_m1.yaml --out m1 --data bce_m1.h5 --quiet --epochs 1

# 3. billions of rows of fill value: refused at once; an accepted huge
#    file's scan ends within seconds of SIGTERM (exit 75: requeue)
expect 1 "huge_fill.h5: dataset 'a' was never written: every value is its fill value, it holds no data" \
    train net.yaml --out x7 --data huge_fill.h5
$MIMO train net.yaml --out scan --data huge_scan.h5 >scan.log 2>&1 &
pid=$!
# the handler is installed (SigCgt has SIGTERM, bit 15): then the stop
for _ in $(seq 600); do
    cgt=$(awk '/^SigCgt/ {print $2}' /proc/$pid/status 2>/dev/null)
    [ -n "$cgt" ] && (( (16#$cgt >> 14) & 1 )) && break
    sleep 0.05
done
kill -TERM $pid
for _ in $(seq 600); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
if kill -0 $pid 2>/dev/null; then
    echo "FAIL: the scan of huge_scan.h5 ignored SIGTERM for 60 s"; failed=$((failed + 1))
    kill -KILL $pid
fi
wait $pid
rc=$?
check "a stopped scan exits 75 (requeue), got $rc" test $rc -eq 75
check "it says it stopped before the first step" grep -q "stop requested before the first step" scan.log
check "and that no checkpoint is there yet (not 'checkpointed')" \
    grep -q "mimo: stopped before a checkpoint in scan; the same command starts afresh with --resume auto (exit 75: requeue)" scan.log
check "its status says stopped" grep -qx "state: stopped" scan/status

# 5. a training file rewritten between a checkpoint and its resume: a
#    warning (--strict-data: an error); a file only touched: a note; a
#    checkpoint from before fingerprints: no check
cp plain_f1.h5 data5.h5
expect 0 "" train net.yaml --out run5 --data data5.h5 --quiet --epochs 1
for d in a b c d e; do cp -r run5 run5$d; done
expect 0 "resuming from" train net.yaml --out run5a --data data5.h5 --resume auto --epochs 2
check "the same data: no warning" bash -c "! $MIMO train net.yaml --out run5 --data data5.h5 --resume auto --epochs 2 2>&1 | grep -q 'not the data\|modified'"
touch -d '2001-01-01' data5.h5
expect 0 "data5.h5 was modified since run5b/checkpoints/" train net.yaml --out run5b --data data5.h5 --resume auto --epochs 2
$PY - <<'PYEOF'
import h5py, numpy as np
with h5py.File('data5.h5', 'r+') as f:  # one sampled row of 'b' differs
    b = f['b'][()]; b[-1, 0] += 1; f['b'][...] = b
PYEOF
expect 0 "warning: data5.h5 is not the data run5c/checkpoints/" train net.yaml --out run5c --data data5.h5 --resume auto --epochs 2
expect 1 "data5.h5 is not the data run5d/checkpoints/" train net.yaml --out run5d --data data5.h5 --resume auto --epochs 2 --strict-data
mpi_expect 2 1 "data5.h5 is not the data run5d/checkpoints/last.h5 trained on (its shapes or sampled rows changed)" train net.yaml --out run5d --data data5.h5 --resume auto --epochs 2 --strict-data
# a checkpoint from before fingerprints (their attributes removed, the
# state checksum recomputed as checkpoint.c does): resumes without a word
$PY - <<'PYEOF'
import glob, struct, zlib, h5py, numpy as np
def crc_attrs(obj, crc):
    for name in sorted(obj.attrs.keys(), key=lambda n: n.encode()):
        if name == 'state_crc32':
            continue
        v = obj.attrs[name]
        crc = zlib.crc32(name.encode() + b'\0', crc)
        if isinstance(v, (bytes, str)):
            crc = zlib.crc32((v.encode() if isinstance(v, str) else v) + b'\0', crc)
        elif np.issubdtype(np.asarray(v).dtype, np.integer):
            crc = zlib.crc32(struct.pack('<q', int(v)), crc)
        else:
            crc = zlib.crc32(struct.pack('<d', float(v)), crc)
    return crc
for p in glob.glob('run5e/checkpoints/*.h5'):
    with h5py.File(p, 'r+') as f:
        for k in ('data_size', 'data_mtime', 'data_digest'):
            del f.attrs[k]
        crc = crc_attrs(f, 0)
        crc = crc_attrs(f['optimizer'], zlib.crc32(b'optimizer/', crc))
        text = f['config'][()]
        crc = zlib.crc32((text.encode() if isinstance(text, str) else text) + b'\0', crc)
        f.attrs['state_crc32'] = np.int64(crc)
PYEOF
expect 0 "resuming from" train net.yaml --out run5e --data data5.h5 --resume auto --epochs 2 --strict-data
finish
