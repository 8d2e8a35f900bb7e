#!/usr/bin/env bash
# slurm.sh — slurm/*.sbatch against real SLURM daemons on this machine
# (scripts/start-slurm.sh, as an owner of its own: stopped at the end if
# this test started them and no other owner uses them; the ownership
# itself is checked too):
# train.sbatch trains on 2 tasks (exit 0, checkpoints, history); a job
# signalled mid-training checkpoints, exits 75, requeues itself, resumes
# and ends with bitwise the parameters of an uninterrupted job; sweep.sbatch
# runs 2 array tasks into 2 run directories; multinode.sbatch with
# LAUNCHER=mpirun; usage errors exit 2. Every wait is bounded.
# resource-lock: slurm (it starts, uses and stops the SLURM daemons)
source "$(dirname "$0")/lib.bash"
PY=/usr/bin/python3
MIMO=$(realpath "$MIMO")
SRC=$(realpath "$SRC")
cd "$TMP" || exit 1

for b in slurmctld slurmd munged sbatch srun squeue scontrol; do
    command -v "$b" >/dev/null || {
        echo "FAIL: '$b' not found: SLURM is not installed (bash scripts/install-deps.sh installs slurm-wlm and munge)"
        exit 1
    }
done
[ "$(id -u)" -eq 0 ] || { echo "FAIL: the SLURM test starts slurmd and munged: run it as root"; exit 1; }

