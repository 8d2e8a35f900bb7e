#!/usr/bin/env bash
# signals.sh — a stop signal at any moment ends the run cleanly: SIGUSR1
# and SIGTERM from the moment mimo's own code runs (its .preinit_array,
# before the shared libraries' constructors; only the dynamic loader's
# milliseconds come before it) exit 75
# with DIR/status "stopped"; a stop already pending at exec (blocked by the
# launcher) is taken before the first step (nothing to save yet); to
# mpirun from 0.5 s on; a signal in an epoch's validation stops the run
# with a checkpoint from which it resumes bitwise; a second SIGTERM while
# the stop checkpoint is written does not abort it; a second Ctrl-C stops
# at once with the files intact (its temporary removed by the next
# start). mpirun's own exit status
# after a SIGTERM (1 under Open MPI 4) is not what the sbatch scripts go
# by: they read DIR/status (tested with an mpirun that always exits 1).
source "$(dirname "$0")/lib.bash"
PY=/usr/bin/python3
cd "$TMP"
"$MIMO" gen multitask --out mt.h5 --n 4000 >/dev/null
sed "s|\.\./data/multitask.h5|mt.h5|" "$SRC/configs/multitask.yaml" >mt.yaml
export OMP_NUM_THREADS=1

# caught PID: until PID catches SIGTERM and SIGUSR1 (its /proc status
# SigCgt mask has bits 15 and 10): the moment mimo's own code has run
caught() {
    local mask
    for _ in $(seq 20000); do
        mask=$(sed -n 's/^SigCgt:[[:space:]]*//p' "/proc/$1/status" 2>/dev/null)
        [ -n "$mask" ] && (( (16#$mask >> 14) & (16#$mask >> 9) & 1 )) && return 0
        kill -0 "$1" 2>/dev/null || return 1
    done
    return 1
}

# ranks_caught PID N: until N children of mpirun PID catch the signals
# (a signal mpirun forwards before that kills a rank: the dynamic loader
# runs before any code of mimo, and under load it takes its time)
ranks_caught() {
    local kids=() k
    for _ in $(seq 3000); do
        mapfile -t kids < <(pgrep -P "$1")
        [ "${#kids[@]}" -ge "$2" ] && break
        kill -0 "$1" 2>/dev/null || return 1
        sleep 0.01
    done
    for k in "${kids[@]}"; do caught "$k" || return 1; done
}

# run_signal NAME DELAY SIGNAL... LAUNCH...: starts LAUNCH, sends each
# SIGNAL after DELAY (and 0.05 s between them), waits (90 s at most); $code.
# DELAY "+T": T seconds after the process catches the signals; "2+T": T
# seconds after the 2 ranks of mpirun do. The runs it stops are 10^5
# epochs long: any moment is in the middle of one.
#
# pending SIGNAL PROGRAM ARGS...: runs PROGRAM with SIGNAL blocked and
# already pending, as a launcher may leave it (mask and pending signals
# survive exec): mimo unblocks its stop signals at its first moment, so
# the stop is there before any of its set-up, however fast the machine.
pending() {
    /usr/bin/python3 -c 'import os, signal, sys
s = getattr(signal, "SIG" + sys.argv[1])
signal.pthread_sigmask(signal.SIG_BLOCK, {s})
os.kill(os.getpid(), s)
os.execv(sys.argv[2], sys.argv[2:])' "$@"
}
run_signal() {
    local name=$1 delay=$2 sigs=$3
    shift 3
    "$@" >"$name.log" 2>&1 &
    local pid=$! first=1
    if [ "${delay:0:1}" = + ]; then
        caught "$pid" || echo "note: $name: $pid never caught the signals"
        delay=${delay:1}
    elif [ "${delay:1:1}" = + ]; then
        ranks_caught "$pid" "${delay:0:1}" || echo "note: $name: the ranks of $pid never caught the signals"
        delay=${delay:2}
    fi
    sleep "$delay"
    for s in $sigs; do
        [ $first = 1 ] || sleep 0.05
        first=0
        kill -s "$s" "$pid" 2>/dev/null
    done
    for _ in $(seq 900); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
        kill -9 "$pid"; code=timeout; echo "$name: no end after 90 s; its output:"; tail -n 20 "$name.log"
    else wait "$pid"; code=$?; fi
}
state() { sed -n 's/^state: //p' "$1/status" 2>/dev/null; }

# 1. at start, one process: from the moment mimo's own code has run (its
# .preinit_array: before the libraries' constructors, MPI, the data)
for sig in USR1 TERM; do
    d=start-$sig-pending
    run_signal "$d" 0 "" pending "$sig" "$MIMO" train mt.yaml --out "$d" --epochs 100000
    check "SIG$sig pending at exec: exit 75 (got $code)" test "$code" = 75
    check "SIG$sig pending at exec: status stopped (got '$(state "$d")')" test "$(state "$d")" = stopped
    check "SIG$sig pending at exec: stopped before the first step, nothing to save yet" \
        grep -q "stop requested before the first step" "$d.log"
    for t in 0 0.01 0.03 0.1 0.3 0.8; do
        d=start-$sig-$t
        run_signal "$d" "+$t" "$sig" "$MIMO" train mt.yaml --out "$d" --epochs 100000
        check "SIG$sig at +${t}s: exit 75 (got $code)" test "$code" = 75
        check "SIG$sig at +${t}s: status stopped (got '$(state "$d")')" test "$(state "$d")" = stopped
    done
done
expect 75 "" train mt.yaml --out start-USR1-pending --epochs 100000 --resume auto --time-limit 2

# 2. at start, to mpirun (which forwards SIGUSR1 to the ranks), from the
# moment both ranks run mimo's code
for t in 0 0.5 1.5; do
    d=mpi-$t
    run_signal "$d" "2+$t" USR1 env ASAN_OPTIONS="$MPI_ASAN" mpirun -np 2 "$MIMO" train mt.yaml --out "$d" --epochs 100000
    check "SIGUSR1 to mpirun, ${t}s after its ranks run mimo: exit 75 (got $code)" test "$code" = 75
    check "SIGUSR1 to mpirun, ${t}s after its ranks run mimo: status stopped" test "$(state "$d")" = stopped
done

# 3. during validation: 200 training rows (4 steps an epoch), 40000
# validation rows, so validation is nearly all of each epoch. The signal
# goes once epoch K's history row is written (the process frozen as soon
# as the test sees it), with 12 - K epochs still ahead however fast the
# machine; stop_validation.sh shows the stop lands within the sweep.
"$MIMO" gen multitask --out val.h5 --n 40000 --seed 9 >/dev/null
"$MIMO" gen multitask --out small.h5 --n 200 >/dev/null
expect 0 "" train mt.yaml --out vref --val val.h5 --data small.h5 --epochs 12 --quiet \
    --set train.batch_size=64
epochs_logged() { [ "$(($(wc -l <"$1/history.csv") - 1))" -ge "$2" ]; } # DIR K
# takers PID: which of PID's threads take the stop signals, and whether
# every other blocks all three (SigBlk bits 14, 9, 1: TERM, USR1, INT).
# One thread of its own must take them, never the main thread nor any
# that computes: a signal frame lands on the stack of the thread that
# takes it, and oneDNN 2.6's f32 gemm kernels point rsp at the heap.
takers() {
    local t m b n_take=0 n_block=0 n=0 who=""
    for t in /proc/"$1"/task/*; do
        m=$(sed -n 's/^SigBlk:[[:space:]]*//p' "$t/status") || continue
        b=$(( ((16#$m >> 14) & 1) + ((16#$m >> 9) & 1) + ((16#$m >> 1) & 1) ))
        n=$((n + 1))
        [ "$b" = 0 ] && n_take=$((n_take + 1)) who=${t##*/}
        [ "$b" = 3 ] && n_block=$((n_block + 1))
    done
    echo "$n threads, $n_take take the stop signals (thread $who), $n_block block them"
    [ "$n_take" = 1 ] && [ "$n_block" = $((n - 1)) ] && [ "$who" != "$1" ]
}
one_taker() { takers "$1" >/dev/null; }
for k in 1 2 3; do
    d=val-$k
    "$MIMO" train mt.yaml --out "$d" --val val.h5 --data small.h5 --epochs 12 \
        --set train.batch_size=64 >"$d.log" 2>&1 &
    pid=$!
    wait_until 300 epochs_logged "$d" "$k" && freeze "$pid"
    [ "$k" = 1 ] && check "one thread of its own takes the stop signals, the others block them: $(takers "$pid")" \
        one_taker "$pid"
    kill -TERM "$pid" 2>/dev/null
    thaw "$pid"
    wait "$pid"
    code=$?
    check "SIGTERM after epoch $k's row, while validating: exit 75 (got $code)" test "$code" = 75
    expect 0 "" train mt.yaml --out "$d" --val val.h5 --data small.h5 --epochs 12 --resume auto --quiet \
        --set train.batch_size=64
    check "stopped after epoch $k, resumed = uninterrupted (bitwise)" \
        same_params vref/checkpoints/last.h5 "$d"/checkpoints/last.h5
done

# 4. twice, while the stop checkpoint is written (a 60 MB checkpoint)
config big 'inputs: {x: {shape: 32}}
layers:
  h1: {type: dense, units: 2000, activation: relu, from: x}
  h2: {type: dense, units: 2000, activation: relu, from: h1}
  y: {type: dense, units: 1, from: h2}
outputs: {y: {loss: mse}}
train: {optimizer: adam, batch_size: 16, epochs: 1000, seed: 1}'
$PY -c "
import h5py, numpy as np
with h5py.File('b.h5', 'w') as f:
    f['x'] = np.random.RandomState(0).randn(64, 32).astype('f4')
    f['y'] = np.random.RandomState(1).randn(64, 1).astype('f4')"
# in_write PID DIR: PID is frozen while one of its checkpoint temporaries
# is on disk in DIR (polled without a pause); 1 if PID ended or 60 s passed
in_write() {
    local end=$((SECONDS + 60))
    while kill -0 "$1" 2>/dev/null && [ "$SECONDS" -lt "$end" ]; do
        compgen -G "$2/checkpoints/*.tmp.$1.*" >/dev/null || continue
        freeze "$1" || return 1
        compgen -G "$2/checkpoints/*.tmp.$1.*" >/dev/null && return 0
        thaw "$1"
    done
    return 1
}
# stop_twice NAME SIGNAL: SIGNAL once training runs (a checkpoint on disk),
# and again while the stop checkpoint (or a save still in flight) is
# written; $code, $second (the second signal found the write)
stop_twice() {
    "$MIMO" train big.yaml --data b.h5 --out "$1" >"$1.log" 2>&1 &
    local pid=$!
    wait_ckpt "$1" 1 "$pid"
    kill -s "$2" "$pid"
    second=0
    in_write "$pid" "$1" && kill -s "$2" "$pid" && second=1
    thaw "$pid"
    wait "$pid"
    code=$?
}
for i in 1 2 3; do
    d=twice-$i
    stop_twice "$d" TERM
    check "SIGTERM twice ($i): the second came during a write" test "$second" = 1
    check "SIGTERM twice ($i): exit 75 (got $code)" test "$code" = 75
    check "SIGTERM twice ($i): the stop checkpoint is whole" \
        "$MIMO" eval "$d" --data b.h5 --quiet >/dev/null
done
stop_twice int2 INT
check "Ctrl-C twice, the second during a write: exit 130 (got $code)" test "$code" = 130 -a "$second" = 1
check "... at once: the write's temporary is left" bash -c 'compgen -G "int2/checkpoints/*.tmp.*" >/dev/null'
for c in int2/checkpoints/*.h5; do
    [ -e "$c" ] && expect 0 "" eval "$c" --data b.h5 --quiet
done
expect 0 "" train big.yaml --data b.h5 --out int2 --epochs 1 --resume auto --quiet
check "no temporary left after the next start" test -z "$(find int2 -name '*.tmp.*')"

# 5. the sbatch script goes by DIR/status, not by mpirun's exit status
mkdir bin
cat >bin/mpirun <<EOF
#!/bin/bash
$(command -v mpirun) "\$@" &
child=\$!
trap 'kill -USR1 \$child' USR1
trap 'kill -TERM \$child' TERM
while kill -0 \$child 2>/dev/null; do wait \$child; done
exit 1 # as Open MPI 4's mpirun after a SIGTERM, whatever its ranks did
EOF
chmod +x bin/mpirun
PATH=$TMP/bin:$PATH LAUNCHER=mpirun MIMO=$MIMO SLURM_JOB_ID= bash "$SRC/slurm/train.sbatch" \
    mt.yaml sb --epochs 100000 --set train.checkpoint.every_steps=20 >sb.log 2>&1 &
pid=$!
wait_until 300 has_ckpt sb # mimo trains on both ranks
kill -TERM "$pid"
wait "$pid"
code=$?
check "train.sbatch: SIGTERM, mpirun exits 1, mimo stopped: the script exits 75 (got $code)" test "$code" = 75
check "train.sbatch says why" grep -q "mpirun exited 1; mimo stopped with a checkpoint" sb.log

# 6. after a requeue, an srun launch that fails before mimo starts (the old
# step's PMIx socket still bound) is tried again; mimo's own errors are not
cat >bin/srun <<EOF
#!/bin/bash
n=\$(cat $TMP/srun.count 2>/dev/null || echo 0)
echo \$((n + 1)) >$TMP/srun.count
[ "\$n" -eq 0 ] && { echo "srun: error: task 0 launch failed: Unspecified error" >&2; exit 0; } # as srun 22.05 did here
while [ "\$1" != "$MIMO" ]; do shift; done
exec "\$@"
EOF
chmod +x bin/srun
PATH=$TMP/bin:$PATH MIMO=$MIMO SLURM_JOB_ID= SLURM_RESTART_COUNT=1 bash "$SRC/slurm/train.sbatch" \
    mt.yaml relaunch --epochs 1 >relaunch.log 2>&1
code=$?
check "train.sbatch: a failed srun launch after a requeue is retried, then trains (exit $code)" test "$code" = 0
check "... saying so" grep -q "srun exited 0 before mimo started; launching again in 5 s (attempt 2 of 3)" relaunch.log
check "... and srun ran twice" test "$(cat srun.count)" = 2
rm -f srun.count
SLURM_RESTART_COUNT=1 PATH=$TMP/bin:$PATH MIMO=$MIMO SLURM_JOB_ID= bash "$SRC/slurm/multinode.sbatch" \
    mt.yaml relaunch2 --epochs 1 --no-such-flag >relaunch2.log 2>&1
code=$?
check "multinode.sbatch: mimo's own error (a bad flag) is not retried (exit $code, srun ran $(cat srun.count) times)" \
    test "$code" = 2 -a "$(cat srun.count)" = 2
finish
