#!/usr/bin/env bash
# stop_validation.sh — a SIGTERM during validation is honoured at the next
# validation batch, not after the whole sweep: exit 75, status "stopped",
# a checkpoint at the epoch's end before its validation (epoch e, step =
# steps), from which --resume auto validates again and ends bitwise like
# an uninterrupted run (parameters, and the history's validation loss).
# 1 and 2 ranks (the signal to each rank, or to one rank alone: it tells
# the other, which ends its sweep too instead of finishing it).
# No speed is assumed: an epoch is one step and its validation long (200k
# rows through a 768x768 net, more on a machine where one epoch with its
# validation takes under 3 s); the signal goes when the log shows epoch
# 1's line (validation 1 over: epoch 2's one step, then its validation
# follow at once); the stop must come within half the time validation 1
# took (measured in the same run; the stop: DIR/status says so), and
# validation 1 must have taken 1.5 s
# at least, or the test says it is too short to show anything and fails.
source "$(dirname "$0")/lib.bash"
cd "$TMP"
config net 'inputs: {x: {shape: 32}}
layers:
  h1: {type: dense, units: 768, activation: relu, from: x}
  h2: {type: dense, units: 768, activation: relu, from: h1}
  y: {type: dense, units: 1, from: h2}
outputs: {y: {loss: mse}}
train:
  optimizer: {type: adam, lr: 0.001}
  batch_size: 64
  epochs: 2
  seed: 2'
# data ROWS: small.h5 (64 training rows) and val.h5 (ROWS validation rows)
data() {
    /usr/bin/python3 -c "
import h5py, numpy as np
rs = np.random.RandomState(0)
x = rs.randn(64, 32).astype('f4')
with h5py.File('small.h5', 'w') as f: f['x'], f['y'] = x, x[:, :1]
x = rs.randn($1, 32).astype('f4')
with h5py.File('val.h5', 'w') as f: f['x'], f['y'] = x, x[:, :1]"
}
export OMP_NUM_THREADS=1
now() { date +%s.%N; }
# The validation file is sized to this machine, not assumed: 200k rows,
# times 4 (at most twice) until one epoch with its validation takes 3 s,
# so a fast machine still has the window the checks below need.
rows=200000
for _ in 1 2 3; do
    data "$rows"
    rm -rf calib
    s=$(now)
    "$MIMO" train net.yaml --out calib --data small.h5 --val val.h5 --epochs 1 --quiet >/dev/null 2>&1
    [ "$(echo "$(now) - $s >= 3" | bc)" = 1 ] && break
    rows=$((rows * 4))
done
echo "validation rows: $rows"
state() { sed -n 's/^state: //p' "$1/status" 2>/dev/null; }
val_loss() { # the last row's val_loss column of a history
    awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "val_loss") c = i; next }
             { v = $c } END { print v }' "$1/history.csv"
}
for mode in 1 2 2r1; do # 1 rank; 2 ranks, the signal to both; to one rank only
    np=${mode:0:1} ref=ref${mode:0:1} d=stop$mode
    if [ "$mode" = 1 ]; then
        expect 0 "" train net.yaml --out "$ref" --data small.h5 --val val.h5 --quiet
    elif [ "$mode" = 2 ]; then
        mpi_expect 2 0 "" train net.yaml --out "$ref" --data small.h5 --val val.h5 --quiet
    fi
    start=$(now)
    if [ "$np" = 1 ]; then "$MIMO" train net.yaml --out "$d" --data small.h5 --val val.h5 >"$d.log" 2>&1 &
    else ASAN_OPTIONS=$MPI_ASAN mpirun -np 2 -x OMP_NUM_THREADS=1 "$MIMO" train net.yaml --out "$d" \
        --data small.h5 --val val.h5 >"$d.log" 2>&1 &
    fi
    pid=$!
    for _ in $(seq 6000); do # 600 s at most
        grep -q "^epoch 1 " "$d.log" && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    t1=$(echo "$(now) - $start" | bc)
    if ! grep -q "^epoch 1 " "$d.log"; then
        check "$mode: epoch 1's line came (log: $(cat "$d.log"))" false
        kill "$pid" 2>/dev/null; wait "$pid"
        continue
    fi
    check "$mode: validation 1 took ${t1} s, at least 1.5 s (else too short to show a stop inside it)" \
        test "$(echo "$t1 >= 1.5" | bc)" = 1
    # 2 ranks: to each rank, as scancel and srun do (mpirun itself waits
    # about a second before it forwards a SIGTERM: not mimo's time)
    targets=$pid
    [ "$np" = 1 ] || targets=$(pgrep -P "$pid" | tr '\n' ' ')
    [ "$mode" = 2r1 ] && targets=$(pgrep -P "$pid" | sed -n 2p)
    sent=$(now)
    kill -TERM $targets
    for _ in $(seq 6000); do # the stop: DIR/status leaves "running" (600 s at most)
        [ "$(state "$d")" != running ] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    lat=$(echo "$(now) - $sent" | bc)
    wait "$pid"
    code=$?
    echo "$mode: validation 1 in ${t1} s; stopped ${lat} s after the SIGTERM (exit $code)"
    # mpirun's own exit status after a SIGTERM is 1 under Open MPI 4: the
    # status file is what counts (signals.sh)
    [ "$np" = 1 ] && check "SIGTERM during validation: exit 75 (got $code): $(cat "$d.log")" test "$code" = 75
    check "$mode: stopped (status written) within half a validation (${lat} s < ${t1}/2 s)" \
        test "$(echo "$lat < $t1 / 2" | bc)" = 1
    check "$mode: it said it stopped during validation" \
        grep -q "stopping at epoch 2, during its validation" "$d.log"
    check "$mode: status stopped (got '$(state "$d")')" test "$(state "$d")" = stopped
    if [ "$np" = 1 ]; then
        expect 0 "" train net.yaml --out "$d" --data small.h5 --val val.h5 --resume auto --quiet
    else
        mpi_expect 2 0 "" train net.yaml --out "$d" --data small.h5 --val val.h5 --resume auto --quiet
    fi
    check "$mode: stopped during validation, resumed = uninterrupted (bitwise)" \
        same_params "$ref/checkpoints/last.h5" "$d/checkpoints/last.h5"
    check "$mode: epoch 2's val_loss as uninterrupted ($(val_loss "$d") = $(val_loss "$ref"))" \
        test "$(val_loss "$d")" = "$(val_loss "$ref")"
    check "$mode: history has 2 epochs" test "$(wc -l <"$d/history.csv")" = 3
done
finish
