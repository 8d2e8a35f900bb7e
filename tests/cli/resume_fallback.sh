#!/usr/bin/env bash
# resume_fallback.sh — `--resume auto` when the newest checkpoint is
# damaged falls back to the newest one that loads, says which file it
# skipped and why (one warning line naming it and its other names), and
# ends bitwise like an uninterrupted run: bytes flipped in a tensor of the
# newest periodic file (last.h5 and best.h5 are hard links of it: one
# file, skipped once), the newest truncated (1 and 2 ranks), last.h5 alone
# damaged (a file of its own: the periodic file of the same step is
# used). None loads: one error, exit 1. Before, a damaged newest file
# failed every requeue until someone deleted it, and a truncated one was
# passed over without a word.
source "$(dirname "$0")/lib.bash"
cd "$TMP"
export OMP_NUM_THREADS=1
config net 'inputs: {x: {shape: 6}}
layers:
  h: {type: dense, units: 16, activation: tanh, from: x}
  y: {type: dense, units: 1, from: h}
outputs: {y: {loss: mse}}
train:
  optimizer: {type: adam, lr: 0.01}
  batch_size: 32
  epochs: 6
  seed: 5
  checkpoint: {every_epochs: 1, keep: 3}'
/usr/bin/python3 -c "
import h5py, numpy as np
x = np.random.RandomState(1).randn(300, 6).astype('f4')
with h5py.File('d.h5', 'w') as f:
    f['x'], f['y'] = x, np.tanh(2 * x[:, :1]).astype('f4')"
# flip FILE: one bit of a tensor's data (its Fletcher32 catches it)
flip() {
    /usr/bin/python3 - "$1" <<'PYEOF'
import sys, h5py
p = sys.argv[1]
with h5py.File(p, 'r') as f:
    off = f['params/h/kernel'].id.get_chunk_info(0).byte_offset
b = bytearray(open(p, 'rb').read())
b[off + 8] ^= 0x40
open(p, 'r+b').write(b)
PYEOF
}
# truncate_half FILE
truncate_half() { truncate -s $(($(stat -c %s "$1") / 2)) "$1"; }
newest() { ls "$1"/checkpoints/ckpt-*.h5 | tail -n 1; }
# the run stopped after epoch 4 (epochs 2-4 kept; last.h5 = best.h5 =
# ckpt-40), as a requeued job finds it; resumed to 6 epochs
run4() { # run4 NAME [NP]
    if [ "${2:-1}" = 1 ]; then
        timeout -k 5 60 "$BIN" train net.yaml --data d.h5 --out "$1" --epochs 4 --quiet
    else
        timeout -k 5 60 mpirun -np "$2" -x OMP_NUM_THREADS=1 "$BIN" train net.yaml \
            --data d.h5 --out "$1" --epochs 4 --quiet
    fi
}
BIN=$MIMO
MIMO="timeout -k 5 60 $BIN"
expect 0 "" train net.yaml --data d.h5 --out ref --quiet

# 1. bytes flipped in the newest (ckpt-40 = last.h5 = best.h5, one file)
run4 flip
check "the newest periodic checkpoint and last.h5 are one file (hard link)" \
    test "$(stat -c %i "$(newest flip)")" = "$(stat -c %i flip/checkpoints/last.h5)"
flip "$(newest flip)"
expect 0 "resuming from flip/checkpoints/ckpt-000000000030.h5 (epoch 4, step 0)" \
    train net.yaml --data d.h5 --out flip --resume auto
run4 flip3
flip "$(newest flip3)"
log=$($MIMO train net.yaml --data d.h5 --out flip3 --resume auto 2>&1)
warn=$(grep -c "warning: skipping flip3/checkpoints/.*which does not load" <<<"$log")
check "one warning for the damaged file and its other names (got $warn): $log" test "$warn" = 1
check "the warning names ckpt-000000000040.h5 and last.h5, and why" \
    grep -q "ckpt-000000000040.h5.*last.h5.*fails its checksum\|last.h5.*ckpt-000000000040.h5.*fails its checksum" <<<"$log"
check "flipped newest: resumed from the previous, bitwise = uninterrupted" \
    same_params ref/checkpoints/last.h5 flip/checkpoints/last.h5
check "flipped newest (again): bitwise = uninterrupted" \
    same_params ref/checkpoints/last.h5 flip3/checkpoints/last.h5

# 2. the newest truncated (HDF5 cannot open it): named too
run4 trunc
truncate_half "$(newest trunc)"
expect 0 "warning: skipping trunc/checkpoints/" train net.yaml --data d.h5 --out trunc --resume auto
check "truncated newest: bitwise = uninterrupted" \
    same_params ref/checkpoints/last.h5 trunc/checkpoints/last.h5

# 3. last.h5 alone damaged (its own file): ckpt-40, the same step, is used
run4 last
cp last/checkpoints/last.h5 last/checkpoints/l.tmp
mv last/checkpoints/l.tmp last/checkpoints/last.h5
flip last/checkpoints/last.h5
expect 0 "resuming from last/checkpoints/ckpt-000000000040.h5 (epoch 5, step 0)" \
    train net.yaml --data d.h5 --out last --resume auto
check "last.h5 damaged: bitwise = uninterrupted" \
    same_params ref/checkpoints/last.h5 last/checkpoints/last.h5

# 4. none loads: one error, no fresh start over the run
run4 none
for f in none/checkpoints/ckpt-*.h5; do flip "$f"; done
expect 1 "none: none of its 3 checkpoint file(s) loads" train net.yaml --data d.h5 --out none --resume auto
check "none loads: history.csv kept" test "$(wc -l <none/history.csv)" = 5

# 5. 2 ranks: the newest truncated, bitwise = an uninterrupted 2-rank run
MIMO=$BIN
mpi_expect 2 0 "" train net.yaml --data d.h5 --out ref2 --quiet
run4 trunc2 2
truncate_half "$(newest trunc2)"
mpi_expect 2 0 "warning: skipping trunc2/checkpoints/" train net.yaml --data d.h5 --out trunc2 --resume auto
check "2 ranks, truncated newest: bitwise = uninterrupted" \
    same_params ref2/checkpoints/last.h5 trunc2/checkpoints/last.h5
finish
