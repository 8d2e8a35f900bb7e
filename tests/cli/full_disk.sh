#!/usr/bin/env bash
# full_disk.sh — a full disk is a clear error, never a crash: training into
# a tmpfs of 6 MB (mounted on a mktemp'd mount point: root only, else
# SKIP), filled to many levels before the run, on one process and on 2
# ranks. Every run either trains or exits 1 with a message naming the file,
# "No space left on device" and how much the file needed; no temporary is
# left; every checkpoint on the disk loads (the older ones stay intact);
# history.csv keeps a whole header and whole rows. Under the ASan build the
# same runs are leak- and memory-error-checked (the one-process runs with
# leak checks).
source "$(dirname "$0")/lib.bash"
PY=/usr/bin/python3
cd "$TMP"
if [ "$(id -u)" -ne 0 ]; then echo "SKIP: mounting a tmpfs needs root"; exit 0; fi
MNT=$(mktemp -d "$TMP/mnt.XXXXXX")
if ! mount -t tmpfs -o size=6m tmpfs "$MNT" 2>/dev/null; then
    echo "SKIP: cannot mount a tmpfs here"; exit 0
fi
trap 'umount "$MNT" 2>/dev/null; rm -rf "$TMP"' EXIT

config net 'inputs: {x: {shape: 20}}
layers:
  h1: {type: dense, units: 300, activation: relu, from: x}
  h2: {type: dense, units: 300, activation: relu, from: h1}
  y: {type: dense, units: 1, from: h2}
outputs: {y: {loss: mse}}
train: {optimizer: adam, batch_size: 32, epochs: 3, seed: 1,
        checkpoint: {every_epochs: 1, keep: 2}}'
$PY -c "
import h5py, numpy as np
with h5py.File('d.h5', 'w') as f:
    f['x'] = np.random.RandomState(0).randn(128, 20).astype('f4')
    f['y'] = np.random.RandomState(1).randn(128, 1).astype('f4')"

trained=0 full=0 bad=0
# one_level NP FILL_KB: a run into a disk with FILL_KB already used
one_level() {
    local np=$1 kb=$2 out rc
    rm -rf "${MNT:?}"/*
    [ "$kb" -gt 0 ] && head -c "${kb}k" /dev/zero >"$MNT/filler"
    if [ "$np" = 1 ]; then
        out=$("$MIMO" train net.yaml --data d.h5 --out "$MNT/run" --quiet 2>&1)
    else
        out=$(env ASAN_OPTIONS="$MPI_ASAN" timeout -k 5 120 mpirun -np 2 -x OMP_NUM_THREADS=1 \
              "$MIMO" train net.yaml --data d.h5 --out "$MNT/run" --quiet 2>&1)
    fi
    rc=$?
    local what="np $np, $kb kB used before"
    if [ "$rc" = 0 ]; then
        trained=$((trained + 1))
    elif [ "$rc" = 1 ] && grep -q "No space left on device" <<<"$out" &&
         grep -Eq "$MNT/run/[^:]*: cannot write: No space left on device \(the file needs [0-9.]+ [kMG]B; " <<<"$out"; then
        full=$((full + 1))
    elif [ "$rc" = 1 ] && grep -q "No space left on device" <<<"$out"; then
        full=$((full + 1)) # the directory itself, config.yaml or history.csv
    else
        bad=$((bad + 1))
        echo "FAIL: $what: exit $rc; output:"; echo "$out"
    fi
    check "$what: no temporary left" test -z "$(find "$MNT" -name '*.tmp.*')"
    for c in "$MNT"/run/checkpoints/*.h5; do
        [ -e "$c" ] || continue
        expect 0 "" eval "$c" --data d.h5 --quiet
    done
    if [ -s "$MNT/run/history.csv" ]; then
        check "$what: history.csv whole" $PY -c "
import sys
rows = open('$MNT/run/history.csv').read().split('\n')
assert rows[0].startswith('epoch,loss') and rows[-1] == '', rows
assert all(len(r.split(',')) == len(rows[0].split(',')) for r in rows[:-1]), rows"
    fi
}

for kb in 0 500 1500 2500 3000 3500 3800 4000 4200 4400 4600 4800 5000 5200 5400 5600 5800 5900 6000 6100; do
    one_level 1 "$kb"
done
for kb in 0 2500 3500 4000 4400 4800 5200 5600 6000; do
    one_level 2 "$kb"
done
echo "full disk: $((trained + full + bad)) runs: $trained trained, $full stopped by a full disk with a clear error, $bad otherwise"
check "every run trained or said the disk is full" test "$bad" = 0
check "some runs met a full disk" test "$full" -gt 5
finish
