#!/usr/bin/env bash
# hashing.sh — ids of any size (dtype: int64) and the hashing layer from
# the command line:
#  - the layer puts raw 64-bit ids into the same bins as the import's
#    `hashed` column of the same CSV (the hash of the id's text, seed =
#    salt), and into the bins an independent Python SipHash-2-4 (checked
#    on the paper's reference vector) computes from the decimal text;
#  - int64 ids reach an embedding exactly: the rows a step touched (the
#    row-sparse gradient sum) are the dense table's, bitwise, on 1 and 2
#    ranks; an id of 2^40 + 1 is reported
#    as such (not rounded), out of range; an int32 input fed 2^40 + 1 or
#    2^24 + 1 by an int64 dataset is a clear error, not a rounded float;
#    uint64 ids are read as such (above 2^63 - 1: an error, not clipped);
#    streamed ids train bitwise as ids held whole;
#  - configs/ctr-hashed.yaml on raw 64-bit user ids trains the same on 1
#    and 2 ranks (1e-5), and `mimo summary` shows the layer;
#  - bad configs: num_bins missing or <= 0, hashing of a float input, an
#    int64 input into dense, hashing's bins into dense, an embedding
#    smaller than the bins, mask_value with one bin: one clear error each.
source "$(dirname "$0")/lib.bash"
PY=/usr/bin/python3
cd "$TMP" || exit 1

# ---- the same ids as a CSV (imported, hashed) and as an int64 dataset
$PY - <<'PYEOF'
import numpy as np
rs = np.random.RandomState(7)
n = 300
ids = rs.randint(-2**63, 2**63 - 1, size=n, dtype=np.int64)
ids[:8] = [0, -1, 7, -42, 2**40 + 1, 2**63 - 1, -2**63, 10**18]
ids[8:40] = rs.randint(-50, 50, size=32)      # every text length
y = rs.randn(n)
with open('ids.csv', 'w') as f:
    f.write('uid,y\n')
    for i, v in zip(ids, y):
        f.write('%d,%.4f\n' % (i, v))
np.save('ids.npy', ids)
PYEOF
cat >schema.yaml <<'EOF'
columns:
  uid: {kind: hashed, num_bins: 1000, seed: 7}
  y:   {kind: numeric, target: true}
split: {val: 0, test: 0, seed: 1}
shuffle: false
EOF
expect 0 "" import csv ids.csv --schema schema.yaml --out imp.h5
$PY - <<'PYEOF'
import h5py, numpy as np
ids = np.load('ids.npy')
with h5py.File('imp.h5', 'r') as f:
    bins, y = f['uid'][()], f['y'][()]
with h5py.File('both.h5', 'w') as f:
    f['u'] = ids.reshape(-1, 1)          # raw, int64
    f['b'] = bins.reshape(-1, 1)         # the import's bins, int32
    f['d'] = np.zeros((len(ids), 1), 'f4')
    f['v'] = y.reshape(-1, 1).astype('f4')
PYEOF
# d = E[hashing(u)] - E[b] (one table): zero on every row iff the bins agree
config both 'inputs:
  u: {shape: 1, dtype: int64}
  b: {shape: 1, dtype: int32}
layers:
  h:  {type: hashing, num_bins: 1000, salt: 7, from: u}
  e1: {type: embedding, input_dim: 1000, output_dim: 1, from: h}
  e2: {type: embedding, shares: e1, from: b}
  f1: {type: flatten, from: e1}
  f2: {type: flatten, from: e2}
  d:  {type: subtract, from: [f1, f2]}
  v:  {type: flatten, from: e1}
outputs:
  d: {loss: mse}
  v: {loss: mse}
