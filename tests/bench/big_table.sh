#!/usr/bin/env bash
# big_table.sh — a 10^7 x 32 embedding table (1.28 GB of parameters, Adam
# moments 2.56 GB more) trained on one node by 2 ranks (not run by CTest):
# `mimo summary`'s estimate, then `mimo bench` 10 steps on 2 ranks with
# the node-shared exchange (the parameters and moments held once for the
# node) and with the row-sparse one (a replica per rank): the node's
# memory (the ranks' proportional set sizes added up, sampled while they
# run: each page counted once; the last sample and the peak, at set-up),
# the step, rank 0's peak RSS.
# Usage: tests/bench/big_table.sh build/mimo [VOCAB, default 10000000]
set -euo pipefail
MIMO=$(realpath "${1:?usage: big_table.sh MIMO [VOCAB]}")
V=${2:-10000000}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
cat >big.yaml <<YAML
inputs:
  num:  {shape: 4}
  user: {shape: 1, dtype: int32}
layers:
  user_emb: {type: embedding, input_dim: $V, output_dim: 32, from: user}
  u:        {type: flatten, from: user_emb}
  x:        {type: concat, from: [num, u]}
  h:        {type: dense, units: 64, activation: relu, from: x}
  click:    {type: dense, units: 1, activation: sigmoid, from: h}
outputs:
  click: {loss: binary_crossentropy}
train: {optimizer: {type: adam, lr: 0.001}, batch_size: 1024, epochs: 1}
YAML
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'); $(free -g | awk '/Mem:/ {print $2}') GiB"
"$MIMO" summary big.yaml | grep -E "Total params|Memory to train"
# node_pss PID: the PSS of mpirun PID's ranks together, in MiB (each page
# counted once over the ranks that touched it: the node's memory)
node_pss() {
    local t=0 p k
    for p in $(ps -o pid= --ppid "$1"); do
        k=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || true)
        t=$((t + ${k:-0}))
    done
    echo $((t / 1024))
}
for mode in shared bucketed; do
    mpirun -np 2 -x OMP_NUM_THREADS=1 "$MIMO" bench big.yaml --steps 10 --warmup 2 \
        --allreduce $mode >"$mode.log" 2>&1 &
    job=$!
    : >"$mode.pss"
    while kill -0 $job 2>/dev/null; do # sampled while it runs
        node_pss $job >>"$mode.pss"
        sleep 0.5
    done
    wait $job
    # the plateau: the most frequent value to 100 MiB (the steps take most
    # of the run), and the peak (at set-up)
    plateau=$(awk '$1 > 0 {c[int($1 / 100)]++} END {for (k in c) if (c[k] > n) {n = c[k]; b = k}; print b * 100}' "$mode.pss")
    peak=$(sort -n "$mode.pss" | tail -n 1)
    echo "--allreduce $mode: the 2 ranks' PSS together: about $plateau MiB while training, at most $peak MiB"
    grep -E "^(gradient sum|step|peak RSS) " "$mode.log" | sed 's/^/    /'
done
