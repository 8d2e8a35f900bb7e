#!/usr/bin/env bash
# integrity.sh — damaged checkpoints are never used silently. Each tensor
# is stored with HDF5's Fletcher32 filter and the run state with a CRC-32
# (state_crc32): 40 single bits flipped inside /params tensors are each
# refused by --resume, --init, predict and eval with the file and tensor
# named; a NaN or Inf written into a kernel (with h5py, checksums valid) is
# a file error, not "diverged"; an edited state attribute fails the state
# checksum; 150 bits flipped anywhere in the file give either a clear error
# or exactly the original predictions; h5py still reads every checkpoint.
source "$(dirname "$0")/lib.bash"
PY=/usr/bin/python3
cd "$TMP"
"$MIMO" gen multitask --out mt.h5 --n 1000 >/dev/null
sed "s|\.\./data/multitask.h5|mt.h5|" "$SRC/configs/multitask.yaml" >mt.yaml
expect 0 "" train mt.yaml --out run --epochs 2 --quiet
C=run/checkpoints/last.h5
expect 0 "" predict "$C" --data mt.h5 --out ref.h5 --quiet

py "h5py reads the checkpoint; tensors carry Fletcher32" "
import h5py
f = h5py.File('$C')
k = f['params/trunk1/kernel']
assert k.fletcher32 and k.chunks and k[()].shape == k.shape
assert f.attrs['state_crc32'] >= 0 and f.attrs['format_version'] == 2"

# flip BIT of byte OFFSET: file copy
flip() { cp "$C" "$3"; $PY -c "
import sys
f = open('$3', 'r+b'); f.seek($1); b = f.read(1)[0] ^ (1 << $2); f.seek($1); f.write(bytes([b]))"; }

# 40 flips inside the params tensors' chunks
$PY - "$C" >flips.txt <<'PYEOF'
import sys, h5py, random
f = h5py.File(sys.argv[1])
names = []
f['params'].visititems(lambda n, o: names.append('params/' + n) if isinstance(o, h5py.Dataset) else None)
rnd = random.Random(7)
for i in range(40):
    n = names[i % len(names)]
    c = f[n].id.get_chunk_info(0)
    print(n, c.byte_offset + rnd.randrange(c.size), rnd.randrange(8))
PYEOF
i=0
while read -r name off bit; do
    i=$((i + 1))
    flip "$off" "$bit" bad$i.h5
    expect 1 "bad$i.h5: tensor '$name' fails its checksum: the file is damaged" eval bad$i.h5 --data mt.h5
    expect 1 "bad$i.h5: tensor '$name' fails its checksum" predict bad$i.h5 --data mt.h5 --out p$i.h5
    expect 1 "bad$i.h5: tensor '$name' fails its checksum" train mt.yaml --out r$i --resume bad$i.h5 --epochs 3
    expect 1 "bad$i.h5: tensor '$name' fails its checksum" train mt.yaml --out i$i --init bad$i.h5 --epochs 1
done <flips.txt
check "40 flips tried" test "$i" = 40

# NaN and Inf in a kernel, written with h5py: the checksums are valid
for v in nan inf; do
    cp "$C" $v.h5
    $PY -c "
import h5py, numpy as np
with h5py.File('$v.h5', 'r+') as f:
    k = f['params/trunk1/kernel']; a = k[()]; a[1, 2] = np.$v; k[...] = a"
    for how in "eval $v.h5 --data mt.h5" "predict $v.h5 --data mt.h5 --out p.h5" \
               "train mt.yaml --out r$v --resume $v.h5 --epochs 3" \
               "train mt.yaml --out i$v --init $v.h5 --epochs 1"; do
        # shellcheck disable=SC2086
        expect 1 "$v.h5: tensor 'params/trunk1/kernel' holds 1 NaN/Inf value(s)" $how
    done
done

# an edited state attribute
cp "$C" edited.h5
$PY -c "
import h5py
with h5py.File('edited.h5', 'r+') as f: f.attrs['epoch'] = 1"
expect 1 "edited.h5: the run state (attributes of / and /optimizer, /config) fails its checksum" \
    train mt.yaml --out re --resume edited.h5 --epochs 3
expect 1 "fails its checksum" eval edited.h5 --data mt.h5

# flips anywhere: a clear error, or exactly the original predictions
size=$(stat -c %s "$C")
refused=0 same=0 wrong=0
for k in $(seq 150); do
    off=$(( (k * 7919 * 104729) % size )) bit=$((k % 8))
    flip "$off" "$bit" any.h5
    if out=$("$MIMO" predict any.h5 --data mt.h5 --out pa.h5 --quiet 2>&1); then
        if $PY -c "
import h5py, numpy as np, sys
a, b = h5py.File('ref.h5'), h5py.File('pa.h5')
sys.exit(0 if all(np.array_equal(a[k][()], b[k][()]) for k in a) else 1)"; then
            same=$((same + 1))
        else
            wrong=$((wrong + 1)); echo "FAIL: byte $off bit $bit: other predictions, no error"
        fi
    elif grep -q "any.h5" <<<"$out" && ! grep -qi "segmentation\|sanitizer" <<<"$out"; then
        refused=$((refused + 1))
    else
        wrong=$((wrong + 1)); echo "FAIL: byte $off bit $bit:"; echo "$out"
    fi
done
echo "flips anywhere: 150 tried, $refused refused with the file named, $same unchanged predictions, $wrong otherwise"
check "no flip was used silently" test "$wrong" = 0
finish