train: {optimizer: {type: sgd, lr: 0.1}, batch_size: 50, epochs: 1, seed: 2}
data: {train: both.h5}'
expect 0 "" train both.yaml --out r-both --quiet
expect 0 "wrote" predict r-both --data both.h5 --out p-both.h5
py "hashing's bins are the import's: d is 0 on every row" "
import h5py, numpy as np
d = h5py.File('p-both.h5')['d'][()]
assert d.shape == (300, 1) and np.all(d == 0), np.count_nonzero(d)
"
sed 's/salt: 7/salt: 8/' both.yaml >salt8.yaml
expect 0 "" train salt8.yaml --out r-salt8 --quiet
expect 0 "wrote" predict r-salt8 --data both.h5 --out p-salt8.h5
py "another salt gives other bins (the check above can fail)" "
import h5py, numpy as np
assert np.count_nonzero(h5py.File('p-salt8.h5')['d'][()]) > 250
"
py "hashing's bins are an independent SipHash-2-4's of the decimal text" "
import h5py, numpy as np
M = (1 << 64) - 1
def rotl(x, b): return ((x << b) | (x >> (64 - b))) & M
def sip(k0, k1, data):   # Aumasson & Bernstein 2012, SipHash-2-4
    v = [k0 ^ 0x736f6d6570736575, k1 ^ 0x646f72616e646f6d,
         k0 ^ 0x6c7967656e657261, k1 ^ 0x7465646279746573]
    def rnd():
        v[0] = (v[0] + v[1]) & M; v[1] = rotl(v[1], 13) ^ v[0]; v[0] = rotl(v[0], 32)
        v[2] = (v[2] + v[3]) & M; v[3] = rotl(v[3], 16) ^ v[2]
        v[0] = (v[0] + v[3]) & M; v[3] = rotl(v[3], 21) ^ v[0]
        v[2] = (v[2] + v[1]) & M; v[1] = rotl(v[1], 17) ^ v[2]; v[2] = rotl(v[2], 32)
    n = len(data)
    ws = [data[i:i + 8] for i in range(0, n - n % 8, 8)]
    ws.append(data[n - n % 8:] + bytes(7 - n % 8) + bytes([n & 0xff]))
    for w in ws:
        m = int.from_bytes(w, 'little'); v[3] ^= m; rnd(); rnd(); v[0] ^= m
    v[2] ^= 0xff
    for _ in range(4): rnd()
    return v[0] ^ v[1] ^ v[2] ^ v[3]
k = bytes(range(16))
assert sip(int.from_bytes(k[:8], 'little'), int.from_bytes(k[8:], 'little'),
           bytes(range(15))) == 0xa129ca6149be45e5   # the paper's vector
ids = np.load('ids.npy')
E = h5py.File('r-both/checkpoints/last.h5')['params/e1/embeddings'][()][:, 0]
got = h5py.File('p-both.h5')['v'][()][:, 0]
want = E[[sip(7, 7, str(int(i)).encode()) % 1000 for i in ids]]
assert len(set(E.tolist())) == 1000    # distinct rows: equal values, equal bins
assert np.array_equal(got, want), np.count_nonzero(got != want)
"

# ---- int64 ids reach an embedding exactly; out of range is an error
$PY - <<'PYEOF'
import h5py, numpy as np
n = 100
y = np.zeros((n, 1), 'f4')
def write(name, big):
    i = np.arange(n, dtype=np.int64).reshape(-1, 1) % 50
    i[37, 0] = big
    with h5py.File(name, 'w') as f:
        f['i'] = i; f['y'] = y
write('ok64.h5', 49)
write('big64.h5', 2**40 + 1)
write('neg64.h5', -3)
write('big24.h5', 2**24 + 1)
PYEOF
config emb 'inputs:
  i: {shape: 1, dtype: int64}
layers:
  e: {type: embedding, input_dim: 50, output_dim: 2, from: i}
  f: {type: flatten, from: e}
  y: {type: dense, units: 1, from: f}
outputs:
  y: {loss: mse}
train: {optimizer: {type: sgd, lr: 0.1}, batch_size: 20, epochs: 1}
data: {train: ok64.h5}'
expect 0 "" train emb.yaml --out r-emb --quiet
# streamed (read by hyperslab, with and without the reader thread): the
# same ids, the same training, bitwise; a bad id found by the scan
expect 0 "" train emb.yaml --out r-emb-stream --quiet --set data.memory_limit_mb=0.0001
expect 0 "" train emb.yaml --out r-emb-stream0 --quiet --set data.memory_limit_mb=0.0001 --set data.prefetch=0
check "int64 ids streamed = held whole (bitwise)" \
    same_params r-emb/checkpoints/last.h5 r-emb-stream/checkpoints/last.h5
check "int64 ids streamed without prefetch = held whole (bitwise)" \
    same_params r-emb/checkpoints/last.h5 r-emb-stream0/checkpoints/last.h5
