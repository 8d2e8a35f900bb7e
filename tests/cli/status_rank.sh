#!/usr/bin/env bash
# status_rank.sh — DIR/status says "failed", with the error and the rank,
# when one rank fails alone mid-training: a target of 1e30 (finite: the
# data checks pass) makes the loss overflow on the rank whose share of a
# step holds that row. The app then ends the job with MPI_Abort; when that
# rank was not 0, rank 0 died in a collective never knowing why, and the
# status stayed "running" — the failing rank writes it now. Rows are
# tried until both a rank-1 and a rank-0 case were seen (which rank gets a
# row depends on the shuffle: none on rank 1 fails the test). And when
# --stall-abort ends the job (a rank SIGSTOPped), the status says so.
source "$(dirname "$0")/lib.bash"
cd "$TMP"
two_branch_data
/usr/bin/python3 - <<'PYEOF'
import h5py
with h5py.File('data.h5', 'r') as f:
    base = {k: f[k][()] for k in f}
for row in (300, 123, 450, 124, 10, 200, 350, 60):
    d = dict(base); r = d['reg'].copy(); r[row, 0] = 1e30; d['reg'] = r
    with h5py.File(f'ov{row}.h5', 'w') as f:
        for k, v in d.items(): f[k] = v
PYEOF
two_branch_net 30 12 data.h5
state() { sed -n 's/^state: //p' "$1/status" 2>/dev/null; }
seen0=0 seen1=0
for row in 300 123 450 124 10 200 350 60; do
    out=$(ASAN_OPTIONS=$MPI_ASAN timeout -k 5 60 mpirun -np 2 -x OMP_NUM_THREADS=1 \
        "$MIMO" train net.yaml --out "r$row" --data "ov$row.h5" --quiet 2>&1)
    rank=$(sed -n "s/^mimo: error: rank \([0-9]\) of 2: loss of head 'reg' is not finite.*/\1/p" <<<"$out" | head -n 1)
    check "row $row: one rank reports the non-finite loss: $out" test -n "$rank"
    [ -n "$rank" ] || continue
    check "row $row (rank $rank failed alone): status failed (got '$(state "r$row")')" \
        test "$(state "r$row")" = failed
    if [ "$rank" = 1 ]; then
        seen1=1
        check "row $row: status names rank 1 and the error" \
            grep -q "^error: rank 1 of 2: loss of head 'reg' is not finite at epoch" "r$row/status"
    else
        seen0=1
        check "row $row: status names the error" \
            grep -q "^error: loss of head 'reg' is not finite at epoch" "r$row/status"
    fi
    [ $seen0 = 1 ] && [ $seen1 = 1 ] && break
done
check "a fault on rank 1 alone was among the cases" test $seen1 = 1
check "a fault on rank 0 alone was among the cases" test $seen0 = 1

# --stall-abort: rank 1 stopped for good after the first checkpoint
two_branch_net 30 100000 data.h5 "checkpoint: {every_steps: 20}"
ASAN_OPTIONS=$MPI_ASAN mpirun -np 2 -x OMP_NUM_THREADS=1 "$MIMO" train net.yaml --out stall \
    --stall-warn 1 --stall-abort 3 >stall.log 2>&1 &
job=$!
for _ in $(seq 600); do compgen -G "stall/checkpoints/ckpt-*.h5" >/dev/null && break; sleep 0.1; done
victim=$(rank_pid "$job" 1)
kill -STOP "$victim"
for _ in $(seq 600); do kill -0 "$job" 2>/dev/null || break; sleep 0.1; done
kill -0 "$job" 2>/dev/null && { kill -CONT "$victim"; kill -9 "$job"; }
wait "$job"
kill -CONT "$victim" 2>/dev/null
check "--stall-abort ended the job: status failed (got '$(state stall)'): $(cat stall.log)" \
    test "$(state stall)" = failed
check "--stall-abort: the status says the job stalled" \
    grep -q "^error: rank 0 of 2: stalled: rank(s) 0 of 2 have waited" stall/status
finish
