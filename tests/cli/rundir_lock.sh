#!/usr/bin/env bash
# rundir_lock.sh — a run directory belongs to one run at a time: a second
# `mimo train --out` of the same directory (one process or a 2-rank job,
# with --overwrite or --resume too) fails at once naming the holder's pid
# and host, and the first run's history and checkpoints are untouched; a
# run killed with kill -9 leaves no stale lock; temporaries of processes
# that died mid-write are removed at start, a live writer's never; pruning
# keeps to the current run's lineage (another run's checkpoints with
# higher step numbers in the same directory are neither pruned nor make
# ours be pruned).
source "$(dirname "$0")/lib.bash"
PY=/usr/bin/python3
cd "$TMP"
"$MIMO" gen multitask --out mt.h5 --n 2000 >/dev/null
sed "s|\.\./data/multitask.h5|mt.h5|" "$SRC/configs/multitask.yaml" >mt.yaml
host=$(hostname)

# wait_for COND...: until COND holds (at most 300 s: a bound for a hang)
wait_for() { wait_until 300 "$@"; }

# 1. two runs, one directory
"$MIMO" train mt.yaml --out same --epochs 40 --quiet --set train.checkpoint.every_steps=10 \
    --set train.checkpoint.keep=2 >first.log 2>&1 &
first=$!
check "the first run holds the lock" wait_for test -s same/lock
freeze "$first" # it holds the lock while the others try, however fast it trains
expect 1 "same is in use by another mimo train (pid $first on host $host, since" \
    train mt.yaml --out same --epochs 2
expect 1 "in use by another mimo train (pid $first" train mt.yaml --out same --epochs 2 --overwrite
expect 1 "in use by another mimo train (pid $first" train mt.yaml --out same --resume auto
mpi_expect 2 1 "in use by another mimo train (pid $first" train mt.yaml --out same --epochs 2
thaw "$first"
wait "$first"
check "the first run finished (exit $?)" test "$(head -n 1 same/status)" = "state: finished"
check "its history has its 40 epochs, nothing interleaved" \
    test "$(cut -d, -f1 same/history.csv | tail -n +2 | tr '\n' ' ')" = "$(seq -s ' ' 1 40) "
py "its last.h5 is its own (epoch 40), its 2 newest checkpoints kept" "
import h5py, glob
assert h5py.File('same/checkpoints/last.h5').attrs['epoch'] == 40
assert len(glob.glob('same/checkpoints/ckpt-*.h5')) == 2, glob.glob('same/checkpoints/*')"
expect 0 "" train mt.yaml --out same --epochs 41 --resume auto --quiet

# 2. two 2-rank jobs
ASAN_OPTIONS=$MPI_ASAN timeout -k 5 120 mpirun -np 2 -x OMP_NUM_THREADS=1 "$MIMO" train mt.yaml \
    --out two --epochs 30 --quiet >two.log 2>&1 &
job=$!
check "the first job holds the lock" wait_for test -s two/lock
held=$(tree "$job")
freeze $held
mpi_expect 2 1 "two is in use by another mimo train" train mt.yaml --out two --epochs 2
thaw $held
wait "$job"
check "the first 2-rank job finished" test "$(head -n 1 two/status)" = "state: finished"

# 3. kill -9 leaves no stale lock (the kernel drops a dead process's flock)
"$MIMO" train mt.yaml --out killed --epochs 200 --quiet --set train.checkpoint.every_steps=5 &
victim=$!
check "a checkpoint before the kill" wait_for compgen -G "killed/checkpoints/ckpt-*.h5"
kill -9 "$victim"
wait "$victim" 2>/dev/null
expect 0 "resuming from killed/checkpoints/ckpt-" train mt.yaml --out killed --epochs 3 --resume auto

# 4. temporaries: a dead writer's go, a live one's stay
sleep 0.01 &
dead=$!
wait "$dead"
sleep 600 &
live=$!
head -c 100000 /dev/zero >killed/checkpoints/ckpt-000000000001.h5.tmp.$dead
head -c 100 /dev/zero >killed/checkpoints/last.h5.tmp.$live
head -c 100 /dev/zero >killed/history.csv.tmp.$dead
expect 0 "removed 2 temporary file(s) (0.1 MB) left in killed by processes that ended mid-write" \
    train mt.yaml --out killed --epochs 4 --resume auto
check "a live process's temporary is kept" test -f killed/checkpoints/last.h5.tmp.$live
check "the dead ones are gone" test ! -e killed/checkpoints/ckpt-000000000001.h5.tmp.$dead -a ! -e killed/history.csv.tmp.$dead
kill "$live"

# 5. lineage: resume another run's early checkpoint into a directory that
# holds a longer run (higher step numbers)
expect 0 "" train mt.yaml --out early --epochs 2 --quiet --set train.checkpoint.every_steps=4
expect 0 "" train mt.yaml --out long --epochs 6 --quiet --set train.checkpoint.every_epochs=1 \
    --set train.checkpoint.keep=2
early=$(ls early/checkpoints/ckpt-*.h5 | head -n 1)
expect 1 "long holds an earlier run" train mt.yaml --out long --epochs 3
expect 0 "resuming from $early" train mt.yaml --out long --resume "$early" --epochs 3 \
    --set train.checkpoint.every_steps=3 --set train.checkpoint.keep=2
$PY - <<'PYEOF' >lineage.txt
import h5py, glob
for p in sorted(glob.glob('long/checkpoints/ckpt-*.h5')):
    a = h5py.File(p).attrs
    print(p, a['global_step'], a['lineage'])
PYEOF
cat lineage.txt
check "the long run's 2 checkpoints are untouched" test "$(grep -vc @ lineage.txt)" = 2
check "the resumed run keeps its own 2 newest" test "$(grep -c @ lineage.txt)" = 2
# a 64-bit seed is compared and printed exactly (not through a double)
expect 0 "" train mt.yaml --out seed --epochs 1 --quiet --set train.seed=18446744073709551615
expect 0 "seed was 18446744073709551615, now 18446744073709551614 (fine at an epoch boundary)" \
    train mt.yaml --out seed --epochs 2 --resume auto --set train.seed=18446744073709551614
finish