# This test is one owner of the daemons (scripts/slurm-owner.bash): its
# stop-slurm.sh stops what its start-slurm.sh started, and only when no
# other owner uses them; a start that finds them running starts nothing.
# Cancel this test's jobs first (by job name) so nothing lingers.
tag=mimo-test-$$
export MIMO_SLURM_OWNER=cli-slurm-$$ MIMO_SLURM_OWNER_PID=$$
ghost=
cleanup() {
    local n
    # (not when the test's own stop has stopped the controller: each
    # scancel would then retry for 18 s)
    if timeout 5 scontrol ping 2>/dev/null | grep -q "is UP"; then
        for n in train sweep pre ref mpirun usage; do scancel --name="$tag-$n" 2>/dev/null; done
    fi
    [ -n "$ghost" ] && kill "$ghost" 2>/dev/null
    bash "$SRC/scripts/stop-slurm.sh" >/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
t0=$SECONDS
timeout 60 bash "$SRC/scripts/start-slurm.sh" >start.log 2>&1
rc=$?
check "start-slurm.sh starts SLURM (exit $rc)" test "$rc" -eq 0
[ "$rc" -eq 0 ] || { cat start.log; finish; exit 1; }
grep -q "owner $MIMO_SLURM_OWNER started nothing" start.log &&
    echo "  SLURM already up: using it (another owner's; this test's stop leaves it running)"
echo "  SLURM up in $((SECONDS - t0)) s"
timeout 30 bash "$SRC/scripts/start-slurm.sh" >start2.log 2>&1
check "a second start-slurm.sh finds it running and healthy" \
    grep -q "slurmd already running" start2.log
check "the node is idle with 4 CPUs" test "$(sinfo -h -N -n localhost -o '%T %c')" = "idle 4"

# --- ownership: another owner's start finds the daemons running and starts
# nothing; its stop leaves them running and says so; a lease whose holder
# has ended is dropped by the next start.
sleep 60 &
ghost=$!
MIMO_SLURM_OWNER=$tag-ghost MIMO_SLURM_OWNER_PID=$ghost timeout 30 \
    bash "$SRC/scripts/start-slurm.sh" >ghost.log 2>&1
kill "$ghost"
wait "$ghost" 2>/dev/null
ghost=
MIMO_SLURM_OWNER=$tag-other timeout 30 bash "$SRC/scripts/start-slurm.sh" >other-start.log 2>&1
check "another owner's start-slurm.sh starts nothing" \
    grep -q "owner $tag-other started nothing" other-start.log
check "... and drops the lease of an owner whose holder has ended" \
    grep -q "dropped the lease of owner $tag-ghost" other-start.log
MIMO_SLURM_OWNER=$tag-other timeout 30 bash "$SRC/scripts/stop-slurm.sh" >other-stop.log 2>&1
check "its stop-slurm.sh leaves the daemons running and says so" \
    grep -Eq "slurmd \(pid [0-9]+\) left running" other-stop.log
check "... and they still answer" bash -c 'timeout 5 scontrol ping | grep -q "is UP"'
[ "$failed" -eq 0 ] || cat ghost.log other-start.log other-stop.log

# The jobs run as root from $TMP with absolute paths; sbatch exports this
# environment (MIMO, OMPI_*, ASAN_OPTIONS) to them.
export MIMO ASAN_OPTIONS=$MPI_ASAN
"$MIMO" gen multitask --out multitask.h5 >/dev/null || { echo "FAIL: mimo gen"; exit 1; }
CONFIG=$SRC/configs/multitask.yaml

# --- train.sbatch on 2 tasks, and a 2-task sweep, side by side (4 CPUs)
t0=$SECONDS
submit train -- "$SRC/slurm/train.sbatch" "$CONFIG" "$TMP/runs/train" --data "$TMP/multitask.h5" --epochs 5
SWEEP_VALUES="0.02 0.005" submit sweep --array=0-1 --output="$TMP/sweep-%a.out" -- \
    "$SRC/slurm/sweep.sbatch" "$CONFIG" "$TMP/runs/sweep" --data "$TMP/multitask.h5" --epochs 3
rc=$(await train)
check "sbatch --wait train.sbatch: exit code $rc, expected 0" test "$rc" -eq 0
[ "$rc" -eq 0 ] || cat train.out train.sbatch.log
check "train.sbatch ran 2 ranks x 1 thread" grep -q "2 ranks x 1 threads" train.out
check "train.sbatch wrote checkpoints/last.h5" test -s runs/train/checkpoints/last.h5
check "train.sbatch wrote a history of 5 epochs" test "$(wc -l <runs/train/history.csv)" -eq 6
check "the checkpoint says world_size 2" $PY -c "
import h5py, sys; sys.exit(int(h5py.File('runs/train/checkpoints/last.h5', 'r').attrs['world_size'] != 2))"
echo "  train.sbatch (5 epochs, 2 ranks): $((SECONDS - t0)) s"
rc=$(await sweep)
check "sbatch --wait sweep.sbatch (2 array tasks): exit code $rc, expected 0" test "$rc" -eq 0
[ "$rc" -eq 0 ] || cat sweep-*.out sweep.sbatch.log
for lr in 0.02 0.005; do
    check "sweep task lr=$lr wrote runs/sweep/lr-$lr/checkpoints/last.h5" test -s "runs/sweep/lr-$lr/checkpoints/last.h5"
    check "sweep task lr=$lr trained with lr $lr" grep -q "lr: $lr}" "runs/sweep/lr-$lr/config.yaml"
done
echo "  train + sweep: $((SECONDS - t0)) s"

# --- multinode.sbatch through mpirun (1 node here), and usage errors
t0=$SECONDS
LAUNCHER=mpirun submit mpirun --nodes=1 --ntasks-per-node=2 -- \
    "$SRC/slurm/multinode.sbatch" "$CONFIG" "$TMP/runs/mpirun" --data "$TMP/multitask.h5" --epochs 3
submit usage --ntasks=1 -- "$SRC/slurm/train.sbatch" "$TMP/absent.yaml" "$TMP/runs/usage"
rc=$(await mpirun)
check "multinode.sbatch with LAUNCHER=mpirun: exit code $rc, expected 0" test "$rc" -eq 0
[ "$rc" -eq 0 ] || cat mpirun.out mpirun.sbatch.log
check "multinode.sbatch (mpirun) wrote last.h5" test -s runs/mpirun/checkpoints/last.h5
rc=$(await usage)
check "train.sbatch with a missing config: exit code $rc, expected 2" test "$rc" -eq 2
check "... saying which config is missing" grep -q "config '$TMP/absent.yaml' not found" usage.out
echo "  multinode (mpirun) + usage error: $((SECONDS - t0)) s"

# --- preemption: job 'pre' gets SIGUSR1 once its first checkpoint exists,
# checkpoints, exits 75 and requeues itself; released from the requeue
# hold, it resumes and must end bitwise where the uninterrupted job 'ref'
# (same 2 ranks x 1 thread) ends.
# Epochs for about 3 s of training (a sanitizer build is ~10x slower):
# long enough to signal mid-run, short enough for the time budget.
ms=$( { s=$(date +%s%N); OMP_NUM_THREADS=1 "$MIMO" train "$CONFIG" --out calib --data multitask.h5 \
    --epochs 2 --quiet >/dev/null 2>&1; echo $((($(date +%s%N) - s) / 2000000)); })
epochs=$((3000 / (ms > 0 ? ms : 1)))
epochs=$((epochs < 6 ? 6 : epochs > 2000 ? 2000 : epochs)) # a fast machine: more epochs, not less time
echo "  an epoch takes ~$ms ms on 1 rank: preemption runs $epochs epochs"
t0=$SECONDS
common=(--data "$TMP/multitask.h5" --epochs "$epochs" --set train.checkpoint.every_steps=100)
submit ref -- "$SRC/slurm/train.sbatch" "$CONFIG" "$TMP/runs/ref" "${common[@]}"
submit pre -- "$SRC/slurm/train.sbatch" "$CONFIG" "$TMP/runs/pre" "${common[@]}"
first=
for _ in $(seq 600); do
    first=$(ls runs/pre/checkpoints/ckpt-*.h5 2>/dev/null | head -n 1)
    [ -n "$first" ] && break
    sleep 0.1
done
pre=$(jobid pre)
[ -n "$pre" ] || { sleep 1; pre=$(jobid pre); } # squeue may lag a busy slurmctld
check "job 'pre' wrote its first checkpoint (${first:-none})" test -n "$first"
check "job 'pre' is still running (job id '${pre}')" test -n "$pre"
if [ -n "$pre" ]; then
    scancel --signal=USR1 --batch "$pre"
    state=
    for _ in $(seq 300); do # requeued: pending, held by a begin time
        state=$(squeue -h -j "$pre" -o '%T %r' 2>/dev/null)
        [ "$state" = "PENDING BeginTime" ] && break
        sleep 0.1
    done
    check "the signalled job requeued itself (state '$state')" test "$state" = "PENDING BeginTime"
    echo "  signal to requeue: $((SECONDS - t0)) s since submit"
    # Release the ~120 s hold. Not in the second of the requeue: slurmd
    # refuses a job started then ("Job credential revoked").
    sleep 2
    scontrol update JobId="$pre" StartTime=now
fi
rc=$(await ref)
check "the uninterrupted job: exit code $rc, expected 0" test "$rc" -eq 0
rc=$(await pre)
check "the preempted job, after requeue: exit code $rc, expected 0" test "$rc" -eq 0
check "the preempted job stopped mid-training" grep -q "mimo: stopping at epoch" pre.out
check "... exited 75 and requeued itself" grep -q "requeueing job $pre" pre.out
check "... reran with SLURM_RESTART_COUNT=1" grep -q "restart 1," pre.out
check "... and resumed from its checkpoint" grep -q "mimo: resuming from $TMP/runs/pre/checkpoints/ckpt-" pre.out
check "... trained all $epochs epochs" test "$(tail -n 1 runs/pre/history.csv | cut -d, -f1)" = "$epochs"
check "resumed and uninterrupted jobs end with bitwise the same parameters" \
    same_params runs/ref/checkpoints/last.h5 runs/pre/checkpoints/last.h5
[ "$failed" -eq 0 ] || { echo "--- pre.out"; grep -v '^epoch' pre.out; echo "--- ref.out"; grep -v '^epoch' ref.out; }
echo "  preemption (2 jobs of $epochs epochs side by side): $((SECONDS - t0)) s"

# --- this test's stop: it stops slurmd (by pid) if this test started it
# (or was handed it by an owner that has stopped), or says who else still
# uses it
pid=$(sed -n 's/.*slurmd \(started\|already running\) (pid \([0-9]*\).*/\2/p' start.log)
timeout 60 bash "$SRC/scripts/stop-slurm.sh" >stop.log 2>&1
if grep -q "slurmd (pid ${pid:-none}) stopped" stop.log; then
    check "stop-slurm.sh stopped slurmd (pid $pid)" test ! -e "/proc/$pid"
else
    check "stop-slurm.sh left slurmd running and said why" grep -Eq "slurmd \(pid [0-9]+\) left running" stop.log
    grep "left running" stop.log
fi
[ "$failed" -eq 0 ] || cat start.log stop.log
finish