# the rows a step touched, read from the int64 ids, are the dense table's
expect 0 "" train emb.yaml --out r-emb-dense --quiet --embedding-grads dense
check "int64 ids, 1 process: touched rows = whole table (bitwise)" \
    same_params r-emb-dense/checkpoints/last.h5 r-emb/checkpoints/last.h5
for eg in sparse dense; do
    mpi_expect 2 0 "" train emb.yaml --out r-emb2-$eg --quiet --allreduce bucketed --embedding-grads $eg
done
check "int64 ids, 2 ranks: sparse rows = dense allreduce (bitwise)" \
    same_params r-emb2-dense/checkpoints/last.h5 r-emb2-sparse/checkpoints/last.h5
check "int64 ids, 2 ranks: as 1 rank (1e-5)" \
    params_close r-emb/checkpoints/last.h5 r-emb2-sparse/checkpoints/last.h5 1e-5
expect 1 "big64.h5: dataset 'i' row 37: id 1099511627777 is outside [0, 50)" train emb.yaml --out r-big --data big64.h5
expect 1 "neg64.h5: dataset 'i' row 37: id -3 is outside [0, 50)" predict r-emb --data neg64.h5 --out p.h5
expect 1 "big64.h5: dataset 'i' row 37: id 1099511627777 is outside [0, 50)" train emb.yaml --out r-bigs --data big64.h5 --set data.memory_limit_mb=0.0001
mpi_expect 2 1 "big64.h5: dataset 'i' row 37: id 1099511627777 is outside [0, 50)" train emb.yaml --out r-big2 --data big64.h5
sed 's/dtype: int64/dtype: int32/' emb.yaml >emb32.yaml
expect 1 "big64.h5: dataset 'i' row 37: id 1099511627777 is outside [0, 50)" train emb32.yaml --out r-big32 --data big64.h5
config hash32 'inputs:
  i: {shape: 1, dtype: int32}
layers:
  h: {type: hashing, num_bins: 10, from: i}
  e: {type: embedding, input_dim: 10, output_dim: 2, from: h}
  f: {type: flatten, from: e}
  y: {type: dense, units: 1, from: f}
outputs:
  y: {loss: mse}
train: {optimizer: {type: sgd, lr: 0.1}, batch_size: 20, epochs: 1}
data: {train: ok64.h5}'
expect 0 "" train hash32.yaml --out r-h32 --quiet
expect 0 "" train hash32.yaml --out r-h32s --quiet --set data.memory_limit_mb=0.0001
check "int32 ids into hashing streamed = held whole (bitwise)" \
    same_params r-h32/checkpoints/last.h5 r-h32s/checkpoints/last.h5
expect 1 "big64.h5: dataset 'i' row 37: id 1099511627777 does not fit input 'i' of dtype: int32 (exact up to 2^24 in magnitude): declare it dtype: int64" train hash32.yaml --out r-h32b --data big64.h5
expect 1 "big24.h5: dataset 'i' row 37: id 16777217 does not fit input 'i' of dtype: int32" train hash32.yaml --out r-h32c --data big24.h5
sed 's/dtype: int32/dtype: int64/' hash32.yaml >hash64.yaml
expect 0 "" train hash64.yaml --out r-h64 --data big64.h5 --quiet
# unsigned 64-bit ids: read as such up to 2^63 - 1 (the same bins as the
# int64 dataset of the same values), above it one clear error
$PY -c "
import h5py, numpy as np
i = h5py.File('big64.h5')['i'][()].astype(np.uint64)
for name, top in (('u64.h5', None), ('u64big.h5', 2**64 - 5)):
    if top: i[41, 0] = top
    with h5py.File(name, 'w') as f: f['i'] = i; f['y'] = np.zeros((len(i), 1), 'f4')
"
expect 0 "" train hash64.yaml --out r-h64u --data u64.h5 --quiet
check "uint64 ids train as the same int64 ids (bitwise)" \
    same_params r-h64/checkpoints/last.h5 r-h64u/checkpoints/last.h5
expect 1 "u64big.h5: dataset 'i' row 41: id 18446744073709551611 of input 'i' does not fit an int64" train hash64.yaml --out r-h64ub --data u64big.h5

