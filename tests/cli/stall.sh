#!/usr/bin/env bash
# stall.sh — a stopped rank is noticed. One rank of 2 (and then of 3) is
# SIGSTOPped: within --stall-warn seconds rank 0 names the rank that has
# not arrived and where the others wait, and repeats it while the stall
# lasts; after SIGCONT the ranks train on; with --stall-abort the job ends
# with that message instead of spinning forever.
source "$(dirname "$0")/lib.bash"
cd "$TMP"
"$MIMO" gen multitask --out mt.h5 --n 4000 >/dev/null
sed "s|\.\./data/multitask.h5|mt.h5|" "$SRC/configs/multitask.yaml" >mt.yaml
export OMP_NUM_THREADS=1 ASAN_OPTIONS=$MPI_ASAN

# 1. warn, then go on. The run is far longer than the test needs (1000
# epochs) so the stop lands while the ranks train on any machine; the test
# ends it by events: two checkpoints past the stall, then SIGTERM to rank 0.
mpirun -np 2 "$MIMO" train mt.yaml --out warn --epochs 1000 --stall-warn 1 \
    --set train.checkpoint.every_steps=20 >warn.log 2>&1 &
job=$!
wait_ckpt warn 1 "$job"
victim=$(rank_pid "$job" 1)
check "rank 1 found among mpirun's children (pid ${victim:-none})" test -n "$victim"
freeze "$victim"
warned_twice() { [ "$(grep -c 'warning: stall' warn.log)" -ge 2 ]; }
wait_until 120 warned_twice
stalled_at=$(ckpt_step warn)
thaw "$victim"
check "after SIGCONT the ranks train on (a checkpoint 2 saves past step $stalled_at)" \
    wait_ckpt warn $((stalled_at + 40)) "$job"
kill -TERM "$(rank_pid "$job" 0)"
wait "$job"
code=$?
grep stall warn.log
check "then stop as asked on SIGTERM (exit $code)" test "$code" = 75
check "rank 0 names the rank that has not arrived" \
    grep -Eq "warning: stall: rank\(s\) 0 of 2 have waited [0-9]+ s in .* at step [0-9]+ for rank\(s\) 1, which have not arrived" warn.log
check "and repeats it while the stall lasts" test "$(grep -c 'warning: stall' warn.log)" -ge 2

# 2. abort: 3 ranks, the last stopped for good
start=$SECONDS
mpirun -np 3 "$MIMO" train mt.yaml --out abort --epochs 1000 --stall-warn 1 --stall-abort 4 \
    --set train.checkpoint.every_steps=20 >abort.log 2>&1 &
job=$!
wait_ckpt abort 1 "$job"
victim=$(rank_pid "$job" 2)
check "rank 2 found among mpirun's children (pid ${victim:-none})" test -n "$victim"
freeze "$victim"
for _ in $(seq 1200); do kill -0 "$job" 2>/dev/null || break; sleep 0.1; done
kill -0 "$job" 2>/dev/null && { kill -CONT "$victim"; kill -9 "$job"; }
wait "$job"
code=$?
kill -CONT "$victim" 2>/dev/null
grep stall abort.log
check "--stall-abort 4: the job ends (exit $code, $((SECONDS - start)) s)" test "$code" != 0 -a "$code" != 137
check "with a message naming the missing rank" \
    grep -Eq "mimo: error: stalled: rank\(s\) 0, 1 of 3 have waited [0-9]+ s in .* for rank\(s\) 2, which have not arrived.*ending the job \(--stall-abort\)" abort.log
check "the checkpoints before the stall are intact" "$MIMO" eval abort --data mt.h5 --quiet >/dev/null
check "--stall-warn 0 is accepted" "$MIMO" train mt.yaml --out off --epochs 1 --stall-warn 0 --quiet
expect 2 "--stall-abort expects a number" train mt.yaml --stall-abort soon
finish
