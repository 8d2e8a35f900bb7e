#!/usr/bin/env bash
# async_save.sh — checkpoints written by the background writer: a kill -9
# at random moments while saves are in flight (every few steps, a few MB
# each) leaves only whole checkpoints (each loads, checksums verified) and
# no torn file under a final name, and `--resume auto` after every kill
# ends with bitwise the parameters of an uninterrupted run; SIGTERM stops
# with exit 75 only once the save in flight is on disk (the checkpoint
# DIR/status names loads); last.h5 and best.h5 are second names of the
# periodic file (one inode), and pruning one name keeps the others.
source "$(dirname "$0")/lib.bash"
PY=/usr/bin/python3
cd "$TMP"
config net 'inputs: {x: {shape: 32}}
layers:
  h1: {type: dense, units: 512, activation: relu, from: x}
  h2: {type: dense, units: 512, activation: relu, from: h1}
  y: {type: dense, units: 1, from: h2}
outputs: {y: {loss: mse}}
train: {optimizer: adam, batch_size: 64, epochs: 10, seed: 3,
        checkpoint: {every_epochs: 1, every_steps: 2, keep: 2}}'
$PY -c "
import h5py, numpy as np
r = np.random.RandomState(0)
with h5py.File('d.h5', 'w') as f:
    f['x'] = r.randn(2048, 32).astype('f4')
    f['y'] = r.randn(2048, 1).astype('f4')"

expect 0 "" train net.yaml --data d.h5 --out ref --quiet
inode() { stat -c %i "$1"; }
check "last.h5 is the last periodic file (one inode)" \
    test "$(inode ref/checkpoints/last.h5)" = "$(inode ref/checkpoints/ckpt-000000000320.h5)"
check "best.h5 is a periodic file (one inode)" \
    test "$(stat -c %h ref/checkpoints/best.h5)" -ge 2
check "pruned to keep: 2 periodic files" test "$(ls ref/checkpoints/ckpt-*.h5 | wc -l)" = 2

# all_load DIR: every checkpoint under DIR loads in mimo (checksums verified)
all_load() {
    local f ok=0
    for f in "$1"/checkpoints/*.h5; do
        [ -e "$f" ] || continue
        "$MIMO" eval "$f" --data d.h5 --quiet >/dev/null 2>&1 || { echo "  does not load: $f"; ok=1; }
    done
    return $ok
}

all_load_one() { "$MIMO" eval "$1" --data d.h5 --quiet >/dev/null 2>&1; }

# writing PID: one of PID's checkpoint temporaries is on disk
writing() { compgen -G "k/checkpoints/*.tmp.$1.*" >/dev/null; }

# kill_in_write PID: kill -9 while PID writes a checkpoint. Polled without
# a pause; PID is frozen when a temporary appears and killed if it is still
# there (else thawed, for the next save); 1 when PID ended or 60 s passed.
kill_in_write() {
    local end=$((SECONDS + 60))
    while kill -0 "$1" 2>/dev/null && [ "$SECONDS" -lt "$end" ]; do
        writing "$1" || continue
        freeze "$1" || return 1
        writing "$1" && { kill -9 "$1"; return 0; }
        thaw "$1"
    done
    return 1
}

# kill -9 at random moments, resuming each time. The moments are events,
# not times (a fast machine finishes this run in a fraction of a second):
# each run goes to its checkpoint of a random step 2 to 16 steps past where
# it resumed, then the odd runs are killed 0-9 ms later and the even ones
# in the middle of their next write; the 8 kills land in the first ~130 of
# the 320 steps, with saves every 2 steps ahead of each. A run that ended
# before its kill fails the test.
RANDOM=16
kills=0 torn=0
for i in $(seq 8); do
    target=$(($(ckpt_step k) + 2 * (RANDOM % 8 + 1)))
    "$MIMO" train net.yaml --data d.h5 --out k --resume auto --quiet >"k$i.log" 2>&1 &
    pid=$!
    wait_ckpt k "$target" "$pid" || echo "  run $i: no checkpoint at step $target (exit or hang)"
    if [ $((i % 2)) = 1 ]; then
        sleep "0.00$((RANDOM % 10))"
        kill -9 "$pid" 2>/dev/null && kills=$((kills + 1))
    else
        kill_in_write "$pid" && kills=$((kills + 1))
    fi
    wait "$pid" 2>/dev/null
    writing "$pid" && torn=$((torn + 1))
    check "kill -9 number $i: every checkpoint left loads" all_load k
done
echo "  $kills of 8 runs killed while training (the last at step $(ckpt_step k) of 320), $torn during a write (a temporary left)"
check "every run was killed while training ($kills of 8)" test "$kills" = 8
check "4 or more of them during a write ($torn)" test "$torn" -ge 4
expect 0 "" train net.yaml --data d.h5 --out k --resume auto --quiet
check "resumed after the kills: bitwise the uninterrupted run" \
    same_params ref/checkpoints/last.h5 k/checkpoints/last.h5
check "no temporary left after the final run" no_tmp "k/checkpoints/last.h5"

# SIGTERM: the save in flight completes before exit 75
"$MIMO" train net.yaml --data d.h5 --out t --quiet >t.log 2>&1 &
pid=$!
wait_ckpt t 1 "$pid"
kill -TERM "$pid"
wait "$pid"
code=$?
check "SIGTERM during background saves: exit 75 (got $code)" test "$code" = 75
ck=$(sed -n 's/^checkpoint: //p' t/status)
check "status names the stop checkpoint ($ck), and it loads" \
    all_load_one "t/checkpoints/$ck"
check "no temporary left at exit 75" test -z "$(ls t/checkpoints | grep tmp)"
expect 0 "" train net.yaml --data d.h5 --out t --resume auto --quiet
check "resumed after SIGTERM: bitwise the uninterrupted run" \
    same_params ref/checkpoints/last.h5 t/checkpoints/last.h5
finish
