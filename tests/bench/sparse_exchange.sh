#!/usr/bin/env bash
# sparse_exchange.sh — the embedding tables' gradient sum by rows
# (row_sparse, the default) against the full allreduce
# (--embedding-grads dense): an embedding_bag of ROWS x DIM (default 2M x
# 32), global batch 1024, bags of 20 ids drawn uniformly (the worst case
# for the sparse sum: few repeated ids), plain sgd, 2 ranks, `mimo bench`.
# A measurement to read, not a test (never run by CTest).
#
# Step time: mimo bench's median over the timed steps, rank 0, with Open
# MPI's default transports (shared memory on one node) and with TCP over
# the loopback interface; and under --allreduce shared (node_shared: the
# node's buffers summed by memory, the tables by their touched rows or,
# dense, in full; its sum includes the update). Bytes sent per step: the loopback's transmitted
# bytes (/proc/net/dev) of two TCP runs that differ only in their number
# of timed steps, divided by the extra steps and the 2 ranks (so the
# start-up broadcast of the parameters cancels out; other traffic on lo
# during the runs adds to it: the machine should be quiet).
#
# Each figure is the median of ROUNDS runs (default 3).
#
# Usage: [ROUNDS=N] tests/bench/sparse_exchange.sh [MIMO] [ROWS] [DIM]
set -euo pipefail
source "$(dirname "$0")/lib.bash"
MIMO=$(realpath "${1:-build/mimo}")
ROWS=${2:-2000000} DIM=${3:-32} ROUNDS=${ROUNDS:-3}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
cd "$W"
bag_net "$ROWS" "$DIM"

TCP=(--mca btl tcp,self --mca btl_tcp_if_include lo)
run() { # run STEPS EMBEDDING_GRADS [MPIRUN ARGS]: mimo bench's output
    mpirun -np 2 -x OMP_NUM_THREADS=1 "${@:3}" "$MIMO" bench net.yaml --rows 8192 \
        --steps "$1" --warmup 2 --allreduce "${MODE:-bucketed}" --embedding-grads "$2"
}
lo_tx() { awk '$1 == "lo:" { print $10 }' /proc/net/dev; }
step_ms() { awk '/^step / { print $2; exit }'; }
sum_ms() { awk '/^  gradient sum/ { print $3; exit }'; }

echo "table ${ROWS} x ${DIM}, global batch 1024, bags of 20, sgd, 2 ranks; median of $ROUNDS runs"
echo "CPU: $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), $(nproc) cores; load: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-8s %14s %14s %14s %14s %16s %14s %14s %14s\n' grads "step (shm)" "sum (shm)" \
    "step (tcp lo)" "sum (tcp lo)" "bytes/step/rank" "1 process" "step (shared)" \
    "sum (shared)"
for eg in sparse dense; do
    short=$([ $eg = sparse ] && echo 5 || echo 3)
    long=$([ $eg = sparse ] && echo 45 || echo 13)
    : >shm.txt; : >tcp.txt; : >bytes.txt; : >one.txt; : >shared.txt
    for r in $(seq "$ROUNDS"); do
        out=$(run 20 $eg)
        echo "$(step_ms <<<"$out") $(sum_ms <<<"$out")" >>shm.txt
        [ "$r" = 1 ] && grep "^gradient sum" <<<"$out" >form.txt
        a=$(lo_tx); run $short $eg "${TCP[@]}" >/dev/null; b=$(lo_tx)
        out=$(run $long $eg "${TCP[@]}"); c=$(lo_tx)
        echo "$(step_ms <<<"$out") $(sum_ms <<<"$out")" >>tcp.txt
        echo $(( ((c - b) - (b - a)) / (long - short) / 2 )) >>bytes.txt
        OMP_NUM_THREADS=1 "$MIMO" bench net.yaml --rows 8192 --steps 20 --warmup 2 \
            --embedding-grads $eg | step_ms >>one.txt
        out=$(MODE=shared run 20 $eg)
        echo "$(step_ms <<<"$out") $(sum_ms <<<"$out")" >>shared.txt
        [ "$r" = 1 ] && grep "^gradient sum" <<<"$out" >>form.txt
    done
    printf '%-8s %11s ms %11s ms %11s ms %11s ms %16s %11s ms %11s ms %11s ms   %s\n' $eg \
        "$(cut -d' ' -f1 shm.txt | median)" "$(cut -d' ' -f2 shm.txt | median)" \
        "$(cut -d' ' -f1 tcp.txt | median)" "$(cut -d' ' -f2 tcp.txt | median)" \
        "$(median <bytes.txt)" "$(median <one.txt)" \
        "$(cut -d' ' -f1 shared.txt | median)" "$(cut -d' ' -f2 shared.txt | median)" \
        "$(paste -sd';' form.txt)"
done