# ---- configs/ctr-hashed.yaml on raw 64-bit user ids, 1 and 2 ranks
expect 0 "wrote" gen ctr --out ctr.h5 --n 2000 --vocab 300
$PY - <<'PYEOF'
import h5py, numpy as np
with h5py.File('ctr.h5', 'a') as f:       # each user a raw 64-bit id
    u = f['user'][()].astype(np.uint64)
    raw = ((u * np.uint64(0x9E3779B97F4A7C15)) ^ np.uint64(0xD1B54A32D192ED03)).view(np.int64)
    del f['user']
    f['user'] = raw
    assert (np.abs(raw.astype('f8')) > 2**40).mean() > 0.9
PYEOF
sed -e 's|../data/ctr.h5|ctr.h5|' -e 's/epochs: 6/epochs: 2/' -e 's/batch_size: 256/batch_size: 100/' \
    "$SRC/configs/ctr-hashed.yaml" >ctrh.yaml
expect 0 "user_bin (hashing(512 bins))" summary ctrh.yaml
expect 0 "user (input int64)" summary ctrh.yaml
expect 0 "" train ctrh.yaml --out ctr1 --quiet
mpi_expect 2 0 "" train ctrh.yaml --out ctr2 --quiet --check-every 1
check "ctr-hashed: 2 ranks train as 1 (1e-5)" params_close ctr1/checkpoints/last.h5 ctr2/checkpoints/last.h5 1e-5
py "the hashed user table trained" "
import h5py, numpy as np
e = h5py.File('ctr1/checkpoints/last.h5')['params/user_emb/embeddings'][()]
assert e.shape == (512, 8) and np.ptp(e) > 0.1
"

# ---- bad configs: one clear error each
bad() { # bad NAME INPUT LAYERS MESSAGE: one input, layers ending in f
    config "$1" "inputs:
  $2
layers:
$3
  y: {type: dense, units: 1, from: f}
outputs:
  y: {loss: mse}"
    expect 1 "$4" summary "$1.yaml"
}
U='u: {shape: 2, dtype: int64}'
bad nobins "$U" '  h: {type: hashing, from: u}
  e: {type: embedding, input_dim: 10, output_dim: 2, from: h}
  f: {type: flatten, from: e}' "nobins.yaml:4:3: layer 'h' has no 'num_bins' (expected an integer in [1, 16777216])"
bad zerobins "$U" '  h: {type: hashing, num_bins: 0, from: u}
  e: {type: embedding, input_dim: 10, output_dim: 2, from: h}
  f: {type: flatten, from: e}' "zerobins.yaml:4:32: expected an integer in [1, 16777216] for 'num_bins' in layer 'h', got '0'"
bad floatin 'x: {shape: 3}' '  h: {type: hashing, num_bins: 10, from: x}
  e: {type: embedding, input_dim: 10, output_dim: 2, from: h}
  f: {type: flatten, from: e}' "hashing layer 'h' hashes integer ids: its input 'x' must be a model input with dtype: int64 (or int32)"
bad dense64 "$U" '  f: {type: dense, units: 4, from: u}' \
    "dense layer 'f' cannot read 'u' (an input of dtype: int64): only a kind that reads ids (embedding, embedding_bag, hashing) reads it, as its first input"
bad densebins "$U" '  h: {type: hashing, num_bins: 10, from: u}
  f: {type: dense, units: 4, from: h}' \
    "dense layer 'f' cannot read 'h' (the bin ids of a hashing layer)"
bad small "$U" '  h: {type: hashing, num_bins: 100, from: u}
  e: {type: embedding, input_dim: 10, output_dim: 2, from: h}
  f: {type: flatten, from: e}' "embedding layer 'e': input_dim 10 is smaller than the 100 bins of 'h'"
bad onebin "$U" '  h: {type: hashing, num_bins: 1, mask_value: 0, from: u}
  e: {type: embedding, input_dim: 10, output_dim: 2, from: h}
  f: {type: flatten, from: e}' "num_bins 1 with mask_value: bin 0 is the mask's, so num_bins must be at least 2"
expect 1 "float.h5: dataset 'i' holds floating-point values, but input 'i' is declared dtype: int64" train emb.yaml --out r-f --data "$($PY -c "
import h5py, numpy as np
with h5py.File('float.h5', 'w') as f:
    f['i'] = np.zeros((10, 1), 'f4'); f['y'] = np.zeros((10, 1), 'f4')
print('float.h5')")"
finish
